"""The reference PyTorch port's positional layout, and conversion from it.

This is the one module that knows the legacy ``nn.Sequential`` indices. ``vgg_normalised.pth`` is the
state dict of a 53-module Sequential (to relu5_4); ``decoder.pth`` that of the decoder Sequential. Both
are read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is refused,
never run.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from .decoder import DECODER_CONVS
from .encoder import VGG_CONVS
from .errors import CorruptWeightsError, WeightsNotFoundError

__all__ = [
    "LEGACY_VGG_CONV_INDICES",
    "LEGACY_DECODER_CONV_INDICES",
    "read_legacy_state_dict",
    "legacy_vgg_to_named",
    "legacy_decoder_to_named",
    "named_to_legacy_vgg",
    "named_to_legacy_decoder",
    "load_original",
]

# Sequential index of each conv. Encoder: index 0 is the 1x1 preprocessing conv, then (pad, conv, relu)
# triples with a pool after each block; the file goes on to conv5_4 (index 51).
LEGACY_VGG_CONV_INDICES: dict[str, int] = {"preprocess": 0} | dict(
    zip(
        [name for name, _, _ in VGG_CONVS] + ["conv5_2", "conv5_3", "conv5_4"],
        (2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51),
    )
)
LEGACY_DECODER_CONV_INDICES: dict[str, int] = dict(
    zip([step[0] for step in DECODER_CONVS if step != "up"], (1, 5, 8, 11, 14, 18, 21, 25, 28))
)
_VGG_EXTRA_CONVS = {"conv5_2": (512, 512), "conv5_3": (512, 512), "conv5_4": (512, 512)}


def read_legacy_state_dict(path: str | os.PathLike, what: str) -> dict[str, Tensor]:
    """``torch.load(path, weights_only=True)`` with every failure turned into a clear ``WeightsError``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{what} file {path} not found")
    if path.stat().st_size == 0:
        raise CorruptWeightsError(f"{what} file {path} is empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but tensors and plain containers: a file that needs more is
        # either not a state dict or malicious, and is never unpickled the unsafe way.
        raise CorruptWeightsError(
            f"{what} file {path} is not a plain state dict of tensors and was refused without running it ({exc})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CorruptWeightsError(f"{what} file {path} is not a readable PyTorch file (truncated or wrong format?): {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CorruptWeightsError(f"{what} file {path} does not hold a state dict of tensors")
    return state


def _rename(state: dict[str, Tensor], indices: dict[str, int], shapes: dict[str, tuple[int, int, int]], source: str,
            keep: set[str]) -> dict[str, Tensor]:
    """Positional ``<i>.weight``/``<i>.bias`` -> ``<name>.weight``/``<name>.bias``, checking keys and shapes."""
    expected_keys = {f"{i}.{p}" for i in indices.values() for p in ("weight", "bias")}
    extra = sorted(set(state) - expected_keys)
    if extra:
        raise CorruptWeightsError(f"{source}: unexpected key {extra[0]!r} ({len(extra)} unexpected in all)")
    out = {}
    for name, index in indices.items():
        cin, cout, k = shapes[name]
        for param, shape in (("weight", (cout, cin, k, k)), ("bias", (cout,))):
            key = f"{index}.{param}"
            if key not in state:
                raise CorruptWeightsError(f"{source}: missing key {key!r} ({name}.{param}, expected shape {shape})")
            value = state[key]
            if tuple(value.shape) != shape:
                raise CorruptWeightsError(
                    f"{source}: key {key!r} ({name}.{param}) has shape {tuple(value.shape)}, expected {shape}"
                )
            if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
                raise CorruptWeightsError(f"{source}: key {key!r} ({name}.{param}) is not a finite float tensor")
            if name in keep:
                out[f"{name}.{param}"] = value.float()
    return out


def _vgg_shapes() -> dict[str, tuple[int, int, int]]:
    shapes = {"preprocess": (3, 3, 1)} | {name: (cin, cout, 3) for name, cin, cout in VGG_CONVS}
    return shapes | {name: (cin, cout, 3) for name, (cin, cout) in _VGG_EXTRA_CONVS.items()}


def legacy_vgg_to_named(state: dict[str, Tensor], source: str = "vgg") -> dict[str, Tensor]:
    """The 53-module VGG state dict -> ``VGGEncoder`` keys up to conv5_1 (conv5_2..5_4 checked, dropped)."""
    keep = {"preprocess"} | {name for name, _, _ in VGG_CONVS}
    return _rename(state, LEGACY_VGG_CONV_INDICES, _vgg_shapes(), source, keep)


def legacy_decoder_to_named(state: dict[str, Tensor], source: str = "decoder") -> dict[str, Tensor]:
    """The decoder Sequential's state dict -> ``Decoder`` keys."""
    shapes = {step[0]: (step[1], step[2], 3) for step in DECODER_CONVS if step != "up"}
    return _rename(state, LEGACY_DECODER_CONV_INDICES, shapes, source, set(shapes))


def named_to_legacy_decoder(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``Decoder`` keys -> the reference port's positional keys (to hand a trained decoder to its tools)."""
    return {f"{LEGACY_DECODER_CONV_INDICES[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in state.items()}


def named_to_legacy_vgg(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``VGGEncoder`` keys -> positional keys (only the layers present; the port's file also has conv5_2-5_4)."""
    return {f"{LEGACY_VGG_CONV_INDICES[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in state.items()}


def load_original(vgg_path: str | os.PathLike, decoder_path: str | os.PathLike):
    """``AdaINModel`` from the reference port's ``vgg_normalised.pth`` and ``decoder.pth`` (encoder to relu5_1)."""
    from .model import AdaINModel, ModelConfig

    vgg = legacy_vgg_to_named(read_legacy_state_dict(vgg_path, "VGG"), str(vgg_path))
    dec = legacy_decoder_to_named(read_legacy_state_dict(decoder_path, "decoder"), str(decoder_path))
    model = AdaINModel(ModelConfig(encoder_last_layer="relu5_1"))
    state = {f"encoder.{k}": v for k, v in vgg.items()} | {f"decoder.{k}": v for k, v in dec.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()
