"""``RandomStyle``: style augmentation of single images, a picklable transform for DataLoader workers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .._runtime import check_max_memory, resolve_device, resolve_dtype
from ..errors import InputError
from ..inference import Engine, StyleBank
from ..model import load_pretrained
from . import _core as core


def _tv_image_type() -> type | None:
    """``torchvision.tv_tensors.Image`` when torchvision is already imported (an input can only be one then)."""
    module = sys.modules.get("torchvision.tv_tensors")
    return getattr(module, "Image", None)


class RandomStyle:
    """Random style transfer of one image: a transform for a ``torchvision.transforms.v2`` pipeline, run in the
    DataLoader's workers.

    With probability ``p`` the image is stylized with a style drawn from ``styles`` and an ``alpha`` drawn
    uniformly in the range; otherwise it is returned as it is (the same object). Draws use torch's global
    generator, as torchvision's random transforms do, which the DataLoader seeds per worker (from its own
    ``generator``), so a seeded loader gives the same images run after run. The transform pickles its
    *sources* (the weights' name or folder, the bank or its file), never a model: each worker loads the model
    once, at its first image (or call ``load()`` first in the main process: forked workers then inherit it).
    Guide: [augmentation](../guides/augmentation.md).

    Arguments:
        styles: a [``StyleBank``][adain.inference.StyleBank] (a style drawn uniformly per image), the path of
            one saved with ``StyleBank.save`` (loaded with the model, which it must match), or a
            [``StyleGaussian``][adain.augment.StyleGaussian] fitted to a bank (a new style per image).
        weights: what [``load_pretrained``][adain.load_pretrained] loads: a name of ``adain.list_pretrained()``,
            a folder written by ``save_pretrained``, or a Hub repo id.
        p: probability in [0, 1] that an image is stylized. Default 0.5, alpha in [0.2, 1]: Siedel et al.'s 2025
            setting.
        alpha: style strength: a number in [0, 1], or a ``(low, high)`` range drawn uniformly per image.
        size: shorter side, in pixels, at which images are stylized (aspect kept), then resized back to their
            size; ``None``: at their own size. Below 224 a ``UserWarning`` says the results degrade.
        device: where workers compute; default the CPU (CUDA cannot be used from forked workers).
        dtype: compute dtype of the convolutions; default float32 (bfloat16 is emulated, and slow, on most CPUs).
        max_memory: bytes one call may use for activations; ``None``: 80% of the free memory.

    Examples:
        ```python
        from torchvision.transforms import v2
        transform = v2.Compose([v2.RandomResizedCrop(224), RandomStyle("styles.safetensors"), v2.ToDtype(...)])
        loader = DataLoader(ImageFolder(root, transform=transform), batch_size=64, num_workers=8)
        ```
    """

    def __init__(
        self,
        styles: Any,
        *,
        weights: str | os.PathLike = "default",
        p: float = 0.5,
        alpha: float | tuple[float, float] = (0.2, 1.0),
        size: int | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        max_memory: int | None = None,
    ) -> None:
        if isinstance(styles, (str, os.PathLike)) and styles != core.BATCH:
            if not Path(styles).is_file():
                raise InputError(f"styles: no style bank file at {os.fspath(styles)}")
        else:
            core.check_styles(styles, batch_allowed=False)
        core.check_params(p, alpha, size)
        if not isinstance(weights, (str, os.PathLike)):
            raise InputError(
                f"weights: expected a name, folder or Hub repo id (what load_pretrained takes), got "
                f"{type(weights).__name__}; the transform pickles where the weights come from, not a model"
            )
        self.styles, self.weights = styles, weights
        self.p, self.alpha, self.size = p, alpha, size
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_memory = check_max_memory(max_memory)
        self._loaded: tuple[Engine, core.Options] | None = None

    def load(self) -> RandomStyle:
        """Load the model (and a bank given by its path) now, in this process, instead of at the first image;
        checks that the bank matches the model. Returns ``self``. Workers forked afterwards inherit the model."""
        if self._loaded is None:
            model = load_pretrained(self.weights)
            styles = self.styles
            if isinstance(styles, (str, os.PathLike)):
                styles = StyleBank.load(styles, model=model)
            else:
                core.check_bank_model(styles, model)
            options = core.check_options(styles, self.p, self.alpha, self.size, batch_allowed=False)
            self._loaded = (Engine(model, self.device, self.dtype, max_memory=self.max_memory), options)
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaded"] = None  # workers pickle the sources and load the model themselves, once
        return state

    def __call__(self, *inputs: Any) -> Any:
        """Stylize the image among ``inputs`` (or not, with probability ``1 - p``), as a v2 transform does.

        Arguments:
            *inputs: one image, or a sample of several inputs (e.g. an image and its label, boxes or mask) in
                which the image is the first ``tv_tensors.Image`` or ``PIL.Image``, else the first tensor; the
                other inputs pass unchanged (style changes no geometry). The image: a ``PIL.Image`` (``"L"``
                stays grey, other modes come back ``"RGB"``), or a ``(C, H, W)`` tensor or ``tv_tensors.Image``,
                C = 1 or 3, float in [0, 1] or uint8.

        Returns:
            The same structure: the image of the same kind, size, dtype and device.

        Raises:
            InputError: no image among the inputs, or one the transform does not take.
        """
        if not inputs:
            raise InputError("RandomStyle: called without an image")
        where = self._image_position(inputs)
        out = list(inputs)
        out[where] = self._one(inputs[where])
        return out[0] if len(inputs) == 1 else tuple(out)

    @staticmethod
    def _image_position(inputs: tuple[Any, ...]) -> int:
        tv_image = _tv_image_type()
        for i, item in enumerate(inputs):
            if isinstance(item, Image.Image) or (tv_image is not None and isinstance(item, tv_image)):
                return i
        for i, item in enumerate(inputs):
            if type(item) is Tensor:
                return i
        raise InputError(f"RandomStyle: no image among the inputs ({', '.join(type(x).__name__ for x in inputs)})")

    def _one(self, image: Any) -> Any:
        if isinstance(image, Image.Image):
            grey = image.mode == "L"
            arr = np.asarray(image if grey else image.convert("RGB"), dtype=np.uint8)
            x = torch.from_numpy(arr.copy())
            x = x[None] if grey else x.permute(2, 0, 1)
            out = self._tensor(x)
            if out is x:
                return image
            arr = out[0].numpy() if grey else out.permute(1, 2, 0).numpy()
            return Image.fromarray(np.ascontiguousarray(arr), mode="L" if grey else "RGB")
        if not isinstance(image, Tensor):
            raise InputError(f"image: expected a PIL.Image or a (C, H, W) tensor, got {type(image).__name__}")
        plain = image.as_subclass(Tensor)
        out = self._tensor(plain)
        if out is plain:
            return image
        tv_image = _tv_image_type()
        if tv_image is not None and isinstance(image, tv_image):
            return sys.modules["torchvision.tv_tensors"].wrap(out, like=image)
        return out

    def _tensor(self, x: Tensor) -> Tensor:
        """One ``(C, H, W)`` tensor -> the result (``x`` itself when not stylized)."""
        if x.dim() != 3:
            raise InputError(
                f"image: RandomStyle takes one (C, H, W) image, got shape {tuple(x.shape)}; "
                "stylize batches with adain.augment.StyleAugment"
            )
        core.check_batch(x[None], "image")
        if x.is_floating_point() and x.numel():
            low, high = (float(v) for v in torch.aminmax(x.detach()))
            if not (-1e-3 <= low and high <= 1 + 1e-3):  # also False for NaN
                raise InputError(
                    f"image: float images must be in [0, 1], got values in [{low:.3g}, {high:.3g}]; "
                    "put RandomStyle before normalisation"
                )
        engine, options = self.load()._loaded  # type: ignore[misc]
        batch = x[None]
        out = core.augment(engine, batch, options, None)
        return x if out is batch else out[0]
