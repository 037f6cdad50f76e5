"""Image classifiers: torchvision ResNets, any timm model, and a tiny CPU-friendly CNN.

Nothing here downloads anything. ``pretrained=True`` looks for the file that torchvision or
timm would have downloaded in their usual local caches; a path loads that file; when neither
exists a one-line :class:`WeightsNotFoundError` says where to put the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
import torchvision
from torch import nn

from xaistudy.core.params import ParamError, register_input_check

log = logging.getLogger(__name__)

#: Names supported (and tested) explicitly; any other timm model name also builds.
CLASSIFIERS: tuple[str, ...] = ("small_cnn", "resnet18", "resnet50", "skresnext50_32x4d")

TORCHVISION_NAMES: tuple[str, ...] = ("resnet18", "resnet50")
KNOWN_NAMES_HINT = "resnet18, resnet50, small_cnn, or any timm model name"
WEIGHTS_HINT = "-p weights /path/to/file"


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights were asked for but no local file holds them."""


# -- devices --------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda, else mps, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:1"``… as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    return resolved


# -- the small CNN --------------------------------------------------------------------------
def _conv_block(in_chans: int, out_chans: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, out_chans, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_chans),
        nn.ReLU(inplace=False),  # not in-place: CAM / LRP hooks need the pre-activation intact
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU-maxpool blocks (16/32/64/128 channels), global average pool, linear.

    ``features`` holds the blocks, ``classifier`` the linear head; :attr:`last_block` is the
    layer to hook for CAMs. Every operation is its own module so hook-based explainers
    (pytorch-grad-cam, zennit, captum) see all of them.
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 3,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        dropout: float = 0.0,
    ):
        super().__init__()
        chans = (in_chans, *widths)
        self.features = nn.Sequential(
            *(_conv_block(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True))
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)

    @property
    def last_block(self) -> nn.Module:
        """The last conv block, the usual CAM target layer."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.flatten(self.pool(self.features(x)))))

    def forward_from(self, stage: str, features: torch.Tensor) -> torch.Tensor:
        """Logits when block ``stage`` (``features.0`` ... ``features.3``) outputs ``features``."""
        names = [f"features.{i}" for i in range(len(self.features))]
        if stage not in names:
            raise ValueError(f"unknown stage '{stage}'; allowed: {', '.join(names)}")
        x = self.features[names.index(stage) + 1 :](features)
        return self.classifier(self.dropout(self.flatten(self.pool(x))))


# -- finding pretrained weights -------------------------------------------------------------
def _torch_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's own resolution of TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _hf_hub_dirs() -> list[Path]:
    """The Hugging Face hub caches to search, most specific first."""
    dirs: list[Path] = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    xdg = os.environ.get("XDG_CACHE_HOME")
    dirs.append((Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub")
    return list(dict.fromkeys(dirs))


def torchvision_weight_files(name: str) -> list[str]:
    """File names torchvision downloads for ``name`` (DEFAULT first), from the weights enum."""
    weights = torchvision.models.get_model_weights(name)
    ordered = [weights.DEFAULT, *weights]
    return list(dict.fromkeys(w.url.rsplit("/", 1)[-1] for w in ordered))


def _find_torchvision_weights(name: str) -> Path:
    folder = _torch_checkpoint_dir()
    files = torchvision_weight_files(name)
    for filename in files:
        if (folder / filename).is_file():
            return folder / filename
    raise WeightsNotFoundError(
        f"no pretrained weights for {name}: expected {' or '.join(files)} in {folder} "
        f"(set TORCH_HOME to move it), or pass the file with '-p weights /path/to/{files[0]}'"
    )


def _timm_hub_ids(name: str) -> list[str]:
    """Hugging Face repo ids that may hold ``name``'s weights, the default tag first."""
    arch, tag = timm.models.split_model_name_tag(name)
    ids: list[str] = []
    try:
        cfg = timm.models.get_pretrained_cfg(name if tag else arch, allow_unregistered=False)
    except (RuntimeError, KeyError):
        cfg = None
    if cfg is not None and cfg.hf_hub_id:
        ids.append(cfg.hf_hub_id)
    ids.append(f"timm/{name}")
    return list(dict.fromkeys(ids))


