"""The saliency tour (Borys et al. 2023): the review's saliency methods on one tumour classifier.

Per seed, a tumour-vs-normal classifier and its Clever-Hans twin are trained (or loaded from the
cache); every method explains the same correctly classified tumour tiles, and the run measures
what the review's Table B1 asserts: cost (warm seconds, passes), localisation, the randomisation
sanity check, deletion / insertion faithfulness, visual noise, sensitivity to the methods'
settings, whether their perturbations stay in distribution, and where the maps of a shortcut
model point. :func:`run` returns a frozen :class:`Result`; the chapter
``xaistudy.chapters.saliency_tour`` judges and shows it.
"""

from xaistudy.studies.saliency_tour.maps import (
    completeness,
    grid_maps,
    implementation_invariance,
    negative_share,
    rise_np_maps,
    roughness,
    tile_scores,
    timing_rows,
    with_rise_np,
)
from xaistudy.studies.saliency_tour.models import (
    Models,
    accuracy_table,
    correct_tumour_tiles,
    stack,
    train_models,
)
from xaistudy.studies.saliency_tour.pipeline import TABLES, Result, SeedResult, Shown, run, run_seed
from xaistudy.studies.saliency_tour.probes import (
    NO_SHORTCUT,
    SHORTCUT,
    CleverHans,
    HansShown,
    cascade,
    clever_hans,
    in_distribution,
    sweep,
)
from xaistudy.studies.saliency_tour.settings import (
    PERTURBATIONS,
    STOCHASTIC,
    SWEEP,
    grid_methods,
    hans_methods,
    options,
    swept_method,
)

__all__ = [
    "NO_SHORTCUT",
    "PERTURBATIONS",
    "SHORTCUT",
    "STOCHASTIC",
    "SWEEP",
    "TABLES",
    "CleverHans",
    "HansShown",
    "Models",
    "Result",
    "SeedResult",
    "Shown",
    "accuracy_table",
    "cascade",
    "clever_hans",
    "completeness",
    "correct_tumour_tiles",
    "grid_maps",
    "grid_methods",
    "hans_methods",
    "implementation_invariance",
    "in_distribution",
    "negative_share",
    "options",
    "rise_np_maps",
    "roughness",
    "run",
    "run_seed",
    "stack",
    "sweep",
    "swept_method",
    "tile_scores",
    "timing_rows",
    "train_models",
    "with_rise_np",
]
