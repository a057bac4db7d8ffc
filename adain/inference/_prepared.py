"""The model as a ``Stylizer`` runs it, prepared once per model and setting and then reused.

Preparing means: a copy of the caller's ``AdaINModel`` (never modified) on the device, in the compute
dtype and memory layout, in eval mode without gradients, and on the CPU with fused kernels
(``adain.modeling._fused``) or, when asked, compiled (``adain.inference._compiled``). That costs a copy of the weights
(and compilations), so ``prepare`` remembers the result per (model, device, dtype, layout, fusion,
compile options): ``adain.stylize(..., model=m)`` called again with the same ``m`` pays nothing, and a new
``Stylizer(m, compile=True)`` reuses the graphs already compiled for ``m``.

A remembered copy is served only while the model is unchanged. Its fingerprint is cheap to read and
moves whenever the weights can have changed through the normal ways: each parameter's identity, storage
address, version counter (bumped by every in-place change: ``load_state_dict``, optimiser steps,
``with torch.no_grad(): p.add_(...)``), dtype, device and shape (``.to()``, replaced submodules). Writes
through ``p.data``, which bypass the version counter, are not seen: after those, build a new model or call
``clear()``. The cache holds models weakly: an entry goes when its model is garbage collected.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ._compiled import CompiledModel, compile_options
from ..model import AdaINModel
from ..modeling._fused import FusedDecoder, FusedEncoder, fusable


@dataclass(frozen=True)
class _Setting:
    device: torch.device
    dtype: torch.dtype
    memory_format: torch.memory_format
    fuse: bool
    compile: tuple | None = None  # the torch.compile arguments, hashable


@dataclass(frozen=True)
class _Entry:
    fingerprint: tuple
    model: AdaINModel | CompiledModel


_cache: weakref.WeakKeyDictionary[AdaINModel, dict[_Setting, _Entry]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def fingerprint(model: AdaINModel) -> tuple:
    """What changes whenever ``model``'s weights may have changed (see the module docstring)."""
    return tuple(
        (name, id(t), t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape))
        for name, t in [*model.named_parameters(), *model.named_buffers()]
    )


def prepare(model: AdaINModel, device: torch.device, dtype: torch.dtype,
            memory_format: torch.memory_format = torch.channels_last, *, fuse: bool = True,
            compile: bool | str | Mapping | None = None) -> AdaINModel | CompiledModel:
    """``model`` ready to run on ``device`` in ``dtype`` (eval, no gradients), from the cache when unchanged.

    Arguments:
        fuse: use the fused CPU kernels where ``adain.modeling._fused.fusable`` says they work (the
            encoder and decoder are then ``FusedEncoder``/``FusedDecoder``; float32 values unchanged).
        compile: ``None``/``False``, or ``True``, a mode name or ``torch.compile`` arguments
            (``adain.inference._compiled.compile_options``, which refuses bad values): a ``CompiledModel`` of an unfused
            copy instead.
    Returns:
        An ``AdaINModel`` (or ``CompiledModel``) to treat as read-only: it is shared by every ``Stylizer``
        of ``model`` with these settings. ``model`` itself when it is ready as it is and nothing is to be
        fused or compiled.
    """
    if compile is not None and compile is not False:
        compile = compile_options(compile, device)
        setting = _Setting(device, dtype, memory_format, False, _hashable(compile))
        # A copy of its own even when the model is ready: an entry must not hold its key alive.
        return _cached(model, setting, lambda: CompiledModel(_prepared_copy(model, _Setting(device, dtype,
                                                             memory_format, False)), compile))
    fuse = fuse and fusable(device, dtype)
    if not fuse and _ready(model, device, dtype, memory_format):
        return model
    setting = _Setting(device, dtype, memory_format, fuse)
    return _cached(model, setting, lambda: _prepared_copy(model, setting))


def _cached(model: AdaINModel, setting: _Setting, build: Callable[[], AdaINModel | CompiledModel]):
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
    ready = copy.deepcopy(model).to(device=setting.device, dtype=setting.dtype, memory_format=setting.memory_format)
    ready = ready.eval().requires_grad_(False)
    if setting.fuse:
        ready.encoder = FusedEncoder(ready.encoder)
        ready.decoder = FusedDecoder(ready.decoder)
    return ready


def clear() -> None:
    """Forget every prepared model (their memory is freed once no ``Stylizer`` uses them)."""
    with _lock:
        _cache.clear()


def cached_models() -> int:
    """How many models have prepared copies in the cache (for tests and diagnostics)."""
    with _lock:
        return len(_cache)
