"""The package's own weight format: a folder with ``config.json``, ``model.safetensors`` and ``README.md``.

``config.json`` holds a ``ModelConfig``; ``model.safetensors`` the named tensors (``encoder.conv1_1.weight``,
``decoder.conv4_1.weight``, ...); ``README.md`` a model card. Loading is strict: every expected key with
its exact shape, nothing extra, every value finite. Only safetensors is read, so loading weights can
never run code. Works on ``(ModelConfig, state dict)`` pairs; ``adain.AdaINModel`` builds on it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import TypeGuard

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from .._atomic import atomic_path
from ..errors import CorruptWeightsError, InputError, WeightsNotFoundError
from ..modeling._config import ARCHITECTURE, FORMAT_VERSION, ModelConfig
from ..modeling._decoder import Decoder
from ..modeling._encoder import CONTENT_LAYER, LAYER_NAMES, VGGEncoder
from ._card import model_card

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MAX_CONFIG_BYTES = 1 << 20
"""A ``config.json`` larger than this (1 MiB; real ones are about 200 bytes) is refused unread."""

# encoder_last_layer: a relu layer, at least the one AdaIN works on.
_LAST_LAYERS = tuple(n for n in LAYER_NAMES[LAYER_NAMES.index(CONTENT_LAYER) :] if n.startswith("relu"))


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# config.json field -> (check, what the field must be)
_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "architecture": (lambda v: v == ARCHITECTURE, f"must be {ARCHITECTURE!r}"),
    "encoder_last_layer": (lambda v: v in _LAST_LAYERS, f"must be one of {', '.join(_LAST_LAYERS)}"),
    "eps": (lambda v: _number(v) and math.isfinite(v) and v > 0, "must be a finite number > 0"),
    "format_version": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "must be an integer >= 1"),
    "description": (lambda v: isinstance(v, str), "must be a string"),
}


def config_from_dict(data: object, source: str = "config") -> ModelConfig:
    """A ``ModelConfig`` from parsed ``config.json`` data, checked field by field (type, finite value,
    allowed names); unknown keys or bad values raise ``CorruptWeightsError`` naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise CorruptWeightsError(f"{source}: expected a JSON object, got {type(data).__name__}")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CorruptWeightsError(f"{source}: unknown config keys {unknown}; known keys are {sorted(known)}")
    for name, value in data.items():
        check, rule = _FIELDS[name]
        if not check(value):
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            raise CorruptWeightsError(f"{source}: field {name!r} {rule}, got {shown}")
    config = ModelConfig(**data)
    if config.format_version > FORMAT_VERSION:
        raise CorruptWeightsError(
            f"{source}: format_version {config.format_version} is newer than this package understands "
            f"({FORMAT_VERSION}); upgrade adain"
        )
    return config


def expected_state(config: ModelConfig) -> dict[str, Tensor]:
    """The keys and shapes (meta tensors, no memory) of a model's state dict for ``config``."""
    with torch.device("meta"):
        encoder, decoder = VGGEncoder(config.encoder_last_layer), Decoder()
    return {f"encoder.{k}": v for k, v in encoder.state_dict().items()} | {
        f"decoder.{k}": v for k, v in decoder.state_dict().items()
    }


def check_state_dict(state: dict[str, Tensor], expected: dict[str, Tensor], source: str) -> None:
    """Raise ``CorruptWeightsError`` unless ``state`` has exactly ``expected``'s keys and shapes, all finite.

    The message names the first offending key and the shape it should have.
    """
    for key, ref in expected.items():
        if key not in state:
            raise CorruptWeightsError(f"{source}: missing key {key!r} (expected shape {tuple(ref.shape)})")
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CorruptWeightsError(
                f"{source}: key {key!r} has shape {tuple(state[key].shape)}, expected {tuple(ref.shape)}"
            )
    extra = [k for k in state if k not in expected]
    if extra:
        raise CorruptWeightsError(f"{source}: unexpected key {extra[0]!r} ({len(extra)} unexpected in all)")
    for key, value in state.items():
        if not value.is_floating_point():
            raise CorruptWeightsError(f"{source}: key {key!r} has dtype {value.dtype}, expected a float tensor")
        if not bool(torch.isfinite(value).all()):
            raise CorruptWeightsError(f"{source}: key {key!r} contains NaN or infinite values")


def save_model_dir(
    config: ModelConfig, state: dict[str, Tensor], directory: str | os.PathLike, *, card: str | None = None
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``README.md`` (``card``, default: the generated
    model card) to ``directory``, each atomically. Returns the directory."""
    try:  # never write a folder that would not load back
        config_from_dict(asdict(config), "ModelConfig")
    except CorruptWeightsError as exc:
        raise InputError(f"cannot save to {directory}: {exc}") from None
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    with atomic_path(out / WEIGHTS_NAME, expected_bytes=size) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    with atomic_path(out / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(asdict(config), indent=2) + "\n")
    with atomic_path(out / CARD_NAME) as tmp:
        tmp.write_text(card if card is not None else model_card(config))
    return out


def _read_json(path: Path) -> object:
    """Parsed JSON of a small file; anything else (too large, too deep, not JSON) is ``CorruptWeightsError``."""
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CorruptWeightsError(
            f"{path}: {path.stat().st_size} bytes, too large for a config (at most {MAX_CONFIG_BYTES})"
        )
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptWeightsError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise CorruptWeightsError(f"{path}: not a config (JSON nested too deeply)") from None


def load_model_dir(directory: str | os.PathLike) -> tuple[ModelConfig, dict[str, Tensor]]:
    """Read and strictly check a folder written by ``save_model_dir``; returns ``(config, state)``."""
    root = Path(directory)
    config_path, weights_path = root / CONFIG_NAME, root / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise WeightsNotFoundError(
                f"{path} not found: a model directory needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(written by AdaINModel.save_pretrained)"
            )
    config = config_from_dict(_read_json(config_path), str(config_path))
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptWeightsError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    check_state_dict(state, expected_state(config), str(weights_path))
    return config, state
