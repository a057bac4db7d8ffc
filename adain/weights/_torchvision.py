"""torchvision's ImageNet VGG-19 as an encoder: a *different* encoder, for training new decoders only.

The released AdaIN decoders were trained against the normalised VGG and do not fit it: its features
live on another scale. Its first 1x1 conv does torchvision's input normalisation instead of Caffe's.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import torch
from torch import Tensor

from ..errors import CorruptWeightsError, InputError, WeightsNotFoundError, install_hint
from ..modeling._config import ModelConfig
from ..modeling._decoder import Decoder
from ..modeling._encoder import VGG_CONVS, VGGEncoder
from ._format import check_state_dict

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
"""torchvision's input normalisation for its ImageNet models (RGB in [0, 1])."""


def torchvision_vgg19_to_named(state: Mapping[str, Tensor], last_layer: str = "relu5_1") -> dict[str, Tensor]:
    """torchvision ``vgg19().state_dict()`` (``features.<i>.weight``) -> ``VGGEncoder`` keys, preprocessing included.

    The k-th conv of ``features`` becomes the k-th name of ``VGG_CONVS``; the classifier is dropped.
    The ``preprocess`` 1x1 conv maps RGB in [0, 1] to torchvision's normalisation
    ``(x - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB`` (weight ``diag(1/std)``, bias ``-mean/std``).
    """
    indices = sorted(int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight"))
    wanted = [name for name, _, _ in VGG_CONVS]
    wanted = wanted[: wanted.index("conv" + last_layer.removeprefix("relu")) + 1]
    if len(indices) < len(wanted):
        raise CorruptWeightsError(f"torchvision VGG state dict has {len(indices)} convs, {len(wanted)} needed")
    std, mean = torch.tensor(IMAGENET_STD_RGB), torch.tensor(IMAGENET_MEAN_RGB)
    out = {"preprocess.weight": torch.diag(1.0 / std).reshape(3, 3, 1, 1), "preprocess.bias": -mean / std}
    for name, index in zip(wanted, indices):
        out[f"{name}.weight"] = state[f"features.{index}.weight"].float()
        out[f"{name}.bias"] = state[f"features.{index}.bias"].float()
    return out


def encoder_from_torchvision(state: Mapping[str, Tensor] | None = None, *, last_layer: str = "relu5_1") -> VGGEncoder:
    """A ``VGGEncoder`` with torchvision's VGG-19 weights, for training new decoders.

    Arguments:
        state: a torchvision ``vgg19`` state dict; None downloads ``VGG19_Weights.IMAGENET1K_V1`` through
            torchvision's cache (``torch.hub``; hash checked, ``weights_only`` load).
        last_layer: deepest layer kept.
    Returns:
        An encoder taking RGB in [0, 1] like every encoder of this package. Departures from torchvision:
        reflection padding (AdaIN's choice; torchvision pads with zeros) and ``ceil_mode`` pooling, so
        taps differ from torchvision's near the borders and, for odd sizes, in shape. The released AdaIN
        decoders do not work with it: its features live on another scale.
    """
    if state is None:
        state = _download_vgg19()
    encoder = VGGEncoder(last_layer)
    named = torchvision_vgg19_to_named(state, last_layer)
    check_state_dict(named, encoder.state_dict(), "torchvision VGG-19")
    encoder.load_state_dict(named, strict=True)
    return encoder.eval()


def _download_vgg19() -> Mapping[str, Tensor]:
    """``VGG19_Weights.IMAGENET1K_V1`` through torchvision's cache; a failed download is one line saying
    how to pass the file instead."""
    try:  # optional: only this converter needs torchvision (pip install 'adain[torchvision]')
        from torchvision.models import VGG19_Weights
    except ImportError:
        raise InputError(
            "encoder_from_torchvision without a state dict needs torchvision: "
            f"{install_hint('torchvision')}, or pass the vgg19 weights file"
        ) from None
    weights = VGG19_Weights.IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        file = PurePosixPath(urlsplit(weights.url).path).name
        raise WeightsNotFoundError(
            f"could not download torchvision's VGG-19 weights from {weights.url} ({reason}); offline, fetch that "
            f"file elsewhere and pass it: `adain convert torchvision OUT --state-dict {file}`, or in Python "
            f"AdaINModel.from_torchvision(torch.load('{file}', weights_only=True))"
        ) from None


def model_from_torchvision(
    state: Mapping[str, Tensor] | None = None, *, seed: int = 0
) -> tuple[ModelConfig, dict[str, Tensor]]:
    """``(config, state)``: torchvision's VGG-19 encoder and an *untrained* decoder (seeded), to train."""
    encoder = encoder_from_torchvision(state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        VGGEncoder("relu5_1")  # drawn first, so the decoder is the one AdaINModel() builds under this seed
        decoder = Decoder()
    config = ModelConfig(description="torchvision ImageNet VGG-19 encoder; decoder NOT trained")
    named = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    return config, named | {f"decoder.{k}": v for k, v in decoder.state_dict().items()}
