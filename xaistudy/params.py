"""Parameters of every chapter: one pydantic model each, with profiles.

A profile (``smoke``, ``quick``, ``paper``) is a set of defaults on top of the model's own
field defaults (which are the ``quick`` values); any field can still be overridden. Values given
on the command line arrive as strings and are parsed as JSON when they are valid JSON
(``1e-3``, ``true``, ``[1, 2]``), else kept as strings, then validated by the model, so a bad
value is refused before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"


class ParamError(ValueError):
    """A parameter problem, described in one line."""


class ChapterParams(BaseModel):
    """Parameters shared by every chapter."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int = Field(0, ge=0, description="seed of every random draw (data, init, sampling)")
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$",
        description="auto, cpu, mps, cuda or cuda:N",
    )

    #: per-profile overrides of the field defaults (``quick`` = the field defaults)
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "quick": {}, "paper": {}}

    @classmethod
    def profile_defaults(cls, profile: str) -> dict[str, Any]:
        """The values ``profile`` sets on top of the field defaults."""
        if profile not in PROFILES:
            raise ParamError(f"unknown profile '{profile}'; allowed: {', '.join(PROFILES)}")
        return dict(cls.PROFILES.get(profile, {}))


class DataParams(ChapterParams):
    """The ``data`` chapter: gallery and statistics of the synthetic datasets."""

    tile_size: int = Field(128, ge=64, le=512, description="tile side in pixels (64-512)")
    gallery_size: int = Field(256, ge=64, le=512, description="side of the gallery tiles")
    n_gallery: int = Field(4, ge=1, le=12, description="tiles per class in the galleries")
    n_stats: int = Field(200, ge=4, le=20000, description="H&E tiles measured for statistics")
    n_stats_per_grade: int = Field(
        20, ge=1, le=5000, description="grading tiles per class measured for statistics"
    )
    n_patients: int = Field(10, ge=2, le=1000, description="pCLE patients")
    frames_per_patient: int = Field(4, ge=1, le=200, description="pCLE frames per patient")

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "tile_size": 64,
            "gallery_size": 96,
            "n_gallery": 2,
            "n_stats": 16,
            "n_stats_per_grade": 2,
            "n_patients": 2,
            "frames_per_patient": 2,
        },
        "quick": {},
        "paper": {"n_stats": 2000, "n_stats_per_grade": 200, "n_patients": 40},
    }


def parse_cli_value(text: str) -> Any:
    """A command-line value: JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def _describe(model: type[ChapterParams], name: str) -> str:
    field = model.model_fields[name]
    return field.description or str(field.annotation)


def format_validation_error(model: type[ChapterParams], err: ValidationError) -> str:
    """One line naming the first bad parameter, what was given and what is allowed."""
    first = err.errors()[0]
    name = ".".join(str(p) for p in first["loc"]) or "parameters"
    given = first.get("input")
    allowed = _describe(model, name) if name in model.model_fields else ""
    msg = f"bad value for parameter '{name}': {given!r} ({first['msg']})"
    return f"{msg}; allowed: {allowed}" if allowed else msg


def build_params(
    model: type[ChapterParams],
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, Any] | None = None,
) -> ChapterParams:
    """Validate ``profile`` defaults plus ``overrides``; raise :class:`ParamError` in one line."""
    values = model.profile_defaults(profile)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(model.model_fields))
    if unknown:
        raise ParamError(
            f"unknown parameter '{unknown[0]}'; allowed: {', '.join(model.model_fields)}"
        )
    values.update(overrides)
    try:
        return model(**values)
    except ValidationError as err:
        raise ParamError(format_validation_error(model, err)) from None


def describe_params(model: type[ChapterParams]) -> list[dict[str, Any]]:
    """One row per parameter: name, type, description and the value under each profile."""
    rows = []
    for name, field in model.model_fields.items():
        row = {
            "name": name,
            "type": getattr(field.annotation, "__name__", str(field.annotation)),
            "description": field.description or "",
        }
        for profile in PROFILES:
            row[profile] = model.profile_defaults(profile).get(name, field.default)
        rows.append(row)
    return rows
