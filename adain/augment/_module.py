"""``StyleAugment``: style augmentation of whole batches, as an ``nn.Module`` on the batch's device."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._runtime import check_max_memory, resolve_dtype
from ..inference import Engine
from ..inference._checks import check_model
from ..model import AdaINModel
from . import _core as core


class StyleAugment(nn.Module):
    """Random style transfer on batches, each sample with its own style and strength: a training augmentation
    that runs on the batch's device (typically the GPU, after the loader).

    Each sample is stylized with probability ``p``, with an ``alpha`` drawn uniformly in the range and a style
    drawn from ``styles``; the others come back untouched (the same values, not through the decoder). Draws
    come from ``generator`` on the CPU, in an order that depends on neither the device nor the outcomes: the
    same seed gives the same choices everywhere. In eval mode (``.eval()``) the module is the identity, so it
    can sit at the front of a network. Guide: [augmentation](../guides/augmentation.md).

    Arguments:
        model: the [``AdaINModel``][adain.AdaINModel]; not registered as a submodule (its frozen weights stay out
            of the ``state_dict``, the optimiser and DDP), prepared once per device and dtype.
        styles: a [``StyleBank``][adain.inference.StyleBank] of the same encoder (a style drawn uniformly per
            sample), a [``StyleGaussian``][adain.augment.StyleGaussian] fitted to one (a new style per sample), or
            ``"batch"`` (each stylized sample takes the style of another sample of the batch: a random cyclic
            permutation, never itself; a batch of one is left as it is).
        p: probability in [0, 1] that a sample is stylized. Default 0.5, alpha in [0.2, 1]: Siedel et al.'s 2025
            setting.
        alpha: style strength: a number in [0, 1], or a ``(low, high)`` range drawn uniformly per sample.
        size: shorter side, in pixels, at which samples are stylized (aspect kept), then resized back to their
            size; ``None``: at their own size. Below 224 a ``UserWarning`` says the results degrade.
        dtype: compute dtype of the convolutions (``"float32"``, ``"bfloat16"``, ``"float16"``, a
            ``torch.dtype``); ``None``: bfloat16 on a CUDA device that supports it, float32 on the CPU.
        max_memory: bytes one call may use for activations (the batch goes through in passes that fit);
            ``None``: 80% of the device's free memory.
        generator: a CPU ``torch.Generator`` for the draws; ``None``: torch's global generator.

    Examples:
        ```python
        bank = StyleBank.load("styles.safetensors", model=model)
        augment = StyleAugment(model, bank, p=0.5, alpha=(0.2, 1.0), generator=torch.Generator().manual_seed(0))
        images = augment(images.cuda(non_blocking=True))   # (N, C, H, W), same shape, dtype and device
        ```
    """

    def __init__(
        self,
        model: AdaINModel,
        styles: Any,
        *,
        p: float = 0.5,
        alpha: float | tuple[float, float] = (0.2, 1.0),
        size: int | None = None,
        dtype: str | torch.dtype | None = None,
        max_memory: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        model = check_model(model)
        self.options = core.check_options(styles, p, alpha, size, batch_allowed=True)
        core.check_bank_model(styles, model)
        resolve_dtype(dtype, torch.device("cpu"))  # refuses a bad name now; resolved per device at each call
        self.max_memory = check_max_memory(max_memory)
        self.dtype = dtype
        self.generator = generator
        # A tuple hides the model from nn.Module's registration (see ``model`` above).
        self._model: tuple[AdaINModel] = (model,)
        self._engines: dict[torch.device, Engine] = {}

    def engine(self, device: torch.device) -> Engine:
        """The [``Engine``][adain.inference.Engine] that stylizes batches on ``device`` (made at its first use)."""
        if device not in self._engines:
            dtype = resolve_dtype(self.dtype, device)
            self._engines[device] = Engine(self._model[0], device, dtype, max_memory=self.max_memory)
        return self._engines[device]

    def forward(self, images: Tensor) -> Tensor:
        """Stylize a random subset of a batch.

        Arguments:
            images: ``(N, C, H, W)``, C = 1 (grey: stylized as grey RGB, its luma returned) or 3, float in [0, 1]
                (any floating dtype; values outside are clamped) or uint8 0-255, on any device. Place the module
                before normalisation.

        Returns:
            A new tensor of ``images``' shape, dtype and device (``images`` itself when no sample was drawn, or
            in eval mode); the stylized samples are float results rounded to nearest for uint8.

        Raises:
            InputError: not such a batch.
        """
        core.check_batch(images, "images")
        if not self.training or images.shape[0] == 0:
            return images
        device = images.device
        return core.augment(self.engine(device), images, self.options, self.generator)

    def extra_repr(self) -> str:
        o = self.options
        styles = o.styles if isinstance(o.styles, str) else type(o.styles).__name__
        return f"styles={styles}, p={o.p}, alpha={o.alpha}, size={o.size}, dtype={self.dtype}"
