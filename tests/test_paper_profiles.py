"""Every chapter's ``paper`` profile, end to end, at tiny sizes on fabricated real-format files.

The paper profiles name the papers' datasets and models: CAMELYON16 slides, DiagSet-A blobs,
PanNuke folds, pCLE frame folders and COCO-2017 read from their real layouts; ResNet-50,
SK-ResNeXt-50, the thesis's CNN and UNET, DeepLabv3-ResNet101 and the Ho et al. DDPM widths;
ImageNet/COCO weights read from torchvision's and the Hugging Face hub's cache layouts (seeded
random values here); LPIPS(alex) from its torchvision file. Each test runs one chapter through
the chapter's own functions (:func:`xaistudy.app.runner.run_tables`: every table, claim and
figure, without the notebook, which the smoke tests execute) with the paper profile and only
sizes, epochs and step counts made tiny, so a crash or a wrong count anywhere on the paper's code
path surfaces here, on a CPU.
"""

from __future__ import annotations

import pandas as pd
import pytest
from fabricate_camelyon16 import make_mini_camelyon
from fabricate_folders import write_coco, write_pcle
from fabricate_nuclei import balanced_counts, write_diagset_blobs, write_pannuke
from fabricate_weights import (
    write_deeplab_weights,
    write_timm_weights,
    write_torchvision_weights,
)

from xaistudy.app import runner
from xaistudy.chapters import discover
from xaistudy.explain.segmentation import SEG_METHODS
from xaistudy.explain.taxonomy import TOUR_METHODS
from xaistudy.stats.claims import VERDICTS
from xaistudy.studies.ibo import STRATEGY_ORDER

pytestmark = pytest.mark.slow

VOC_CAT = 8
#: per chapter, the paper profile's sizes made tiny (ROOT: the fabricated data folder)
TINY: dict[str, dict[str, object]] = {
    "data": {
        "seeds": [0], "n_gallery": 1, "n_stats": 8, "n_stats_per_grade": 2, "n_patients": 2,
        "frames_per_patient": 1, "check_he_train": 8, "check_he_test": 4,
        "check_grading_train": 2, "check_grading_test": 1, "check_pcle_train": 2,
        "check_pcle_test": 2, "cnn_epochs": 1,
    },
    "saliency_tour": {
        "seeds": [0], "data_root": "ROOT/camelyon16", "data_options": {"level": 0},
        "tile_size": 64, "n_train": 16, "n_val": 4, "n_test": 8, "epochs": 1, "batch_size": 8,
        "n_eval": 1, "lime_samples": 10, "shap_samples": 10, "rise_masks": 10, "ig_steps": 2,
        "smoothgrad_samples": 1, "cascade_layers": 1, "n_shortcut_maps": 1,
        "n_sweep": 1, "n_ood": 2, "faithfulness_steps": 4,
    },
    "thesis_metrics": {
        "seeds": [0], "data_root": "ROOT/diagset", "nuclei_data_root": "ROOT/pannuke",
        "n_train_per_class": 4, "n_val_per_class": 1, "n_test_per_class": 1, "cnn_epochs": 1,
        "he_n_train": 4, "he_n_val": 2, "unet_epochs": 1, "ig_steps": 2, "nt_steps": 2,
        "nt_samples": 2, "lime_samples": 10, "n_boot": 50,
    },
    "xrelevancecam": {
        # two threads: the SK-ResNeXt's grouped convolutions take 25 % less CPU time than
        # with one (measured alone on the 2-core machine: 67 against 89 s)
        "threads": 2,
        "seeds": [0], "data_root": "ROOT/pcle", "frame_size": 64, "epochs": 1,
        "dropout_passes": 2, "axiom_images": 2, "axiom_channels": 2, "sanity_images": 1,
        "n_show": 1,
    },
    "ibo": {
        "seeds": [0], "data_root": "ROOT/camelyon16", "data_options": {"level": 0},
        "tile_size": 64, "n_train": 8, "n_val": 4, "n_test": 4, "epochs": 1, "ddpm_tiles": 4,
        # Score-CAM's and Ablation-CAM's 2,048-channel sweeps over the ResNet-50 (the same
        # explain() call) run in the saliency tour's test; here they were 2/3 of the time
        "methods": "gradcam,gradcam++,xgradcam,eigencam,fullgrad",
        "ddpm_epochs": 1, "ddpm_batch_size": 4, "repaint_steps": 2, "jump_length": 1,
        "resamplings": 1, "n_samples": 1, "n_gt_samples": 1, "gate_samples": 2,
        "gate_steps": 2, "n_boot": 50,
    },
    "segmentation_xai": {
        "seeds": [0], "data_root": "ROOT/coco", "tile_size": 64, "n_images": 1,
        "rise_masks": [10, 20], "rise_reference": 20, "n_convergence": 1, "timing_repeats": 1,
        "timing_batches": [1, 10], "roi_size": 24, "n_roi_images": 1, "n_show": 1,
        "border_px": 4, "ablation_ratio": 0.004,
    },
}


