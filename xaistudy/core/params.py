"""The parameter machinery common to every chapter: base models, profiles, validation, CLI values.

Each chapter's own pydantic model lives in its module, ``xaistudy.chapters.<name>``. A profile
(``smoke``, ``quick``, ``paper``, ``gpu``) is a set of defaults on top of the model's own
field defaults (which are the ``quick`` values); any field can still be overridden. Values given
on the command line arrive as strings and are parsed as JSON when they are valid JSON
(``1e-3``, ``true``, ``[1, 2]``), else kept as strings, then validated by the model, so a bad
value is refused before anything runs. Parameters that name files or folders are resolved
against the caller's folder before the run (the notebook runs elsewhere).
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
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

PROFILES = ("smoke", "quick", "paper", "gpu")
DEFAULT_PROFILE = "quick"


class ParamError(ValueError):
    """A parameter problem, described in one line."""


#: checks of the files a chapter's parameters name, each registered by the layer that knows
#: the files (the datasets by ``xaistudy.data.datasets``, the weights by
#: ``xaistudy.models.classifiers``); :meth:`BaseParams.check_inputs` runs them all
INPUT_CHECKS: list = []


def register_input_check(check):
    """Add ``check(params)`` (raising :class:`ParamError` in one line) to :data:`INPUT_CHECKS`."""
    if check not in INPUT_CHECKS:
        INPUT_CHECKS.append(check)
    return check


def _existing_file(value: str) -> str:
    path = Path(value).expanduser()
    if value and path.is_dir():
        raise ValueError(f"{value} is a folder, not a file")
    if value and not path.is_file():
        raise ValueError(f"file {value} does not exist")
    return value


class _NamesPath:
    """Marks a parameter whose value is a file or folder (resolved against the caller's folder)."""


NAMES_PATH = _NamesPath()
#: string values of a :data:`Pretrained` parameter that are choices, not paths
_WEIGHTS_WORDS = ("", "false", "no", "0", "true", "yes", "1")


def _weights_choice(value: bool | str) -> bool | str:
    if isinstance(value, str):
        if value.strip().lower() in ("", "false", "no", "0"):
            return False
        if value.strip().lower() in ("true", "yes", "1"):
            return True
        _existing_file(value)
    return value


#: a weights file path, or "" for the standard cache location
WeightsFile = Annotated[str, AfterValidator(_existing_file), NAMES_PATH]
#: ``false``, ``true`` (the standard local cache file) or the path of a weights file
Pretrained = Annotated[bool | str, AfterValidator(_weights_choice), NAMES_PATH]
#: a folder (or file) path; "" for the parameter's default location
PathText = Annotated[str, NAMES_PATH]

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


def choices_field(
    names: Sequence[str],
    default: str,
    what: str,
    description: str = "",
    *,
    many: bool = True,
    noun: str = "",
) -> Any:
    """A parameter naming ``all`` or a comma-separated list of ``names`` (e.g. a registry's);
    with ``many=False`` exactly one of ``names``.

    The value is kept as given, spaces around the commas removed; a name not in ``names`` is a
    one-line error naming it, e.g. ``unknown method 'gradcm' in methods; allowed: all, ...``
    (``noun`` defaults to the last word of ``what`` in the singular).
    """
    allowed = tuple(names)
    last = what.split("_")[-1]
    noun = noun or (last[:-3] + "y" if last.endswith("ies") else last.removesuffix("s"))
    listed = ", ".join(("all", *allowed) if many else allowed)

    def check(value: str) -> str:
        items = [item.strip() for item in value.split(",")] if many else [value.strip()]
        if many and items == ["all"]:
            return "all"
        for item in items:
            if item not in allowed:
                raise ValueError(f"unknown {noun} '{item}' in {what}; allowed: {listed}")
        if len(set(items)) != len(items):
            raise ValueError(f"{what} lists a {noun} twice: {value}")
        return ",".join(items)

    text = description or (f"comma-separated {what}, or all" if many else what)
    field = Field(default, description=f"{text}: {', '.join(allowed)}")
    field.metadata.append(AfterValidator(check))
    return field


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
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {},
        "quick": {},
        "paper": {},
        "gpu": {},
    }
    #: dataset parameter -> (its data_root parameter, its data_options parameter)
    DATASET_FIELDS: ClassVar[dict[str, tuple[str, str]]] = {}

    #: the parameter naming the model whose standard weights ``pretrained=true`` needs
    PRETRAINED_FOR: ClassVar[str] = ""

    def check_inputs(self) -> None:
        """Check the files the parameters name (datasets, weights) before anything runs.

        Raises :class:`ParamError` in one line naming what is missing and where.
        """
        from xaistudy.core.runtime import check_device

        try:
            check_device(self.device)
        except ValueError as err:
            raise ParamError(f"bad value for parameter 'device': {err}") from None
        for check in INPUT_CHECKS:
            check(self)

    @classmethod
    def path_fields(cls) -> list[str]:
        """The parameters that name a file or folder: typed :data:`WeightsFile`,
        :data:`Pretrained` or :data:`PathText`, and every dataset's ``data_root``."""
        marked = [n for n, f in cls.model_fields.items() if NAMES_PATH in f.metadata]
        roots = [root for root, _ in cls.DATASET_FIELDS.values()]
        return list(dict.fromkeys(marked + roots))

    @classmethod
    def resolve_paths(
        cls, values: Mapping[str, Any], cwd: str | Path | None = None
    ) -> dict[str, Any]:
        """``values`` with every relative path parameter made absolute against ``cwd``
        (default: the current folder); ``~`` is expanded, empty values stay empty."""
        out = dict(values)
        base = Path(cwd) if cwd is not None else Path.cwd()
        for name in cls.path_fields():
            value = out.get(name)
            if not isinstance(value, str) or not value.strip():
                continue
            if field_accepts(cls, name, bool) and value.strip().lower() in _WEIGHTS_WORDS:
                continue
            out[name] = os.path.normpath(base / Path(value).expanduser())
        return out

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


