"""The generators' rules in words, computed from their constants (:data:`RULES`)."""

from __future__ import annotations

from xaistudy.data.synthetic.artifacts import (
    ARTIFACT_COUNT,
    ARTIFACTS,
    BLUR_ARTIFACT_AREA,
    BLUR_ARTIFACT_SIGMA,
    BUBBLE_RADIUS,
    FOLD_WIDTH,
    PEN_INKS,
    PEN_WIDTH,
)
from xaistudy.data.synthetic.common import GRADES, MAX_SIZE, MIN_SIZE, TUMOUR_BLOB_SIGMA_FRAC
from xaistudy.data.synthetic.grading import (
    GRADE_SPECS,
    GRADING_STROMA_H,
    NEST_SIGMA,
    SHEET_BLOB_SIGMA_FRAC,
)
from xaistudy.data.synthetic.he import (
    CAPSULE_PROB,
    CAPSULE_WIDTH,
    FAT_COUNT,
    FAT_PROB,
    FAT_RADIUS,
    FOLLICLE_PROB,
    FOLLICLE_RADIUS,
    GERMINAL_CENTRE_DENSITY,
    LYMPH_KEEP,
    LYMPH_PITCH,
    LYMPHOCYTE,
    MANTLE_WIDTH,
    SINUS_CELLULARITY,
    SINUS_PROB,
    SINUS_WIDTH,
    TUMOUR_AREA_DEFAULT,
    TUMOUR_LUMEN_AREA,
    TUMOUR_LUMEN_PROB,
    TUMOUR_LUMEN_RADIUS,
    TUMOUR_NUCLEUS,
    TUMOUR_PITCH,
)
from xaistudy.data.synthetic.optics import (
    CALIBRATION_CLIP,
    CONC_SCALE,
    DENSITY_REF_GRADING,
    DENSITY_REF_HE,
    E_REF,
    FINAL_BLUR_SIGMA,
    H_REF,
    SENSOR_NOISE_STD,
    STAIN_MAX_ROTATION_DEG,
)
from xaistudy.data.synthetic.pcle import (
    PCLE_BACKGROUND,
    PCLE_BRIGHTNESS,
    PCLE_CELL_SIGMA,
    PCLE_CELLS_PER_KPX,
    PCLE_FOV_FRAC,
    PCLE_GREY_SCALE,
    PCLE_PHOTONS,
    PCLE_REF_SIZE,
    PCLE_TEXTURE_SCALE,
    PCLE_VIGNETTE,
    PSAMMOMA_BRIGHTNESS,
    PSAMMOMA_COMPENSATION,
    PSAMMOMA_COUNT,
    PSAMMOMA_LAMELLA,
    PSAMMOMA_RADIUS,
    STREAK_PROB,
    STREAK_WIDTH,
)
from xaistudy.data.synthetic.tissue import (
    FIBRE_LENGTH,
    FIBRE_WIDTH,
    FIBROBLASTS_PER_KPX,
    NUCLEOLUS_RADIUS,
    TUMOUR_EDGE_FIT,
)


def _rng_text(r: tuple[float, float], unit: str = " px") -> str:
    return f"{r[0]:g}-{r[1]:g}{unit}"


def _grade_rule(grade: str) -> str:
    s = GRADE_SPECS[grade]
    if s.pattern == "glands":
        arch = (
            f"separate round glands of radius {_rng_text(s.gland_radius)} covering about "
            f"{s.gland_fill:g} of the tile, epithelium {s.epithelium:g} px thick around a "
            "clear lumen"
        )
    elif s.pattern == "cribriform":
        arch = (
            f"fused cribriform nests (thresholded noise of smoothness {NEST_SIGMA:g} px) "
            f"covering {_rng_text(s.sheet_area, '')} of the tile, pierced by punched-out "
            f"lumens of radius {_rng_text(s.lumen_radius)} every {s.lumen_pitch:g} px"
        )
    else:
        lum = (
            f", a few small lumens of radius {_rng_text(s.lumen_radius)} every {s.lumen_pitch:g} px"
            if s.lumen_pitch
            else ", no lumens"
        )
        arch = f"a solid sheet covering {_rng_text(s.sheet_area, '')} of the tile{lum}"
    return (
        f"{grade}: {arch}; nuclei of mean semi-axis {s.nucleus_radius:g} px, pleomorphism "
        f"{s.pleomorphism:g}, spaced {s.pitch:g} px."
    )


