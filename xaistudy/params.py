"""The parameter machinery common to every chapter: base models, profiles, validation, CLI values.

Each chapter's own pydantic model lives in its module, ``xaistudy.chapters.<name>``. A profile
(``smoke``, ``quick``, ``paper``) is a set of defaults on top of the model's own
field defaults (which are the ``quick`` values); any field can still be overridden. Values given
on the command line arrive as strings and are parsed as JSON when they are valid JSON
(``1e-3``, ``true``, ``[1, 2]``), else kept as strings, then validated by the model, so a bad
value is refused before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"


class ParamError(ValueError):
    """A parameter problem, described in one line."""


def _existing_file(value: str) -> str:
    if value and not Path(value).expanduser().is_file():
        raise ValueError(f"file {value} does not exist")
    return value


def _weights_choice(value: bool | str) -> bool | str:
    if isinstance(value, str):
        if value.strip().lower() in ("", "false", "no", "0"):
            return False
        if value.strip().lower() in ("true", "yes", "1"):
            return True
        _existing_file(value)
    return value


#: a weights file path, or "" for the standard cache location
WeightsFile = Annotated[str, AfterValidator(_existing_file)]
#: ``false``, ``true`` (the standard local cache file) or the path of a weights file
Pretrained = Annotated[bool | str, AfterValidator(_weights_choice)]

DATA_ROOT_HELP = (
    "folder of the real dataset's files; empty: $XAISTUDY_DATA/<dataset>, else data/<dataset> "
    "(layouts in data/README.md); unused by the synthetic datasets"
)
DATA_OPTIONS_HELP = (
    'extra keyword arguments of the dataset\'s loader as JSON, e.g. {"level": 1}; '
    "checked against the loader before the run"
)


def dataset_field(default: str, names: Sequence[str], what: str) -> Any:
    """A ``dataset`` parameter that accepts the registered names ``names``."""
    pattern = "^(" + "|".join(n.replace("-", "\\-") for n in names) + ")$"
    return Field(default, pattern=pattern, description=f"{what}: {', '.join(names)}")


MAX_SEED = 2**31 - 1


class BaseParams(BaseModel):
    """Parameters shared by every chapter: where it runs and how many threads it uses."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$",
        description="auto, cpu, mps, cuda or cuda:N",
    )
    threads: int = Field(
        2,
        ge=1,
        le=256,
        description="CPU threads of torch and the numeric libraries (1-256); results depend on "
        "it, not on the machine's core count, so keep it fixed to compare runs",
    )

    #: per-profile overrides of the field defaults (``quick`` = the field defaults)
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "quick": {}, "paper": {}}
    #: dataset parameter -> (its data_root parameter, its data_options parameter)
    DATASET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {}

    #: the parameter naming the model whose standard weights ``pretrained=true`` needs
    PRETRAINED_FOR: ClassVar[str] = ""

    def check_inputs(self) -> None:
        """Check the files the parameters name (datasets, weights) before anything runs.

        Raises :class:`ParamError` in one line naming what is missing and where.
        """
        if self.DATASET_FIELDS:
            from xaistudy.data.datasets import DataRootError, check_data_root, check_options

            for name_field, (root_field, options_field) in self.DATASET_FIELDS.items():
                name = getattr(self, name_field)
                try:
                    check_options(name, getattr(self, options_field))
                    check_data_root(name, getattr(self, root_field))
                except (DataRootError, ValueError) as err:
                    raise ParamError(str(err)) from None
        if self.PRETRAINED_FOR and getattr(self, "pretrained", False) is True:
            from xaistudy.models.classifiers import WeightsNotFoundError, find_pretrained_weights

            try:
                find_pretrained_weights(getattr(self, self.PRETRAINED_FOR))
            except WeightsNotFoundError as err:
                raise ParamError(str(err)) from None

    @classmethod
    def profile_defaults(cls, profile: str) -> dict[str, Any]:
        """The values ``profile`` sets on top of the field defaults."""
        if profile not in PROFILES:
            raise ParamError(f"unknown profile '{profile}'; allowed: {', '.join(PROFILES)}")
        return dict(cls.PROFILES.get(profile, {}))

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> BaseParams:
        """The validated parameters found in ``namespace`` (a notebook's ``globals()``)."""
        return cls(**{k: namespace[k] for k in cls.model_fields if k in namespace})


class ChapterParams(BaseParams):
    """A chapter whose stochastic parts run once, with one seed."""

    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="seed of every random draw (data, init, sampling)"
    )


class SeedsParams(BaseParams):
    """A chapter that repeats its stochastic parts once per seed and judges its claims over all.

    ``seeds[0]`` also draws what is shown once (galleries, example maps).
    """

    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        max_length=20,
        description="seeds of the repeated runs (1-20 distinct integers in 0..2^31-1); every "
        "claim is judged over all of them",
    )

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
        if bad:
            raise ValueError(f"seed {bad[0]} is outside 0..{MAX_SEED}")
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds


class DatasetFields(BaseModel):
    """A chapter that reads one dataset (synthetic or real): its name, folder and options.

    Subclasses redefine ``dataset`` with :func:`dataset_field` to list the names they accept.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dataset: str = Field("synthetic-he", description="dataset name")
    data_root: str = Field("", description=DATA_ROOT_HELP)
    data_options: dict[str, Any] = Field(default_factory=dict, description=DATA_OPTIONS_HELP)
    DATASET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {
        "dataset": ("data_root", "data_options")
    }


class DatasetChapterParams(DatasetFields, ChapterParams):
    """One dataset, one seed."""


class DatasetSeedsParams(DatasetFields, SeedsParams):
    """One dataset, several seeds."""


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
    if not first["loc"]:  # a check across several parameters
        return f"bad parameters: {first['msg'].removeprefix('Value error, ')}"
    name = ".".join(str(p) for p in first["loc"])
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
        params = model(**values)
    except ValidationError as err:
        raise ParamError(format_validation_error(model, err)) from None
    params.check_inputs()
    return params


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
