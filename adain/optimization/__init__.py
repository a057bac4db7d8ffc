"""The optimisation backend (Gatys, Ecker & Bethge 2016): ``adain.gatys``.

Modules: ``options`` (every knob and its default), ``losses`` (content, Gram, mean/std, Wasserstein-2,
TV, gradient normalisation), ``pyramid`` (scales), ``memory`` (the estimate made before allocating),
``optimize`` (objective and loop), ``api`` (inputs, devices, scales). Colour handling is ``adain.color``,
shared with the AdaIN backend.
The package is named ``optimization`` rather than ``gatys`` so that ``adain.gatys`` (the function)
does not shadow a subpackage of the same name.
"""

from .api import gatys as gatys
from .api import gatys_tensor as gatys_tensor
from .memory import MemoryEstimate as MemoryEstimate
from .optimize import GatysProgress as GatysProgress
from .options import GatysOptions as GatysOptions

__all__ = ["gatys", "gatys_tensor", "GatysOptions", "GatysProgress", "MemoryEstimate"]
