"""Weights going into and out of a training run: the encoder and initial decoder, the exported model."""

from __future__ import annotations

from pathlib import Path

from .decoder import Decoder
from .encoder import VGGEncoder
from .errors import InputError

__all__ = ["load_encoder", "load_decoder", "export_final", "push_to_hub"]


def load_encoder(spec: str) -> VGGEncoder:
    """The VGG encoder from a package directory, a legacy ``vgg_normalised.pth``, or a named weight."""
    from .model import AdaINModel
    from .pretrained import load_pretrained

    path = Path(spec)
    if path.is_dir():
        return AdaINModel.from_pretrained(path).encoder
    if path.suffix in (".pth", ".pt"):
        from .legacy import legacy_vgg_to_named, read_legacy_state_dict

        encoder = VGGEncoder("relu5_1")
        encoder.load_state_dict(legacy_vgg_to_named(read_legacy_state_dict(path, "VGG"), str(path)), strict=True)
        return encoder
    return load_pretrained(spec).encoder


def load_decoder(spec: str) -> Decoder:
    """Decoder weights to fine-tune from: a package directory, a legacy ``decoder.pth``, or a named weight."""
    from .model import AdaINModel
    from .pretrained import load_pretrained

    path = Path(spec)
    if path.is_dir():
        return AdaINModel.from_pretrained(path).decoder
    if path.suffix in (".pth", ".pt"):
        from .legacy import legacy_decoder_to_named, read_legacy_state_dict

        decoder = Decoder()
        decoder.load_state_dict(legacy_decoder_to_named(read_legacy_state_dict(path, "decoder"), str(path)), strict=True)
        return decoder
    return load_pretrained(spec).decoder


def export_final(encoder: VGGEncoder, decoder: Decoder, final: Path, *, description: str = "") -> Path:
    """Write the trained model in the package format (``AdaINModel.save_pretrained``) to ``final``."""
    from .model import AdaINModel, ModelConfig

    model = AdaINModel(ModelConfig(encoder_last_layer=encoder.last_layer, description=description))
    model.encoder.load_state_dict(encoder.state_dict())
    model.decoder.load_state_dict(decoder.state_dict())
    return model.save_pretrained(final)


def push_to_hub(final: Path, repo: str) -> None:
    """Upload ``final`` to the Hugging Face Hub model repo ``repo`` (created if needed; needs a login token)."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise InputError("--push-to-hub needs huggingface_hub (pip install huggingface_hub)") from None
    api = HfApi()
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(folder_path=str(final), repo_id=repo, commit_message="adain train: final decoder")
