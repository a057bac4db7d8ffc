"""Running the pyramid of scales: the image is optimised smallest scale first, each scale starting from the
previous one's result, and brought back to the working size (and the content's colours) at the end.

``frozen`` holds the encoder's weights and cuDNN's determinism for the run; ``run_scales`` runs it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from ..modeling._color import luma, replace_luma
from ._inputs import read_init, region_guides
from ._optimize import Callback, Forecast, make_progress, optimize_scale
from ._options import GatysOptions
from ._pyramid import carry_up, pyramid_sizes, resize
from ._targets import measure_pool_scale, scale_objective, style_targets


@contextlib.contextmanager
def frozen(encoder: nn.Module, device: torch.device) -> Iterator[None]:
    """Deterministic cuDNN for the run (same seed -> same pixels) and no weight gradients; restored after."""
    flags = [p.requires_grad for p in encoder.parameters()]
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        encoder.requires_grad_(False)
        if device.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        yield
    finally:
        for p, flag in zip(encoder.parameters(), flags):
            p.requires_grad_(flag)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def run_scales(
    encoder: nn.Module,
    content_t: Tensor,
    styles: list[Tensor],
    opts: GatysOptions,
    device: torch.device,
    autocast: torch.dtype | None,
    size: tuple[int, int],
    style_sizes: Callable[[int, int], list[tuple[int, int]]],
    callback: Callback | None,
) -> Tensor:
    """Optimise the image scale by scale, smallest first (one scale without ``pyramid``), at ``size``.

    Arguments:
        content_t, styles: ``(3, H, W)`` float32 images in [0, 1] on the CPU.
        size: ``(height, width)`` to optimise at (the content's, or smaller when memory is short).
        style_sizes: ``(h, w)`` of a scale -> ``(h, w)`` of each style image encoded at that scale.

    Returns:
        The ``(1, 3, height, width)`` result on ``device``, unclamped.
    """
    start = time.perf_counter()
    luminance = opts.preserve_color == "luminance"
    content_rgb = content_t[None].to(device)
    content = luma(content_rgb) if luminance else content_rgb
    targets = style_targets(opts, styles, content, region_guides(opts, size))
    sizes = pyramid_sizes(*size, min_size=opts.min_size) if opts.pyramid else [size]
    lr, decay = opts.resolved_lr(), opts.resolved_decay()
    gen = torch.Generator().manual_seed(opts.seed)

    counts = [opts.resolved_coarse_iterations()] * (len(sizes) - 1) + [opts.iterations]
    forecast = Forecast(sizes, counts)
    carried: tuple[Tensor, Tensor] | None = None  # the previous scale's result and its content
    adam_state, pool_scale = None, None
    for index, hw in enumerate(sizes):
        steps = counts[index]
        content_s = resize(content, hw)
        if pool_scale is None and opts.pooling == "avg":
            pool_scale = measure_pool_scale(encoder, content_s.expand(-1, 3, -1, -1), autocast)
        objective = scale_objective(encoder, opts, content_s, targets, hw, style_sizes(*hw), pool_scale, autocast)
        if carried is None:
            x = _initial(opts, content_s, hw, gen, luminance).to(device)
        else:
            x = carry_up(*carried, content_s)
        result = optimize_scale(
            objective,
            x,
            optimizer=opts.optimizer,
            steps=steps,
            lr=lr,
            history_size=opts.history_size,
            average_decay=decay,
            adam_state=adam_state,
            report=_reporter(callback, index, len(sizes), hw, steps, start, device, forecast),
        )
        carried, adam_state = (result.image, content_s), result.adam_state
        if result.stopped:
            break
    assert carried is not None, "sizes holds at least the final size"
    x = resize(carried[0], size)
    return replace_luma(resize(content_rgb, size), x) if luminance else x


def _initial(
    opts: GatysOptions, content_s: Tensor, hw: tuple[int, int], gen: torch.Generator, luminance: bool
) -> Tensor:
    """The start of the first scale, ``(1, C, h, w)``: the content, seeded noise, or the ``init`` image."""
    channels = 1 if luminance else 3
    if isinstance(opts.init, str) and opts.init == "content":
        return content_s.clone()
    if isinstance(opts.init, str) and opts.init == "noise":
        # Drawn on the CPU from a seeded generator, so the start is identical on every device.
        return torch.rand(1, channels, *hw, generator=gen)
    image = read_init(opts, content_s.device)
    if luminance:
        image = luma(image)
    return resize(image, hw)


def _reporter(
    callback: Callback | None,
    index: int,
    scales: int,
    hw: tuple[int, int],
    steps: int,
    start: float,
    device: torch.device,
    forecast: Forecast,
) -> Callable[[int, dict[str, Tensor]], bool]:
    """``optimize_scale``'s ``report`` at scale ``index``: a ``GatysProgress`` for ``callback``, whose true
    return stops the run."""

    def report(step: int, losses: dict[str, Tensor]) -> bool:
        if callback is None:
            return False  # without a callback the losses are never read: the host never waits per step
        return bool(callback(make_progress(index, scales, hw, step, steps, losses, start, device, forecast)))

    return report
