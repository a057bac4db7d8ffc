"""Inference: the tensor-level ``Engine`` (a prepared model on a device, in a dtype, within a memory budget) and
the immutable ``Style`` it makes; the ``Stylizer`` (an engine with a style set, for images of every kind); the
exact tiling of images too large for the budget, and its ``TileProgress``; the ``StyleBank`` of many styles'
statistics, encoded once. Guides:
[Stylize and Stylizer](../guides/stylize.md), [huge images](../guides/tiling.md)."""

from ._bank import StyleBank as StyleBank
from ._bank import encoder_id as encoder_id
from ._engine import Engine as Engine
from ._stylizer import Stylizer as Stylizer
from ._tiling import TileProgress as TileProgress
from ._transfer import Style as Style

__all__ = ["Engine", "Style", "StyleBank", "Stylizer", "TileProgress", "encoder_id"]