def _build_rules() -> dict[str, list[str]]:
    he = [
        f"All lengths are pixels at one magnification; tiles are {MIN_SIZE}-{MAX_SIZE} px and a "
        "larger tile shows a larger field, not a zoom.",
        "Colour follows Beer-Lambert: OD = cH * h + cE * e + residual, RGB = 255 exp(-OD), with "
        f"reference stain vectors h = {H_REF} and e = {E_REF}.",
        f"Each tile rotates both stain vectors by up to {STAIN_MAX_ROTATION_DEG:g} degrees and "
        f"draws a density scale per stain from {_rng_text(CONC_SCALE, '')} (recorded in meta), "
        "the same ranges for every class.",
        "The mean colour does not tell the class: the evidence region and the rest of the "
        "tissue are "
        "each scaled (haematoxylin and eosin separately, factors "
        f"{_rng_text(CALIBRATION_CLIP, '')}) until their mean colour has the tile's target "
        f"densities, reference (H, E) = {DENSITY_REF_HE} times the tile's scales; what differs "
        "between the classes is how the stain is laid out: nuclei, cells and spaces.",
        f"Stroma is wavy collagen: anisotropic noise ({FIBRE_LENGTH:g} px along, "
        f"{FIBRE_WIDTH:g} px across a random direction) warped by smooth displacements, "
        f"with up to {FIBROBLASTS_PER_KPX:g} faint spindle fibroblast nuclei per 1000 px^2 "
        "oriented along the fibres.",
        f"Normal lymph node: lymphocyte nuclei are round (axis ratio "
        f"{_rng_text(LYMPHOCYTE.aspect, '')}), radius {_rng_text(LYMPHOCYTE.radius)}, dark, on a "
        f"jittered hexagonal lattice of pitch {LYMPH_PITCH:g} px, each site kept with probability "
        f"{_rng_text(LYMPH_KEEP, '')} following a smooth lymphoid-density field.",
        f"Lymph-node architecture: with probability {FOLLICLE_PROB:g} a follicle (radius "
        f"{_rng_text(FOLLICLE_RADIUS)}, a dense mantle {_rng_text(MANTLE_WIDTH)} wide around a "
        f"paler germinal centre of lymphoid density {GERMINAL_CENTRE_DENSITY:g}); with "
        f"probability {SINUS_PROB:g} a winding sinus {_rng_text(SINUS_WIDTH)} wide (pale, "
        f"{SINUS_CELLULARITY:g} of the lymphocytes); with probability {CAPSULE_PROB:g} a "
        f"capsule of dense collagen without lymphocytes, {_rng_text(CAPSULE_WIDTH)} thick, "
        "along one tile edge (meta['structures'] names them). They are drawn the same way in "
        "both classes.",
        f"With probability {FAT_PROB:g} a tile has {FAT_COUNT[0]}-{FAT_COUNT[1]} clear fat "
        f"vacuoles of radius {_rng_text(FAT_RADIUS)} with thin eosin membranes.",
        "A tumour tile has smooth random tumour blobs (thresholded low-frequency noise, "
        f"smoothness tile size / {1 / TUMOUR_BLOB_SIGMA_FRAC:g}) covering a fraction of the tile "
        f"drawn uniformly from tumour_area (default {_rng_text(TUMOUR_AREA_DEFAULT, '')}); mask "
        "is exactly this region and a normal tile has an empty mask.",
        f"Tumour nuclei (type neoplastic) have semi-major axis {_rng_text(TUMOUR_NUCLEUS.radius)}, "
        f"axis ratio {_rng_text(TUMOUR_NUCLEUS.aspect, '')}, irregular outlines (harmonics 2-4 "
        f"up to {TUMOUR_NUCLEUS.pleomorphism:g}), vesicular chromatin with a dark rim and "
        f"{TUMOUR_NUCLEUS.nucleoli[0]}-{TUMOUR_NUCLEUS.nucleoli[1]} nucleoli of radius "
        f"{NUCLEOLUS_RADIUS:g} px, crowded on a {TUMOUR_PITCH:g} px lattice with centres at "
        f"least {TUMOUR_EDGE_FIT:g} outline radii inside the mask and pixels cut at its edge, "
        "in eosinophilic cytoplasm with cell borders and a pale perinuclear halo.",
        f"With probability {TUMOUR_LUMEN_PROB:g} the tumour has small clear lumens of radius "
        f"{_rng_text(TUMOUR_LUMEN_RADIUS)} (1 plus one per {TUMOUR_LUMEN_AREA:g} px^2 of tumour "
        "on average).",
        "Nuclei outside the mask are non-neoplastic (lymphocytes, fibroblasts) and lie wholly "
        "outside it; the class evidence is only the tumour region.",
        f"Finally the image is blurred (sigma {FINAL_BLUR_SIGMA:g} px) and sensor noise "
        f"(sigma {SENSOR_NOISE_STD:g} grey levels) is added.",
    ]
    grading = [
        "Prostate-like tiles on the H&E stain model of the lymph-node tiles, with wavy "
        f"fibromuscular stroma (faint haematoxylin {GRADING_STROMA_H:g}) and spindle nuclei.",
        "As in the H&E tiles, the evidence region (R1-R5) and the rest of the tile are each "
        "scaled to the tile's target mean densities, reference (H, E) = "
        f"{DENSITY_REF_GRADING} times per-tile scales from {_rng_text(CONC_SCALE, '')}: no "
        "grade is darker or more purple on average; the grades differ in nuclear size, shape, "
        "density, nucleoli and gland architecture. Artifacts of class A are drawn afterwards.",
        "N: "
        + _grade_rule("N")
        .split(": ", 1)[1]
        .replace("nuclei of", "a basal layer of flat nuclei plus a luminal layer of nuclei of"),
        *(_grade_rule(g) for g in GRADES[2:]),
        "Nuclear size, pleomorphism and the number of nuclei per tile increase monotonically "
        "from R1 to R5 while gland structure is lost (cytoplasm basophilia too, before the "
        "region's mean colour is scaled to the tile's target).",
        "For R1-R5 the mask is the malignant epithelium (glands, nests or sheet including their "
        "lumens), its nuclei are neoplastic and cut at its edge; N has an empty mask. The R4-R5 "
        f"sheet is thresholded noise of smoothness tile size / {1 / SHEET_BLOB_SIGMA_FRAC:g}.",
        f"A: benign (N) tissue with {ARTIFACT_COUNT[0]}-{ARTIFACT_COUNT[1]} of "
        f"{', '.join(ARTIFACTS)}: out-of-focus blur (sigma {_rng_text(BLUR_ARTIFACT_SIGMA)} over "
        f"{_rng_text(BLUR_ARTIFACT_AREA, '')} of the tile), tissue fold (darker doubled band "
        f"{_rng_text(FOLD_WIDTH)} wide), pen mark ({', '.join(PEN_INKS)} stroke "
        f"{_rng_text(PEN_WIDTH)} wide), air bubble (radius {_rng_text(BUBBLE_RADIUS)}, bright "
        "ring, clear interior, dark edge); mask is the artifact region, meta['artifact'] names "
        "them.",
    ]
    pcle = [
        f"Grey frames with a circular field of view of radius {PCLE_FOV_FRAC:g} x size; pixels "
        "outside it are 0. The probe's field is fixed, so the lengths below are for a "
        f"{PCLE_REF_SIZE} px frame and scale with the frame size.",
        "Background: fibrous grey texture (warped anisotropic noise) with "
        f"{PCLE_CELLS_PER_KPX:g} bright cell dots per 1000 px^2 (sigma "
        f"{_rng_text(PCLE_CELL_SIGMA)}), vignetting {PCLE_VIGNETTE:g} and Poisson noise "
        f"({_rng_text(PCLE_PHOTONS, '')} photons at full brightness).",
        f"The tissue background has mean intensity {PCLE_BACKGROUND:g} (grey level "
        f"{PCLE_BACKGROUND * PCLE_GREY_SCALE:.0f} before vignetting and the patient's gain).",
        f"Each patient has its own brightness ({_rng_text(PCLE_BRIGHTNESS, '')}), texture scale "
        f"({_rng_text(PCLE_TEXTURE_SCALE, '')}), cell density and noise level.",
        f"Meningioma frames contain {PSAMMOMA_COUNT[0]}-{PSAMMOMA_COUNT[1]} psammoma bodies: "
        f"bright concentric lamellated discs of radius {_rng_text(PSAMMOMA_RADIUS)} with "
        f"lamellae every {PSAMMOMA_LAMELLA:g} px (peak intensity "
        f"{_rng_text(PSAMMOMA_BRIGHTNESS, '')}); the mask is their discs. The frame is then "
        f"dimmed so that the bodies add only {1 - PSAMMOMA_COMPENSATION:g} of their extra light "
        "to the frame's mean: the mean brightness says little about the class.",
        f"With probability {STREAK_PROB:g} a frame of either class has a bright vessel-like "
        f"streak {_rng_text(STREAK_WIDTH)} wide: a distractor, not evidence.",
        "Glioblastoma frames have no psammoma bodies and an empty mask; the mask is the only "
        "class evidence.",
    ]
    return {"he": he, "grading": grading, "pcle": pcle}


RULES: dict[str, list[str]] = _build_rules()
