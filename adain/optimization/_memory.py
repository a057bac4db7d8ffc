"""How much memory an optimisation run will need, computed from shapes before anything is allocated.

The estimate walks the encoder's layer plan (no tensors) and adds up what autograd keeps for the
backward pass, the transient gradients of the widest layer, the style pass, the loss targets and the
optimizer's state. It is deliberately simple and a little generous; the test suite checks it against
the measured CPU peak at two sizes (within a factor of 2). ``plan_memory`` reads those shapes from a run's
options, and ``working_size`` compares the estimate with the budget (``max_memory``, ``on_oom``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._runtime import memory_budget
from ..errors import InputError
from ..modeling._encoder import LAYER_NAMES, VGG_CONVS
from ._options import GatysOptions

_CHANNELS = {name: cout for name, _, cout in VGG_CONVS}


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of one scale of an optimisation run, by part, in bytes.

    [``adain.gatys``][adain.gatys] estimates it from shapes before allocating anything, at the size it is to
    optimise, and compares ``total`` with ``max_memory`` (see its ``on_oom``). The estimate is deliberately
    simple and a little generous (the tests hold it within a factor of 2 of the measured CPU peak).

    Attributes:
        activations: what autograd keeps for the backward pass, plus the transient gradients.
        style_pass: encoding the style image(s), without gradients.
        targets: the loss targets held: Gram matrices, covariances or statistics, and the content features.
        optimizer: the image, its gradient, the L-BFGS history or Adam moments, and the running average.
    """

    activations: int  # kept by autograd for the backward pass + transient gradients
    style_pass: int  # encoding the style image(s), without gradients
    targets: int  # Gram matrices / covariances / content features held as loss targets
    optimizer: int  # the image, its gradient, L-BFGS history or Adam moments, the running average

    @property
    def total(self) -> int:
        """The sum of the four parts, in bytes."""
        return self.activations + self.style_pass + self.targets + self.optimizer


def _layer_shapes(height: int, width: int, deepest: str) -> list[tuple[str, int, int, int]]:
    """``(name, C, h, w)`` of every encoder layer up to ``deepest``."""
    shapes, c, h, w = [], 3, height, width
    for name in LAYER_NAMES[: LAYER_NAMES.index(deepest) + 1]:
        if name.startswith("conv"):
            c = _CHANNELS[name]
        elif name.startswith("pool"):
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        shapes.append((name, c, h, w))
    return shapes


def _forward_backward_bytes(height: int, width: int, deepest: str, feature_bytes: int, pooling: str) -> int:
    shapes = _layer_shapes(height, width, deepest)
    saved = 3 * height * width * feature_bytes  # input of the 1x1 preprocessing conv
    widest = 3 * height * width
    prev_c = 3
    for name, c, h, w in shapes:
        n = c * h * w
        widest = max(widest, n)
        if name.startswith("conv"):
            saved += prev_c * (h + 2) * (w + 2) * feature_bytes  # the reflection-padded conv input
        elif name.startswith("relu"):
            saved += n * feature_bytes  # ReLU keeps its output
        elif pooling == "max":
            saved += n * 8  # int64 argmax indices
        prev_c = c
    # Backward holds the incoming gradient, the outgoing one and the padded gradient of the widest layer.
    return saved + 3 * widest * 4


