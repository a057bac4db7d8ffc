"""A style bank: the relu4_1 statistics of many styles, encoded once, saved and reused.

AdaIN needs only a style's channel means and standard deviations, 2 x 512 numbers, so a bank of thousands of
styles is a few megabytes and stylizing with any of them costs one content encoding. Dataset stylization draws
one bank entry per image and style augmentation draws them per sample; both make the bank once. It is saved
as safetensors with the style keys, how the styles were prepared (``recipe``) and the identity of the encoder
that measured them: statistics of another encoder would give wrong pictures silently, so loading refuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from .. import _images as images
from .._atomic import atomic_path, check_output
from .._io import DEFAULT_MAX_PIXELS
from ..errors import InputError
from ..model import AdaINModel
from ._engine import Engine
from ._stylizer import Stylizer
from ._transfer import Style

RELU4_1_INPUTS = frozenset(
    ["preprocess", "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4", "conv4_1"]
)
"""The encoder's layers that relu4_1 depends on (state-dict prefixes)."""

FORMAT = "adain.style-bank/1"
"""The ``format`` entry of a saved bank's metadata; a file without it is not a bank."""


def encoder_id(model: AdaINModel) -> str:
    """The identity of ``model``'s encoder up to relu4_1: 16 hex digits of the sha256 of its weights (names,
    shapes and float32 values) and its variance epsilon. Equal for equal weights whatever the device or dtype
    the model is on; any changed weight changes it."""
    digest = hashlib.sha256(f"eps={model.config.eps!r}".encode())
    for name, tensor in sorted(model.encoder.state_dict().items()):
        if name.split(".")[0] not in RELU4_1_INPUTS:  # layers after relu4_1 do not change its statistics
            continue
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class StyleBank:
    """The relu4_1 statistics of many styles, for stylizing with any of them at the cost of the content alone.

    Make one with ``build`` (tensors) or ``from_files`` (image files), ``save`` it, ``load`` it back; index it
    with ``stats`` (a batch of styles, one per content) or ``style`` (one ``Style`` for an ``Engine``).

    Attributes:
        keys: one name per style (for files: the path as given, or as the caller chose, e.g. relative to a root).
        mean: ``(N, 512)`` float32 on the CPU: each style's relu4_1 channel means.
        std: ``(N, 512)`` float32 on the CPU: each style's relu4_1 channel standard deviations (unbiased, plus the
            model's epsilon under the root, as ``calc_mean_std``).
        model_id: ``encoder_id`` of the model whose encoder measured them.
        recipe: how the style images were prepared (e.g. ``{"size": "512", "crop": "false"}``), saved with the
            bank so a user can tell two banks apart.

    Examples:
        ```python
        bank = StyleBank.from_files(Stylizer(model), sorted(Path("styles").glob("*.jpg")), size=256)
        bank.save("styles.safetensors")
        mean, std = StyleBank.load("styles.safetensors", model=model).stats([0, 3, 3])  # (3, 512, 1, 1) each
        ```
    """

    keys: tuple[str, ...]
    mean: Tensor
    std: Tensor
    model_id: str
    recipe: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.keys)
        for name, t in (("mean", self.mean), ("std", self.std)):
            if t.dim() != 2 or t.shape[0] != n or t.dtype != torch.float32:
                raise InputError(f"StyleBank: {name} must be ({n}, C) float32 for {n} keys, got {tuple(t.shape)}")
        if self.mean.shape != self.std.shape:
            raise InputError(f"StyleBank: mean {tuple(self.mean.shape)} and std {tuple(self.std.shape)} differ")
        if len(set(self.keys)) != n:
            raise InputError("StyleBank: keys must be unique")

    def __len__(self) -> int:
        return len(self.keys)

    def stats(self, index: Tensor | Sequence[int], device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """The statistics of the styles at ``index`` (one per content of a batch, repeats allowed).

        Arguments:
            index: ``B`` integer positions into the bank (a sequence or an integer tensor).
            device: where to put the result; ``None``: the CPU.

        Returns:
            ``(mean, std)``, each ``(B, 512, 1, 1)`` float32: what ``Engine.render``'s AdaIN takes per content.
        """
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        return (
            self.mean[idx][..., None, None].to(device or "cpu"),
            self.std[idx][..., None, None].to(device or "cpu"),
        )

    def style(self, i: int) -> Style:
        """The ``i``-th style as a ``Style`` for ``Engine.run``/``render`` (statistics copied, on the CPU)."""
        mean, std = self.stats([i])
        return Style((1.0,), ((mean, std),))

    # ---- making one ----------------------------------------------------------------------------------

    @classmethod
    def build(
        cls, engine: Engine, items: Iterable[tuple[str, Tensor]], *, recipe: dict[str, str] | None = None
    ) -> StyleBank:
        """Encode style images into a bank.

        Arguments:
            engine: the ``Engine`` whose encoder measures the statistics (its model's ``encoder_id`` is kept).
            items: ``(key, image)`` pairs, each image ``(1, 3, h, w)`` or ``(3, h, w)`` float32 in [0, 1], already
                resized and cropped as the caller wants (the bank does not resize).
            recipe: how the images were prepared, saved with the bank.

        Returns:
            The bank, statistics on the CPU.
        """
        keys, means, stds = [], [], []
        for key, image in items:
            mean, std = engine.feature_stats((image if image.dim() == 4 else image[None]).to(engine.device))
            keys.append(str(key))
            means.append(mean.reshape(1, -1).float().cpu())
            stds.append(std.reshape(1, -1).float().cpu())
        if not keys:
            raise InputError("StyleBank: no style images given")
        return cls(tuple(keys), torch.cat(means), torch.cat(stds), engine_model_id(engine), dict(recipe or {}))

    @classmethod
    def from_files(
        cls,
        stylizer: Stylizer,
        paths: Sequence[Any],
        *,
        keys: Sequence[str] | None = None,
        size: int | None = 512,
        crop: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> StyleBank:
        """Read, resize and encode style images (files or any image-like the ``Stylizer`` takes) into a bank.

        Arguments:
            stylizer: the ``Stylizer`` whose engine measures the statistics.
            paths: the style images.
            keys: one unique name per image; default: each path as a string (image-likes that are not paths
                need keys).
            size: shorter side each style is resized to (as ``Stylizer.set_style``'s ``style_size``); ``None``:
                as is.
            crop: keep the centre square after resizing.
            max_pixels: largest image file accepted, in pixels (decompression-bomb guard).

        Returns:
            The bank; its ``recipe`` records ``size`` and ``crop``.

        Raises:
            InputError: no images, keys missing or not one per image.
            ImageReadError: an image cannot be read (the message names it).
        """
        if keys is None:
            if not all(isinstance(p, (str, os.PathLike)) for p in paths):
                raise InputError("StyleBank.from_files: keys are needed for images that are not file paths")
            keys = [str(p) for p in paths]
        if len(keys) != len(paths):
            raise InputError(f"StyleBank.from_files: {len(keys)} keys for {len(paths)} images")
        for i, source in enumerate(paths):  # every file checked before any is encoded
            images.check_image(source, what=f"style {keys[i]}", max_pixels=max_pixels)
        decoded = (
            (key, images.decode(source, size=size, crop=crop, what=f"style {key}", max_pixels=max_pixels))
            for key, source in zip(keys, paths)
        )
        recipe = {"size": str(size), "crop": str(crop).lower()}
        return cls.build(stylizer.engine, decoded, recipe=recipe)

    # ---- files ---------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the bank as one safetensors file (tensors ``mean``, ``std``; keys, ``model_id`` and ``recipe`` in
        its metadata), atomically.

        Arguments:
            path: the file to write (``.safetensors`` by convention).
            overwrite: replace an existing file; default: refuse it.

        Returns:
            ``path``.

        Raises:
            OutputExistsError: ``path`` exists and not ``overwrite``.
            DiskFullError: the disk is full (nothing is written under ``path``).
        """
        path = Path(path)
        check_output(path, overwrite=overwrite)
        metadata = {
            "format": FORMAT,
            "keys": json.dumps(list(self.keys)),
            "model_id": self.model_id,
            "recipe": json.dumps(self.recipe, sort_keys=True),
        }
        tensors = {"mean": self.mean.contiguous(), "std": self.std.contiguous()}
        with atomic_path(path, expected_bytes=2 * self.mean.numel() * 4) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, model: AdaINModel | None = None) -> StyleBank:
        """Read a bank ``save`` wrote.

        Arguments:
            path: the safetensors file.
            model: when given, the bank must have been measured by this model's encoder.

        Returns:
            The bank, statistics on the CPU.

        Raises:
            InputError: not a readable style bank, or one measured by another encoder (the message names both).
        """
        try:
            with safe_open(str(path), "pt") as f:
                metadata = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in ("mean", "std") if name in f.keys()}
            if metadata.get("format") != FORMAT:
                raise ValueError(f"format is {metadata.get('format')!r}, expected {FORMAT!r}")
            bank = cls(
                tuple(json.loads(metadata["keys"])),
                tensors["mean"],
                tensors["std"],
                metadata["model_id"],
                dict(json.loads(metadata.get("recipe", "{}"))),
            )
        except InputError as exc:
            raise InputError(f"{path}: not a valid style bank: {exc}") from None
        except (OSError, SafetensorError, ValueError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InputError(f"{path}: not a readable style bank ({reason})") from None
        if model is not None and bank.model_id != encoder_id(model):
            raise InputError(
                f"{path}: this style bank was measured by encoder {bank.model_id}, not by this model's encoder "
                f"{encoder_id(model)}; rebuild the bank with this model"
            )
        return bank


def engine_model_id(engine: Engine) -> str:
    """``encoder_id`` of the model an ``Engine`` was made from (not of its prepared copy, which may be cast or
    fused)."""
    return encoder_id(engine.source)
