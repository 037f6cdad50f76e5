"""Procedural synthetic tissue with exact ground truth: the book's default data.

Three kinds of images are generated:

* H&E lymph-node tiles (normal vs. metastatic tumour) with tumour masks and PanNuke-style
  nucleus instance / type maps (:mod:`.he`),
* prostate-like grading tiles (classes A, N, R1-R5 of DiagSet; :mod:`.grading`, the class-A
  artifacts in :mod:`.artifacts`),
* grey pCLE endomicroscopy frames (meningioma with psammoma bodies vs. glioblastoma;
  :mod:`.pcle`).

Every tile draws from its own generator seeded by ``(seed, index, kind, ...)``, so tile *i*
never depends on other tiles and the same arguments always give the same bytes. All lengths
are in pixels at one fixed magnification: a larger tile is a larger field of view, not a zoom
(only the tumour / sheet blobs scale with the tile, and pCLE frames, whose field is the fixed
probe field, scale as a whole). H&E and grading images are composed with the
Beer-Lambert law from haematoxylin and eosin concentration maps (:mod:`.optics`; nuclei and
stroma in :mod:`.tissue`); the stain vectors and concentration scales vary per tile and are
recorded in ``Tile.meta``. The rules in words are :data:`RULES` (:mod:`.rules`).
"""

from xaistudy.data.synthetic.artifacts import ARTIFACTS, PEN_INKS, PEN_WIDTH
from xaistudy.data.synthetic.common import (
    GRADES,
    HE_CLASSES,
    MAX_SIZE,
    MIN_SIZE,
    NEOPLASTIC,
    NON_NEOPLASTIC,
    NUCLEUS_TYPES,
    PCLE_CLASSES,
    Tile,
)
from xaistudy.data.synthetic.grading import GRADE_SPECS, grading_set, grading_tile
from xaistudy.data.synthetic.he import (
    LYMPH_PITCH,
    TUMOUR_AREA_DEFAULT,
    TUMOUR_NUCLEUS,
    TUMOUR_PITCH,
    he_set,
    he_tile,
)
from xaistudy.data.synthetic.optics import (
    CONC_SCALE,
    DENSITY_REF_GRADING,
    DENSITY_REF_HE,
    E_REF,
    H_REF,
    RESIDUAL_OD,
    STAIN_MAX_ROTATION_DEG,
)
from xaistudy.data.synthetic.pcle import (
    PCLE_BACKGROUND,
    PCLE_FOV_FRAC,
    PSAMMOMA_COMPENSATION,
    PSAMMOMA_COUNT,
    PSAMMOMA_RADIUS,
    pcle_frame,
    pcle_set,
)
from xaistudy.data.synthetic.rules import RULES

__all__ = [
    # class names and the tile
    "HE_CLASSES", "GRADES", "PCLE_CLASSES", "NUCLEUS_TYPES", "NEOPLASTIC", "NON_NEOPLASTIC",
    "MIN_SIZE", "MAX_SIZE", "Tile",
    # generators and sets
    "he_tile", "he_set", "grading_tile", "grading_set", "pcle_frame", "pcle_set", "RULES",
    # constants that callers read
    "H_REF", "E_REF", "RESIDUAL_OD", "STAIN_MAX_ROTATION_DEG", "CONC_SCALE", "DENSITY_REF_HE",
    "DENSITY_REF_GRADING", "LYMPH_PITCH", "TUMOUR_PITCH", "TUMOUR_NUCLEUS", "TUMOUR_AREA_DEFAULT",
    "GRADE_SPECS", "ARTIFACTS", "PEN_INKS", "PEN_WIDTH", "PCLE_FOV_FRAC", "PCLE_BACKGROUND",
    "PSAMMOMA_RADIUS", "PSAMMOMA_COUNT", "PSAMMOMA_COMPENSATION",
]  # fmt: skip
