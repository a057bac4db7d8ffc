"""Named pretrained weights and loading from local directories or the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import WeightsNotFoundError
from .model import AdaINModel

__all__ = ["load_pretrained", "list_pretrained"]


def list_pretrained() -> list[str]:
    """Names accepted by ``load_pretrained``."""
    return []


def load_pretrained(name: str | os.PathLike = "default", **kwargs) -> AdaINModel:
    """Load a model from a local directory in the package format (Hub and named weights: to come)."""
    path = Path(name)
    if path.is_dir():
        return AdaINModel.from_pretrained(path)
    raise WeightsNotFoundError(
        f"no weights named {str(name)!r}: pass a directory written by AdaINModel.save_pretrained, or build a "
        "model with adain.AdaINModel.from_original('vgg_normalised.pth', 'decoder.pth')"
    )
