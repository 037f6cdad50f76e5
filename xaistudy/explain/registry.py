"""The registry of explanation methods: each method is registered with its metadata where it is
defined (:func:`register_method` on the function, :func:`register_cam` for a CAM class).

A method's options are explicit keywords: those of an attribution function are its
keyword-only parameters, those of a CAM are listed at registration. :func:`check_options`
refuses any other name in one line, so a misspelt option never passes silently.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: the families of :class:`MethodInfo`, in the order tables list them
FAMILIES: tuple[str, ...] = ("perturbation", "backpropagation", "cam")


@dataclass(frozen=True)
class MethodInfo:
    """What a method is, for taxonomies and tables, and how to run it."""

    name: str
    label: str
    family: str  # one of FAMILIES
    library: str
    signed: bool
    needs_layer: bool
    model_agnostic: bool
    passes: str  # forward/backward passes per image, as a formula of the method's options
    #: the method's own options (explicit keywords)
    options: tuple[str, ...] = ()
    #: the method perturbs all channels of a pixel together: its attribution is one value per
    #: pixel, repeated over the channels
    channel_shared: bool = False
    #: the method draws random numbers (its ``seed`` option sets them)
    stochastic: bool = False
    #: the attribution function, or the pytorch-grad-cam class of a CAM
    implementation: Any = field(default=None, repr=False, compare=False)


#: every method by name: by family (:data:`FAMILIES`), then in registration order
METHODS: dict[str, MethodInfo] = {}


def keyword_options(fn: Callable) -> tuple[str, ...]:
    """The keyword-only parameters of ``fn``: the options an attribution function takes."""
    params = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _add(info: MethodInfo) -> None:
    if info.family not in FAMILIES:
        raise ValueError(f"unknown family '{info.family}'; allowed: {', '.join(FAMILIES)}")
    if info.name in METHODS:
        raise ValueError(f"method '{info.name}' is registered twice")
    METHODS[info.name] = info
    by_family = sorted(METHODS.values(), key=lambda m: FAMILIES.index(m.family))  # stable
    METHODS.clear()
    METHODS.update((m.name, m) for m in by_family)


def register_method(
    name: str,
    *,
    label: str,
    family: str,
    library: str,
    passes: str,
    signed: bool = True,
    needs_layer: bool = False,
    model_agnostic: bool = False,
    channel_shared: bool = False,
    stochastic: bool = False,
) -> Callable[[Callable], Callable]:
    """Register ``fn(model, inputs, targets, *, option=default, ...)`` as method ``name``.

    Its options are its keyword-only parameters (no ``**kwargs``: every option is named); a
    ``stochastic`` method takes a ``seed`` option.
    """

    def wrap(fn: Callable) -> Callable:
        params = inspect.signature(fn).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            raise TypeError(f"method '{name}': name every option, no **kwargs")
        options = keyword_options(fn)
        if stochastic and "seed" not in options:
            raise TypeError(f"method '{name}' is stochastic: it needs a seed option")
        _add(
            MethodInfo(
                name=name,
                label=label,
                family=family,
                library=library,
                signed=signed,
                needs_layer=needs_layer,
                model_agnostic=model_agnostic,
                passes=passes,
                options=options,
                channel_shared=channel_shared,
                stochastic=stochastic,
                implementation=fn,
            )
        )
        return fn

    return wrap


def register_cam(
    name: str, cam_class: type, *, label: str, passes: str, options: Iterable[str]
) -> None:
    """Register pytorch-grad-cam's ``cam_class`` as CAM method ``name`` (unsigned, needs a
    layer except FullGrad, which hooks every layer itself)."""
    _add(
        MethodInfo(
            name=name,
            label=label,
            family="cam",
            library="pytorch-grad-cam",
            signed=False,
            needs_layer=name != "fullgrad",
            model_agnostic=False,
            passes=passes,
            options=tuple(options),
            implementation=cam_class,
        )
    )


def method_names(family: str | None = None) -> tuple[str, ...]:
    """The registered method names (of ``family`` only, when given), in :data:`METHODS` order."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family '{family}'; allowed: {', '.join(FAMILIES)}")
    return tuple(n for n, m in METHODS.items() if family in (None, m.family))


def get_method(name: str) -> MethodInfo:
    """The registered method ``name``; a one-line error listing the names otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method '{name}'; allowed: {', '.join(METHODS)}")
    return METHODS[name]


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """A one-line error naming the first option ``name`` does not take, and those it does."""
    allowed = get_method(name).options
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ValueError(
            f"unknown option '{unknown[0]}' of method '{name}'; allowed: "
            f"{', '.join(allowed) or 'none'}"
        )
