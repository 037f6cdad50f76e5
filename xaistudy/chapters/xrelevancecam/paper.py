"""The paper the ``xrelevancecam`` chapter reproduces: You et al. 2024, XRelevanceCAM.

Its settings (beside the parameters that carry them) and the numbers of its Tables 1-4; the
``paper`` profile reads the values the paper states from here.
"""

from __future__ import annotations

from xaistudy.chapters.spec import PaperRecord, Setting

#: the paper's columns: the ResNet stages and the layer aggregations of Table 2
STAGES = ("layer1", "layer2", "layer3", "layer4")
AGGREGATIONS = ("4", "4+3", "4+3+2", "4+3+2+1")
#: the paper's values of parameters (its frames, early stopping, Table 3's dropout)
FRAME_SIZE, PATIENCE, DROPOUT, DROPOUT_PASSES = 339, 10, 0.1, 10
#: the paper's backbones (timm / torchvision names): SK-ResNeXt-50 32x4d and ResNet50
BACKBONE, RESNET = "skresnext50_32x4d", "resnet50"

_T1 = {  # Table 1, SK-ResNeXt, mIoU %: layer1..layer4, average
    "gradcam": ("16.38", "18.46", "33.14", "31.82", "24.95"),
    "relevancecam": ("18.0", "30.37", "33.42", "31.0", "28.19"),
    "xrelevancecam": ("28.07", "31.83", "35.11", "32.31", "31.83"),
}
_T2 = {  # Table 2, mIoU %: 4, 4+3, 4+3+2, 4+3+2+1
    ("sk", "gradcam"): ("31.82", "33.86", "32.73", "31.74"),
    ("sk", "relevancecam"): ("31.0", "33.13", "35.79", "35.93"),
    ("sk", "xrelevancecam"): ("32.31", "34.45", "37.04", "38.20"),
    ("resnet", "gradcam"): ("23.18", "25.11", "23.98", "21.48"),
    ("resnet", "relevancecam"): ("24.02", "27.25", "24.20", "23.30"),
    ("resnet", "xrelevancecam"): ("23.68", "29.20", "27.66", "26.10"),
}
_T3 = {  # Table 3, dropout on: layer1..layer4, 4+3+2+1
    "gradcam": ("10.19", "16.52", "23.99", "25.88", "24.52"),
    "relevancecam": ("17.87", "22.08", "28.08", "25.98", "28.57"),
    "xrelevancecam": ("20.26", "24.53", "29.02", "25.96", "29.62"),
}
_T3_OFF = {  # Table 3, dropout off (the same model, no stochasticity): layer1..4, 4+3+2+1
    "gradcam": ("9.57", "17.06", "24.79", "25.03", "23.89"),
    "relevancecam": ("12.69", "26.71", "35.37", "31.90", "35.20"),
    "xrelevancecam": ("18.67", "28.39", "36.06", "32.38", "35.40"),
}
_T4 = {  # Table 4, average over layers
    ("gradcam", "conservation"): "0.689",
    ("gradcam", "sensitivity"): "0.999",
    ("relevancecam", "conservation"): "0.528",
    ("relevancecam", "sensitivity"): "1.29",
    ("xrelevancecam", "conservation"): "0.0097",
    ("xrelevancecam", "sensitivity"): "1.02",
}
PAPER = PaperRecord(
    key="you2024xrelevancecam",
    citation="You et al. 2024",
    file="002_0eff168feed41a5e.txt",
    settings=(
        Setting("data", "ex vivo pCLE, 34 patients (18 meningioma, 16 GBM)", "dataset"),
        Setting("split", "by patient 80/10/10 (27/3/4 patients)", "n_patients"),
        Setting("test frames scored", "correctly classified meningioma frames", "n_eval"),
        Setting("frame side", f"{FRAME_SIZE} px frames", "frame_size"),
        Setting("centre crop", "230 x 230 px inside the field of view", "centre_crop"),
        Setting("frames per patient", "all frames of the videos", "frames_per_patient"),
        Setting("validation split", "split-out patients (3)", "val_patients"),
        Setting("input standardisation", "not stated", "standardise"),
        Setting("maximum epochs", "until early stopping", "epochs"),
        Setting("selective-kernel backbone", "SK-ResNeXt-50 32x4d", "backbone"),
        Setting("ResNet (Table 2, Fig. 5)", "ResNet50", "resnet"),
        Setting(
            "initialisation",
            "ImageNet weights (timm)",
            "pretrained",
            "false: a stand-in pretraining on a synthetic task, labelled as such",
        ),
        Setting("optimiser, learning rate", "AdaMax, 1e-3", "lr"),
        Setting("early stopping", f"{PATIENCE} epochs without improvement", "patience"),
        Setting(
            "LRP rule",
            "text: LRP-epsilon / alpha-beta; authors' code: z+",
            "",
            "z+ here, as the authors' code",
        ),
        Setting("CLRP start", "text: -L_t/(N-1) at the other classes", "clrp_rule"),
        Setting(
            "CAM library",
            "TorchCAM",
            "",
            "pytorch-grad-cam here; Grad-CAM++ differs: a TorchCAM line divides a copy "
            "and has no effect",
        ),
        Setting(
            "map post-processing",
            "min-max, no ReLU (reference code)",
            "",
            "relevance CAMs: no ReLU; gradient CAMs: pytorch-grad-cam's ReLU",
        ),
        Setting(
            "dropout (Table 3)",
            f"{DROPOUT:g} after each stage, {DROPOUT_PASSES} passes",
            "dropout_passes",
        ),
        Setting("sanity layer (Fig. 5)", "stage 3", "sanity_layer"),
    ),
    numbers={
        **{
            f"table1.{m}.{c}": v[i]
            for m, v in _T1.items()
            for i, c in enumerate((*STAGES, "average"))
        },
        **{
            f"table2.{b}.{m}.{a}": v[i]
            for (b, m), v in _T2.items()
            for i, a in enumerate(AGGREGATIONS)
        },
        **{
            f"table3.on.{m}.{c}": v[i]
            for m, v in _T3.items()
            for i, c in enumerate((*STAGES, "4+3+2+1"))
        },
        **{
            f"table3.off.{m}.{c}": v[i]
            for m, v in _T3_OFF.items()
            for i, c in enumerate((*STAGES, "4+3+2+1"))
        },
        **{f"table4.{m}.{a}": v for (m, a), v in _T4.items()},
        "fig5": "the layer-3 map deteriorates gradually (visual)",
        "test_frames": "11 frames of one patient (Tables 1-2), 7 (Table 3), 8 (Table 4)",
    },
)
