"""CAMELYON16 whole-slide images -> tumour and normal patches with masks.

The dataset (Bejnordi et al. 2017; CC0) holds H&E whole-slide images of sentinel lymph nodes as
pyramidal tiled TIFFs, with the metastases outlined as polygons in ASAP XML files and, in some
releases, as binary whole-slide mask TIFFs. Expected under ``data_root``::

    training/tumor/tumor_NNN.tif
    training/normal/normal_NNN.tif
    training/lesion_annotations/tumor_NNN.xml      (or training/masks/tumor_NNN_mask.tif)
    testing/images/test_NNN.tif                    (optional, test_source="testing")
    testing/lesion_annotations/test_NNN.xml        (optional)
    testing/reference.csv                          (optional: test_NNN,Tumor|Normal,...)

From slides to patches:

1. **Tissue** is found on a low-resolution level (the coarsest whose downsample does not
   exceed ``tissue_downsample``) by Otsu's threshold on the HSV saturation, the usual CAMELYON
   preprocessing.
2. A grid of ``size`` x ``size`` patches at ``level`` covers each slide; a patch is a
   candidate when at least ``min_tissue`` of it is tissue. Its tumour fraction is exact
   (the patch's own tumour mask) wherever the annotation comes near it, else 0.
3. A patch is **tumour** when its tumour fraction is at least ``min_tumour`` (and at most
   ``max_tumour``: below 1 it keeps only patches that also show normal tissue), **normal** when
   it is 0 and it lies on a normal slide (or, with ``normals_from_tumour_slides``, anywhere);
   anything in between is skipped.
4. ``n`` patches are drawn per split, deterministically from ``seed``: sample ``i`` is tumour
   when ``i`` is odd (as in ``synthetic-he``), and a smaller ``n`` gives a prefix of a larger.

**Splits never share a slide.** Tumour and normal training slides are shuffled by ``seed``
separately and split by slide into train / val / test (``val_share`` and ``test_share`` of
each class, at least one slide each when there are three or more): the paper's protocol, which
divides the annotated slides. With ``test_source="testing"`` the test split is the official
testing set instead (tumour slides with annotations, normal slides named by
``testing/reference.csv``) and the training slides are split into train / val only.

Tumour masks come from the XML polygons ("Tumor", "_0", "_1" are tumour; "_2" and "Exclusion"
are holes cut out of it) rasterised at the patch's resolution, or from the binary mask TIFFs
(``annotations``: ``auto`` prefers a mask TIFF when the slide has one). A pixel is tumour when
its centre lies inside; level-0 pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``.

Extraction is cached in the artifact store: one file per slide with its candidate patches (an
interrupted extraction resumes at the next slide), then the drawn patches of each split, keyed
by the sizes and a fingerprint of the slide and annotation files.

This module is the registered dataset; the slide files and annotations are
:mod:`xaistudy.data.camelyon16_slides`, tissue, candidate patches, splits and patch reading
:mod:`xaistudy.data.camelyon16_patches`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xaistudy.core.store import STREAM_BYTES, Allocate, Store
from xaistudy.data.camelyon16_patches import (
    labels_of,
    read_patches,
    slide_candidates,
    split_assignment,
)
from xaistudy.data.camelyon16_slides import (
    NAME,
    Annotations,
    Slide,
    TestSource,
    check_root,
    testing_slides,
    training_slides,
)
from xaistudy.data.registry import (
    README_HINT,
    SPLITS,
    ArrayDataset,
    DataRootError,
    check_split,
    files_fingerprint,
    register_dataset,
)
from xaistudy.data.synthetic import HE_CLASSES

LAYOUT = (
    "training/tumor/tumor_NNN.tif, training/normal/normal_NNN.tif, "
    "training/lesion_annotations/tumor_NNN.xml (ASAP XML) or training/masks/tumor_NNN_mask.tif; "
    "optional testing/images/test_NNN.tif, testing/lesion_annotations/test_NNN.xml, "
    "testing/reference.csv"
)


# -- the dataset ----------------------------------------------------------------------------
def _candidates(
    slides: Sequence[Slide],
    store: Store,
    level: int,
    size: int,
    min_tissue: float,
    tissue_downsample: float,
    desc: str,
) -> list[dict[str, np.ndarray]]:
    """Candidates of every slide, one stored item per slide (resumable)."""
    params = {
        "level": level,
        "size": size,
        "min_tissue": min_tissue,
        "tissue_downsample": tissue_downsample,
    }
    items = [_ItemKey(s) for s in slides]

    def compute_one(item: _ItemKey) -> dict[str, np.ndarray]:
        return slide_candidates(item.slide, level, size, min_tissue, tissue_downsample)

    return store.cached_items(f"{NAME}-candidates", params, items, compute_one, desc=desc)


class _ItemKey:
    """A slide as a store item: named by the slide and a fingerprint of its files."""

    def __init__(self, slide: Slide):
        self.slide = slide
        annotation = "xml" if slide.xml else "mask" if slide.mask else "none"
        self._key = f"{slide.name}-{annotation}-{files_fingerprint(slide.files())}"

    def __str__(self) -> str:
        return self._key


def _draw(pool: np.ndarray, k: int, seed: int, split: str, label: int) -> np.ndarray:
    code = SPLITS.index(split)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17, code, label]))
    return pool[rng.permutation(len(pool))[:k]]


@register_dataset(NAME, kind="tumour-tiles", layout=LAYOUT, check_root=check_root)
def camelyon16(
    split: str = "train",
    n: int = 200,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
    data_root: str | Path = "data/camelyon16",
    level: int = 0,
    min_tissue: float = 0.5,
    min_tumour: float = 0.5,
    max_tumour: float = 1.0,
    annotations: Annotations = "auto",
    normals_from_tumour_slides: bool = False,
    test_source: TestSource = "training",
    val_share: float = 0.15,
    test_share: float = 0.15,
    tissue_downsample: float = 32.0,
    exclude: Sequence[str] = (),
) -> ArrayDataset:
    """CAMELYON16 patches, normal (0) vs tumour (1), balanced; sample ``i`` is tumour when odd.

    ``size`` px patches read at ``level``; ``mask`` is the patch's tumour mask; extra keys
    ``slide_id`` (tumour NNN, normal 1000 + NNN, test 2000 + NNN) and the level-0 corner
    ``x``, ``y``. Options: see the module docstring; ``exclude`` names slides to leave out
    (e.g. mislabelled ones).
    """
    check_split(split)
    _check_options(
        n=n,
        size=size,
        level=level,
        min_tissue=min_tissue,
        min_tumour=min_tumour,
        max_tumour=max_tumour,
        annotations=annotations,
        test_source=test_source,
        val_share=val_share,
        test_share=test_share,
        tissue_downsample=tissue_downsample,
    )
    root = Path(data_root)
    store = store or Store()
    tumour, normal = training_slides(root, annotations)
    drop = {str(e) for e in exclude}
    tumour = [s for s in tumour if s.name not in drop]
    normal = [s for s in normal if s.name not in drop]
    testing = None
    if test_source == "testing":
        t_tumour, t_normal = testing_slides(root, annotations)
        testing = (
            [s for s in t_tumour if s.name not in drop],
            [s for s in t_normal if s.name not in drop],
        )
    slides = split_assignment(tumour, normal, seed, val_share, test_share, testing)[split]
    n_tumour_slides = sum(s.tumour for s in slides)
    if n_tumour_slides == 0 or (len(slides) == n_tumour_slides and not normals_from_tumour_slides):
        raise DataRootError(
            f"dataset '{NAME}': split '{split}' has {n_tumour_slides} tumour and "
            f"{len(slides) - n_tumour_slides} normal slides; each split needs both (split by "
            f"slide: at least 3 tumour and 3 normal slides, {README_HINT})"
        )
    fingerprint = files_fingerprint(p for s in slides for p in s.files())
    params = {
        "split": split,
        "n": n,
        "size": size,
        "seed": seed,
        "level": level,
        "min_tissue": min_tissue,
        "min_tumour": min_tumour,
        "max_tumour": max_tumour,
        "annotations": annotations,
        "normals": normals_from_tumour_slides,
        "test_source": test_source,
        "val_share": val_share,
        "test_share": test_share,
        "tissue_downsample": tissue_downsample,
        "slides": [s.name for s in slides],
        "files": fingerprint,
    }

    def compute(allocate: Allocate | None = None) -> dict[str, np.ndarray]:
        cands = _candidates(
            slides,
            store,
            level,
            size,
            min_tissue,
            tissue_downsample,
            desc=f"{NAME} {split}: slides",
        )
        which, xs, ys, labels = [], [], [], []
        for k, (info, cand) in enumerate(zip(slides, cands, strict=True)):
            lab = labels_of(cand, info.tumour, min_tumour, normals_from_tumour_slides, max_tumour)
            ok = lab >= 0
            which.append(np.full(ok.sum(), k))
            xs.append(cand["x"][ok])
            ys.append(cand["y"][ok])
            labels.append(lab[ok])
        which, xs, ys, labels = (np.concatenate(a) for a in (which, xs, ys, labels))
        need = {1: n // 2, 0: n - n // 2}
        found = {c: int((labels == c).sum()) for c in (0, 1)}
        if found[1] < need[1] or found[0] < need[0]:
            raise DataRootError(
                f"dataset '{NAME}': split '{split}' has {found[1]} tumour and {found[0]} normal "
                f"patches ({n_tumour_slides} tumour / {len(slides) - n_tumour_slides} normal "
                f"slides, {size} px at level {level}); n={n} needs {need[1]} and {need[0]}: "
                f"lower n or change size, level, min_tissue, min_tumour, max_tumour"
            )
        picks = {c: _draw(np.flatnonzero(labels == c), need[c], seed, split, c) for c in (0, 1)}
        order = np.empty(n, np.int64)
        order[1::2], order[0::2] = picks[1], picks[0]
        images, masks = read_patches(
            slides, which[order], xs[order], ys[order], level, size,
            desc=f"{NAME} {split}: patches", allocate=allocate,
        )  # fmt: skip
        slide_ids = np.array([s.slide_id for s in slides])[which[order]]
        return {
            "images": images,
            "labels": labels[order],
            "masks": masks,
            "slide_id": slide_ids,
            "x": xs[order],
            "y": ys[order],
        }

    big = n * size * size * 3 > STREAM_BYTES  # patches written to memory-mapped files
    arrays = store.cached_arrays(NAME, params, compute, stream=big)
    dataset = ArrayDataset(
        arrays["images"],
        arrays["labels"],
        arrays["masks"],
        classes=HE_CLASSES,
        extra={k: arrays[k] for k in ("slide_id", "x", "y")},
        transform=transform,
    )
    dataset.fingerprint = fingerprint
    dataset.slides = [s.name for s in slides]
    return dataset


def _check_options(**o: Any) -> None:
    """One-line :class:`ValueError` for the first option out of its range."""
    checks: Iterable[tuple[bool, str]] = [
        (o["n"] >= 2, "n must be >= 2"),
        (o["size"] >= 8, "size must be >= 8"),
        (o["level"] >= 0, "level must be >= 0"),
        (0 < o["min_tissue"] <= 1, "min_tissue must be in (0, 1]"),
        (0 < o["min_tumour"] <= o["max_tumour"] <= 1, "need 0 < min_tumour <= max_tumour <= 1"),
        (o["annotations"] in ("auto", "masks", "xml"), "annotations must be auto, masks or xml"),
        (o["test_source"] in ("training", "testing"), "test_source must be training or testing"),
        (0 < o["val_share"] < 1, "val_share must be in (0, 1)"),
        (
            0 <= o["test_share"] and o["val_share"] + o["test_share"] < 1,
            "test_share must be >= 0 with val_share + test_share < 1",
        ),
        (o["tissue_downsample"] >= 1, "tissue_downsample must be >= 1"),
    ]
    given = ", ".join(f"{k}={v!r}" for k, v in o.items())
    for ok, message in checks:
        if not ok:
            raise ValueError(f"dataset '{NAME}': {message} (got {given})")