def _snapshot_weights(repo_folder: Path) -> Path | None:
    """The weights file in the newest snapshot of a hub repo folder, safetensors preferred."""
    for pattern in ("model.safetensors", "pytorch_model.bin"):
        found = sorted(repo_folder.glob(f"snapshots/*/{pattern}"), key=lambda p: p.stat().st_mtime)
        if found and (pattern != "model.safetensors" or _has_safetensors()):
            return found[-1]
    return None


def _find_timm_weights(name: str) -> Path:
    arch, tag = timm.models.split_model_name_tag(name)
    folders: list[str] = ["models--" + hub_id.replace("/", "--") for hub_id in _timm_hub_ids(name)]
    hub_dirs = _hf_hub_dirs()
    for hub in hub_dirs:
        candidates = [hub / folder for folder in folders]
        if not tag:  # any tag of this architecture will do
            candidates += sorted(hub.glob(f"models--timm--{arch}.*"))
        for repo_folder in candidates:
            path = _snapshot_weights(repo_folder) if repo_folder.is_dir() else None
            if path is not None:
                return path
    raise WeightsNotFoundError(
        f"no pretrained weights for timm model {name}: expected {folders[0]}/snapshots/*/"
        f"model.safetensors (or pytorch_model.bin) in {' or '.join(map(str, hub_dirs))} "
        f"(set HF_HOME to move it), or pass the file with '{WEIGHTS_HINT}'"
    )


def find_pretrained_weights(name: str) -> Path:
    """The local file that holds the standard pretrained weights of ``name``.

    torchvision models: ``$TORCH_HOME/hub/checkpoints/<file from the weights enum url>``;
    timm models: the Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or
    ``~/.cache/huggingface/hub``). Raises :class:`WeightsNotFoundError` when absent.
    """
    if name in TORCHVISION_NAMES:
        return _find_torchvision_weights(name)
    if name == "small_cnn":
        raise WeightsNotFoundError(
            f"small_cnn has no published pretrained weights; train it or pass a file with "
            f"'{WEIGHTS_HINT}'"
        )
    if timm.is_model(name):
        return _find_timm_weights(name)
    raise ValueError(f"unknown classifier {name!r}; expected {KNOWN_NAMES_HINT}")


# -- loading weights ------------------------------------------------------------------------
def _has_safetensors() -> bool:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return False
    return True


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.pth``/``.pt``/``.bin`` (weights only) or ``.safetensors``.

    Common wrappers (``{"state_dict": ...}``, ``{"model": ...}``) and a ``module.`` prefix
    (DataParallel) are removed.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}


def _head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of the classification head."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    heads = cfg.get("classifier") if isinstance(cfg, Mapping) else None
    names = [heads] if isinstance(heads, str) else list(heads or [])
    names += ["fc", "head", "classifier"]
    return tuple(f"{n}." for n in dict.fromkeys(names))


def _adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Pretrained RGB conv weights for ``in_chans`` input channels (timm's recipe)."""
    return timm.models.adapt_input_conv(in_chans, weight.float()).to(weight.dtype)


def load_pretrained(model: nn.Module, state: Mapping[str, torch.Tensor], in_chans: int = 3) -> None:
    """Load ``state`` into ``model``, skipping a head of another size; keep the model's head.

    Head keys (``fc.*``, ``head.*``, ``classifier.*``) whose shape differs are skipped; a
    first conv trained on RGB is adapted to ``in_chans``. Any other mismatch, or a backbone
    weight missing from ``state``, raises ``ValueError``: a wrong checkpoint must not
    silently leave a randomly initialised backbone.
    """
    own = model.state_dict()
    heads = _head_prefixes(model)
    keep: dict[str, torch.Tensor] = {}
    skipped, unexpected, mismatched = [], [], []
    for key, value in state.items():
        if key not in own:
            unexpected.append(key)
        elif value.shape == own[key].shape:
            keep[key] = value
        elif key.startswith(heads):
            skipped.append(key)
        elif value.ndim == 4 and value.shape[1] == 3 and own[key].shape[1] == in_chans:
            keep[key] = _adapt_input_conv(value, in_chans)
            log.info("adapted %s from 3 to %d input channels", key, in_chans)
        else:
            mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}")
    missing = [
        k
        for k in own
        if k not in keep and not k.startswith(heads) and not k.endswith("num_batches_tracked")
    ]
    if mismatched or missing:
        detail = "; ".join(mismatched[:3] + [f"missing {k}" for k in missing[:3]])
        raise ValueError(
            f"checkpoint does not fit {type(model).__name__}: {len(mismatched)} shape "
            f"mismatches, {len(missing)} missing weights ({detail})"
        )
    if skipped:
        log.info("kept a new classification head; skipped %s", ", ".join(skipped))
    if unexpected:
        log.warning("ignored %d unexpected checkpoint keys: %s", len(unexpected), unexpected[:5])
    model.load_state_dict(keep, strict=False)


