"""A reader for Torch7's binary serialization format (``torch.save`` in Lua, ``.t7`` files).

It builds only data: numbers, strings, booleans, tables (``dict``), tensors (``torch.Tensor``) and
``TorchObject`` records for other classes (an ``nn.SpatialConvolution`` becomes
``TorchObject("nn.SpatialConvolution", {"weight": tensor, ...})``). No Lua runs and no Python object
is created from a class name; serialized functions are refused. Every length is checked against the
bytes left in the file before anything is allocated, so a hostile or truncated file fails cleanly: a
tensor may address no more elements than its storage holds (stride-0 views included), all tensors
together no more than ``MAX_ELEMENTS``, and objects nest at most ``MAX_DEPTH`` deep.

Format (binary mode, little-endian, as written by Torch7's ``File:writeObject``): each object is an
``int32`` type tag, then
- nil (0): nothing; number (1): ``float64``; boolean (5): ``int32`` 0/1;
- string (2): ``int32`` length + bytes;
- table (3): ``int32`` reference index (a repeated index refers back to an object already read),
  then ``int32`` pair count and that many (key object, value object) pairs;
- torch object (4): ``int32`` reference index, then a version string ``"V <n>"`` (absent in very old
  files), the class name string, and the payload: for ``torch.<Type>Tensor`` an ``int32`` dimension
  count, ``int64`` sizes and strides, an ``int64`` 1-based storage offset and a storage object; for
  ``torch.<Type>Storage`` an ``int64`` element count and the raw elements; for any other class (all
  ``nn`` modules) a table object holding its fields.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import CorruptWeightsError, WeightsNotFoundError
from ..modeling._config import ModelConfig
from ..modeling._decoder import DECODER_CONVS
from ..modeling._encoder import LAYER_NAMES, VGG_CONVS
from ._legacy import check_vgg_fingerprint

MAX_ELEMENTS = 1 << 28
"""The most tensor elements one file may materialise (all tensors together): 1 GiB of float32, over ten
times the released VGG-19."""
MAX_DEPTH = 100
"""The deepest nesting of tables and objects read (the release files nest about ten deep)."""

_NIL, _NUMBER, _STRING, _TABLE, _TORCH, _BOOLEAN = 0, 1, 2, 3, 4, 5
_FUNCTIONS = {6, 7, 8}

# Element type of each tensor/storage class. CUDA storages are written as float32 by Torch7.
_DTYPES: dict[str, np.dtype] = {
    "Double": np.dtype("<f8"), "Float": np.dtype("<f4"), "Cuda": np.dtype("<f4"), "Half": np.dtype("<f2"),
    "Long": np.dtype("<i8"), "Int": np.dtype("<i4"), "Short": np.dtype("<i2"), "Char": np.dtype("i1"),
    "Byte": np.dtype("u1"),
}  # fmt: skip


@dataclass
class TorchObject:
    """An instance of a Torch7 class other than tensors and storages: its class name and its fields."""

    class_name: str
    attrs: dict[Any, Any] = field(default_factory=dict)
    version: int = 0

    def __getitem__(self, key: Any) -> Any:
        return self.attrs[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass
class _Storage:
    array: np.ndarray


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.source = source
        self.memo: dict[int, Any] = {}
        self.depth = 0
        self.elements = 0  # tensor elements materialised so far

    def fail(self, what: str) -> CorruptWeightsError:
        return CorruptWeightsError(f"{self.source}: not a valid Torch7 file ({what} at byte {self.pos})")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"needs {n} bytes but only {len(self.data) - self.pos} are left (truncated?)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def int64s(self, n: int) -> list[int]:
        return list(struct.unpack(f"<{n}q", self.take(8 * n)))

    def string(self) -> str:
        raw = bytes(self.take(self.int32()))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    def object(self) -> Any:
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"objects nested more than {MAX_DEPTH} deep")
        self.depth += 1
        try:
            return self._object()
        finally:
            self.depth -= 1

    def _object(self) -> Any:
        tag = self.int32()
        if tag == _NIL:
            return None
        if tag == _NUMBER:
            value = struct.unpack("<d", self.take(8))[0]
            return int(value) if value.is_integer() else value
        if tag == _BOOLEAN:
            return self.int32() == 1
        if tag == _STRING:
            return self.string()
        if tag in (_TABLE, _TORCH):
            index = self.int32()
            if index in self.memo:
                return self.memo[index]
            return self.table(index) if tag == _TABLE else self.torch_object(index)
        if tag in _FUNCTIONS:
            raise self.fail("a serialized Lua function, which is never loaded")
        raise self.fail(f"unknown type tag {tag}")

    def table(self, index: int) -> dict:
        out: dict = {}
        self.memo[index] = out  # registered before the contents: tables may refer to themselves
        count = self.int32()
        if count < 0:
            raise self.fail(f"negative table size {count}")
        for _ in range(count):
            key = self.object()
            if isinstance(key, (dict, TorchObject, torch.Tensor)):
                key = id(key)  # unhashable keys never matter for weights; keep the entry distinct
            out[key] = self.object()
        return out

    def torch_object(self, index: int) -> Any:
        version_or_name = self.string()
        version = 0
        if version_or_name.startswith("V "):
            version = int(version_or_name[2:]) if version_or_name[2:].strip().isdigit() else 0
            class_name = self.string()
        else:
            class_name = version_or_name
        kind = class_name.removeprefix("torch.")
        result: _Storage | Tensor | TorchObject
        if class_name.startswith("torch.") and kind.endswith("Storage"):
            result = self.storage(kind[: -len("Storage")], class_name)
        elif class_name.startswith("torch.") and kind.endswith("Tensor"):
            result = self.tensor(kind[: -len("Tensor")], class_name)
        else:
            obj = TorchObject(class_name, version=version)
            self.memo[index] = obj
            attrs = self.object()
            if not isinstance(attrs, dict):
                raise self.fail(f"{class_name} without a field table")
            obj.attrs = attrs
            result = obj
        self.memo[index] = result
        return result

    def storage(self, elem: str, class_name: str) -> _Storage:
        dtype = _DTYPES.get(elem)
        if dtype is None:
            raise self.fail(f"unsupported class {class_name}")
        (size,) = self.int64s(1)
        if size < 0:
            raise self.fail(f"negative storage size {size}")
        raw = self.take(size * dtype.itemsize)
        return _Storage(np.frombuffer(raw, dtype=dtype).copy())

    def tensor(self, elem: str, class_name: str) -> torch.Tensor:
        if elem not in _DTYPES:
            raise self.fail(f"unsupported class {class_name}")
        ndim = self.int32()
        if not 0 <= ndim <= 16:
            raise self.fail(f"tensor with {ndim} dimensions")
        sizes, strides = self.int64s(ndim), self.int64s(ndim)
        (offset,) = self.int64s(1)
        storage = self.object()
        if ndim == 0 or storage is None:
            return torch.from_numpy(np.zeros(0, _DTYPES[elem]))
        if not isinstance(storage, _Storage):
            raise self.fail(f"{class_name} whose storage is {type(storage).__name__}")
        if any(s < 0 for s in sizes) or any(s < 0 for s in strides) or offset < 1:
            raise self.fail(f"{class_name} with negative sizes/strides or offset {offset}")
        last = offset - 1 + sum((n - 1) * s for n, s in zip(sizes, strides)) if all(sizes) else -1
        if last >= storage.array.size:
            raise self.fail(f"{class_name} of size {sizes} reaching past its storage of {storage.array.size} elements")
        self._count(class_name, sizes, storage.array.size)
        flat = torch.from_numpy(storage.array)
        return torch.as_strided(flat, sizes, strides, offset - 1).clone()

    def _count(self, class_name: str, sizes: list[int], stored: int) -> None:
        """Refuse a tensor with more elements than its storage (only overlapping, e.g. stride-0, views can)
        or one that takes the file's total past ``MAX_ELEMENTS``, before it is allocated."""
        numel = 1
        for n in sizes:
            numel *= n
        if numel > stored:
            raise self.fail(
                f"{class_name} of size {sizes} ({numel} elements) addressing a storage of {stored} elements"
            )
        self.elements += numel
        if self.elements > MAX_ELEMENTS:
            raise self.fail(f"tensors of more than {MAX_ELEMENTS} elements in all")


