"""How much of a RePaint schedule check's differences the inpainting noise alone makes.

:func:`.schedules.compare` judges each schedule's replicate 0 against the full schedule's with
the bounds of :data:`.schedules.TOLERANCE`. Two inpaintings with different noise differ even
when they come from the same schedule; :func:`replicate_floors` computes every criterion
between a schedule's own two noise replicates (the same formulas: :func:`.schedules.compare`
with replicate 1 standing in for the full schedule). A criterion whose floor is already
outside its bound cannot be met by any schedule whose noise differs from the reference's:
the check then has no power on that criterion, whatever the schedule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xaistudy.studies.ibo.schedules import TOLERANCE, Schedule, compare, label, within

#: a stand-in key for replicate 0 beside replicate 1 in :func:`compare`
_OTHER: Schedule = (0, 0, 0)
#: the criteria that compare two runs (the replicates' SSIM gap needs four)
CRITERIA = tuple(k for k in TOLERANCE if k != "ssim_to_full_gap")


def replicate_floors(
    runs: dict[Schedule, list[dict[str, np.ndarray]]], explained: Any
) -> pd.DataFrame:
    """One row per schedule with two replicates: each of :data:`CRITERIA` between its
    replicates 0 and 1 (``floor_<criterion>``) and ``floor_outside``: the criteria whose floor
    is outside the bound, comma-separated (on those, the noise alone fails the check)."""
    rows = []
    for schedule, reps in runs.items():
        if len(reps) < 2:
            continue
        pair = compare({schedule: [reps[1]], _OTHER: [reps[0]]}, explained, full=schedule)
        row = pair.iloc[1]
        out: dict[str, Any] = {"schedule": label(schedule)}
        out.update({f"floor_{name}": float(row[name]) for name in CRITERIA})
        out["floor_outside"] = ", ".join(k for k in CRITERIA if not within(k, row[k]))
        rows.append(out)
    return pd.DataFrame(rows)
