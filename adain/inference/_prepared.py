"""The model as the engine runs it: prepared once per model and setting, then reused; compiled when asked.

**Preparing** means: a copy of the caller's ``AdaINModel`` (never modified) on the device, in the compute
dtype and memory layout, in eval mode without gradients, and on the CPU with fused kernels
(``adain.modeling._fused``) or, when asked, compiled (below). That costs a copy of the weights (and
compilations), so ``prepare`` remembers the result per (model, device, dtype, layout, fusion, compile
options): ``adain.stylize(..., model=m)`` called again with the same ``m`` pays nothing, and a new
``Stylizer(m, compile=True)`` reuses the graphs already compiled for ``m``.

A remembered copy is served only while the model is unchanged. Its fingerprint is cheap to read and
moves whenever the weights can have changed through the normal ways: each parameter's identity, storage
address, version counter (bumped by every in-place change: ``load_state_dict``, optimiser steps,
``with torch.no_grad(): p.add_(...)``), dtype, device and shape (``.to()``, replaced submodules). Writes
through ``p.data``, which bypass the version counter, are not seen: after those, build a new model or call
``clear()``. The cache holds models weakly: an entry goes when its model is garbage collected.

**Compiling** (``Stylizer(compile=True)``, opt-in): the encoder and decoder through ``torch.compile``, one
graph per shape bucket. A compiled graph is specialised to its input shape, and compiling costs seconds to
minutes, so each input is placed on a canvas of its *bucket* size (``bucket_side``: multiples of 64 up to
1024, then 16 steps per octave) and the result cropped: a run of mixed sizes compiles once per bucket, and
``CompiledModel.stats`` says how many times and for how long. The networks run on the canvas with the
image's borders kept where they are (``adain.modeling._canvas``), so the result is the uncompiled one up
to float rounding whatever the size, statistics included.

Modes, chosen by reasoning rather than measurement on a GPU (none was available; see docs/guides/speed.md):
on CUDA ``"reduce-overhead"`` (CUDA graphs: one launch per graph instead of ~40 kernel launches, which at
about 1 ms per 512^2 frame is a large share, with the shape fixed per bucket anyway; outputs are cloned
out of the graph's memory pool); on the CPU inductor with ``freezing`` (weights as constants: oneDNN
convolutions with prepacked weights and fused ReLUs). ``max-autotune`` is not the default: the network is
convolutions that go to cuDNN/oneDNN anyway, and it multiplies the compile time per bucket.

**onnxruntime** (``Stylizer(backend="onnxruntime")``, CPU, float32): ``OnnxModel``, whose ``encode`` and
``decode`` run onnxruntime sessions on the encoder and decoder exported once per set of weights and kept in
the package cache (``adain.export._networks``); ``"onnxruntime-int8"`` runs their int8 quantisation
(``adain.export._int8``). Everything else (statistics, AdaIN, masks, colour modes, tiling) stays in PyTorch.
"""

from __future__ import annotations

import copy
import os
import shutil
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from ..export._int8 import int8_networks
from ..export._networks import DECODER_INPUT, ENCODER_INPUT, NetworkFiles, float32_networks, session
from ..export._onnx import require_export_extra
from ..model import AdaINModel
from ..modeling._canvas import decode_on_canvas, encode_on_canvas
from ..modeling._fused import FusedDecoder, FusedEncoder, fusable

# ---- compiled models --------------------------------------------------------------------------------

RECOMPILE_LIMIT = 64
"""Graphs torch.compile may keep per function while a ``CompiledModel`` runs (torch's default, 8, would
silently fall back to eager after the 8th bucket)."""


