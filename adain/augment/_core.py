"""What the single-image transform and the batch module share: their options, the random draws of a batch,
and its stylization through an ``Engine``.

Every random number is drawn on the CPU from one generator, for every sample, whether or not it ends up
stylized, in a fixed order (apply?, alpha, style): the stream a seed gives does not depend on the device,
on the outcomes or on the batch's contents, so a seeded run is reproducible wherever it runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._arguments import check_alpha, check_number, check_size
from .._images import resized_size, to_uint8
from ..errors import InputError
from ..inference import Engine, Style, StyleBank
from ..inference._bank import encoder_id
from ..modeling._color import luma
from ._gaussian import StyleGaussian

BATCH = "batch"
"""``styles="batch"``: each stylized sample takes the style of another sample of the same batch."""

MIN_WORKING_SIDE = 224
"""Below this shorter side (28 relu4_1 cells) AdaIN's statistics come from few cells and its decoder's
output is blurred; a smaller working size is allowed, with a warning."""

_ONE_STYLE = Style(weights=(1.0,), stats=None)  # the statistics come per call, one style per sample


@dataclass(frozen=True)
class Options:
    """The checked options: ``p`` in [0, 1], ``alpha`` a ``(low, high)`` range in [0, 1], ``size`` (shorter side
    of the working resolution, ``None``: each image's own), ``styles`` (a bank, a ``StyleGaussian`` or
    ``BATCH``)."""

    p: float
    alpha: tuple[float, float]
    size: int | None
    styles: Any


def check_options(styles: Any, p: Any, alpha: Any, size: Any, *, batch_allowed: bool) -> Options:
    """The options of ``RandomStyle`` / ``StyleAugment``; ``InputError`` naming the argument otherwise."""
    p, alpha, size = check_params(p, alpha, size)
    return Options(p, alpha, size, check_styles(styles, batch_allowed))


def check_params(p: Any, alpha: Any, size: Any) -> tuple[float, tuple[float, float], int | None]:
    """``p`` in [0, 1]; ``alpha`` a number or a ``(low, high)`` range in [0, 1]; ``size`` a positive int or None."""
    p = check_number(p, "p", minimum=0.0)
    if p > 1:
        raise InputError(f"p: the probability of stylizing a sample must be in [0, 1], got {p!r}")
    if isinstance(alpha, Sequence) and not isinstance(alpha, str):
        if len(alpha) != 2:
            raise InputError(f"alpha: expected a number or a (low, high) pair in [0, 1], got {alpha!r}")
        low, high = check_alpha(alpha[0]), check_alpha(alpha[1])
        if low > high:
            raise InputError(f"alpha: the range's low end must not exceed its high end, got {alpha!r}")
    else:
        low = high = check_alpha(alpha)
    return p, (low, high), check_size(size, "size")


def check_styles(styles: Any, batch_allowed: bool) -> Any:
    """A style source: a non-empty ``StyleBank``, a ``StyleGaussian``, or ``BATCH`` where ``batch_allowed``."""
    if isinstance(styles, str) and styles == BATCH:
        if not batch_allowed:
            raise InputError("styles: 'batch' needs a batch; use adain.augment.StyleAugment on batches")
        return styles
    if isinstance(styles, StyleGaussian):
        return styles
    if not isinstance(styles, StyleBank):
        also = ', or "batch"' if batch_allowed else ""
        raise InputError(f"styles: expected a StyleBank or a StyleGaussian{also}, got {type(styles).__name__}")
    if len(styles) == 0:
        raise InputError("styles: the style bank is empty")
    return styles


def check_bank_model(styles: Any, model: Any) -> None:
    """A bank (or a Gaussian fitted to one) must hold statistics of ``model``'s encoder: ``InputError``."""
    if isinstance(styles, str):
        return
    ours = encoder_id(model)
    if styles.model_id != ours:
        raise InputError(
            f"styles: the {type(styles).__name__} holds statistics of encoder {styles.model_id}, not of this "
            f"model's ({ours}); rebuild the bank with this model"
        )


@dataclass(frozen=True)
class Draws:
    """One batch's random choices, all on the CPU: ``chosen`` ``(N,)`` bool (stylize this sample?), ``alpha``
    ``(N,)`` float32, and ``styles``: ``(N,)`` int64 bank indices or partner indices in the batch, or
    ``(N, 1024)`` standard normal draws for a ``StyleGaussian``."""

    chosen: Tensor
    alpha: Tensor
    styles: Tensor


def cyclic_partners(n: int, generator: torch.Generator | None) -> Tensor:
    """A uniformly random ``n``-cycle (Sattolo's algorithm) as ``(n,)`` int64: sample ``i`` takes its style
    from sample ``out[i]``, never from itself when ``n >= 2``."""
    order = list(range(n))
    draws = torch.rand(n, generator=generator).tolist()
    for i in range(n - 1, 0, -1):
        j = min(int(draws[i] * i), i - 1)  # 0 <= j < i; min() guards float rounding up to i
        order[i], order[j] = order[j], order[i]
    return torch.tensor(order, dtype=torch.int64)


