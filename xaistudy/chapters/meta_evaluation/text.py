"""The chapter's computed sentences: what the run did and what the agreement table shows."""

from __future__ import annotations

import pandas as pd

from xaistudy.studies import meta_evaluation as study


def ibo_record(result: study.Result) -> str:
    """One sentence: how IBO was measured (or that it was not)."""
    p, ibo = result.params, result.ibo_params
    if ibo is None:
        return "IBO not measured (ibo_tiles = 0)"
    return (
        f"IBO inpaints with the ibo chapter's DDPM of normal tissue ({p.ibo_profile} "
        f"profile: {ibo.ddpm_epochs} epochs, RePaint T = {ibo.repaint_steps}, "
        f"j = {ibo.jump_length}, r = {ibo.resamplings}) on the first "
        f"{p.ibo_tiles} tiles of each trained model and seed; whether its samples pass as "
        "normal tissue is that chapter's gate, measured on that chapter's stain-normalised "
        "tiles with its classifiers. This chapter's tiles are not stain-normalised, so the "
        "tissue IBO inpaints can differ in colour from the tile around it, and that gate does "
        "not speak for these tiles"
    )


def run_record(result: study.Result) -> str:
    """One sentence: what the study ran."""
    p = result.params
    return (
        f"{len(p.seeds)} seeds × {p.n_tiles} tiles per model, {len(study.methods_of(p))} "
        f"methods, {len(study.metric_names(result))} metrics; truth: {study.TRUTHS[p.truth]}. "
        f"{ibo_record(result)}."
    )


def findings(table: pd.DataFrame) -> str:
    """What the agreement table shows, as Markdown bullets computed from its intervals: the
    metrics whose tau interval lies above 0 (agree with the truth), below 0 (rank against it)
    or around 0, per trained model, and which metrics separate the trained model's maps from
    the randomised model's."""

    def names(mask: pd.Series) -> str:
        picked = table[mask]
        return ", ".join(
            f"{m} ({p.split()[0]})" for m, p in zip(picked["metric"], picked["paper"], strict=True)
        )

    lines = []
    for model in study.TRAINED:
        low, high = table[f"tau {model} low"], table[f"tau {model} high"]
        label = model.replace("_", "-")
        lines.append(
            f"- **{label} model, agree with the truth** (τ interval above 0): "
            f"{names(low > 0) or 'none'}."
        )
        lines.append(
            f"- **{label} model, rank against the truth** (τ interval below 0): "
            f"{names(high < 0) or 'none'}."
        )
        lines.append(
            f"- **{label} model, cannot tell** (interval contains 0): "
            f"{int(((low <= 0) & (high >= 0)).sum())} metrics."
        )
    low, high = table["beats randomised low"], table["beats randomised high"]
    lines.append(
        f"- **Prefer the clean model's maps to the randomised model's** (interval above "
        f"0.5): {names(low > 0.5) or 'none'}; **prefer the randomised model's** (below "
        f"0.5): {names(high < 0.5) or 'none'}."
    )
    return "\n".join(lines)
