"""``ModelConfig``: what is needed, beside the tensors, to rebuild a model."""

from __future__ import annotations

from dataclasses import dataclass

from ._ops import EPS

ARCHITECTURE = "adain-vgg19"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelConfig:
    """The architecture's free parameters, stored as ``config.json`` beside the weights.

    Attributes:
        architecture: always ``"adain-vgg19"``.
        encoder_last_layer: deepest encoder layer stored (``"relu5_1"`` serves both backends;
            ``"relu4_1"`` is enough for AdaIN alone).
        eps: added to variances in AdaIN (a finite number > 0); default 1e-5, the reference's.
        format_version: version of the on-disk format, currently 1 (a newer one is refused with a message
            saying to upgrade the package).
        description: free text carried into the model card.
    """

    architecture: str = ARCHITECTURE
    encoder_last_layer: str = "relu5_1"
    eps: float = EPS
    format_version: int = FORMAT_VERSION
    description: str = ""