def estimate_memory(
    height: int,
    width: int,
    *,
    style_sizes: list[tuple[int, int]],
    deepest: str = "relu5_1",
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    style_terms: int = 1,
    style_loss: str = "gram",
    optimizer: str = "lbfgs",
    history_size: int = 100,
    channels: int = 3,
    feature_bytes: int = 4,
    pooling: str = "max",
) -> MemoryEstimate:
    """Estimate the peak memory of optimising a ``height x width`` image (the largest pyramid scale).

    Arguments:
        style_sizes: ``(h, w)`` of each style image as encoded at this scale.
        deepest: the deepest encoder layer any loss uses.
        style_terms: number of style loss terms per layer (1, or the number of mask regions).
        channels: channels of the optimised variable (3, or 1 for luminance-only transfer).
        feature_bytes: 4 for float32 features, 2 under bf16 autocast.
    """
    activations = _forward_backward_bytes(height, width, deepest, feature_bytes, pooling)
    style_pass = 0
    for sh, sw in style_sizes:
        shapes = _layer_shapes(sh, sw, deepest)
        widest = max(c * h * w for _, c, h, w in shapes)
        kept = sum(c * h * w for name, c, h, w in shapes if name in style_layers)
        style_pass = max(style_pass, (2 * widest + kept) * 4)
    per_target = {"gram": 4, "mean_std": 0, "wasserstein": 24}[style_loss]
    targets = sum(style_terms * per_target * _CHANNELS["conv" + layer[4:]] ** 2 for layer in style_layers)
    pixels = channels * height * width * 4
    if optimizer == "lbfgs":
        state = 2 * history_size * pixels + 6 * pixels  # (s, y) pairs + grad, previous grad, direction
    else:
        state = 5 * pixels  # grad, two moments, update
    optimizer_bytes = state + 6 * 3 * height * width * 4  # image, average, content, guides, output
    return MemoryEstimate(activations, style_pass, targets, optimizer_bytes)


def largest_fitting_size(height: int, width: int, budget: int, estimate) -> tuple[int, int] | None:
    """The largest ``(h, w)`` with ``width / height`` kept whose ``estimate(h, w).total`` fits ``budget``.

    ``estimate`` maps ``(h, w)`` to a ``MemoryEstimate``. Returns ``None`` if not even a 16 px shorter side fits.
    """
    short = min(height, width)

    def scaled(s: int) -> tuple[int, int]:
        return max(1, round(height * s / short)), max(1, round(width * s / short))

    lo, hi = min(16, short), short
    if estimate(*scaled(lo)).total > budget:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate(*scaled(mid)).total <= budget:
            lo = mid
        else:
            hi = mid - 1
    return scaled(lo)


def plan_memory(
    opts: GatysOptions, height: int, width: int, style_sizes: list[tuple[int, int]], feature_bytes: int
) -> MemoryEstimate:
    """The memory estimate for optimising ``height x width`` with ``opts`` (see ``estimate_memory``)."""
    layers = list(opts.content_layers) + list(opts.style_layers)
    return estimate_memory(
        height,
        width,
        style_sizes=style_sizes,
        deepest=max(layers, key=LAYER_NAMES.index),
        style_layers=tuple(opts.style_layers),
        style_terms=len(style_sizes) if opts.masks or opts.mask is not None else 1,
        style_loss=opts.style_loss,
        optimizer=opts.optimizer,
        history_size=opts.history_size,
        channels=1 if opts.preserve_color == "luminance" else 3,
        feature_bytes=feature_bytes,
        pooling=opts.pooling,
    )


def working_size(
    opts: GatysOptions,
    size: tuple[int, int],
    style_sizes: Callable[[int, int], list[tuple[int, int]]],
    feature_bytes: int,
    device: torch.device,
) -> tuple[int, int]:
    """The size to optimise at: ``size`` when the memory estimate fits the budget, else (``on_oom="shrink"``)
    the largest size that does; ``InputError`` naming that size otherwise."""
    height, width = size
    budget = memory_budget(device, opts.max_memory)
    estimate = plan_memory(opts, height, width, style_sizes(height, width), feature_bytes)
    if budget is None or estimate.total <= budget:
        return size
    fits = largest_fitting_size(
        height, width, budget, lambda h, w: plan_memory(opts, h, w, style_sizes(h, w), feature_bytes)
    )
    hint = (
        f"the largest size that fits is about {min(fits)} px (content_size={min(fits)})"
        if fits
        else "not even a 16 px image fits"
    )
    if opts.on_oom == "error" or fits is None:
        raise InputError(
            f"content_size: optimising {width}x{height} needs about {estimate.total / 2**30:.2f} GiB on {device} "
            f"but {budget / 2**30:.2f} GiB is available; {hint}; or pass on_oom='shrink', a smaller "
            "history_size, optimizer='adam', or dtype='bfloat16'"
        )
    return fits
