"""The Fréchet distance between two sets of feature vectors (Heusel et al. 2017), the FID's formula.

``d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` with sample means and unbiased sample
covariances (``np.cov``'s default, as pytorch-fid and art-fid use). The trace of the matrix square root is
computed in float64 as the sum of the square roots of the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)``, a symmetric
positive semi-definite matrix with the same spectrum as ``S_a S_b``: no complex intermediate, no scipy.
"""

from __future__ import annotations

import torch
from torch import Tensor


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """``(N, D)`` features -> mean ``(D,)`` and unbiased covariance ``(D, D)``, both float64 on the CPU.

    Raises:
        ValueError: fewer than two rows (a covariance needs two samples).
    """
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"need (N, D) features with N >= 2 to estimate a covariance, got {tuple(features.shape)}")
    x = features.detach().to("cpu", torch.float64)
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> float:
    """The Fréchet distance between two Gaussians ``N(mean_a, cov_a)`` and ``N(mean_b, cov_b)``.

    Arguments:
        mean_a: ``(D,)`` mean of the first set.
        cov_a: ``(D, D)`` covariance of the first set (``feature_statistics``).
        mean_b: ``(D,)`` mean of the second set.
        cov_b: ``(D, D)`` covariance of the second set.

    Returns:
        The squared distance as a Python float (>= 0 up to rounding); the FID when the features are Inception's.
    """
    mean_a, mean_b = mean_a.double().cpu(), mean_b.double().cpu()
    cov_a, cov_b = cov_a.double().cpu(), cov_b.double().cpu()
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    diff = mean_a - mean_b
    return float(diff @ diff + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt)


def fid_from_features(features_a: Tensor, features_b: Tensor) -> float:
    """``frechet_distance`` of the statistics of two ``(N, D)`` feature sets (N may differ between them)."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))
