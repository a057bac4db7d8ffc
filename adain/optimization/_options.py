"""Every knob of the optimisation backend, with its default, in one place: ``GatysOptions``.

``adain.gatys`` takes these as keyword-only arguments (its signature is generated from this class, so
each default exists once) and the ``adain gatys`` command line reads its defaults from that signature.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from .._arguments import COLOR_MODES, check_int, check_number, check_size, check_style_weights, number_list
from ..errors import InputError
from .._images import ImageLike
from ..modeling._encoder import LAYER_NAMES, VGG_CONVS
from .._runtime import check_max_memory, resolve_dtype
from ._losses import STYLE_LOSSES

LAYER_WEIGHTINGS = ("equal", "inverse_square", "geometric")

CHOICES: dict[str, tuple] = {
    "style_loss": tuple(STYLE_LOSSES),
    "optimizer": ("lbfgs", "adam"),
    "preserve_color": (None, *COLOR_MODES),
    "pooling": ("max", "avg"),
    "on_oom": ("error", "shrink"),
}
"""The fixed choices of the string options (the command line offers the same)."""


@dataclass(frozen=True)
class GatysOptions:
    """Options of ``adain.gatys``; see the README's options table for guidance.

    Sizes:
        content_size: shorter side of the output in pixels (aspect kept); ``None`` keeps the content's size.
        style_size: shorter side of the style image(s) at the final scale; ``None`` uses
            ``style_scale * content_size``.
        style_scale: style image size relative to the content (bigger = larger brush strokes).
    Styles:
        style_weights: one non-negative blend weight per style (normalised to sum 1); ``None`` = equal.
        mask: with exactly two styles, as ``adain.stylize``: the first style where the mask's luma is
            >= 0.5, the second elsewhere.
        masks: one guide per style (path/image/array/tensor, luma >= 0.5 = that style's region); each
            region is pushed toward its own style's statistics. ``None`` blends the styles everywhere.
    Losses:
        content_layers, style_layers: encoder layer names (``relu4_2`` is the paper's content layer).
        layer_weights: ``"equal"``, ``"inverse_square"`` (the authors' ``1/n^2``, n = channels),
            ``"geometric"`` (each layer twice the previous, deeper = heavier) or one float per style
            layer; normalised to sum 1.
        content_weight, style_weight, tv_weight: weights of the three terms.
        style_loss: ``"gram"`` (paper), ``"mean_std"`` or ``"wasserstein"`` (2-Wasserstein between
            feature Gaussians: mean + covariance).
        normalize_gradients: L1-normalise each term's gradient w.r.t. its features (Lua original).
    Optimisation:
        optimizer: ``"lbfgs"`` or ``"adam"``; lr: step size (``None``: 1.0 for L-BFGS, 0.02 for Adam).
        iterations: steps at the final scale; coarse_iterations: steps at each smaller pyramid scale
            (``None``: same as ``iterations``). history_size: L-BFGS (s, y) pairs kept.
        seed: seeds the noise init (same seed, same device -> same pixels).
        init: ``"content"``, ``"noise"`` or an image.
        pyramid: optimise at sqrt(2)-spaced scales from ``min_size`` up (shorter side, px).
        average: output a bias-corrected running average of the iterates, with ``average_decay``
            (``None``: 0.9 for L-BFGS, 0.99 for Adam).
        preserve_color: ``None``, ``"coral"`` (colour-match the style to the content first, as
            ``adain.stylize``; ``True`` is an alias) or ``"luminance"`` (transfer luminance only, keep the
            content's chroma).
        pooling: ``"max"`` or ``"avg"`` (rescaled to max pooling's activation magnitude).
    Device and memory:
        device: ``None`` = CUDA if available, else CPU. dtype: ``None`` = bf16 encoder forward on CUDA
            with bf16 support, float32 elsewhere; or ``"float32"``/``"bfloat16"`` (see ``adain._runtime``).
        max_memory: bytes the run may use (``None``: 80% of the free memory, as ``adain.stylize``).
        on_oom: ``"error"`` refuses a run the estimate says will not fit; ``"shrink"`` optimises at the
            largest size that fits and upsamples the result.
    """

    content_size: int | None = 512
    style_size: int | None = None
    style_scale: float = 1.0
    style_weights: Sequence[float] | None = None
    mask: ImageLike | None = None
    masks: Sequence[ImageLike] | None = None
    content_layers: Sequence[str] = ("relu4_2",)
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    layer_weights: Union[str, Sequence[float]] = "equal"
    content_weight: float = 1.0
    style_weight: float = 20.0
    tv_weight: float = 0.0
    style_loss: str = "gram"
    normalize_gradients: bool = False
    optimizer: str = "lbfgs"
    lr: float | None = None
    iterations: int = 300
    coarse_iterations: int | None = None
    history_size: int = 100
    seed: int = 0
    init: Union[str, ImageLike] = "content"
    pyramid: bool = True
    min_size: int = 128
    average: bool = True
    average_decay: float | None = None
    preserve_color: str | None = None
    pooling: str = "avg"
    device: Union[str, torch.device, None] = None
    dtype: Union[str, torch.dtype, None] = None
    max_memory: int | None = None
    on_oom: str = "error"

    def __post_init__(self) -> None:
        # Numbers are stored as Python ints/floats whatever was given (numpy scalars, 512.0, 2e9).
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else (1.0 if self.optimizer == "lbfgs" else 0.02)

    def resolved_decay(self) -> float | None:
        if not self.average:
            return None
        if self.average_decay is not None:
            return self.average_decay
        return 0.9 if self.optimizer == "lbfgs" else 0.99

    def layer_weight_values(self) -> list[float]:
        """Per-style-layer weights, normalised to sum 1."""
        channels = {"relu" + name[4:]: cout for name, _, cout in VGG_CONVS}
        lw = self.layer_weights
        if lw == "equal":
            raw = [1.0] * len(self.style_layers)
        elif lw == "inverse_square":
            raw = [1.0 / channels[layer] ** 2 for layer in self.style_layers]
        elif lw == "geometric":
            raw = [2.0**i for i in range(len(self.style_layers))]
        else:
            raw = [float(w) for w in lw]
        total = sum(raw)
        return [w / total for w in raw]


def _fail(name: str, message: str) -> None:
    raise InputError(f"{name}: {message}")


def _choice(opts: GatysOptions, name: str, choices: Sequence[Any]) -> None:
    value = getattr(opts, name)
    if value not in choices:
        _fail(name, f"must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")


def _layers(opts: GatysOptions, name: str) -> None:
    value = getattr(opts, name)
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        _fail(name, f"must be a non-empty sequence of layer names, got {value!r}")
    relus = [n for n in LAYER_NAMES if n.startswith("relu")]
    for layer in value:
        if layer not in relus:
            _fail(name, f"unknown layer {layer!r}; choose from {', '.join(relus)}")


def _numbers(opts: GatysOptions) -> dict[str, Any]:
    """The numeric options, checked with the shared helpers and converted to ``int``/``float``."""
    values: dict[str, Any] = {name: check_size(getattr(opts, name), name) for name in ("content_size", "style_size")}
    for name, minimum in (("iterations", 1), ("history_size", 1), ("min_size", 16)):
        values[name] = check_int(getattr(opts, name), name, minimum=minimum)
    values["coarse_iterations"] = check_int(opts.coarse_iterations, "coarse_iterations", allow_none=True)
    values["seed"] = check_int(opts.seed, "seed", minimum=None)
    values["max_memory"] = check_max_memory(opts.max_memory)
    for name in ("content_weight", "style_weight", "tv_weight"):
        values[name] = check_number(getattr(opts, name), name, minimum=0)
    values["style_scale"] = check_number(opts.style_scale, "style_scale", above=0)
    values["lr"] = check_number(opts.lr, "lr", above=0, allow_none=True)
    values["average_decay"] = check_number(opts.average_decay, "average_decay", above=0, below=1, allow_none=True)
    values["style_weights"] = check_style_weights(opts.style_weights)
    return values


def _layer_weights(opts: GatysOptions) -> str | tuple[float, ...]:
    lw = opts.layer_weights
    if isinstance(lw, str):
        _choice(opts, "layer_weights", LAYER_WEIGHTINGS)
        return lw
    message = (f"must be one of {LAYER_WEIGHTINGS} or {len(opts.style_layers)} non-negative numbers (one per "
               f"style layer, not all 0), got {lw!r}")
    try:
        values = number_list(lw, "layer_weights")
    except InputError:
        _fail("layer_weights", message)
    valid = all(math.isfinite(w) and w >= 0 for w in values) and sum(values) > 0
    if len(values) != len(opts.style_layers) or not valid:
        _fail("layer_weights", message)
    return tuple(values)


def _validated(opts: GatysOptions) -> dict[str, Any]:
    """Check every option; returns the values to store instead of those given (numbers converted)."""
    values = _numbers(opts)
    for name in ("normalize_gradients", "pyramid", "average"):
        flag = getattr(opts, name)
        if not isinstance(flag, (bool, np.bool_)):
            _fail(name, f"must be True or False, got {flag!r}")
        values[name] = bool(flag)
    _layers(opts, "content_layers")
    _layers(opts, "style_layers")
    values["layer_weights"] = _layer_weights(opts)
    for name, choices in CHOICES.items():
        _choice(opts, name, choices)
    if isinstance(opts.init, str) and opts.init not in ("content", "noise"):
        if not Path(opts.init).is_file():
            _fail("init", f"must be 'content', 'noise' or an image (path, PIL image, array, tensor); got {opts.init!r}")
    # Names as adain._runtime reads them ("auto", "bf16", torch dtypes); float16 overflows in VGG.
    resolve_dtype(opts.dtype, torch.device("cpu"), allowed=("float32", "bfloat16"))
    return values


def options_signature(func, leading: Sequence[inspect.Parameter]) -> inspect.Signature:
    """A signature for ``func``: ``leading`` parameters, then every ``GatysOptions`` field keyword-only."""
    params = list(leading)
    for f in fields(GatysOptions):
        default = f.default if f.default is not MISSING else inspect.Parameter.empty
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=f.type))
    return inspect.Signature(params, return_annotation=inspect.signature(func).return_annotation)
