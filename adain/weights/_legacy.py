"""The reference PyTorch port's positional layout, the normalised VGG's fingerprint, and conversion.

This is the one module that knows the legacy ``nn.Sequential`` indices, and the one loader of the port's
files: every path that reads a legacy VGG (``AdaINModel.from_original``, ``adain convert``, named
weights, ``adain train --vgg``, ``adain gatys --vgg``) goes through ``legacy_vgg_to_named``, which checks
the fingerprint. ``vgg_normalised.pth`` is the
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

from ..errors import CorruptWeightsError, WeightsNotFoundError
from ..modeling._config import ModelConfig
from ..modeling._decoder import DECODER_CONVS
from ..modeling._encoder import VGG_CONVS

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
"""The Caffe ImageNet mean in BGR order, 0-255 scale; minus it is the preprocessing conv's bias."""

_FINGERPRINT_ATOL = 1e-2  # the released values are exact (0, 255, -103.939, ...) up to float32 rounding

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
        if path.exists():  # a folder, FIFO or device: torch.load would block on it or read forever
            raise CorruptWeightsError(f"{what} file {path}: not a regular file; expected a .pth file")
        raise WeightsNotFoundError(f"{what} file {path} not found")
    if path.stat().st_size == 0:
        raise CorruptWeightsError(f"{what} file {path} is empty")
    expected = "expected a state dict of tensors written by torch.save (a .pth file)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses anything but tensors and plain containers: a file that needs more is
        # either not a state dict or malicious, and is never unpickled the unsafe way. torch's own message
        # advises exactly that unsafe way (weights_only=False), so it is not passed on.
        raise CorruptWeightsError(
            f"{what} file {path} is not a plain state dict of tensors and was refused without running it; {expected}"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a text file or random bytes fail deep in the unpickler (KeyError...)
        detail = _first_line(exc) if isinstance(exc, (RuntimeError, EOFError, zipfile.BadZipFile, OSError)) else ""
        reason = f" ({detail})" if detail and "weights_only" not in detail and len(detail) < 160 else ""
        raise CorruptWeightsError(f"{what} file {path} is not a readable PyTorch file{reason}; {expected}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CorruptWeightsError(f"{what} file {path} does not hold a state dict of tensors")
    return state


def _first_line(exc: BaseException) -> str:
    """torch.load's errors run to a dozen lines of advice; ours are one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _rename(
    state: dict[str, Tensor],
    indices: dict[str, int],
    shapes: dict[str, tuple[int, int, int]],
    source: str,
    keep: set[str],
) -> dict[str, Tensor]:
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


def check_vgg_fingerprint(weight: Tensor, bias: Tensor, source: str) -> None:
    """Raise ``CorruptWeightsError`` unless the 1x1 conv is the normalised VGG's preprocessing.

    Expected: ``weight[i, 2 - i] = 255`` and every other entry 0 (RGB -> BGR, x255), ``bias = -(103.939,
    116.779, 123.68)``, each within 0.01. ``weight`` is ``(3, 3, 1, 1)``, ``bias`` ``(3,)``. The Torch7
    release has the same first conv as the PyTorch port (the port was converted from it).
    """
    expected_w = torch.zeros(3, 3, 1, 1)
    for i in range(3):
        expected_w[i, 2 - i] = 255.0
    expected_b = -torch.tensor(CAFFE_MEAN_BGR)
    w, b = weight.detach().float().cpu(), bias.detach().float().cpu()
    if tuple(w.shape) != (3, 3, 1, 1) or tuple(b.shape) != (3,):
        raise CorruptWeightsError(f"{source}: first conv has shape {tuple(w.shape)}, expected (3, 3, 1, 1)")
    if not (
        torch.allclose(w, expected_w, atol=_FINGERPRINT_ATOL) and torch.allclose(b, expected_b, atol=_FINGERPRINT_ATOL)
    ):
        raise CorruptWeightsError(
            f"{source}: the first 1x1 conv is not the normalised VGG's RGB->BGR x255 minus the Caffe mean "
            f"(weight {w.flatten().tolist()}, bias {b.tolist()}); not the vgg_normalised weights (fingerprint check)"
        )


def legacy_vgg_to_named(state: dict[str, Tensor], source: str = "vgg") -> dict[str, Tensor]:
    """The 53-module VGG state dict -> ``VGGEncoder`` keys up to conv5_1 (conv5_2..5_4 checked, dropped).

    Keys, shapes and finiteness are checked, and so is the fingerprint (``check_vgg_fingerprint``).
    """
    keep = {"preprocess"} | {name for name, _, _ in VGG_CONVS}
    named = _rename(state, LEGACY_VGG_CONV_INDICES, _vgg_shapes(), source, keep)
    check_vgg_fingerprint(named["preprocess.weight"], named["preprocess.bias"], source)
    return named


def read_legacy_vgg(path: str | os.PathLike) -> dict[str, Tensor]:
    """``vgg_normalised.pth`` -> ``VGGEncoder`` state (to relu5_1), every check applied."""
    return legacy_vgg_to_named(read_legacy_state_dict(path, "VGG"), str(path))


def read_legacy_decoder(path: str | os.PathLike) -> dict[str, Tensor]:
    """``decoder.pth`` -> ``Decoder`` state, every check applied."""
    return legacy_decoder_to_named(read_legacy_state_dict(path, "decoder"), str(path))


def legacy_decoder_to_named(state: dict[str, Tensor], source: str = "decoder") -> dict[str, Tensor]:
    """The decoder Sequential's state dict -> ``Decoder`` keys."""
    shapes = {step[0]: (step[1], step[2], 3) for step in DECODER_CONVS if isinstance(step, tuple)}  # not "up"
    return _rename(state, LEGACY_DECODER_CONV_INDICES, shapes, source, set(shapes))


def named_to_legacy_decoder(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``Decoder`` keys -> the reference port's positional keys (to hand a trained decoder to its tools)."""
    return {f"{LEGACY_DECODER_CONV_INDICES[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in state.items()}


def named_to_legacy_vgg(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``VGGEncoder`` keys -> positional keys (only the layers present; the port's file also has conv5_2-5_4)."""
    return {f"{LEGACY_VGG_CONV_INDICES[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in state.items()}


def load_reference_port(
    vgg_path: str | os.PathLike, decoder_path: str | os.PathLike, *, description: str = ""
) -> tuple[ModelConfig, dict[str, Tensor]]:
    """``(config, state)`` of a model from the port's ``vgg_normalised.pth`` + ``decoder.pth`` (encoder to relu5_1).

    Read with ``torch.load(weights_only=True)`` only; keys, shapes, finiteness and the VGG fingerprint
    are checked.
    """
    vgg, dec = read_legacy_vgg(vgg_path), read_legacy_decoder(decoder_path)
    state = {f"encoder.{k}": v for k, v in vgg.items()} | {f"decoder.{k}": v for k, v in dec.items()}
    return ModelConfig(encoder_last_layer="relu5_1", description=description), state
