"""New styles drawn from a Gaussian fitted to a style bank's relu4_1 statistics (``StyleGaussian``).

A bank of N styles only ever gives N styles; sampling a distribution fitted to them gives styles between and
around them, as Jackson et al.'s ``styleaug`` samples its style embeddings from a multivariate normal fitted
to Painter by Numbers. The vector modelled is ``[mean, log std]`` (1024 numbers) of each style, with a full
covariance: see ``StyleGaussian`` for why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._arguments import check_number
from ..errors import InputError

DEFAULT_SHRINKAGE = 0.1
"""Weight of the covariance's diagonal in the shrunk estimate (``StyleGaussian.fit``): a bank of N styles has a
sample covariance of rank at most N - 1, singular below 1025 styles; shrinking towards the diagonal makes it
positive definite while keeping most of the correlations of a bank of a few hundred styles."""


@dataclass(frozen=True, eq=False)
class StyleGaussian:
    """A Gaussian over style statistics fitted to a bank: a source of new styles for ``adain.augment``.

    Parametrisation: each style is the vector ``z = [mean, log std]`` of its relu4_1 channel statistics
    (``2 * 512`` numbers), and ``z ~ N(mu, Sigma)`` with a **full** covariance. Why:

    - ``log std`` rather than ``std``: a standard deviation is a positive scale; its logarithm is unbounded
      and much closer to normal, and ``exp`` maps every draw back to a valid (positive) std.
    - full rather than diagonal: the channels of relu4_1 fire together (a brush texture raises many of them
      at once, and a channel's mean and std move together), so a diagonal Gaussian would draw each channel
      independently and produce incoherent statistics no painting has. Sampling stays cheap: one
      ``(n, 1024) x (1024, 1024)`` product with the Cholesky factor.
    - shrunk towards the diagonal (``shrinkage``): a bank of N styles gives a sample covariance of rank at most
      N - 1, singular for any bank under 1025 styles.

    Build it with ``StyleGaussian.fit(bank)``.

    Attributes:
        mean: ``(1024,)`` float32 ``mu``: the mean of ``[mean, log std]`` over the bank's styles.
        scale_tril: ``(1024, 1024)`` float32 lower-triangular Cholesky factor of ``Sigma``.
        model_id: the bank's ``model_id``: the encoder the statistics belong to.
    """

    mean: Tensor
    scale_tril: Tensor
    model_id: str

    @classmethod
    def fit(cls, bank: Any, *, shrinkage: float = DEFAULT_SHRINKAGE) -> StyleGaussian:
        """Fit the Gaussian to a bank's statistics (in float64, stored as float32).

        Arguments:
            bank: a [``StyleBank``][adain.inference.StyleBank] of at least 2 styles.
            shrinkage: in [0, 1]: ``Sigma = (1 - shrinkage) * S + shrinkage * diag(S)`` (``S`` the unbiased
                sample covariance), plus a jitter of 1e-6 of the mean variance on the diagonal so that channels
                constant over the bank (dead ones) stay valid. 0: the sample covariance (needs more styles than
                1024); 1: a diagonal Gaussian.

        Returns:
            The fitted ``StyleGaussian``, on the CPU.

        Raises:
            InputError: fewer than 2 styles, or ``shrinkage`` outside [0, 1].
        """
        shrinkage = check_number(shrinkage, "shrinkage", minimum=0.0)
        if shrinkage > 1:
            raise InputError(f"shrinkage: must be a number in [0, 1] (1 = diagonal covariance), got {shrinkage!r}")
        if len(bank) < 2:
            raise InputError(f"StyleGaussian.fit: a Gaussian needs at least 2 styles, the bank has {len(bank)}")
        z = torch.cat([bank.mean.double(), bank.std.double().log()], dim=1)  # (N, 1024)
        mu = z.mean(0)
        centred = z - mu
        sample = centred.T @ centred / (z.shape[0] - 1)
        diagonal = torch.diag(torch.diagonal(sample))
        sigma = (1 - shrinkage) * sample + shrinkage * diagonal
        jitter = 1e-6 * float(torch.diagonal(sample).mean()) + 1e-12
        sigma = sigma + jitter * torch.eye(sigma.shape[0], dtype=sigma.dtype)
        return cls(mu.float(), torch.linalg.cholesky(sigma).float(), str(bank.model_id))

    @property
    def channels(self) -> int:
        """Feature channels of the statistics (512 for relu4_1)."""
        return self.mean.shape[0] // 2

    def stats(self, normal: Tensor, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """Styles from standard normal draws: ``normal`` ``(n, 1024)`` float32 -> ``(mean, std)``, each
        ``(n, 512, 1, 1)`` float32 on ``device`` (default the CPU). Computed on the CPU, so a seed gives the
        same styles on every device."""
        z = self.mean + normal.float().cpu() @ self.scale_tril.T
        c = self.channels
        mean, std = z[:, :c], z[:, c:].exp()
        return (mean.reshape(-1, c, 1, 1).to(device), std.reshape(-1, c, 1, 1).to(device))

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> tuple[Tensor, Tensor]:
        """``n`` new styles: ``(mean, std)``, each ``(n, 512, 1, 1)`` float32 on ``device`` (default the CPU),
        drawn with ``generator`` (a CPU ``torch.Generator``; ``None``: torch's global one)."""
        return self.stats(torch.randn(n, self.mean.shape[0], generator=generator), device)
