"""PanNuke folds (images.npy, masks.npy, types.npy) -> tiles with neoplastic and non-neoplastic
nuclei maps.

PanNuke (Gamper et al., 2019/2020) has 7,901 H&E patches of 256 x 256 pixels at 40x from 19
tissues, in three folds. Each fold is three NumPy files:

``images.npy``  (N, 256, 256, 3) float64 in 0-255
``masks.npy``   (N, 256, 256, 6) float64: channels 0 Neoplastic, 1 Inflammatory,
                2 Connective/Soft tissue, 3 Dead, 4 Epithelial (nucleus instance ids, 0 outside),
                5 Background (1 where no nucleus)
``types.npy``   (N,) tissue names

either where the official zip files put them (``<root>/Fold 1/images/fold1/images.npy``,
``<root>/Fold 1/images/fold1/types.npy``, ``<root>/Fold 1/masks/fold1/masks.npy``) or flat
(``<root>/fold1/{images,masks,types}.npy``). The files are opened memory-mapped (a mask file
is several GB) and only the sampled tiles are read.

Each sample has ``nuclei_type`` 1 on neoplastic nuclei and 2 on the non-neoplastic nuclei chosen
by ``non_neoplastic`` (default ``"connective"``: the thesis's non-tumour mask is the
connective/soft tissue cells; ``"epithelial"`` is PanNuke's non-neoplastic epithelial class,
``"all"`` every non-neoplastic channel); ``mask`` is the neoplastic nuclei region and ``label``
is 1 when the tile has neoplastic nuclei. Samples carry ``tissue``, an index into
``dataset.tissues``. Tiles resized to ``size`` use antialiased bilinear interpolation, the type
maps nearest-neighbour interpolation (pixel centres aligned), so masks stay on their nuclei.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from xaistudy.data.registry import (
    README_HINT,
    SPLITS,
    ArrayDataset,
    DataRootError,
    check_split,
    files_fingerprint,
    register_dataset,
    relative_paths_key,
    resolve_data_root,
)
from xaistudy.core.store import Store

log = logging.getLogger(__name__)

NAME = "pannuke"
FOLDS = (1, 2, 3)
#: masks.npy channels, in order
CHANNELS = ("neoplastic", "inflammatory", "connective", "dead", "epithelial", "background")
#: ``non_neoplastic`` choices -> the masks.npy channels that make nuclei type 2
NON_NEOPLASTIC = {
    "connective": (2,),
    "inflammatory": (1,),
    "dead": (3,),
    "epithelial": (4,),
    "all": (1, 2, 3, 4),
}
#: train/val/test folds (``folds`` option): the standard rotation's first split
DEFAULT_FOLDS = "1/2/3"
#: the thesis: folds 1 and 2 train the U-Net, fold 3 validates it (Table 2)
THESIS_FOLDS = "1,2/3/3"
CLASSES = ("no neoplastic nuclei", "neoplastic nuclei")
LAYOUT = (
    "<root>/Fold {1,2,3}/images/fold{1,2,3}/{images,types}.npy and "
    "<root>/Fold {1,2,3}/masks/fold{1,2,3}/masks.npy (the official zips), "
    "or <root>/fold{1,2,3}/{images,masks,types}.npy"
)
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
#: tiles read from the memory-mapped files at a time
CHUNK = 32


# -- files ----------------------------------------------------------------------------------
def fold_files(root: Path, fold: int) -> dict[str, Path] | None:
    """The images/masks/types files of ``fold`` in either layout, or None when incomplete."""
    official = {
        "images": root / f"Fold {fold}" / "images" / f"fold{fold}" / "images.npy",
        "types": root / f"Fold {fold}" / "images" / f"fold{fold}" / "types.npy",
        "masks": root / f"Fold {fold}" / "masks" / f"fold{fold}" / "masks.npy",
    }
    flat = {k: root / f"fold{fold}" / f"{k}.npy" for k in ("images", "masks", "types")}
    for files in (official, flat):
        if all(p.is_file() for p in files.values()):
            return files
    return None


def _missing(root: Path, fold: int) -> Path:
    """The first missing file of ``fold``, in the layout the user seems to have started."""
    flat_dir = root / f"fold{fold}"
    names = ("images", "types", "masks")
    if flat_dir.is_dir():
        candidates = [flat_dir / f"{k}.npy" for k in names]
    else:
        base = root / f"Fold {fold}"
        candidates = [
            base / "images" / f"fold{fold}" / "images.npy",
            base / "images" / f"fold{fold}" / "types.npy",
            base / "masks" / f"fold{fold}" / "masks.npy",
        ]
    return next(p for p in candidates if not p.is_file())


def check_root(root: Path, folds: Sequence[int] = FOLDS) -> None:
    """Raise :class:`DataRootError` naming the first missing fold file under ``root``."""
    for fold in folds:
        if fold_files(root, fold) is None:
            raise DataRootError(
                f"dataset '{NAME}': missing fold {fold} file {_missing(root, fold)}; expected "
                f"{LAYOUT} ({README_HINT})"
            )


def parse_folds(folds: str | Mapping[str, Sequence[int] | int]) -> dict[str, tuple[int, ...]]:
    """``"1,2/3/3"`` (train/val/test) or ``{"train": [1, 2], "val": [3], "test": [3]}`` ->
    the folds of every split. A one-line ``ValueError`` for anything else."""
    if isinstance(folds, str):
        parts = folds.split("/")
        if len(parts) != 3:
            raise ValueError(
                f"folds {folds!r}: give train/val/test folds as 'a/b/c', e.g. "
                f"'{DEFAULT_FOLDS}' or '{THESIS_FOLDS}'"
            )
        mapping: dict[str, object] = {
            split: [p for p in part.split(",") if p.strip()]
            for split, part in zip(SPLITS, parts, strict=True)
        }
    elif isinstance(folds, Mapping):
        mapping = dict(folds)
        unknown = set(mapping) - set(SPLITS)
        if unknown:
            raise ValueError(f"folds: unknown split(s) {sorted(unknown)}; use {', '.join(SPLITS)}")
    else:
        raise ValueError(f"folds must be a string like '{DEFAULT_FOLDS}' or a mapping")
    out: dict[str, tuple[int, ...]] = {}
    for split, value in mapping.items():
        values = [value] if isinstance(value, (int, str)) else list(value)  # type: ignore[arg-type]
        try:
            ints = tuple(sorted({int(v) for v in values}))
        except (TypeError, ValueError):
            raise ValueError(
                f"folds of split '{split}' must be fold numbers, got {value!r}"
            ) from None
        if not ints or any(k not in FOLDS for k in ints):
            raise ValueError(
                f"folds of split '{split}' must be among {FOLDS}, got {value!r} ({folds!r})"
            )
        out[split] = ints
    return out


def non_neoplastic_channels(choice: str) -> tuple[int, ...]:
    """The masks.npy channels of the ``non_neoplastic`` choice (one-line error otherwise)."""
    if choice not in NON_NEOPLASTIC:
        raise ValueError(
            f"non_neoplastic must be one of {', '.join(NON_NEOPLASTIC)}, got {choice!r}"
        )
    return NON_NEOPLASTIC[choice]


def _open_fold(files: Mapping[str, Path], fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Memory-mapped images and masks and the tissue names of one fold, shapes checked."""
    images = np.load(files["images"], mmap_mode="r")
    masks = np.load(files["masks"], mmap_mode="r")
    types = np.load(files["types"], allow_pickle=False)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataRootError(
            f"dataset '{NAME}': {files['images']} has shape {images.shape}, expected (N, H, W, 3)"
        )
    if masks.shape[:3] != images.shape[:3] or masks.ndim != 4 or masks.shape[-1] != 6:
        raise DataRootError(
            f"dataset '{NAME}': {files['masks']} has shape {masks.shape}, expected "
            f"{(*images.shape[:3], 6)} to match the images of fold {fold}"
        )
    if len(types) != len(images):
        raise DataRootError(
            f"dataset '{NAME}': {files['types']} has {len(types)} entries for "
            f"{len(images)} images of fold {fold}"
        )
    return images, masks, np.asarray(types).astype(str)


