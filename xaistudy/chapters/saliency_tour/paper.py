"""Borys et al. (2023), the saliency review: its Fig. 7 setting and its Table B1 statements."""

from __future__ import annotations

from xaistudy.chapters.spec import PaperRecord, Setting
from xaistudy.explain import taxonomy as tx

B1 = "Table B1"
TEXT = "Sect. 2"


def _review_numbers() -> dict[str, str]:
    numbers = {"fig7.score": "0.98 ('Hand', DenseNet121 on MedNIST)"}
    for entry in tx.REVIEW:
        if entry.method and entry.strength:
            numbers[f"b1.{entry.method}.strength"] = entry.strength
            numbers[f"b1.{entry.method}.weakness"] = entry.weakness
    numbers.update(
        {  # single statements of multi-line Table B1 cells, and the text's
            "b1.lime.expense": "High computational expense",
            "b1.cam.localisation": "Inaccurate localization of heatmap",
            "b1.rise.morphology": "Approximate results of object morphology",
            "parameters.lime": "Relies on pre-defined parameters (Table B1); 'minor alterations "
            "can lead to significant differences in results' (Sect. 2.1)",
            "parameters.rise": "Relies on pre-defined parameters",
            "parameters.smoothgrad": numbers["b1.smoothgrad.weakness"],
            "parameters.integrated_gradients": numbers["b1.integrated_gradients.weakness"],
            "parameters.lrp": numbers["b1.lrp.weakness"],
        }
    )
    return numbers


PAPER = PaperRecord(
    key="borys2023saliency",
    citation="Borys et al. 2023",
    file="004_6fbc4ed098113fe3.txt",
    settings=(
        Setting("data (Fig. 7)", "MedNIST, six classes", "dataset", "tumour vs normal H&E tiles"),
        Setting("model (Fig. 7)", "DenseNet121", "model", "no DenseNet in this chapter"),
        Setting("methods", "Table B1 (18 listed)", "methods", "run where a library exists"),
        Setting("library (Fig. 7)", "captum", "", "captum, lime, zennit, pytorch-grad-cam"),
    ),
    numbers=_review_numbers(),
)