def loads_t7(data: bytes, source: str = "<bytes>") -> Any:
    """Parse Torch7 binary-serialized ``data``; see the module docstring for what comes back."""
    reader = _Reader(data, source)
    result = reader.object()
    if isinstance(result, _Storage):
        return torch.from_numpy(result.array)
    return result


def read_t7(path: str | os.PathLike) -> Any:
    """Read a ``.t7`` file written by Torch7's ``torch.save`` (binary mode). Raises ``WeightsError``s."""
    path = Path(path)
    if not path.is_file():
        if path.exists():  # a folder, FIFO or device: reading it would block or never end
            raise CorruptWeightsError(f"Torch7 file {path}: not a regular file; expected a .t7 file")
        raise WeightsNotFoundError(f"Torch7 file {path} not found")
    return loads_t7(path.read_bytes(), str(path))


# ---- the release's module lists -> named layers ----------------------------------------------------

_KINDS = {
    "nn.SpatialConvolution": "conv", "nn.SpatialConvolutionMM": "conv", "cudnn.SpatialConvolution": "conv",
    "nn.SpatialReflectionPadding": "pad",
    "nn.ReLU": "relu", "cudnn.ReLU": "relu",
    "nn.SpatialMaxPooling": "pool", "cudnn.SpatialMaxPooling": "pool",
    "nn.SpatialUpSamplingNearest": "up",
}  # fmt: skip