def bucket_side(side: int) -> int:
    """The side a ``side``-pixel input is padded to: a multiple of 64 up to 1024, then of 1/16 of the next
    power of two (1080 -> 1152, 1920 -> 1920, 2160 -> 2304), at most 1/16 more pixels per side above 1024."""
    step = max(64, 2 ** ((max(side, 2) - 1).bit_length() - 4))
    return -(-side // step) * step


@dataclass
class CompileStats:
    """The compilations of one ``CompiledModel``: ``(graph, input shape, seconds)`` per first call of a
    bucket (the seconds include that first run; later calls of the same bucket compile nothing)."""

    compiles: list[tuple[str, tuple[int, ...], float]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.compiles)

    @property
    def seconds(self) -> float:
        return sum(s for _, _, s in self.compiles)


def compile_options(compile: bool | str | Mapping | None, device: torch.device) -> dict | None:
    """``torch.compile`` keyword arguments for ``Stylizer(compile=...)``: ``True`` (the defaults above), a
    mode name (``"max-autotune"``...), or a mapping of ``torch.compile`` arguments (``{"backend": "eager"}``);
    ``None`` for ``None``/``False`` (not compiled).

    Inductor on the CPU compiles C++: without a compiler that is refused here, in one line, rather than
    deep inside the first call.
    """
    if compile is None or compile is False:
        return None
    if isinstance(compile, Mapping):
        options = dict(compile)
    elif isinstance(compile, str):
        options = {"mode": compile}
    elif compile is True:
        options = {"mode": "reduce-overhead"} if device.type == "cuda" else {"options": {"freezing": True}}
    else:
        raise InputError(
            f"compile: expected True, a torch.compile mode name or a dict of its arguments, got {compile!r}"
        )
    if device.type == "cpu" and options.get("backend", "inductor") == "inductor" and not _cxx_compiler():
        raise InputError(
            "compile: torch.compile on the CPU needs a C++ compiler (g++ or clang++) and none was "
            "found; install one (e.g. apt-get install g++) or leave compile off"
        )
    return options


def _cxx_compiler() -> str | None:
    return os.environ.get("CXX") or next(filter(None, map(shutil.which, ("g++", "clang++", "c++"))), None)


class CompiledModel:
    """``encode``/``decode`` of a prepared ``AdaINModel`` through ``torch.compile``, shapes bucketed; the same
    inputs and outputs as the model's own methods.

    Arguments:
        model: the prepared model (eval, on its device and dtype, not fused).
        options: ``torch.compile`` keyword arguments (``compile_options``).
    """

    def __init__(self, model: AdaINModel, options: Mapping) -> None:
        self.model = model
        self.config = model.config
        self.stats = CompileStats()
        encoder, decoder = model.encoder, model.decoder
        self._eager = {
            "encode": lambda x, hv, wv: encode_on_canvas(encoder, x, hv, wv),
            "decode": lambda t, hv, wv: decode_on_canvas(decoder, t, hv, wv),
        }
        self._graphs = {name: torch.compile(fn, dynamic=False, **options) for name, fn in self._eager.items()}
        # CUDA graphs reuse their output memory on the next replay: such outputs are copied out.
        self._copy_out = options.get("mode") in ("reduce-overhead", "max-autotune")
        self._sizes: dict[tuple, tuple[Tensor, Tensor]] = {}
        self._seen: set[tuple] = set()
        self._failed = False

    def encode(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` image -> ``(N, 512, ceil(H/8), ceil(W/8))`` relu4_1 features, as ``AdaINModel.encode``."""
        h, w = x.shape[-2:]
        out = self._run("encode", x, bucket_side(h), bucket_side(w))
        return out[..., : -(-h // 8), : -(-w // 8)]

    def decode(self, t: Tensor) -> Tensor:
        """``(N, 512, h, w)`` features -> ``(N, 3, 8h, 8w)`` image, unclamped, as ``AdaINModel.decode``."""
        h, w = t.shape[-2:]
        return self._run("decode", t, bucket_side(8 * h) // 8, bucket_side(8 * w) // 8)[..., : 8 * h, : 8 * w]

    def _valid(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The valid size of ``x`` as 0-dim tensors on its device (made once per size: no copy per call)."""
        key = (tuple(x.shape[-2:]), x.device)
        if key not in self._sizes:
            self._sizes[key] = (torch.tensor(x.shape[-2], device=x.device), torch.tensor(x.shape[-1], device=x.device))
        return self._sizes[key]

    def _run(self, name: str, x: Tensor, height: int, width: int) -> Tensor:
        canvas = F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2]))  # what lies outside is never read
        canvas = canvas.contiguous(memory_format=torch.channels_last)
        hv, wv = self._valid(x)
        if self._failed:
            return self._eager[name](canvas, hv, wv)
        key = (name, tuple(canvas.shape), canvas.dtype)
        start = time.perf_counter()
        try:
            with torch._dynamo.config.patch(
                recompile_limit=RECOMPILE_LIMIT, accumulated_recompile_limit=4 * RECOMPILE_LIMIT
            ):
                out = self._graphs[name](canvas, hv, wv)
        except Exception as exc:  # noqa: BLE001 -- a compiler or backend failure: keep stylizing, uncompiled
            if key in self._seen:
                raise
            self._failed = True
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {reason}); running uncompiled",
                RuntimeWarning,
                stacklevel=4,
            )
            return self._eager[name](canvas, hv, wv)
        if key not in self._seen:
            self._seen.add(key)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)  # once per bucket, to time the compilation honestly
            self.stats.compiles.append((name, key[1], time.perf_counter() - start))
        return out.clone() if self._copy_out else out


# ---- onnxruntime --------------------------------------------------------------------------------------

BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8")
"""Values of ``Stylizer(backend=...)``: PyTorch (every device and dtype), or onnxruntime on the CPU in float32
(``"onnxruntime-int8"``: int8 convolutions, float32 statistics)."""


class OnnxModel:
    """``encode``/``decode`` of an ``AdaINModel`` as onnxruntime CPU sessions; the same inputs and outputs as
    the model's own methods (float32 CPU tensors; a channels-last input is copied to NCHW first).

    Arguments:
        config: the model's ``ModelConfig``.
        files: the two graphs (``adain.export._networks.NetworkFiles``).
        threads: intra-op threads of each session (default: torch's thread count).
    """

    def __init__(self, config, files: NetworkFiles, threads: int | None = None) -> None:
        _, ort = require_export_extra()
        self.config, self.files = config, files
        self._encoder, self._decoder = session(ort, files.encoder, threads), session(ort, files.decoder, threads)

    def encode(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` float32 image in [0, 1], sides at least 9 -> ``(N, 512, ceil(H/8), ceil(W/8))``."""
        (out,) = self._encoder.run(None, {ENCODER_INPUT: _numpy(x)})
        return torch.from_numpy(out)

    def decode(self, t: Tensor) -> Tensor:
        """``(N, 512, h, w)`` float32 features, sides at least 2 -> ``(N, 3, 8h, 8w)`` image, unclamped."""
        (out,) = self._decoder.run(None, {DECODER_INPUT: _numpy(t)})
        return torch.from_numpy(out)


def _numpy(x: Tensor):
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


def _onnx_model(model: AdaINModel, backend: str) -> OnnxModel:
    files = int8_networks(model) if backend == "onnxruntime-int8" else float32_networks(model)
    return OnnxModel(model.config, files)


# ---- the prepared-model cache ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Setting:
    device: torch.device
    dtype: torch.dtype
    memory_format: torch.memory_format
    fuse: bool
    compile: tuple | None = None  # the torch.compile arguments, hashable
    backend: str = "torch"


@dataclass(frozen=True)
class _Entry:
    fingerprint: tuple
    model: AdaINModel | CompiledModel | OnnxModel


_cache: weakref.WeakKeyDictionary[AdaINModel, dict[_Setting, _Entry]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def fingerprint(model: AdaINModel) -> tuple:
    """What changes whenever ``model``'s weights may have changed (see the module docstring)."""
    return tuple(
        (name, id(t), t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape))
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    )


def prepare(
    model: AdaINModel,
    device: torch.device,
    dtype: torch.dtype,
    memory_format: torch.memory_format = torch.channels_last,
    *,
    fuse: bool = True,
    compile: Mapping | None = None,
    backend: str = "torch",
) -> AdaINModel | CompiledModel | OnnxModel:
    """``model`` ready to run on ``device`` in ``dtype`` (eval, no gradients), from the cache when unchanged.

    Arguments:
        fuse: use the fused CPU kernels where ``adain.modeling._fused.fusable`` says they work (the
            encoder and decoder are then ``FusedEncoder``/``FusedDecoder``; float32 values unchanged).
        compile: ``None``, or ``torch.compile`` keyword arguments as ``compile_options`` makes them (the
            boundary checks the caller's value once): a ``CompiledModel`` of an unfused copy instead.
        backend: ``"torch"``, or one of the onnxruntime ``BACKENDS`` (CPU, float32; checked by the caller):
            an ``OnnxModel`` on the graphs exported once per set of weights (from the package cache).

    Returns:
        An ``AdaINModel`` (or ``CompiledModel``) to treat as read-only: it is shared by every ``Stylizer``
        of ``model`` with these settings. ``model`` itself when it is ready as it is and nothing is to be
        fused or compiled.
    """
    if backend != "torch":
        return _cached(
            model, _Setting(device, dtype, memory_format, False, None, backend), lambda: _onnx_model(model, backend)
        )
    if compile is not None:
        setting = _Setting(device, dtype, memory_format, False, _hashable(compile))
        # A copy of its own even when the model is ready: an entry must not hold its key alive.
        return _cached(
            model,
            setting,
            lambda: CompiledModel(_prepared_copy(model, _Setting(device, dtype, memory_format, False)), compile),
        )
    fuse = fuse and fusable(device, dtype)
    if not fuse and _ready(model, device, dtype, memory_format):
        return model
    setting = _Setting(device, dtype, memory_format, fuse)
    return _cached(model, setting, lambda: _prepared_copy(model, setting))


def _cached(model: AdaINModel, setting: _Setting, build: Callable[[], AdaINModel | CompiledModel | OnnxModel]):
    mark = fingerprint(model)
    with _lock:
        entry = _cache.get(model, {}).get(setting)
    if entry is not None and entry.fingerprint == mark:
        return entry.model
    ready = build()
    with _lock:
        _cache.setdefault(model, {})[setting] = _Entry(mark, ready)
    return ready


def _hashable(value):
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return id(value)
    return value


def _ready(model: AdaINModel, device: torch.device, dtype: torch.dtype, memory_format) -> bool:
    return not model.training and all(
        p.device == device and p.dtype == dtype and (p.dim() != 4 or p.is_contiguous(memory_format=memory_format))
        for p in model.parameters()
    )


def _prepared_copy(model: AdaINModel, setting: _Setting) -> AdaINModel:
    ready = copy.deepcopy(model).to(device=setting.device, dtype=setting.dtype).to(memory_format=setting.memory_format)
    ready = ready.eval().requires_grad_(False)
    if setting.fuse:
        # Drop-in stand-ins (same calls and attributes), registered under the submodules' names: the copy's
        # AdaINModel.encode/decode run them. Not VGGEncoder/Decoder subclasses, hence not plain assignments.
        ready.add_module("encoder", FusedEncoder(ready.encoder))
        ready.add_module("decoder", FusedDecoder(ready.decoder))
    return ready


def clear() -> None:
    """Forget every prepared model (their memory is freed once no ``Stylizer`` uses them)."""
    with _lock:
        _cache.clear()


def cached_models() -> int:
    """How many models have prepared copies in the cache (for tests and diagnostics)."""
    with _lock:
        return len(_cache)
