"""Loss terms of the optimisation backend: small ``nn.Module``s whose targets are buffers.

Every module takes a feature map ``(1, C, h, w)`` (any float dtype; bf16 from autocast is fine) and
returns a float32 scalar. Statistics (Gram matrices, means, covariances) are always computed in
float32, and the Wasserstein matrix algebra in float64, because bf16 sums over hundreds of thousands
of positions lose too much precision.

Spatial guides: a style term may carry a ``weight`` map ``(1, 1, h, w)`` in [0, 1] (a mask resized to
its layer); its statistics are then weighted averages over that region only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..modeling._ops import sqrtm_psd, weighted_sum


class _NormalizeGrad(torch.autograd.Function):
    """Identity forward; backward replaces the gradient ``g`` by ``strength * g / (|g|_1 + 1e-8)``."""

    @staticmethod
    def forward(ctx, x: Tensor, strength: float) -> Tensor:
        ctx.strength = float(strength)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        g = grad.float()
        return (g * (ctx.strength / (g.abs().sum() + 1e-8))).to(grad.dtype), None


def normalize_grad(x: Tensor, strength: float = 1.0) -> Tensor:
    """Return ``x`` unchanged, but L1-normalise (then scale by ``strength``) the gradient flowing back into it.

    This is the Lua original's ``-normalize_gradients``: each loss term's gradient with respect to its
    layer's features has L1 norm ``strength``, whatever the raw loss scale, so the weights balance
    gradient mass directly. It acts in backward only -- not a rescaled scalar loss, whose gradient
    would still carry the loss's own magnitude from step to step.
    """
    return _NormalizeGrad.apply(x, strength)


def _flat(feat: Tensor) -> Tensor:
    if feat.dim() != 4 or feat.shape[0] != 1:
        raise ValueError(f"expected (1, C, h, w) features, got shape {tuple(feat.shape)}")
    return feat.reshape(feat.shape[1], -1).float()


def _flat_weight(weight: Tensor | None, feat: Tensor) -> Tensor | None:
    if weight is None:
        return None
    if weight.shape[-2:] != feat.shape[-2:]:
        raise ValueError(f"weight map {tuple(weight.shape)} does not match features {tuple(feat.shape)}")
    return weight.reshape(-1).float()


def gram(feat: Tensor, weight: Tensor | None = None) -> Tensor:
    """``(1, C, h, w)`` -> ``(C, C)`` float32 Gram matrix ``F W F^T / sum(W)`` (``W`` = 1 without a weight map).

    Dividing by the (weighted) number of positions makes targets comparable across image sizes.
    """
    f = _flat(feat)
    w = _flat_weight(weight, feat)
    if w is None:
        return f @ f.T / f.shape[1]
    return (f * w) @ f.T / w.sum().clamp_min(1e-8)


def mean_cov(feat: Tensor, weight: Tensor | None = None, eps: float = 0.0) -> tuple[Tensor, Tensor]:
    """``(1, C, h, w)`` -> per-channel mean ``(C,)`` and biased covariance ``(C, C)`` (+ ``eps * I``), float32."""
    f = _flat(feat)
    w = _flat_weight(weight, feat)
    if w is None:
        mean = f.mean(dim=1)
        centred = f - mean[:, None]
        cov = centred @ centred.T / f.shape[1]
    else:
        total = w.sum().clamp_min(1e-8)
        mean = (f * w).sum(dim=1) / total
        centred = f - mean[:, None]
        cov = (centred * w) @ centred.T / total
    if eps:
        cov = cov + eps * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    return mean, cov


def mean_std(feat: Tensor, weight: Tensor | None = None, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """``(1, C, h, w)`` -> per-channel mean and standard deviation ``(C,)`` (biased variance + ``eps``), float32."""
    f = _flat(feat)
    w = _flat_weight(weight, feat)
    if w is None:
        var, mean = torch.var_mean(f, dim=1, correction=0)
    else:
        total = w.sum().clamp_min(1e-8)
        mean = (f * w).sum(dim=1) / total
        var = ((f - mean[:, None]) ** 2 * w).sum(dim=1) / total
    return mean, (var + eps).sqrt()


class ContentLoss(nn.Module):
    """Mean squared error to the content features ``target`` ``(1, C, h, w)``."""

    target: Tensor  # buffers, declared for the type checker

    def __init__(self, target: Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach().float())

    def forward(self, feat: Tensor) -> Tensor:
        return (feat.float() - self.target).pow(2).mean()

    def energy(self) -> float:
        """The loss of an all-zero feature map, ``mean(target^2)``: the term's natural scale (see ``relative``)."""
        return float(self.target.pow(2).mean())


