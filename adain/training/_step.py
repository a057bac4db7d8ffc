"""The AdaIN training objective and one optimisation step, as pure functions of tensors and modules.

Loss (Huang & Belongie 2017, sec. 6; numerics of the reference port, see docs/design.md):
``t = AdaIN(f(c), f(s))``, ``g = decoder(t)``;
content = MSE(relu4_1(g), t); style = sum over relu1_1..relu4_1 of w_i * (MSE(mu(g_i), mu(s_i)) +
MSE(sigma(g_i), sigma(s_i))), all with mean reduction; total = content_weight * content +
style_weight * style. Feature statistics are taken in float32 even under bf16 autocast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..modeling._encoder import CONTENT_LAYER, STYLE_LAYERS
from ..modeling._ops import EPS, adain, calc_mean_std

_M = TypeVar("_M", bound=nn.Module)


@dataclass(frozen=True)
class LossWeights:
    """``content``, ``style``: the two terms' weights; ``style_layers``: per-layer factors for relu1_1..relu4_1."""

    content: float = 1.0
    style: float = 10.0
    style_layers: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class StepResult:
    """Scalars of one step (Python floats); ``applied`` is False when a non-finite loss skipped the update."""

    loss: float
    content: float
    style: float
    lr: float
    applied: bool


def learning_rate(base_lr: float, decay: float, step: int) -> float:
    """The reference's inverse-time decay: ``base_lr / (1 + decay * step)`` with ``step`` counted from 0."""
    return base_lr / (1.0 + decay * step)


def adain_losses(
    encoder: Callable[..., Any],
    decoder: Callable[..., Any],
    content: Tensor,
    style: Tensor,
    weights: LossWeights,
    *,
    autocast_dtype: torch.dtype | None = None,
    eps: float = EPS,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(total, content, style)`` losses (float32 scalars) for a batch.

    Arguments:
        encoder: a frozen ``VGGEncoder`` (eval mode, no parameter gradients needed).
        decoder: the decoder being trained (may be wrapped in DDP or compiled).
        content, style: ``(B, 3, H, W)`` float in [0, 1], H and W multiples of 8.
        autocast_dtype: run the convolutions under autocast in this dtype (e.g. ``torch.bfloat16``).
    """
    device_type = content.device.type
    amp = torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    with amp:
        with torch.no_grad():
            # Content and style go through the encoder in one batch: one pass instead of two.
            both = encoder(torch.cat([content, style]), STYLE_LAYERS)
            f_c = both[CONTENT_LAYER][: content.shape[0]]
            style_feats = [both[name][content.shape[0] :] for name in STYLE_LAYERS]
            t = adain(f_c, style_feats[-1], eps)
        g = decoder(t)
        g_feats = encoder(g, STYLE_LAYERS)
    loss_c = F.mse_loss(g_feats[CONTENT_LAYER].float(), t.float())
    loss_s = torch.zeros((), device=content.device, dtype=torch.float32)
    for name, w, s_feat in zip(STYLE_LAYERS, weights.style_layers, style_feats):
        g_mean, g_std = calc_mean_std(g_feats[name], eps)
        s_mean, s_std = calc_mean_std(s_feat, eps)
        loss_s = loss_s + w * (F.mse_loss(g_mean, s_mean) + F.mse_loss(g_std, s_std))
    return weights.content * loss_c + weights.style * loss_s, loss_c, loss_s


def train_step(
    encoder: Callable[..., Any],
    decoder: Callable[..., Any],
    optimizer: torch.optim.Optimizer,
    content: Tensor,
    style: Tensor,
    weights: LossWeights,
    lr: float,
    *,
    autocast_dtype: torch.dtype | None = None,
    average=None,
) -> StepResult:
    """One Adam step on ``decoder`` at learning rate ``lr``; a non-finite loss skips the update.

    ``average(values: Tensor) -> Tensor`` lets data-parallel callers average the three loss values over
    the ranks before deciding: the reported losses are then those of the global batch, and a step
    skipped on one rank is skipped on all (otherwise the gradient all-reduce would hang).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    total, loss_c, loss_s = adain_losses(encoder, decoder, content, style, weights, autocast_dtype=autocast_dtype)
    values = torch.stack([total.detach(), loss_c.detach(), loss_s.detach()])
    if average is not None:
        values = average(values)
    # The backward pass is queued before the host waits for the values (the one wait of the step), so the
    # device never idles while the host decides; a non-finite loss's gradients are simply never applied
    # (zero_grad drops them). Every rank runs it, so DDP's gradient all-reduce stays in step.
    total.backward()
    applied = bool(torch.isfinite(values).all())
    if applied:
        optimizer.step()
    loss, content_loss, style_loss = values.tolist()
    return StepResult(loss, content_loss, style_loss, lr, applied)


def frozen(encoder: _M) -> _M:
    """Put ``encoder`` in eval mode with gradients off for its parameters (they are never trained)."""
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def make_optimizer(params: Iterable[Tensor], lr: float) -> torch.optim.Optimizer:
    """Adam with the reference's betas (0.9, 0.999)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
