"""Chapter ``xrelevancecam``: XRelevanceCAM: relevance-weighted CAMs.

Parameters, profiles and registration; the notebook is ``notebooks/xrelevancecam.md``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from xaistudy.chapters import Chapter
from xaistudy.params import (
    DatasetChapterParams,
    Pretrained,
    dataset_field,
)


class XRelevanceCamParams(DatasetChapterParams):
    """The ``xrelevancecam`` chapter: relevance-weighted CAMs layer by layer (You et al.)."""

    dataset: str = dataset_field(
        "synthetic-pcle",
        ["synthetic-pcle", "pcle-folder"],
        "pCLE frames by patient: synthetic-pcle or pcle-folder (frames/<class>/<patient>/)",
    )

    backbone: str = Field(
        "skresnet18",
        pattern=r"^(skresnet18|skresnet34|skresnext50_32x4d)$",
        description="selective-kernel backbone of Tables 1, 3, 4: skresnet18, skresnet34 or "
        "skresnext50_32x4d (the paper's)",
    )
    resnet: str = Field(
        "resnet18",
        pattern=r"^(resnet18|resnet50)$",
        description="ResNet of Table 2 and the sanity check: resnet18 or resnet50 (the paper's)",
    )
    pretrained: Pretrained = Field(
        True,
        description="fine-tune ImageNet weights: true (the standard local cache file, when "
        "present), false, or a weights file path; never downloaded",
    )
    n_patients: int = Field(
        20,
        ge=0,
        le=1000,
        description="pCLE patients, split 80/10/10 by patient (synthetic-pcle: generated, >= "
        "10; pcle-folder: at most this many of the folder's, 0 = all)",
    )
    frames_per_patient: int = Field(
        16,
        ge=0,
        le=2000,
        description="frames per patient (synthetic-pcle: generated, >= 1; pcle-folder: at "
        "most this many per patient after frame_step, evenly spaced, 0 = all)",
    )
    frame_size: int = Field(
        96,
        ge=64,
        le=512,
        description="frame side in px (generated, or the folder's frames resized to it)",
    )
    centre_crop: bool = Field(
        True, description="crop to the largest square inside the circular field of view"
    )
    epochs: int = Field(12, ge=1, le=500, description="maximum training epochs")
    patience: int = Field(10, ge=1, le=100, description="early stopping: epochs w/o improvement")
    lr: float = Field(1e-3, gt=0, le=1, description="AdaMax learning rate")
    batch_size: int = Field(16, ge=2, le=512, description="training and CAM batch size")
    clrp_rule: str = Field(
        "unit",
        pattern=r"^(paper|unit|scaled)$",
        description="initial CLRP relevance: paper (L_t, -L_t/(N-1)), unit (1, -1/N) or scaled "
        "(L_t, -L_t/N, the paper's Sect. 3.2)",
    )
    binarise: str = Field(
        "mean_std",
        pattern=r"^(mean_std|mean|otsu|fixed)$",
        description="map binarisation for the IoU: mean_std (mean + std), mean, otsu or fixed",
    )
    threshold: float = Field(0.5, ge=0, le=1, description="threshold of binarise=fixed")
    n_eval: int = Field(
        64, ge=1, le=100000, description="most correctly classified meningioma test frames scored"
    )
    dropout: float = Field(0.1, ge=0.01, lt=1, description="dropout after each stage (Table 3)")
    dropout_passes: int = Field(10, ge=1, le=100, description="passes averaged with dropout on")
    axiom_images: int = Field(8, ge=1, le=10000, description="test frames of the axiom table")
    axiom_channels: int = Field(
        64, ge=0, le=4096, description="channels ablated per layer for sensitivity (0: all)"
    )
    sanity_layer: str = Field(
        "layer3",
        pattern=r"^layer[1-4]$",
        description="layer whose XRelevanceCAM the sanity check follows (layer1..layer4)",
    )
    sanity_images: int = Field(8, ge=1, le=1000, description="test frames of the sanity check")
    n_show: int = Field(3, ge=1, le=8, description="frames shown in the figures")

    @model_validator(mode="after")
    def _counts_fit_dataset(self) -> XRelevanceCamParams:
        too_few = self.n_patients < 10 or self.frames_per_patient < 1
        if self.dataset == "synthetic-pcle" and too_few:
            raise ValueError(
                f"synthetic-pcle generates its frames: n_patients must be >= 10 (got "
                f"{self.n_patients}) and frames_per_patient >= 1 (got {self.frames_per_patient}); "
                "0 (all) is for pcle-folder"
            )
        return self

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "n_patients": 16,
            "frames_per_patient": 2,
            "frame_size": 64,
            "epochs": 1,
            "pretrained": False,
            "n_eval": 2,
            "dropout_passes": 2,
            "axiom_images": 1,
            "axiom_channels": 4,
            "sanity_images": 1,
            "n_show": 1,
        },
        "quick": {},
        "paper": {
            "dataset": "pcle-folder",
            "backbone": "skresnext50_32x4d",
            "resnet": "resnet50",
            "n_patients": 0,
            "frames_per_patient": 0,
            "frame_size": 339,
            "epochs": 100,
            "batch_size": 32,
            "n_eval": 100000,
            "axiom_images": 200,
            "axiom_channels": 0,
            "sanity_images": 50,
        },
    }


CHAPTER = Chapter(
    name="xrelevancecam",
    title="XRelevanceCAM: relevance-weighted CAMs",
    params=XRelevanceCamParams,
    order=40,
)