# -- building -------------------------------------------------------------------------------
def _build_torchvision(name: str, num_classes: int, in_chans: int, **kwargs: Any) -> nn.Module:
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes, **kwargs)
    if in_chans != 3:
        old = model.conv1
        model.conv1 = nn.Conv2d(
            in_chans, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False
        )
    return model


def build_classifier(
    name: str,
    num_classes: int,
    pretrained: bool | str | Path = False,
    in_chans: int = 3,
    **kwargs: Any,
) -> nn.Module:
    """A classifier with ``num_classes`` outputs; extra ``kwargs`` go to its constructor.

    ``name``: ``resnet18``/``resnet50`` (torchvision), ``small_cnn`` or any timm model name.
    ``pretrained``: False (random init), True (the standard local file, see
    :func:`find_pretrained_weights`) or the path of a weights file. The pretrained head is
    replaced by a new one with ``num_classes`` outputs.
    """
    if name == "small_cnn":
        model: nn.Module = SmallCNN(num_classes, in_chans=in_chans, **kwargs)
    elif name in TORCHVISION_NAMES:
        model = _build_torchvision(name, num_classes, in_chans, **kwargs)
    elif timm.is_model(name):
        model = timm.create_model(
            name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs
        )
    else:
        raise ValueError(f"unknown classifier {name!r}; expected {KNOWN_NAMES_HINT}")
    if pretrained is not False:
        path = find_pretrained_weights(name) if pretrained is True else Path(pretrained)
        if not path.is_file():
            raise WeightsNotFoundError(
                f"weights file {path} for {name} not found; pass an existing file with "
                f"'{WEIGHTS_HINT}'"
            )
        log.info("loading %s weights from %s", name, path)
        load_pretrained(model, read_state_dict(path), in_chans=in_chans)
    return model


# -- CAM target layers ----------------------------------------------------------------------
def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def _last_conv_child(module: nn.Module) -> nn.Module | None:
    children = [c for c in module.children() if _has_conv(c)]
    return children[-1] if children else None


def target_layer(model: nn.Module, name: str | None = None) -> nn.Module:
    """The last convolutional stage of ``model``, the usual layer for CAM methods.

    ResNets (torchvision and timm): ``layer4[-1]``; ``small_cnn``: its last block; otherwise
    the last child holding a ``Conv2d`` (its last such element when it is a container).
    """
    if isinstance(model, SmallCNN):
        return model.last_block
    layer4 = getattr(model, "layer4", None)
    if isinstance(layer4, nn.Sequential) and len(layer4) > 0:
        return layer4[-1]
    stage = _last_conv_child(model)
    if stage is None:
        label = name or type(model).__name__
        raise ValueError(f"{label} has no convolutional layer to use as a CAM target layer")
    if isinstance(stage, (nn.Sequential, nn.ModuleList)):
        stage = _last_conv_child(stage) or stage
    return stage


@register_input_check
def check_pretrained_params(params) -> None:
    """``pretrained=true`` needs the standard weights of the model the chapter names."""
    if params.PRETRAINED_FOR and getattr(params, "pretrained", False) is True:
        try:
            find_pretrained_weights(getattr(params, params.PRETRAINED_FOR))
        except WeightsNotFoundError as err:  # the hint names this chapter's parameter
            raise ParamError(str(err).replace("'-p weights ", "'-p pretrained ")) from None