def draw(n: int, options: Options, generator: torch.Generator | None) -> Draws:
    """The random choices for ``n`` samples, from ``generator`` (CPU; ``None``: torch's global generator)."""
    chosen = torch.rand(n, generator=generator) < options.p
    low, high = options.alpha
    alpha = low + (high - low) * torch.rand(n, generator=generator)
    styles = options.styles
    if isinstance(styles, str):  # BATCH
        picks = cyclic_partners(n, generator)
    elif isinstance(styles, StyleGaussian):
        picks = torch.randn(n, styles.mean.shape[0], generator=generator)
    else:
        picks = torch.randint(len(styles), (n,), generator=generator)
    return Draws(chosen, alpha.float(), picks)


def to_working(x: Tensor, size: int | None) -> Tensor:
    """``(N, C, H, W)`` uint8 or float in [0, 1], C in 1, 3 -> ``(N, 3, h, w)`` float32 in [0, 1] at the working
    size (shorter side ``size``, aspect kept; bilinear, antialiased when shrinking)."""
    out = x.float() / 255 if x.dtype == torch.uint8 else x.float().clamp(0, 1)
    if out.shape[1] == 1:
        out = out.expand(-1, 3, -1, -1)
    h, w = out.shape[-2:]
    if size is not None and min(h, w) != size:
        out = F.interpolate(out, size=resized_size(h, w, size), mode="bilinear", antialias=True).clamp_(0, 1)
    return out.contiguous()


def from_working(out: Tensor, like: Tensor) -> Tensor:
    """Stylized ``(n, 3, h, w)`` float32 in [0, 1] back to ``like``'s size, channels (grey: the luma) and dtype
    (uint8 rounded to nearest)."""
    h, w = like.shape[-2:]
    if out.shape[-2:] != (h, w):
        out = F.interpolate(out, size=(h, w), mode="bilinear", antialias=True).clamp_(0, 1)
    if like.shape[1] == 1:
        out = luma(out)
    return to_uint8(out) if like.dtype == torch.uint8 else out.to(like.dtype)


def check_batch(x: Any, what: str) -> None:
    """A batch the augmentation takes: a floating or uint8 ``(N, C, H, W)`` tensor, C in 1, 3."""
    if not isinstance(x, Tensor):
        raise InputError(f"{what}: expected a tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"{what}: expected (N, C, H, W) with C = 1 or 3, got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise InputError(f"{what}: expected float in [0, 1] or uint8, got dtype {x.dtype}")


def warn_if_small(h: int, w: int, size: int | None) -> None:
    """The warning of a working resolution below ``MIN_WORKING_SIDE``."""
    side = min(h, w) if size is None else size
    if side < MIN_WORKING_SIDE:
        warnings.warn(
            f"adain.augment: stylizing at a shorter side of {side} px (below {MIN_WORKING_SIDE}, AdaIN's results "
            f"are blurred and their statistics noisy); pass size={MIN_WORKING_SIDE} or more to stylize at that "
            "size and resize back",
            UserWarning,
            stacklevel=6,  # the caller of StyleAugment(...) or RandomStyle(...): both are 6 frames up
        )


def style_stats(engine: Engine, options: Options, picks: Tensor, work: Tensor) -> tuple[Tensor, Tensor]:
    """The styles of the stylized samples: ``(mean, std)``, each ``(k, 512, 1, 1)`` float32 on the engine's
    device, for ``picks`` (``Draws.styles`` of those samples); ``work`` is the whole batch at the working size
    (the styles of ``BATCH``)."""
    styles = options.styles
    if isinstance(styles, StyleGaussian):
        return styles.stats(picks, engine.device)
    if not isinstance(styles, str):
        return styles.stats(picks, device=engine.device)
    unique, where = torch.unique(picks, return_inverse=True)
    sources = work[unique.to(work.device)]
    step = engine.frames_per_batch(sources.shape[-2], sources.shape[-1], what="styles")
    parts = [engine.feature_stats(sources[i : i + step].to(engine.device)) for i in range(0, len(sources), step)]
    mean, std = torch.cat([m for m, _ in parts]), torch.cat([s for _, s in parts])
    where = where.to(engine.device)
    return mean[where], std[where]


def augment(engine: Engine, x: Tensor, options: Options, generator: torch.Generator | None) -> Tensor:
    """Stylize a random subset of a checked batch ``x`` (``check_batch``), each sample with its own style and
    alpha; the rest are returned untouched. Returns a tensor of ``x``'s shape, dtype and device (``x`` itself
    when no sample is chosen)."""
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    draws = draw(n, options, generator)
    index = draws.chosen.nonzero()[:, 0]
    if index.numel() == 0:
        return x
    warn_if_small(h, w, options.size)
    batch_source = isinstance(options.styles, str)
    work = to_working(x if batch_source else x[index.to(x.device)], options.size)
    stats = style_stats(engine, options, draws.styles[index], work)
    if batch_source:  # every sample could be a style; only the chosen ones are stylized
        work = work[index.to(work.device)]
    alpha = draws.alpha[index].to(engine.device)
    out = torch.empty(work.shape, dtype=torch.float32, device=x.device)
    step = engine.frames_per_batch(work.shape[-2], work.shape[-1])
    with torch.inference_mode():
        for i in range(0, len(work), step):
            part = slice(i, i + step)
            frames = work[part].to(engine.device)
            rendered = engine.render(frames, _ONE_STYLE, alpha[part], stats=[(stats[0][part], stats[1][part])])
            out[part] = rendered.clamp_(0, 1).to(x.device)
    result = x.clone()
    result[index.to(x.device)] = from_working(out, x)
    return result