def _modules(obj: Any, source: str) -> list[Any]:
    if (
        not isinstance(obj, TorchObject)
        or obj.class_name != "nn.Sequential"
        or not isinstance(obj.get("modules"), dict)
    ):
        found = obj.class_name if isinstance(obj, TorchObject) else type(obj).__name__
        raise CorruptWeightsError(f"{source}: expected an nn.Sequential with a modules list, found {found}")
    table = obj["modules"]
    return [table[i] for i in sorted(k for k in table if isinstance(k, int))]


class _Walker:
    """Consumes a Torch7 module list in order, checking each module against what the layout expects."""

    def __init__(self, modules: list[Any], source: str) -> None:
        self.modules, self.source, self.pos = modules, source, 0

    def fail(self, what: str) -> CorruptWeightsError:
        return CorruptWeightsError(f"{self.source}: module {self.pos + 1} (1-based, as in Lua): {what}")

    def done(self) -> bool:
        return self.pos >= len(self.modules)

    def take(self, kind: str) -> Any:
        if self.done():
            raise self.fail(f"the model ends where a {kind} module was expected")
        module = self.modules[self.pos]
        found = _KINDS.get(getattr(module, "class_name", ""), getattr(module, "class_name", type(module).__name__))
        if found != kind:
            raise self.fail(f"expected a {kind} module, found {found}")
        self.pos += 1
        return module

    def field(self, module: Any, name: str, expected: Any) -> None:
        if module.get(name) != expected:
            raise CorruptWeightsError(
                f"{self.source}: module {self.pos} ({module.class_name}) has {name}={module.get(name)!r}, "
                f"expected {expected!r}"
            )

    def conv(self, cin: int, cout: int, k: int) -> dict[str, Tensor]:
        module = self.take("conv")
        for name, value in (("kW", k), ("kH", k), ("dW", 1), ("dH", 1), ("nInputPlane", cin), ("nOutputPlane", cout)):
            self.field(module, name, value)
        for name in ("padW", "padH"):  # padding is a separate reflection module
            if module.get(name, 0) != 0:
                self.field(module, name, 0)
        weight, bias = module.get("weight"), module.get("bias")
        if not isinstance(weight, Tensor) or not isinstance(bias, Tensor):
            raise CorruptWeightsError(f"{self.source}: module {self.pos} ({module.class_name}) lacks weight or bias")
        if weight.numel() != cout * cin * k * k or bias.numel() != cout:
            raise CorruptWeightsError(
                f"{self.source}: module {self.pos} ({module.class_name}) has weight {tuple(weight.shape)} and bias "
                f"{tuple(bias.shape)}, expected ({cout}, {cin}, {k}, {k}) and ({cout},)"
            )
        # SpatialConvolutionMM stores a 2-D (out, in*k*k) weight; both layouts hold the same cross-correlation.
        return {"weight": weight.reshape(cout, cin, k, k).float(), "bias": bias.reshape(cout).float()}

    def padded_conv(self, cin: int, cout: int) -> dict[str, Tensor]:
        pad = self.take("pad")
        for name in ("pad_l", "pad_r", "pad_t", "pad_b"):
            self.field(pad, name, 1)
        return self.conv(cin, cout, 3)

    def pool(self) -> None:
        module = self.take("pool")
        for name, value in (("kW", 2), ("kH", 2), ("dW", 2), ("dH", 2)):
            self.field(module, name, value)

    def up(self) -> None:
        self.field(self.take("up"), "scale_factor", 2)


