"""The objective and the optimisation loop of one pyramid scale.

``Objective`` turns an image into weighted loss terms through the encoder; ``optimize_scale`` runs
L-BFGS or Adam on it for a number of steps, keeps a bias-corrected running average of the iterates,
and reports progress through a callback. Nothing here reads files or prints.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
from torch import Tensor, nn

from ..modeling import _padding as padding
from ._losses import TVLoss, normalize_grad
from ._pyramid import resize


@dataclass(frozen=True)
class GatysProgress:
    """What the ``callback`` of [``adain.gatys``][adain.gatys] receives after every optimisation step (frozen).

    Attributes:
        scale: 0-based index of the pyramid scale being optimised, smallest first.
        scales: how many pyramid scales the run has (1 without ``pyramid``).
        size: ``(height, width)`` in pixels being optimised at this scale.
        step: 1-based step within this scale.
        steps: the number of steps at this scale (``iterations`` at the last, ``coarse_iterations`` before).
        losses: weighted loss terms of the iterate just evaluated, as Python floats: ``"content"``,
            ``"style"``, ``"tv"`` and ``"total"`` (the objective, i.e. their sum).
        elapsed: seconds since the run started (targets and earlier scales included).
        peak_memory: peak bytes so far (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the peak resident set
            size of the process).
        remaining: seconds the rest of the run is expected to take, or ``None`` before it can be told (after
            the run's first step). Measured from this run's own step times, each later scale's steps
            assumed to cost in proportion to its pixel count; refined at every step.
    """

    scale: int
    scales: int
    size: tuple[int, int]
    step: int
    steps: int
    losses: Mapping[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    peak_memory: int = 0
    remaining: float | None = None


# What ``adain.gatys`` calls after every step; a true return stops the run.
Callback = Callable[[GatysProgress], "bool | None"]


def peak_memory(device: torch.device) -> int:
    """Peak bytes in use so far on ``device`` (CUDA allocator peak, or the process's peak RSS on the CPU)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)
    except (ImportError, OSError):
        return 0


class Objective(nn.Module):
    """Weighted content, style and TV losses of an image, evaluated through the encoder.

    Arguments:
        encoder: a ``VGGEncoder`` (frozen).
        content_terms: ``[(layer, loss_module, weight)]``.
        style_terms: ``[(layer, loss_module, weight)]`` (several per layer with masks).
        tv_weight: weight of ``TVLoss`` on the image.
        normalize: L1-normalise each term's gradient w.r.t. its features (``normalize_grad``) and scale it
            by the term's weight, instead of back-propagating the raw weighted loss.
        pooling, pool_scale: passed to the encoder.
        autocast_dtype: ``torch.bfloat16`` to run the encoder forward under autocast, else ``None``.
    """

    def __init__(
        self,
        encoder,
        content_terms,
        style_terms,
        *,
        tv_weight: float,
        normalize: bool,
        pooling: str,
        pool_scale: Mapping[str, float] | None,
        autocast_dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.content_layers = [layer for layer, _, _ in content_terms]
        self.style_layers = [layer for layer, _, _ in style_terms]
        self.content_losses = nn.ModuleList([loss for _, loss, _ in content_terms])
        self.style_losses = nn.ModuleList([loss for _, loss, _ in style_terms])
        self.content_weights = [float(w) for _, _, w in content_terms]
        self.style_weights = [float(w) for _, _, w in style_terms]
        self.tv = TVLoss()
        self.tv_weight = float(tv_weight)
        self.normalize = normalize
        self.pooling = pooling
        self.pool_scale = pool_scale
        self.autocast_dtype = autocast_dtype
        self.layers = tuple(dict.fromkeys(self.content_layers + self.style_layers))

    def features(self, image: Tensor) -> dict[str, Tensor]:
        """``(1, 1 or 3, h, w)`` image in [0, 1] -> encoder taps (one channel is read as grey).

        An image too small for the deepest layer is reflection-padded at the bottom and right first, as
        ``stylize`` pads (gradients flow back through the padding to the image's own pixels).
        """
        if image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        image = padding.pad_for_layers(image, self.layers)
        ctx: contextlib.AbstractContextManager[None]
        if self.autocast_dtype is None:
            ctx = contextlib.nullcontext()
        else:
            ctx = torch.autocast(image.device.type, dtype=self.autocast_dtype)
        with ctx:
            return self.encoder(image, self.layers, pooling=self.pooling, pool_scale=self.pool_scale)

    def _term(self, feat: Tensor, loss: nn.Module, weight: float) -> Tensor:
        if weight == 0:
            return feat.new_zeros((), dtype=torch.float32)
        if self.normalize:
            feat = normalize_grad(feat, weight)
        return weight * loss(feat)

    def forward(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Returns ``(total, {"content", "style", "tv"})``: float32 scalars, weights applied."""
        feats = self.features(image)
        zero = image.new_zeros((), dtype=torch.float32)
        content = sum(
            (
                self._term(feats[layer], loss, w)
                for layer, loss, w in zip(self.content_layers, self.content_losses, self.content_weights)
            ),
            zero,
        )
        style = sum(
            (
                self._term(feats[layer], loss, w)
                for layer, loss, w in zip(self.style_layers, self.style_losses, self.style_weights)
            ),
            zero,
        )
        tv = self._term(image, self.tv, self.tv_weight) if self.tv_weight else zero
        return content + style + tv, {"content": content, "style": style, "tv": tv}


@dataclass
class ScaleResult:
    """The outcome of one scale: the output (average or last iterate), Adam state to carry, stop flag."""

    image: Tensor
    adam_state: dict | None
    stopped: bool


class _Average:
    """Bias-corrected exponential moving average of the iterates (Adam-style debiasing)."""

    def __init__(self, like: Tensor, decay: float) -> None:
        self.decay, self.count = decay, 0
        self.value = torch.zeros_like(like)

    def update(self, x: Tensor) -> None:
        self.count += 1
        self.value.mul_(self.decay).add_(x, alpha=1 - self.decay)

    def get(self) -> Tensor:
        return self.value / (1 - self.decay**self.count)


def _carry_adam_state(state: dict | None, size: tuple[int, int]) -> dict | None:
    """Resize Adam's moments to the next scale's size (second moment kept non-negative)."""
    if not state:
        return None
    return {
        "step": state["step"],
        "exp_avg": resize(state["exp_avg"], size),
        "exp_avg_sq": resize(state["exp_avg_sq"], size).clamp_min(0),
    }


def optimize_scale(
    objective: Objective,
    init: Tensor,
    *,
    optimizer: str,
    steps: int,
    lr: float,
    history_size: int,
    average_decay: float | None,
    adam_state: dict | None,
    report: Callable[[int, dict[str, Tensor]], bool],
) -> ScaleResult:
    """Optimise ``init`` (``(1, C, h, w)`` float32) against ``objective`` for ``steps`` steps.

    L-BFGS is created once for the scale and stepped one iteration at a time (``max_iter=1``), so its
    history persists across steps while progress and averaging happen after each; tolerances are 0 so
    it never stops early. Adam starts from ``adam_state`` (moments of the previous scale, resized) and
    clamps the image to [0, 1] after each step. ``report(step, losses)`` returning True stops the run;
    ``losses`` are 0-dim tensors on the device, so that nothing waits for the device unless the report
    reads them (``make_progress``).
    """
    x = init.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    opt: torch.optim.Optimizer
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(
            [x],
            lr=lr,
            max_iter=1,
            history_size=history_size,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn=None,
        )
    else:
        opt = torch.optim.Adam([x], lr=lr)
        carried = _carry_adam_state(adam_state, (x.shape[-2], x.shape[-1]))
        if carried is not None:
            opt.state[x] = carried
    average = _Average(x.detach(), average_decay) if average_decay is not None else None
    last: dict[str, Tensor] = {}

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=False)
        total, terms = objective(x)
        total.backward()
        last.update({k: v.detach() for k, v in terms.items()}, total=total.detach())
        return total

    stopped = False
    for step in range(1, steps + 1):
        opt.step(closure)
        if optimizer == "adam":
            with torch.no_grad():
                x.clamp_(0, 1)
        if average is not None:
            average.update(x.detach())
        if report(step, last):
            stopped = True
            break
    image = average.get() if average is not None else x.detach()
    state = None
    if optimizer == "adam" and x in opt.state:
        state = {k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in opt.state[x].items()}
    return ScaleResult(image.detach().clone(), state, stopped)


def make_progress(
    scale: int,
    scales: int,
    size: tuple[int, int],
    step: int,
    steps: int,
    losses: Mapping[str, Tensor],
    start: float,
    device: torch.device,
    forecast: Forecast | None = None,
) -> GatysProgress:
    """The ``GatysProgress`` of a step; its losses are read from the device in one transfer (one wait), so
    the step has finished when its time is taken for ``forecast``."""
    values = torch.stack([v.float() for v in losses.values()]).tolist() if losses else []
    now = time.perf_counter()
    return GatysProgress(
        scale,
        scales,
        size,
        step,
        steps,
        MappingProxyType(dict(zip(losses, values))),
        now - start,
        peak_memory(device),
        forecast.remaining(scale, step, now) if forecast is not None else None,
    )


class Forecast:
    """The seconds a run has left, from its own step times so far.

    Arguments:
        sizes: ``(h, w)`` of each scale, in the order run.
        steps: the number of steps of each scale.

    The first step of each scale is not timed (it builds the optimiser and warms caches); a scale's later
    steps each cost the same, and a step at another scale costs in proportion to the pixels. Until two steps
    of the current scale are timed, the rate per pixel of the previous scale is used (none at the first
    scale: ``remaining`` is ``None`` after the first step of a run).
    """

    def __init__(self, sizes: list[tuple[int, int]], steps: list[int]) -> None:
        self.pixels = [h * w for h, w in sizes]
        self.steps = steps
        self.first: dict[int, float] = {}  # scale -> when its first step ended
        self.per_pixel: float | None = None  # seconds per step per pixel, last measured

    def remaining(self, scale: int, step: int, now: float) -> float | None:
        """Seconds left after ``step`` (1-based) of ``scale`` ended at ``now`` (``time.perf_counter()``)."""
        if step == 1:
            self.first[scale] = now
        elif scale in self.first:
            self.per_pixel = (now - self.first[scale]) / (step - 1) / self.pixels[scale]
        if self.per_pixel is None:
            return None
        left = self.pixels[scale] * (self.steps[scale] - step)
        left += sum(p * n for p, n in zip(self.pixels[scale + 1 :], self.steps[scale + 1 :]))
        return self.per_pixel * left
