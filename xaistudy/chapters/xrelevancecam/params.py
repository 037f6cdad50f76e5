"""Parameters of the ``xrelevancecam`` chapter: a pydantic model with its profiles (the
``paper`` profile's frame size, schedule and backbones come from the paper record)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from xaistudy.chapters.xrelevancecam import paper
from xaistudy.core.params import (
    DatasetSeedsParams,
    ParamError,
    Pretrained,
    dataset_field,
)


class XRelevanceCamParams(DatasetSeedsParams):
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
        False,
        description="ImageNet weights for the pretrained start: true (the standard local cache "
        "file; the run refuses when it is missing), a weights file path, or false (then the "
        "stand-in pretraining is the pretrained start); never downloaded",
    )
    standin: str = Field(
        "synthetic-he",
        pattern=r"^(synthetic-he|synthetic-grading|none)$",
        description="stand-in pretraining task when no ImageNet weights are given: "
        "synthetic-he, synthetic-grading, or none (only the from-scratch start)",
    )
    standin_tiles: int = Field(400, ge=8, le=100000, description="stand-in training tiles")
    standin_epochs: int = Field(3, ge=1, le=200, description="stand-in pretraining epochs")
    n_patients: int = Field(
        20,
        ge=0,
        le=1000,
        description="pCLE patients, split 80/10/10 by patient (synthetic-pcle: generated, >= "
        "10; pcle-folder: at most this many of the folder's, 0 = all)",
    )
    frames_per_patient: int = Field(
        8,
        ge=0,
        le=2000,
        description="frames per patient (synthetic-pcle: generated, >= 1; pcle-folder: at "
        "most this many per patient after frame_step, evenly spaced, 0 = all)",
    )
    test_patients: int = Field(
        8,
        ge=1,
        le=1000,
        description="synthetic-pcle: meningioma (and as many glioblastoma) test patients "
        "generated per seed, unseen in training; pcle-folder: its test split is used instead",
    )
    test_frames: int = Field(4, ge=1, le=1000, description="frames per generated test patient")
    val_patients: int = Field(
        1,
        ge=0,
        le=1000,
        description="synthetic-pcle: validation on this many generated meningioma (and as many "
        "glioblastoma) patients unseen in training, a split stratified by class; 0 = the "
        "patient split's own validation patients (pcle-folder: always its val split)",
    )
    standardise: bool = Field(
        True,
        description="each frame's channels to mean 0, std 1 (removes a patient's gain)",
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
    epochs: int = Field(10, ge=1, le=500, description="maximum training epochs")
    patience: int = Field(4, ge=1, le=100, description="early stopping: epochs w/o improvement")
    lr: float = Field(1e-3, gt=0, le=1, description="AdaMax learning rate")
    batch_size: int = Field(16, ge=2, le=512, description="training and CAM batch size")
    clrp_rule: str = Field(
        "unit",
        pattern=r"^(unit|zero_sum|logit)$",
        description="initial CLRP relevance: unit (1, -1/N; the reference code), zero_sum "
        "(L_t, -L_t/(N-1)) or logit (L_t, -L_t/N, the paper's Sect. 3.2)",
    )
    binarise: str = Field(
        "mean_std",
        description="map binarisation for the IoU (xaistudy.evaluate.wsss.BINARISE_RULES): "
        "mean_std (mean + std), mean, otsu or fixed",
    )
    threshold: float = Field(0.5, ge=0, le=1, description="threshold of binarise=fixed")
    n_eval: int = Field(
        64, ge=1, le=100000, description="most correctly classified meningioma frames scored"
    )
    dropout: float = Field(
        paper.DROPOUT, ge=0.01, lt=1, description="dropout after each stage (Table 3)"
    )
    dropout_passes: int = Field(5, ge=1, le=100, description="passes averaged with dropout on")
    axiom_images: int = Field(8, ge=1, le=10000, description="frames of the axiom table, per seed")
    axiom_channels: int = Field(
        32, ge=0, le=4096, description="channels ablated per layer for sensitivity (0: all)"
    )
    sanity_layer: str = Field(
        "layer3",
        pattern=r"^layer[1-4]$",
        description="layer whose XRelevanceCAM the sanity check follows (layer1..layer4)",
    )
    sanity_images: int = Field(8, ge=1, le=1000, description="frames of the sanity check")
    sanity_spearman: float = Field(
        0.5,
        ge=-1,
        le=1,
        description="sanity pass rule: a frame passes when its map with every stage randomised "
        "has Spearman similarity below this to the trained model's map",
    )
    n_show: int = Field(2, ge=1, le=8, description="frames shown in the figures")

    @field_validator("binarise")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        """One of the library's rules (imported here: the chapter's import stays light)."""
        from xaistudy.evaluate.wsss import BINARISE_RULES

        if value not in BINARISE_RULES:
            raise ValueError(
                f"unknown rule '{value}' in binarise; allowed: {', '.join(BINARISE_RULES)}"
            )
        return value

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

    def check_inputs(self) -> None:
        """Also refuse ``pretrained=true`` when a backbone's standard weights file is missing."""
        super().check_inputs()
        if self.pretrained is True:
            from xaistudy.models.classifiers import WeightsNotFoundError, find_pretrained_weights

            for name in (self.backbone, self.resnet):
                try:
                    find_pretrained_weights(name)
                except WeightsNotFoundError as err:
                    text = str(err).replace("\n", " ")  # the hint names this chapter's parameter
                    raise ParamError(text.replace("'-p weights ", "'-p pretrained ")) from None

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "seeds": [0],
            "n_patients": 10,
            "frames_per_patient": 2,
            "test_patients": 2,
            "test_frames": 1,
            "frame_size": 64,
            "epochs": 1,
            "standin_tiles": 8,
            "standin_epochs": 1,
            "dropout_passes": 2,
            "axiom_images": 2,
            "axiom_channels": 2,
            "sanity_images": 1,
            "n_show": 1,
        },
        "quick": {},
        "paper": {
            "dataset": "pcle-folder",
            "backbone": paper.BACKBONE,
            "resnet": paper.RESNET,
            "pretrained": True,
            "n_patients": 0,
            "frames_per_patient": 0,
            "frame_size": paper.FRAME_SIZE,
            "epochs": 100,
            "patience": paper.PATIENCE,
            "batch_size": 32,
            "n_eval": 100000,
            "dropout_passes": paper.DROPOUT_PASSES,
            "axiom_images": 200,
            "axiom_channels": 0,
            "sanity_images": 50,
        },
    }
    #: the paper's backbones, frame size and schedules on synthetic frames; the pretrained start
    #: is the stand-in pretraining unless ImageNet files are given with -p pretrained
    PROFILES["gpu"] = {
        **PROFILES["paper"],
        "dataset": "synthetic-pcle",
        "pretrained": False,
        "n_patients": 40,
        "frames_per_patient": 40,
    }
