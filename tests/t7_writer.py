"""A small Torch7 binary-serialization writer, for tests only, written from the format description.

It mirrors Torch7's ``File:writeObject`` (binary, little-endian): type tag, reference index for tables
and torch objects (a repeated object is written as its index only), ``"V 1"`` version strings, tensors
as dims/sizes/strides/1-based offset + storage, storages as count + raw elements. It knows nothing of
``adain.torch7``; ``nn_from_reference`` turns the reference port's ``nn.Sequential`` into the Lua
module tables the original release holds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

_TYPES = {np.dtype("<f4"): "Float", np.dtype("<f8"): "Double", np.dtype("<i8"): "Long"}


@dataclass
class Lua:
    """A Torch7 class instance: class name and field table."""

    class_name: str
    fields: dict = field(default_factory=dict)


@dataclass
class Storage:
    array: np.ndarray


@dataclass
class Tensor7:
    """A tensor view: ``storage`` seen with ``sizes``/``strides`` from the 0-based ``offset``."""

    storage: Storage
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0


@dataclass
class Function:
    """A serialized Lua function (tag 6): bytecode the reader must refuse."""

    bytecode: bytes = b"\x1bLua"


def tensor(t: torch.Tensor, dtype=np.float32) -> Tensor7:
    arr = np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype))
    strides = tuple(s // arr.itemsize for s in arr.strides)
    return Tensor7(Storage(arr.reshape(-1)), tuple(arr.shape), strides)


class Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.index: dict[int, int] = {}

    def i32(self, v: int) -> None:
        self.out += struct.pack("<i", v)

    def i64(self, *vs: int) -> None:
        self.out += struct.pack(f"<{len(vs)}q", *vs)

    def string_raw(self, s: str) -> None:
        b = s.encode()
        self.i32(len(b))
        self.out += b

    def _ref(self, obj: Any) -> bool:
        """Write the reference index; True if the object was already written (index only)."""
        if id(obj) in self.index:
            self.i32(self.index[id(obj)])
            return True
        self.index[id(obj)] = len(self.index) + 1
        self.i32(self.index[id(obj)])
        return False

    def obj(self, o: Any) -> None:
        if o is None:
            self.i32(0)
        elif isinstance(o, bool):
            self.i32(5)
            self.i32(1 if o else 0)
        elif isinstance(o, (int, float)):
            self.i32(1)
            self.out += struct.pack("<d", float(o))
        elif isinstance(o, str):
            self.i32(2)
            self.string_raw(o)
        elif isinstance(o, dict):
            self.i32(3)
            if self._ref(o):
                return
            self.i32(len(o))
            for k, v in o.items():
                self.obj(k)
                self.obj(v)
        elif isinstance(o, Function):
            self.i32(6)
            self.string_raw(o.bytecode.decode("latin-1"))
        else:
            self.i32(4)
            if self._ref(o):
                return
            self.string_raw("V 1")
            if isinstance(o, Lua):
                self.string_raw(o.class_name)
                self.obj(o.fields)
            elif isinstance(o, Storage):
                self.string_raw(f"torch.{_TYPES[o.array.dtype]}Storage")
                self.i64(o.array.size)
                self.out += o.array.tobytes()
            elif isinstance(o, Tensor7):
                self.string_raw(f"torch.{_TYPES[o.storage.array.dtype]}Tensor")
                self.i32(len(o.sizes))
                self.i64(*o.sizes)
                self.i64(*o.strides)
                self.i64(o.offset + 1)
                self.obj(o.storage)
            else:
                raise TypeError(type(o))


def dumps(o: Any) -> bytes:
    w = Writer()
    w.obj(o)
    return bytes(w.out)


def _lua_module(m: nn.Module, conv_2d_weight: bool) -> Lua:
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        weight = m.weight.reshape(m.out_channels, -1) if conv_2d_weight else m.weight
        return Lua(
            "nn.SpatialConvolutionMM" if conv_2d_weight else "nn.SpatialConvolution",
            {"nInputPlane": m.in_channels, "nOutputPlane": m.out_channels, "kW": kw, "kH": kh, "dW": 1, "dH": 1,
             "padW": 0, "padH": 0, "weight": tensor(weight), "bias": tensor(m.bias),
             "gradWeight": tensor(torch.zeros(0)), "train": False, "output": tensor(torch.zeros(0))},
        )  # fmt: skip
    if isinstance(m, nn.ReflectionPad2d):
        left, right, top, bottom = m.padding
        return Lua("nn.SpatialReflectionPadding", {"pad_l": left, "pad_r": right, "pad_t": top, "pad_b": bottom})
    if isinstance(m, nn.ReLU):
        return Lua("nn.ReLU", {"threshold": 0, "val": 0, "inplace": False})
    if isinstance(m, nn.MaxPool2d):
        return Lua(
            "nn.SpatialMaxPooling", {"kW": 2, "kH": 2, "dW": 2, "dH": 2, "padW": 0, "padH": 0, "ceil_mode": True}
        )
    if isinstance(m, nn.Upsample):
        return Lua("nn.SpatialUpSamplingNearest", {"scale_factor": 2})
    raise TypeError(type(m))


def nn_from_reference(seq: nn.Sequential, conv_2d_weight: bool = False) -> Lua:
    """The Lua ``nn.Sequential`` (1-based ``modules`` table) of a reference-port ``nn.Sequential``."""
    modules = {i + 1: _lua_module(m, conv_2d_weight) for i, m in enumerate(seq)}
    return Lua("nn.Sequential", {"modules": modules, "train": False})


def write(path: Path, o: Any) -> Path:
    path.write_bytes(dumps(o))
    return path


def nested_tables(depth: int) -> bytes:
    """``{1: {1: ... {1: 0} ...}}`` nested ``depth`` tables deep, written iteratively (``dumps`` would recurse)."""
    w = Writer()
    for index in range(1, depth + 1):
        w.i32(3)  # table
        w.i32(index)  # reference index
        w.i32(1)  # one pair
        w.obj(1)  # key
    w.obj(0)  # the innermost value
    return bytes(w.out)