# -- arrays ---------------------------------------------------------------------------------
def to_uint8(images: np.ndarray) -> np.ndarray:
    """0-255 images of any dtype -> uint8 (rounded, clipped)."""
    if images.dtype == np.uint8:
        return np.asarray(images)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, size, size, 3) uint8 by antialiased bilinear interpolation."""
    if images.shape[1:3] == (size, size):
        return images
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def resize_label_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) integer maps -> (N, size, size) by nearest neighbour at pixel centres."""
    if maps.shape[1:3] == (size, size):
        return maps
    x = torch.from_numpy(np.require(maps, requirements=["C", "W"])).float()[:, None]
    y = F.interpolate(x, size=(size, size), mode="nearest-exact")
    return y[:, 0].round().numpy().astype(maps.dtype)


def nuclei_types(masks: np.ndarray, non_neoplastic: Sequence[int]) -> np.ndarray:
    """(N, H, W, 6) PanNuke masks -> (N, H, W) uint8: 1 neoplastic, 2 the chosen
    non-neoplastic channels, 0 elsewhere (neoplastic wins where channels overlap)."""
    neo = masks[..., 0] > 0
    other = np.any(masks[..., list(non_neoplastic)] > 0, axis=-1)
    return np.where(neo, 1, np.where(other, 2, 0)).astype(np.uint8)


