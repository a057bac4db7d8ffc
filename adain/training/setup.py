"""Weights going into and out of a training run: the frozen encoder, the initial decoder, the exported model."""

from __future__ import annotations

from pathlib import Path

from ..model import AdaINModel, load_pretrained
from ..modeling.config import ModelConfig
from ..modeling.decoder import Decoder
from ..modeling.encoder import VGGEncoder
from ..weights.legacy import read_legacy_decoder, read_legacy_vgg

__all__ = ["load_encoder", "load_decoder", "export_final"]

_LEGACY_SUFFIXES = (".pth", ".pt")


def load_encoder(spec: str) -> VGGEncoder:
    """The VGG encoder from a package directory, a legacy ``vgg_normalised.pth`` (fingerprint checked, as
    ``adain convert`` does), or a named weight."""
    path = Path(spec)
    if path.is_dir():
        return AdaINModel.from_pretrained(path).encoder
    if path.suffix in _LEGACY_SUFFIXES:
        encoder = VGGEncoder("relu5_1")
        encoder.load_state_dict(read_legacy_vgg(path), strict=True)
        return encoder
    return load_pretrained(spec).encoder


def load_decoder(spec: str) -> Decoder:
    """Decoder weights to fine-tune from: a package directory, a legacy ``decoder.pth``, or a named weight."""
    path = Path(spec)
    if path.is_dir():
        return AdaINModel.from_pretrained(path).decoder
    if path.suffix in _LEGACY_SUFFIXES:
        decoder = Decoder()
        decoder.load_state_dict(read_legacy_decoder(path), strict=True)
        return decoder
    return load_pretrained(spec).decoder


def export_final(encoder: VGGEncoder, decoder: Decoder, final: Path, *, description: str = "") -> Path:
    """Write the trained model in the package format (``AdaINModel.save_pretrained``) to ``final``."""
    model = AdaINModel(ModelConfig(encoder_last_layer=encoder.last_layer, description=description))
    model.encoder.load_state_dict(encoder.state_dict())
    model.decoder.load_state_dict(decoder.state_dict())
    return model.save_pretrained(final)
