"""The survey (Hasany et al. 2024): its settings and Table 1, in one place.

:data:`PAPER` holds every number the chapter quotes; :func:`paper_table1` is Table 1 as a
frame, and the survey's thresholds and mask counts are read off it
(:func:`survey_thresholds`, :func:`survey_mask_counts`), so the ``paper`` profile and the
claims never type them twice.
"""

from __future__ import annotations

import pandas as pd

from xaistudy.chapters.spec import PaperRecord, Setting

#: Table 1: method, threshold, RISE masks ("-": a CAM), Dice Explained, Saliency Ratio, seconds
_TABLE1 = """
seg-grad-cam 0.05 - 0.606 3.47 0.25
seg-grad-cam 0.1 - 0.515 2.403 0.25
seg-xres-cam 0.05 - 0.671 1.788 0.26
seg-xres-cam 0.1 - 0.636 1.25 0.26
seg-eigen-cam 0.05 - 0.421 5.166 7.67
seg-eigen-cam 0.1 - 0.354 4.831 7.67
seg-ablation-cam 0.05 - 0.843 6.675 163.4
seg-ablation-cam 0.1 - 0.793 3.859 163.4
rise 0.2 100 0.927 11.155 16.1
rise 0.4 100 0.853 7.773 16.1
rise 0.2 500 0.948 10.59 80.4
rise 0.4 500 0.766 3.884 80.4
rise 0.2 1000 0.942 9.282 160.8
rise 0.4 1000 0.762 3.154 160.8
rise 0.2 2000 0.913 7.053 321.2
rise 0.4 2000 0.747 2.196 321.2
"""


def _rows() -> list[tuple[str, float, int | None, str, str, str]]:
    out = []
    for line in _TABLE1.strip().splitlines():
        method, thr, n, dice, ratio, sec = line.split()
        out.append((method, float(thr), None if n == "-" else int(n), dice, ratio, sec))
    return out


def row_key(method: str, threshold: float, n_masks: int | None) -> str:
    """The key prefix of one Table 1 row in :data:`PAPER`'s numbers."""
    return f"t1.{method}.{threshold:g}" + (f".{n_masks}" if n_masks else "")


def survey_thresholds(rise: bool) -> list[float]:
    """The survey's binarisation thresholds of RISE (``rise``) or of the CAMs, ascending."""
    return sorted({thr for m, thr, *_ in _rows() if (m == "rise") == rise})


def survey_mask_counts() -> list[int]:
    """The survey's RISE mask counts, ascending."""
    return sorted({n for m, _, n, *_ in _rows() if m == "rise"})


def _table1_numbers() -> dict[str, str]:
    numbers = {}
    for method, thr, n, dice, ratio, sec in _rows():
        key = row_key(method, thr, n)
        numbers.update({f"{key}.dice": dice, f"{key}.ratio": ratio, f"{key}.seconds": sec})
    return numbers


PAPER = PaperRecord(
    key="hasany2024guided",
    citation="Hasany et al. 2024",
    file="003_4fa91e0868423aa2.txt",
    settings=(
        Setting("model", "DeepLabv3-ResNet101 (torchvision, COCO weights)", "model"),
        Setting("data", "a subset of COCO-2017 (size not given)", "dataset"),
        Setting("images", "not given", "n_images"),
        Setting("layer of the CAMs", "the bottleneck", "layers",
                "the book adds a decoder layer"),
        Setting("CAM thresholds", "0.05, 0.1", "cam_thresholds"),
        Setting("RISE thresholds", "0.2, 0.4", "rise_thresholds"),
        Setting("RISE masks", "100, 500, 1000, 2000", "rise_masks"),
        Setting("RISE grid and keep probability", "not given", "rise_p"),
        Setting("RISE normalisation", "not given (Petsiuk: N·p)", "",
                "the book shows both, coverage and N·p"),
        Setting("masked pixels", "not given (black in the figures)", "fill"),
        Setting("seeds", "not given", "seeds"),
    ),
    numbers={
        **_table1_numbers(),
        # DeepLabv3-ResNet101's bottleneck (backbone.layer4) has 2048 channels: the
        # architecture's, not printed in the survey; it gives the survey's cost per forward
        "bottleneck_channels": "2048",
        "fig2.eigen_background": "'Dog', 'Bike' and 'Train'",
        "fig4.dice": "0.81, 0.86, 0.94",
        "fig4.ratio": "0.8, 1.42, 1.45",
    },
)


def paper_table1() -> pd.DataFrame:
    """The survey's Table 1 from :data:`PAPER` (method names as the book's labels)."""
    from xaistudy.explain.segmentation import SEG_METHODS

    rows = []
    for method, thr, n_masks, *_ in _rows():
        key = row_key(method, thr, n_masks)
        rows.append(
            {
                "method": SEG_METHODS[method].label,
                "threshold": thr,
                "n_masks": n_masks,
                "dice_explained": float(PAPER.number(f"{key}.dice")),
                "saliency_ratio": float(PAPER.number(f"{key}.ratio")),
                "seconds": float(PAPER.number(f"{key}.seconds")),
            }
        )
    table = pd.DataFrame(rows)
    table["n_masks"] = table["n_masks"].astype("Int64")
    return table


def survey_number(method: str, thr: float, n: int | None, what: str) -> str:
    """The survey's Table 1 value; at a threshold the survey did not use, its value at the
    nearest threshold it did use, saying so."""
    key = f"{row_key(method, thr, n)}.{what}"
    if key in PAPER.numbers:
        return PAPER.numbers[key]
    near = min(survey_thresholds(method == "rise"), key=lambda t: abs(t - thr))
    value = PAPER.number(f"{row_key(method, near, n)}.{what}")
    return f"{value} (the survey's threshold {near:g})"
