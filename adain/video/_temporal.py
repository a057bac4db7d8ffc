"""Temporal smoothing of the content statistics AdaIN normalises with, for steadier video.

AdaIN gives each frame's relu4_1 features the style's channel means and standard deviations, using the
frame's own content statistics. When those jump from one frame to the next (a flashing light, something
crossing a corner of the picture) the whole stylized frame shifts in colour and contrast: flicker.
``StatsSmoother`` replaces them by an exponential moving average over the frames, restarted at scene
cuts. Cuts are found cheaply from a thumbnail (shorter side 32 px): consecutive frames whose colour
histograms (16 bins per channel) differ by more than ``cut_threshold`` (half the L1 distance, averaged
over the channels: 0 = same colours, 1 = no colour in common). Histograms barely change when the camera
or things in the picture move (a pan measures 0.01-0.07 on photos), and change a lot at cuts (0.4-0.9
between unrelated photos); a flashing light over 8% of the picture measures about 0.09.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError

THUMBNAIL_SIDE = 32
BINS = 16


def check_smoothing(smoothing, cut_threshold) -> tuple[float, float]:
    """``smoothing`` in [0, 1) (0 = off) and ``cut_threshold`` in (0, 1] as floats."""
    ok = isinstance(smoothing, (int, float)) and not isinstance(smoothing, bool) and 0 <= smoothing < 1
    if not ok:
        raise InputError(
            f"smoothing: expected a decay in [0, 1) (0 = off, 0.5 = half the last frame's "
            f"statistics), got {smoothing!r}"
        )
    ok = isinstance(cut_threshold, (int, float)) and not isinstance(cut_threshold, bool) and 0 < cut_threshold <= 1
    if not ok:
        raise InputError(f"cut_threshold: expected a number in (0, 1], got {cut_threshold!r}")
    return float(smoothing), float(cut_threshold)


class StatsSmoother:
    """``(mean, std) -> (mean, std)`` for ``Stylizer(..., content_stats=)``: the moving average of the
    statistics of the frames so far, ``decay * previous + (1 - decay) * this frame``, restarted at cuts.

    Call ``observe(frames)`` with each batch before stylizing it; the statistics then arrive in the same
    order, in one or several calls (the stylizer may split a batch).
    """

    def __init__(self, decay: float, cut_threshold: float) -> None:
        self.decay, self.cut_threshold = decay, cut_threshold
        self.cuts = 0  # scene cuts found so far (the first frame not counted)
        self._pending: deque[bool] = deque()
        self._colors: Tensor | None = None  # histograms of the last frame seen
        self._stats: tuple[Tensor, Tensor] | None = None  # the smoothed (mean, std) of the last frame

    @torch.no_grad()
    def observe(self, frames: Tensor) -> None:
        """``(N, 3, H, W)`` frames (uint8, or float in [0, 1]) about to be stylized, in order."""
        colors = _histograms(frames)
        previous = colors[:1] if self._colors is None else self._colors
        change = 0.5 * (colors - torch.cat([previous, colors[:-1]])).abs().sum(-1).mean(-1)
        flags = (change > self.cut_threshold).tolist()
        if self._colors is None:
            flags[0] = True
        self.cuts += sum(flags) - (self._colors is None)
        self._pending.extend(flags)
        self._colors = colors[-1:]

    def __call__(self, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
        means, stds = [], []
        for m, s in zip(mean, std):
            cut = self._pending.popleft() if self._pending else self._stats is None
            if cut or self._stats is None:
                self._stats = m, s
            else:
                last_mean, last_std = self._stats
                self._stats = (
                    self.decay * last_mean + (1 - self.decay) * m,
                    self.decay * last_std + (1 - self.decay) * s,
                )
            means.append(self._stats[0])
            stds.append(self._stats[1])
        return torch.stack(means), torch.stack(stds)


def _histograms(frames: Tensor) -> Tensor:
    """``(N, 3, H, W)`` -> ``(N, 3, BINS)`` colour histograms (fractions of the pixels) of a small thumbnail."""
    x = frames.float() / 255 if frames.dtype == torch.uint8 else frames.float()
    h, w = x.shape[-2:]
    scale = min(1.0, THUMBNAIL_SIDE / min(h, w))
    thumbs = F.interpolate(x, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    bins = (thumbs * BINS).long().clamp_(0, BINS - 1)
    return F.one_hot(bins, BINS).float().mean(dim=(2, 3))
