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
from typing import Any

import numpy as np
import torch

from .._arguments import COLOR_MODES, check_int, check_number, check_size, check_style_weights, number_list
from .._images import ImageLike
from .._runtime import check_max_memory, resolve_dtype
from ..errors import InputError
from ..modeling._encoder import LAYER_NAMES, VGG_CONVS
from ._losses import STYLE_LOSSES

LAYER_WEIGHTINGS = ("equal", "inverse_square", "geometric")

CHOICES: dict[str, tuple] = {
    "style_loss": tuple(STYLE_LOSSES),
    "optimizer": ("lbfgs", "adam"),
    "preserve_color": (None, *COLOR_MODES),
    "pooling": ("max", "avg"),
    "on_oom": ("error", "shrink"),
    "loss_scale": ("relative", "absolute"),
}
"""The fixed choices of the string options (the command line offers the same)."""


@dataclass(frozen=True)
class GatysOptions:
    """Every option of [``adain.gatys``][adain.gatys], with its default: ``gatys`` takes each field as a
    keyword-only argument and checks them all here (a bad value raises ``InputError`` naming the field).

    What each option is for, and the departures from the paper: the [Gatys guide](../guides/gatys.md) and the
    [design notes](../design.md#optimisation-backend-gatys). The fields come in groups: sizes (shorter sides in
    pixels, aspect kept), styles and masks, losses, the optimiser and pyramid, colour, device and memory.

    Attributes:
        content_size: shorter side of the output in pixels (the content is resized to it); ``None``
            keeps the content's size. Default 512.
        style_size: shorter side of the style image(s) at the final scale; ``None`` (default):
            ``style_scale`` times the content's shorter side. Smaller pyramid scales shrink it in proportion.
        style_scale: style size relative to the content when ``style_size`` is ``None``, > 0 (bigger:
            larger brush strokes). Default 1.
        style_weights: one non-negative blend weight per style, normalised to sum 1; ``None``
            (default): equal. Not with ``masks``.
        mask: with exactly two styles, an image (path, ``PIL.Image``, array or tensor) with the
            content's aspect ratio: the first style where its luma is >= 0.5, the second elsewhere, as in
            ``adain.stylize``. Default ``None``.
        masks: one guide image per style (luma >= 0.5: that style's region, the content's aspect
            ratio); each region is pushed toward its own style's statistics. ``None`` (default) blends the
            styles everywhere.
        content_layers: encoder layers of the content term (``"relu1_1"`` ... ``"relu5_1"``); default
            ``("relu4_2",)``, the paper's.
        style_layers: encoder layers of the style term; default ``relu1_1``, ``relu2_1``,
            ``relu3_1``, ``relu4_1``, ``relu5_1``, the paper's.
        layer_weights: weights of the style layers, normalised to sum 1: ``"equal"`` (default),
            ``"inverse_square"`` (the authors' ``1/n^2``, n = the layer's channels), ``"geometric"`` (each
            layer twice the previous: deeper is heavier) or one non-negative number per style layer.
        content_weight: weight of the content term, >= 0. Default 1.
        style_weight: weight of the style term, >= 0 (more: more style). Default 5, with the relative
            losses of ``loss_scale`` (on photographs with the Caffe VGG-19: 1 keeps the content's colours and
            lines, 20 redraws everything in the style).
        tv_weight: weight of the total-variation term (smoothness), >= 0. Default 0: none.
        loss_scale: ``"relative"`` (default): each content and style term is divided by the size of its
            target (``mean(target^2)`` for content and Gram terms), so that the weights mean the same on any
            VGG -- the normalised one of the AdaIN release or the raw Caffe one (``caffe-vgg19``), whose deep
            layers are orders of magnitude larger. ``"absolute"``: the raw losses (as the Lua original; the
            weights then depend on the network's activation scale).
        style_loss: ``"gram"`` (default, the paper's Gram matrices), ``"mean_std"`` (channel means
            and standard deviations, as AdaIN matches) or ``"wasserstein"`` (2-Wasserstein distance between
            feature Gaussians: mean and covariance).
        normalize_gradients: L1-normalise each term's gradient with respect to its features, as the
            Lua original does. Default ``False``.
        optimizer: ``"lbfgs"`` (default) or ``"adam"``.
        lr: step size, > 0; ``None`` (default): 1.0 for L-BFGS, 0.02 for Adam.
        iterations: optimiser steps at the final (full-size) scale, >= 1. Default 100: with the pyramid,
            L-BFGS has done most of its work by then (each step at 256 px costs a second or more on a CPU).
        coarse_iterations: steps at each smaller pyramid scale; ``None`` (default): half of ``iterations``
            (at least 1), 50 with the defaults: the smaller scales are only a start for the next.
        history_size: L-BFGS ``(s, y)`` pairs kept, >= 1. Default 100.
        seed: seeds the ``"noise"`` start (drawn on the CPU, so the same on every device); with
            the same seed and device a run gives the same pixels. Default 0.
        init: the start: ``"content"`` (default), ``"noise"`` or an image (path, ``PIL.Image``,
            array or tensor).
        pyramid: optimise at sqrt(2)-spaced scales from ``min_size`` up to the output size,
            each starting from the previous result. Default ``True``; ``False``: the output size only.
        min_size: shorter side of the smallest pyramid scale in pixels, >= 16. Default 128.
        average: output a bias-corrected running average of the iterates rather than the
            last one (smoother). Default ``True``.
        average_decay: decay of that average, in (0, 1); ``None`` (default): 0.9 for L-BFGS,
            0.99 for Adam.
        preserve_color: ``None`` (default): the style's colours; ``"coral"`` colour-matches each
            style image to the content first, as ``adain.stylize`` (``gatys`` also takes ``True`` for it, and
            ``False`` for ``None``); ``"luminance"`` transfers style to the luminance only and keeps the
            content's chroma.
        pooling: the encoder's pooling: ``"avg"`` (default; rescaled to max pooling's
            activation magnitude, smoother gradients) or ``"max"`` (the network as trained).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... or a ``torch.device``; ``None`` (default): CUDA
            when available, else CPU.
        dtype: ``"float32"`` or ``"bfloat16"`` (autocast of the encoder's forward pass); ``None``
            (default): bfloat16 on a CUDA device that supports it and on a CPU with native bf16, float32
            elsewhere. ``float16`` is refused: it overflows in VGG.
        max_memory: bytes the run may use; ``None`` (default): 80% of the memory free on the device,
            as ``adain.stylize``.
        on_oom: what to do when the estimate says a run will not fit ``max_memory``: ``"error"``
            (default) refuses it with ``InputError`` naming the largest size that fits, before allocating;
            ``"shrink"`` optimises at the largest size that fits and upsamples the result to the output size.
    """

    content_size: int | None = 512
    style_size: int | None = None
    style_scale: float = 1.0
    style_weights: Sequence[float] | None = None
    mask: ImageLike | None = None
    masks: Sequence[ImageLike] | None = None
    content_layers: Sequence[str] = ("relu4_2",)
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    layer_weights: str | Sequence[float] = "equal"
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 0.0
    loss_scale: str = "relative"
    style_loss: str = "gram"
    normalize_gradients: bool = False
    optimizer: str = "lbfgs"
    lr: float | None = None
    iterations: int = 100
    coarse_iterations: int | None = None
    history_size: int = 100
    seed: int = 0
    init: str | ImageLike = "content"
    pyramid: bool = True
    min_size: int = 128
    average: bool = True
    average_decay: float | None = None
    preserve_color: str | None = None
    pooling: str = "avg"
    device: str | torch.device | None = None
    dtype: str | torch.dtype | None = None
    max_memory: int | None = None
    on_oom: str = "error"

    def __post_init__(self) -> None:
        # Numbers are stored as Python ints/floats whatever was given (numpy scalars, 512.0, 2e9).
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else (1.0 if self.optimizer == "lbfgs" else 0.02)

    def resolved_coarse_iterations(self) -> int:
        """Steps at each pyramid scale below the output: ``coarse_iterations``, else half of ``iterations``."""
        return self.coarse_iterations if self.coarse_iterations is not None else max(1, self.iterations // 2)

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
    message = (
        f"must be one of {LAYER_WEIGHTINGS} or {len(opts.style_layers)} non-negative numbers (one per "
        f"style layer, not all 0), got {lw!r}"
    )
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
