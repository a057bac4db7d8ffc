"""Quality metrics of style transfer and the evaluation protocols of the papers. Guide:
[evaluation](../guides/evaluation.md).

Pure torch: the AdaIN paper's content and style losses and the Gram loss (with a VGG encoder you pass), SSIM,
the Fréchet distance; LPIPS, the FID/ArtFID Inception-v3 and CFSD's VGG-19, written here and loading their
published weights, which are downloaded once into the weights cache and checked (``fetch_weights``).
"""

from ._cfsd import CFSD as CFSD
from ._fetch import METRIC_WEIGHTS as METRIC_WEIGHTS
from ._fetch import MetricWeights as MetricWeights
from ._fetch import fetch_weights as fetch_weights
from ._frechet import feature_statistics as feature_statistics
from ._frechet import frechet_distance as frechet_distance
from ._inception import InceptionV3 as InceptionV3
from ._losses import content_loss as content_loss
from ._losses import gram_loss as gram_loss
from ._losses import gram_matrix as gram_matrix
from ._losses import style_loss as style_loss
from ._lpips import LPIPS as LPIPS
from ._protocol import PROTOCOLS as PROTOCOLS
from ._protocol import Pair as Pair
from ._protocol import Protocol as Protocol
from ._protocol import protocol_pairs as protocol_pairs
from ._score import Scorer as Scorer
from ._score import load_networks as load_networks
from ._ssim import ssim as ssim

__all__ = [
    "CFSD",
    "LPIPS",
    "METRIC_WEIGHTS",
    "PROTOCOLS",
    "InceptionV3",
    "MetricWeights",
    "Pair",
    "Protocol",
    "Scorer",
    "content_loss",
    "feature_statistics",
    "fetch_weights",
    "frechet_distance",
    "gram_loss",
    "gram_matrix",
    "load_networks",
    "protocol_pairs",
    "ssim",
    "style_loss",
]