def _torch7_vgg(obj: Any, source: str) -> tuple[dict[str, Tensor], str]:
    """Named encoder state and the deepest relu present (relu4_1 at least, relu5_1 at most)."""
    walker = _Walker(_modules(obj, source), source)
    shapes = {name: (cin, cout) for name, cin, cout in VGG_CONVS}
    state = {f"preprocess.{k}": v for k, v in walker.conv(3, 3, 1).items()}
    last = None
    for layer in LAYER_NAMES:
        if walker.done() and last is not None and LAYER_NAMES.index(last) >= LAYER_NAMES.index("relu4_1"):
            break  # a file cut after relu4_1 is enough for AdaIN
        if layer.startswith("conv"):
            state |= {f"{layer}.{k}": v for k, v in walker.padded_conv(*shapes[layer]).items()}
        elif layer.startswith("relu"):
            walker.take("relu")
            last = layer
        else:
            walker.pool()
    # Later modules (conv5_2 ... relu5_4, pool5) are not used by this package and are not read.
    if last is None or LAYER_NAMES.index(last) < LAYER_NAMES.index("relu4_1"):
        raise CorruptWeightsError(f"{source}: the VGG ends before relu4_1")
    keep = set(LAYER_NAMES[: LAYER_NAMES.index(last) + 1]) | {"preprocess"}
    return {k: v for k, v in state.items() if k.split(".")[0] in keep}, last


def _torch7_decoder(obj: Any, source: str) -> dict[str, Tensor]:
    walker = _Walker(_modules(obj, source), source)
    state: dict[str, Tensor] = {}
    convs = [step for step in DECODER_CONVS if isinstance(step, tuple)]  # not "up"
    for step in DECODER_CONVS:
        if not isinstance(step, tuple):  # "up"
            walker.up()
            continue
        name, cin, cout = step
        state |= {f"{name}.{k}": v for k, v in walker.padded_conv(cin, cout).items()}
        if step != convs[-1]:
            walker.take("relu")
    if not walker.done():
        raise walker.fail("unexpected module after the decoder's last conv")
    return state


def load_torch7(
    vgg_path: str | os.PathLike, decoder_path: str | os.PathLike, *, description: str = ""
) -> tuple[ModelConfig, dict[str, Tensor]]:
    """``(config, state)`` from the original Torch7 release files (``vgg_normalised.t7`` + a decoder ``.t7``).

    The encoder is kept to relu5_1 when the file reaches it, else to relu4_1 (AdaIN only). Module types,
    paddings, strides and kernels are checked on the way, and so is the VGG fingerprint.
    """
    vgg, last = _torch7_vgg(read_t7(vgg_path), str(vgg_path))
    check_vgg_fingerprint(vgg["preprocess.weight"], vgg["preprocess.bias"], str(vgg_path))
    decoder = _torch7_decoder(read_t7(decoder_path), str(decoder_path))
    state = {f"encoder.{k}": v for k, v in vgg.items()} | {f"decoder.{k}": v for k, v in decoder.items()}
    return ModelConfig(encoder_last_layer=last, description=description), state