@pytest.fixture(scope="module")
def paper_root(tmp_path_factory):
    """The papers' datasets and weight caches, fabricated once; TORCH_HOME and HF_HOME point
    at the caches for the chapter kernels (which inherit the environment)."""
    root = tmp_path_factory.mktemp("paper-inputs")
    make_mini_camelyon(root / "camelyon16")
    write_coco(root / "coco")
    write_pcle(root / "pcle")
    scans = {s: {**balanced_counts(2), "R1": 1, "BG": 1} for s in ("s1", "s2", "s3", "s4", "s5")}
    partitions = {"train": ["s1", "s2", "s3"], "validation": ["s4"], "test": ["s5"]}
    write_diagset_blobs(root / "diagset", scans, partitions, side=256)
    write_pannuke(root / "pannuke", (4, 3, 3), side=256)
    for name in ("resnet50", "alexnet"):
        write_torchvision_weights(root / "torch", name)
    write_timm_weights(root / "hf", "skresnext50_32x4d")
    write_deeplab_weights(root / "torch", "deeplabv3_resnet101", favour=VOC_CAT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch"))
        mp.setenv("HF_HOME", str(root / "hf"))
        mp.delenv("HF_HUB_CACHE", raising=False)
        yield root


def _read(path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:  # a table without rows or columns at these sizes
        return pd.DataFrame()


def run_paper(name: str, root, tmp_path, **extra) -> tuple[dict[str, pd.DataFrame], dict]:
    """Run chapter ``name`` with the paper profile and the tiny sizes, in this process (the
    chapter's own functions, every table, claim and figure; the notebooks run in the smoke
    tests); its tables by name."""
    # one thread unless TINY says otherwise: nothing here is compared with another run, and
    # two test workers share the machine's cores
    values = {"threads": 1, **TINY[name], **extra}
    values = {k: v.replace("ROOT", str(root)) if isinstance(v, str) else v
              for k, v in values.items()}  # fmt: skip
    out = runner.run_tables(name, "paper", values, tmp_path / name, figures=True)
    tables = {p.stem: _read(p) for p in (out / "tables").glob("*.csv")}
    verdicts = set(tables["claims"]["verdict"])
    assert verdicts and verdicts <= set(VERDICTS), verdicts
    assert set(tables["claims"]["profile"]) <= {"paper"}
    figures = list((out / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 1000 for f in figures)
    return tables, values


def test_every_chapter_has_a_paper_shaped_run():
    assert set(TINY) == {n for n, c in discover().items() if c.part == "Chapters"}


def test_data_paper_profile(paper_root, tmp_path):
    tables, _ = run_paper("data", paper_root, tmp_path)
    assert len(tables["shortcut_check"]) > 0


def test_saliency_tour_paper_profile(paper_root, tmp_path):
    tables, v = run_paper("saliency_tour", paper_root, tmp_path)
    clf = tables["classifier"].iloc[0]
    assert (clf["data"], clf["model"], clf["test_tiles"]) == ("camelyon16", "resnet50", v["n_test"])
    assert list(tables["methods"]["method"]) == [*TOUR_METHODS, "rise_np"]
    methods = tables["methods"].set_index("method")
    assert methods[["seconds", "iou", "deletion_auc"]].notna().all().all()
    # every method's cost is counted on the ResNet itself (DeepLIFT runs on a ReLU copy of it)
    assert (methods["passes"] > 0).all(), methods.loc[methods["passes"] <= 0, "passes"]
    assert methods.loc["scorecam", "passes"] == 2048 + 1  # one per layer4 channel, plus one


def test_thesis_metrics_paper_profile(paper_root, tmp_path):
    tables, v = run_paper("thesis_metrics", paper_root, tmp_path)
    data = tables["dataset"].set_index("class")
    assert list(data.index) == ["A", "N", "R1", "R2", "R3", "R4", "R5"]
    assert (data["training"] == v["n_train_per_class"]).all()
    assert (data["testing"] == v["n_test_per_class"]).all()
    models = tables["models"].iloc[0]
    assert models["CNN parameters"] > 50_000_000  # fc_width 2048 on 256 px tiles (the thesis)


def test_xrelevancecam_paper_profile(paper_root, tmp_path):
    tables, _ = run_paper("xrelevancecam", paper_root, tmp_path)
    models = tables["models"]
    assert set(models["backbone"]) == {"skresnext50_32x4d", "resnet50"}
    started = models[models["start"] == "pretrained"]["initialisation"]
    assert len(started) == 3 and started.str.contains("local ImageNet weights").all()
    per_layer = tables["miou_per_layer"]
    # a start has per-layer IoUs exactly when its SK model classified some meningioma frame
    # correctly (the scored frames); at these sizes a one-epoch model may score none
    sk = models[models["model"] == "sk"]
    scored = set(sk.loc[sk["frames scored"] > 0, "start"])
    assert scored and set(per_layer["start"]) == scored
    assert set(per_layer["method"]) >= {"Grad-CAM", "RelevanceCAM", "XRelevanceCAM"}
    assert per_layer[["layer1", "layer2", "layer3", "layer4"]].notna().all().all()


def test_ibo_paper_profile(paper_root, tmp_path):
    tables, v = run_paper("ibo", paper_root, tmp_path)
    assert tables["classifier"]["classifier"].tolist() == ["resnet50"]
    splits = tables["splits"].set_index("split")
    assert splits.loc["test", "tiles"] == v["n_test"] and splits.loc["ddpm", "tumour"] == 0
    assert "lpips_alex" in set(tables["lpips"]["metric"])  # the real LPIPS(alex), file present
    assert len(tables["ddpm_gate"]) > 0
    settings = tables["settings"].set_index("setting")
    assert settings.loc["data", "this run"] == "camelyon16"
    assert set(tables["mard"]["strategy"]) == set(STRATEGY_ORDER)


def test_segmentation_xai_paper_profile(paper_root, tmp_path):
    tables, v = run_paper("segmentation_xai", paper_root, tmp_path)
    table1 = tables["table1"]
    assert (table1["tiles"] == v["n_images"]).all()
    timing = tables["timing"].set_index(["layer", "method"])
    ablation = timing.loc[("bottleneck", "Seg-Ablation-CAM")]
    assert ablation["forwards"] == 2 * int(2048 * v["ablation_ratio"]) + 2
    assert ablation["survey_forwards"] == 2050
    assert set(timing.index.get_level_values("method")) == {
        SEG_METHODS[m].label for m in SEG_METHODS
    }