class _StyleLoss(nn.Module):
    """Common base: ``from_features`` blends the statistics of several style feature maps."""

    weight: Tensor | None

    def __init__(self, weight: Tensor | None) -> None:
        super().__init__()
        self.register_buffer("weight", None if weight is None else weight.detach().float())

    @staticmethod
    def statistics(feat: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def energy(self) -> float:
        """The loss of all-zero features: the squared size of the target statistics (see ``relative``)."""
        raise NotImplementedError

    @classmethod
    def from_features(cls, feats: list[Tensor], blend: list[float], weight: Tensor | None = None) -> _StyleLoss:
        """Build the loss from style features ``feats`` (each ``(1, C, h_k, w_k)``), statistics blended with
        ``blend`` (non-negative, summing to 1), applied to the output region ``weight`` (or everywhere)."""
        stats = [cls.statistics(f) for f in feats]
        blended = [weighted_sum(blend, [s[i] for s in stats]) for i in range(len(stats[0]))]
        build: Callable[..., _StyleLoss] = cls  # a subclass: its statistics positionally, then weight=
        return build(*blended, weight=weight)


class GramLoss(_StyleLoss):
    """The paper's style loss: mean squared difference of Gram matrices (see ``gram``)."""

    target: Tensor

    def __init__(self, target: Tensor, *, weight: Tensor | None = None) -> None:
        super().__init__(weight)
        self.register_buffer("target", target.detach().float())

    @staticmethod
    def statistics(feat: Tensor) -> tuple[Tensor]:
        return (gram(feat),)

    def forward(self, feat: Tensor) -> Tensor:
        return (gram(feat, self.weight) - self.target).pow(2).mean()

    def energy(self) -> float:
        return float(self.target.pow(2).mean())


class MeanStdLoss(_StyleLoss):
    """Squared differences of per-channel means and standard deviations (the AdaIN statistics), averaged."""

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Tensor, std: Tensor, *, weight: Tensor | None = None) -> None:
        super().__init__(weight)
        self.register_buffer("mean", mean.detach().float())
        self.register_buffer("std", std.detach().float())

    @staticmethod
    def statistics(feat: Tensor) -> tuple[Tensor, Tensor]:
        return mean_std(feat)

    def forward(self, feat: Tensor) -> Tensor:
        m, s = mean_std(feat, self.weight)
        return (m - self.mean).pow(2).mean() + (s - self.std).pow(2).mean()

    def energy(self) -> float:
        return float(self.mean.pow(2).mean() + self.std.pow(2).mean())


class WassersteinLoss(_StyleLoss):
    """Squared 2-Wasserstein distance between Gaussians fitted to the features, divided by ``C``.

    ``W2^2 = |mu - mu_t|^2 + tr(S) + tr(S_t) - 2 tr sqrt(S_t^1/2 S S_t^1/2)``. The target's square root is
    computed once (float64 ``eigh``). The trace of the square root needs only the *eigenvalues* of the
    symmetric product, and ``eigvalsh``'s gradient (``v_i v_i^T``) stays finite when eigenvalues repeat,
    unlike differentiating through eigenvectors; eigenvalues are clamped at ``eps`` so ``sqrt`` never sees
    zero. ``eps * I`` is added to both covariances (dead ReLU channels make them singular).
    """

    mean: Tensor
    cov_trace: Tensor
    cov_sqrt: Tensor

    def __init__(self, mean: Tensor, cov: Tensor, *, weight: Tensor | None = None, eps: float = 1e-5) -> None:
        super().__init__(weight)
        self.eps = eps
        eye = torch.eye(cov.shape[0], dtype=torch.float64, device=cov.device)
        cov = cov.detach().double() + eps * eye
        self.register_buffer("mean", mean.detach().float())
        self.register_buffer("cov_trace", torch.trace(cov))
        self.register_buffer("cov_sqrt", sqrtm_psd(cov))

    @staticmethod
    def statistics(feat: Tensor) -> tuple[Tensor, Tensor]:
        return mean_cov(feat)

    def forward(self, feat: Tensor) -> Tensor:
        m, cov = mean_cov(feat, self.weight, eps=self.eps)
        cov = cov.double()
        product = self.cov_sqrt @ cov @ self.cov_sqrt
        product = (product + product.T) / 2
        root_trace = torch.linalg.eigvalsh(product).clamp_min(self.eps**2).sqrt().sum()
        dist = (m - self.mean).pow(2).sum().double() + torch.trace(cov) + self.cov_trace - 2 * root_trace
        return (dist / cov.shape[0]).float()

    def energy(self) -> float:
        return float((self.mean.double().pow(2).sum() + self.cov_trace) / self.mean.numel())


class TVLoss(nn.Module):
    """Total variation: mean squared difference between vertically and horizontally adjacent pixels (0 along
    a side of one pixel, which has no neighbours)."""

    def forward(self, image: Tensor) -> Tensor:
        dy = image[..., 1:, :] - image[..., :-1, :]
        dx = image[..., :, 1:] - image[..., :, :-1]
        return sum((d.pow(2).mean() for d in (dy, dx) if d.numel()), image.new_zeros(()))


def relative(weight: float, loss: ContentLoss | _StyleLoss) -> float:
    """``weight`` divided by ``loss.energy()``: the term then measures the error relative to its target's size.

    Why: the weight of a term should not depend on the network's activation scale. The normalised VGG's
    layers have mean activation about 1, the raw Caffe VGG's grow with depth (relu4_1's Gram entries are
    about 10^4 times relu1_1's on photographs), so fixed weights tuned on one network are wrong on the
    other. A layer whose features are all multiplied by ``c`` has its loss and its energy multiplied by
    the same power of ``c``, so the relative term does not change. A target of zero energy keeps ``weight``.
    """
    energy = loss.energy()
    return weight / energy if energy > 0 else weight


STYLE_LOSSES: dict[str, type[_StyleLoss]] = {"gram": GramLoss, "mean_std": MeanStdLoss, "wasserstein": WassersteinLoss}
