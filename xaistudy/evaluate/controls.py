"""Null controls: the same measurement where the paper's mechanism is absent.

A claim about explanations is only informative when the measurement could have come out
otherwise. Each function here builds, from what a run already computed, the input of one
control; the chapter scores it with the same metric and judges it with the same statistic
(:func:`xaistudy.stats.claims.judge`, ``controls=``):

- :func:`coverage_matched`: every map's pixels shuffled. Same values, so the same coverage at
  every threshold and the same value histogram, but no information about *where* anything is.
  A claim these maps also reproduce is decided by how much of the tile each method marks;
- :func:`partner_index`: each unit paired with another unit (of the same class, of another
  patient…): a map scored against **another tile's mask**, or a mask of similar area that is
  unrelated to the tile's content;
- :func:`untrained_copy`: the model with every parameter re-initialised (seeded): a method
  explained on a network that learned nothing. A property that holds here too holds by the
  method's construction, not because of what the network learned.

Every control is seeded and deterministic; :data:`CONTROLS` says in words what each measures,
for the chapters' tables and text.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

#: control name -> what it measures (the words the chapters print next to a control's value)
CONTROLS: dict[str, str] = {
    "coverage-matched maps": (
        "each map's pixels shuffled: the same values and coverage, no location"
    ),
    "another tile's mask": (
        "each map scored against the mask of another tile (of the same class, or of another "
        "patient): a mask of similar area, unrelated to the tile"
    ),
    "flat tiles": (
        "each generated tile replaced by its mean colour: the same colours, no tissue at all"
    ),
    "randomised network": (
        "the same method on the same tiles, the network's top weight layers re-initialised "
        "(the maps of the sanity check)"
    ),
    "re-seeded explanation": (
        "the same method and settings with another explanation seed: how far its own sampling "
        "moves the map"
    ),
    "untrained network": (
        "the same method on the same inputs, every parameter of the network re-initialised"
    ),
    "implementation-invariant method": (
        "the same tiles and twin network explained by Integrated Gradients, which depends only "
        "on the function: its maps may differ by rounding only"
    ),
    "all-black tile": (
        "the same tiles blacked out entirely: the crudest perturbation there is; a realism "
        "bound that it meets as well says nothing about the method's perturbations"
    ),
    # positive controls of equivalence claims: a case known to differ when the maps carry
    # information; reading "similar" there too means the measurement cannot see a difference
    "shuffled maps of the case": (
        "positive control: the case's tiles scored from their maps with the pixels shuffled "
        "(coverage kept, location lost), against the other tiles of their class"
    ),
    "Grad-CAM's maps shuffled": (
        "positive control: Grad-CAM's maps with the pixels shuffled (coverage kept, location "
        "lost), beside the other methods' real maps"
    ),
}


def describe(name: str) -> str:
    """The words for control ``name`` (:data:`CONTROLS`); a clear error for an unknown one."""
    if name not in CONTROLS:
        raise ValueError(f"unknown control {name!r}; known: {', '.join(CONTROLS)}")
    return CONTROLS[name]


def _rng(seed: int | tuple[int, ...]) -> np.random.Generator:
    return np.random.default_rng(list(seed) if isinstance(seed, tuple) else seed)


def coverage_matched(
    maps: np.ndarray, seed: int | tuple[int, ...] = 0, *, smooth: float = 0.0
) -> np.ndarray:
    """``maps`` ``(B, H, W)`` with each map's values moved to random places.

    Map ``i`` of the result holds exactly the values of map ``i`` (so its coverage above any
    threshold, its histogram and its mean are unchanged) at random places: a map with no
    information about the tile. ``smooth`` (pixels, > 0): the places follow the ranks of a
    Gaussian-smoothed noise field of that width, so the shuffled map is made of blobs (as a CAM
    is) rather than scattered pixels; ``0`` shuffles the pixels. Seeded: the same ``seed``
    gives the same maps."""
    maps = np.asarray(maps)
    if maps.ndim < 2:
        raise ValueError(f"maps must be (B, ...) with one map per unit, got shape {maps.shape}")
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0 pixels, got {smooth}")
    rng = _rng(seed)
    noise = rng.random(maps.shape)
    if smooth > 0:
        from scipy.ndimage import gaussian_filter

        sigma = (0,) + (smooth,) * (maps.ndim - 1)
        noise = gaussian_filter(noise, sigma, mode="wrap")
        noise += 1e-9 * rng.random(maps.shape)  # break the filter's rare exact ties at random
    flat = maps.reshape(len(maps), -1)
    # the k-th largest noise value gets the k-th largest map value
    places = np.argsort(noise.reshape(len(maps), -1), axis=1)
    out = np.empty_like(flat)
    np.put_along_axis(out, places, np.sort(flat, axis=1), axis=1)
    return out.reshape(maps.shape)


def partner_index(
    n: int,
    seed: int | tuple[int, ...] = 0,
    *,
    same: np.ndarray | None = None,
    differ: np.ndarray | None = None,
) -> np.ndarray:
    """``partner[i]``: another unit than ``i`` for every unit ``0..n-1`` (a derangement).

    ``same``: a label per unit (e.g. the class); the partner has the same label wherever that
    label has ≥ 2 units. ``differ``: a label per unit (e.g. the patient); the partner has
    another label wherever possible (frames of one patient are near copies). Seeded."""
    if n < 2:
        raise ValueError(f"a partner needs at least 2 units, got {n}")
    rng = _rng(seed)
    same = np.zeros(n, dtype=int) if same is None else np.asarray(same)
    differ = np.arange(n) if differ is None else np.asarray(differ)
    if same.shape != (n,) or differ.shape != (n,):
        raise ValueError(f"same and differ need one label per unit ({n})")
    partner = np.full(n, -1)
    for label in np.unique(same):
        group = np.flatnonzero(same == label)
        if group.size < 2:
            continue
        partner[group] = group[_shifted(differ[group], rng)]
    lone = np.flatnonzero(partner < 0)
    if lone.size:  # a label with a single unit: any other unit
        others = np.arange(n)
        for i in lone:
            partner[i] = rng.choice(others[others != i])
    return partner


def _shifted(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions ``p`` with ``p[i] != i`` and ``labels[p[i]] != labels[i]`` where possible:
    units in random order, sorted by label, each paired with the unit ``shift`` places on,
    ``shift`` the largest label's count (whole labels apart) or 1 when one label has more
    than half the units (then only distinct units are guaranteed)."""
    m = labels.size
    order = rng.permutation(m)
    order = order[np.argsort(labels[order], kind="stable")]
    _, counts = np.unique(labels, return_counts=True)
    shift = int(counts.max()) if counts.max() <= m // 2 else 1
    out = np.empty(m, dtype=int)
    out[order] = np.roll(order, -shift)
    return out


def untrained_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every module that has ``reset_parameters`` re-initialised
    (convolutions, linear layers, batch norms' weights and running statistics), seeded; in
    eval mode. The original model is untouched and torch's global generator is restored."""
    clone = copy.deepcopy(model)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            reset_stats = getattr(module, "reset_running_stats", None)
            if callable(reset_stats):
                reset_stats()
    finally:
        torch.random.set_rng_state(state)
    return clone.eval()
