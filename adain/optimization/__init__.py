"""The optimisation backend (Gatys, Ecker & Bethge 2016): ``gatys`` optimises the pixels of an image so that its
VGG-19 features match the content's and the style's feature statistics.

``gatys`` returns a ``PIL.Image`` and ``gatys_tensor`` the tensor; every option, with its default, is a field
of ``GatysOptions``; the progress callback receives a ``GatysProgress``; the memory a run needs is estimated
(``MemoryEstimate``) before anything is allocated. Guide: [Gatys](../guides/gatys.md).

The package is named ``optimization`` rather than ``gatys`` so that ``adain.gatys`` (the function)
does not shadow a subpackage of the same name.
"""

# Internal modules: _options (every knob and its default), _losses (content, Gram, mean/std, Wasserstein-2, TV,
# gradient normalisation), _pyramid (scales), _memory (the estimate made before allocating, the working size),
# _optimize (objective and loop of one scale), _inputs (options and images checked, then read), _targets (what
# each scale's objective measures), _scales (the run over the pyramid), _api (the entry points and the order of a
# run). Colour handling is adain.modeling._color, shared with the AdaIN backend.

from .._arguments import moved_modules
from ._api import gatys as gatys
from ._api import gatys_tensor as gatys_tensor
from ._memory import MemoryEstimate as MemoryEstimate
from ._optimize import GatysProgress as GatysProgress
from ._options import GatysOptions as GatysOptions

__all__ = ["gatys", "gatys_tensor", "GatysOptions", "GatysProgress", "MemoryEstimate"]

# The modules of the first layout, internal now: reachable for a while, with a DeprecationWarning.
__getattr__ = moved_modules(
    __name__,
    {name: f"adain.optimization._{name}" for name in ("api", "losses", "memory", "optimize", "options", "pyramid")},
)