def _pick(pool: int, n: int, seed: int, split: str, what: str) -> np.ndarray:
    if n > pool:
        raise ValueError(f"dataset '{NAME}': {what} hold {pool} tiles, fewer than n={n}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], 11]))
    return np.sort(rng.choice(pool, size=n, replace=False))


# -- the dataset ----------------------------------------------------------------------------
@register_dataset(NAME, kind="nuclei", layout=LAYOUT, check_root=check_root)
def pannuke(
    split: str = "train",
    n: int = 200,
    size: int = 128,
    seed: int = 0,
    store: Store | None = None,
    transform: Callable | None = None,
    data_root: str | Path | None = None,
    folds: str | Mapping[str, Sequence[int]] = DEFAULT_FOLDS,
    non_neoplastic: str = "connective",
) -> ArrayDataset:
    """``n`` PanNuke tiles of ``split`` (seeded sample of its folds), resized to ``size``.

    ``folds``: train/val/test folds, ``"1/2/3"`` by default, ``"1,2/3/3"`` as in the thesis
    (or a mapping ``{"train": [1, 2], ...}``). ``non_neoplastic``: which nuclei make type 2
    (``connective``, the thesis's; ``epithelial``, ``inflammatory``, ``dead`` or ``all``).
    Tiles are read :data:`CHUNK` at a time from the memory-mapped files; the sampled arrays
    are cached in ``store`` under the files' fingerprint.
    """
    check_split(split)
    root = Path(data_root) if data_root not in (None, "") else resolve_data_root(NAME)
    split_folds = parse_folds(folds)
    if split not in split_folds:
        raise ValueError(f"folds {folds!r} name no fold for split '{split}'")
    channels = non_neoplastic_channels(non_neoplastic)
    if size < 8 or n < 1:
        raise ValueError(f"dataset '{NAME}' needs n >= 1 and size >= 8, got n={n}, size={size}")
    check_root(root)
    files = {k: fold_files(root, k) for k in FOLDS}
    opened = {k: _open_fold(files[k], k) for k in FOLDS}  # type: ignore[arg-type]
    tissues = sorted({str(t) for k in FOLDS for t in opened[k][2]})
    tissue_index = {t: i for i, t in enumerate(tissues)}
    used = split_folds[split]
    sizes = [len(opened[k][0]) for k in used]
    what = f"split '{split}' (fold{'s' if len(used) > 1 else ''} {'+'.join(map(str, used))})"
    chosen = _pick(sum(sizes), n, seed, split, what)
    starts = np.cumsum([0, *sizes])
    fold_of = np.searchsorted(starts, chosen, side="right") - 1
    origin = np.stack([np.asarray(used)[fold_of], chosen - starts[fold_of]], axis=1)

    paths = [p for k in used for p in files[k].values()]  # type: ignore[union-attr]
    params = {
        "split": split,
        "n": n,
        "size": size,
        "seed": seed,
        "folds": list(used),
        "non_neoplastic": list(channels),
        "files": files_fingerprint(paths),
        "listing": relative_paths_key(root, paths),
    }

    def compute() -> dict[str, np.ndarray]:
        images, types, tissue = [], [], []
        bar = tqdm(total=n, desc=f"PanNuke {split}")
        for fold in used:
            rows = origin[origin[:, 0] == fold, 1]
            fold_images, fold_masks, fold_types = opened[fold]
            for s in range(0, len(rows), CHUNK):
                idx = rows[s : s + CHUNK]
                images.append(resize_images(to_uint8(fold_images[idx]), size))
                types.append(resize_label_maps(nuclei_types(fold_masks[idx], channels), size))
                tissue.append(np.array([tissue_index[str(t)] for t in fold_types[idx]]))
                bar.update(len(idx))
        bar.close()
        return {
            "images": np.concatenate(images),
            "nuclei_type": np.concatenate(types),
            "tissue": np.concatenate(tissue).astype(np.int64),
        }

    arrays = (store or Store()).cached_arrays(NAME, params, compute)
    ntype = arrays["nuclei_type"]
    neoplastic = ntype == 1
    labels = neoplastic.reshape(len(ntype), -1).any(axis=1).astype(np.int64)
    dataset = ArrayDataset(
        arrays["images"],
        labels,
        neoplastic,
        ntype,
        classes=CLASSES,
        extra={"tissue": arrays["tissue"]},
        transform=transform,
    )
    dataset.tissues = tuple(tissues)
    dataset.origin = origin  # (fold, index in the fold) of every sample
    dataset.folds = used
    dataset.non_neoplastic = non_neoplastic
    dataset.fingerprint = params["files"]
    log.info(
        "PanNuke %s: %d tiles from %s, %d with neoplastic nuclei", split, n, what, labels.sum()
    )
    return dataset
