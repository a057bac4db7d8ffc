"""Inference: the ``Stylizer`` (a model on a device with a style cached) and its exact tiling of huge images."""

from ._stylizer import Stylizer as Stylizer
from ._tiling import TileProgress as TileProgress

__all__ = ["Stylizer", "TileProgress"]