def field_accepts(model: type[BaseModel], name: str, kind: type) -> bool:
    """Whether parameter ``name`` of ``model`` takes values of type ``kind`` (alone or in a
    union, e.g. ``bool | str``)."""
    field = model.model_fields.get(name)
    if field is None:
        return False
    annotation = field.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return kind in typing.get_args(annotation)
    return annotation is kind


def parse_param_value(model: type[BaseModel], name: str, text: str) -> Any:
    """A command-line value for parameter ``name``: the text itself for a text parameter (a
    folder called ``2024`` stays a folder), else as :func:`parse_cli_value`."""
    return text if field_accepts(model, name, str) else parse_cli_value(text)


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
    reason = "not an allowed value" if first["type"] == "string_pattern_mismatch" else first["msg"]
    msg = f"bad value for parameter '{name}': {given!r} ({reason.removeprefix('Value error, ')})"
    return f"{msg}; allowed: {allowed}" if allowed and "allowed:" not in msg else msg


def build_params(
    model: type[ChapterParams],
    profile: str = DEFAULT_PROFILE,
    overrides: Mapping[str, Any] | None = None,
    cwd: str | Path | None = None,
) -> ChapterParams:
    """Validate ``profile`` defaults plus ``overrides``; raise :class:`ParamError` in one line.

    Relative paths among the overrides are resolved against ``cwd`` (default: the current
    folder), then every file the parameters name is checked (:meth:`BaseParams.check_inputs`).
    """
    values = model.profile_defaults(profile)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(model.model_fields))
    if unknown:
        raise ParamError(
            f"unknown parameter '{unknown[0]}'; allowed: {', '.join(model.model_fields)}"
        )
    for name, value in overrides.items():  # pydantic would read true as 1 for a number
        if isinstance(value, bool) and not field_accepts(model, name, bool):
            annotation = model.model_fields[name].annotation
            if annotation in (int, float) or typing.get_origin(annotation) is list:
                raise ParamError(
                    f"bad value for parameter '{name}': {value!r} (a yes/no value where "
                    f"{_type_name(annotation)} is expected); allowed: {_describe(model, name)}"
                )
    values.update(model.resolve_paths(overrides, cwd))
    try:
        params = model(**values)
    except ValidationError as err:
        raise ParamError(format_validation_error(model, err)) from None
    params.check_inputs()
    return params


def _type_name(annotation: Any) -> str:
    if typing.get_args(annotation):
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", str(annotation))


def _pattern_choices(pattern: str) -> str:
    """``^(a|b|c)$`` as ``a, b, c``; "" for any other pattern."""
    inner = re.fullmatch(r"\^\((.*)\)\$", pattern)
    if inner is None:
        return ""  # the description says what is allowed
    body, parts, depth, word = inner.group(1), [], 0, ""
    for char in body:
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            parts.append(word)
            word = ""
        else:
            word += char
    parts.append(word)
    parts = [p.replace("\\-", "-") for p in parts]
    if any(re.search(r"[\\()\[\]*+?|]", p) for p in parts):
        return ""  # not a plain list of names: the description says what is allowed
    return ", ".join(parts)


def allowed_values(field: Any) -> str:
    """What a parameter accepts, from its constraints: a range, a length, a list of names."""
    bounds: dict[str, Any] = {}
    out = []
    for meta in field.metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            if getattr(meta, attr, None) is not None:
                bounds[attr] = getattr(meta, attr)
    if "ge" in bounds and "le" in bounds:
        out.append(f"{bounds['ge']}..{bounds['le']}")
    else:
        signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        out.append(" and ".join(f"{signs[k]} {bounds[k]}" for k in signs if k in bounds))
    if "min_length" in bounds or "max_length" in bounds:
        out.append(f"{bounds.get('min_length', 0)}-{bounds.get('max_length', 'any')} items")
    if "pattern" in bounds:
        out.append(_pattern_choices(bounds["pattern"]))
    if typing.get_origin(field.annotation) is typing.Literal:
        out.append(", ".join(str(a) for a in typing.get_args(field.annotation)))
    return "; ".join(o for o in out if o)


def describe_params(model: type[ChapterParams]) -> list[dict[str, Any]]:
    """One row per parameter: name, type, allowed values, description and the value under
    each profile."""
    rows = []
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        row = {
            "name": name,
            "type": _type_name(field.annotation),
            "allowed": allowed_values(field),
            "description": field.description or "",
        }
        for profile in PROFILES:
            row[profile] = model.profile_defaults(profile).get(name, default)
        rows.append(row)
    return rows
