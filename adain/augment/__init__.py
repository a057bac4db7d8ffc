"""Style transfer as a training augmentation: ``RandomStyle`` for single images in a ``torchvision.transforms.v2``
pipeline (DataLoader workers), ``StyleAugment`` for batches on the GPU, and ``StyleGaussian``, new styles drawn
from a Gaussian fitted to a style bank. Guide: [augmentation](../guides/augmentation.md)."""

from ._core import BATCH as BATCH
from ._core import MIN_WORKING_SIDE as MIN_WORKING_SIDE
from ._gaussian import StyleGaussian as StyleGaussian
from ._module import StyleAugment as StyleAugment
from ._transform import RandomStyle as RandomStyle

__all__ = ["BATCH", "MIN_WORKING_SIDE", "RandomStyle", "StyleAugment", "StyleGaussian"]
