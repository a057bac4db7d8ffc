"""One policy for where and how the package computes: the device, the compute dtype, the memory budget.

Both backends (``Stylizer``/``stylize`` and ``gatys``) and the trainer resolve their ``device``,
``dtype`` and ``max_memory`` arguments here, so the same value means the same thing everywhere:

- ``device=None`` (or ``"auto"``): CUDA when available, else the CPU. A named device must be one this
  machine has (``available_devices``): ``"cpu"``, ``"cuda"``/``"cuda:N"``, or ``"mps"`` on Apple silicon;
  anything else is an ``InputError`` listing what is available.
- ``dtype=None`` (or ``"auto"``): bfloat16 on a CUDA device that supports it and on a CPU that computes
  bf16 natively (AVX512-BF16 or AMX-BF16, ``cpu_native_bf16``), float32 elsewhere. A CPU without native
  bf16 only emulates it (measured about 7x *slower* than float32 on an AVX2 EPYC), so it keeps float32.
  ``ADAIN_CPU_BF16=0`` (or ``1``) in the environment overrides the CPU detection. Statistics and losses
  are float32 whatever the compute dtype.
- ``max_memory=None``: 80% of the memory free on the device when the call starts; ``None`` again when
  the platform cannot tell (then nothing is refused).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, overload

import torch

from ._arguments import check_int, environment_error
from .errors import InputError

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
BUDGET_FRACTION = 0.8
"""Share of the free memory a call may plan to use when ``max_memory`` is not given: the rest is headroom
for allocator fragmentation and for whatever else runs on the machine."""


def available_devices() -> list[str]:
    """The devices this machine offers, as ``resolve_device`` accepts them: ``cpu``, each ``cuda:N``, ``mps``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def _usable(dev: torch.device) -> bool:
    if dev.type == "cpu":
        return dev.index is None
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index is None or dev.index < torch.cuda.device_count())
    if dev.type == "mps":
        return torch.backends.mps.is_available() and dev.index in (None, 0)
    return False  # meta, xla, ...: nothing in this package runs there


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when available, else CPU; a name or device must be one of
    ``available_devices()`` (``"cuda"`` without an index is accepted as is), else ``InputError``."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or not _usable(dev):
        raise InputError(f"device: {device!r} is not available here (available: {', '.join(available_devices())})")
    return dev


NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""``/proc/cpuinfo`` flags of x86 CPUs that compute bf16 dot products in hardware (Cooper Lake and later
Xeons, Zen 4 and later). oneDNN uses them for bf16 convolutions; without them it converts to float32."""


def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none, e.g. macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively, so that bf16 is the faster CPU dtype.

    ``flags``: CPU feature flags to decide from (default: this machine's ``/proc/cpuinfo``). The
    environment variable ``ADAIN_CPU_BF16`` (``0``/``1``) overrides the detection when set.
    bf16 output measured against float32 on calibrated random weights: see docs/guides/speed.md.
    """
    forced = os.environ.get("ADAIN_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise environment_error("ADAIN_CPU_BF16", forced, "expected 0 or 1 (or unset: detect from the CPU)")
    return bool(NATIVE_BF16_FLAGS & (_cpu_flags() if flags is None else frozenset(flags)))


def resolve_dtype(
    dtype: str | torch.dtype | None, device: torch.device, allowed: tuple[str, ...] = tuple(DTYPES)
) -> torch.dtype:
    """The compute dtype: ``None``/``"auto"`` is bfloat16 on a CUDA device with bf16 support and on a CPU
    with native bf16 (``cpu_native_bf16``), else float32.

    Names (``"bfloat16"``, ``"bf16"``, ...) and torch dtypes are accepted when listed in ``allowed``.
    """
    if dtype is None or dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "cpu" and "bfloat16" in allowed and cpu_native_bf16():
            return torch.bfloat16
        return torch.float32
    name: str | None
    if isinstance(dtype, str):
        name = _DTYPE_ALIASES.get(dtype, dtype)
    else:
        name = next((n for n, d in DTYPES.items() if d == dtype), None)
    if name in allowed:
        return DTYPES[name]
    raise InputError(f"dtype: expected one of {', '.join(allowed)} or None (automatic), got {dtype!r}")


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` now: ``torch.cuda.mem_get_info`` on CUDA, ``MemAvailable`` (else the
    available physical pages) on the CPU; ``None`` when the platform cannot tell."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


@overload
def check_max_memory(max_memory: None) -> None: ...
@overload
def check_max_memory(max_memory: float) -> int: ...
@overload
def check_max_memory(max_memory: Any) -> int | None: ...
def check_max_memory(max_memory: Any) -> int | None:
    """``max_memory`` as an ``int`` number of bytes (numpy integers and integral floats such as ``2e9``
    accepted) or ``None``."""
    return check_int(max_memory, "max_memory", allow_none=True, hint=" (bytes; None = 80% of the free memory)")


def memory_budget(device: torch.device, max_memory: int | None = None) -> int | None:
    """Bytes a call may use on ``device``: ``max_memory`` when given, else ``BUDGET_FRACTION`` of the
    free memory, or ``None`` when it cannot be told (callers then refuse nothing)."""
    if max_memory is not None:
        return int(max_memory)
    free = free_memory(device)
    return None if free is None else int(free * BUDGET_FRACTION)


# ---- host <-> device copies -------------------------------------------------------------------------


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``. From the CPU to CUDA the copy goes through pinned memory with ``non_blocking``, so
    the host queues the work that follows instead of waiting for the copy (no synchronisation)."""
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def to_host(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``, ready to read. From CUDA to the CPU: one non-blocking copy into pinned memory and
    one wait for the stream, once per call rather than once per frame."""
    if x.device.type == "cuda" and device.type == "cpu":
        out = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        out.copy_(x, non_blocking=True)
        torch.cuda.current_stream(x.device).synchronize()
        return out
    return x.to(device)


# ---- the host allocator -----------------------------------------------------------------------------

LARGE_CALL_BYTES = 64 * 2**20
"""Calls whose work is planned at this many bytes or more (``Engine.frame_bytes`` x frames: a 240x240 image
and up) keep freed blocks in the heap while they run (``host_allocator``)."""

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_GLIBC_MMAP_MAX, _GLIBC_TRIM_THRESHOLD = 65536, 128 * 1024  # glibc's defaults, restored after a large call
_allocator_lock = threading.Lock()
_large_calls = 0  # large calls running now (threads): the heap settings hold while there is one
_libc: Any = False  # the C library, not looked up yet


def glibc() -> Any | None:
    """The C library when it is glibc (it has ``malloc_trim``), else ``None`` (musl, macOS, Windows)."""
    global _libc
    if _libc is False:
        try:
            lib = ctypes.CDLL(None)
            _libc = lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None
        except (OSError, TypeError):  # TypeError: Windows has no "this process" library
            _libc = None
    return _libc


@contextmanager
def host_allocator(work_bytes: int) -> Iterator[None]:
    """The package's one policy for the host's memory allocator, around one call planned at ``work_bytes``.

    glibc's malloc keeps freed blocks of every size it has seen, and serves blocks over its mmap threshold
    (at most 32 MB) with fresh mappings that are unmapped on free. So a long run over ever-new image sizes
    creeps (measured: 60 MB more after 300 calls of random sizes), and a tiled image maps and faults in
    each tile's activations afresh (a fifth of its time in the kernel at 12000x12000). Here, on glibc:

    - every call ends with ``malloc_trim(0)``, which gives every free page back to the system, so the
      process returns to about its live size after each call whatever sizes came before (trimming only
      after large calls was measured not to be enough: the small calls between them crept by 117 MiB over
      80 calls of 16-256 px, against 108 MiB over 100 calls without any policy); it costs 0.1-0.2 ms when
      there is little to give back;
    - a call of ``LARGE_CALL_BYTES`` or more runs with large blocks served from the heap and freed memory
      kept there (``mallopt``: ``M_MMAP_MAX`` 0, ``M_TRIM_THRESHOLD`` at its maximum), so each tile and
      layer reuses the pages the previous one freed (measured at 1024x1024: kernel time 1.9 s -> 0.3 s
      untiled, 3.0 s -> 0.8 s in tiles of 512); glibc's defaults are restored when the last such call
      ends (calls may overlap in threads; meanwhile other threads' large blocks come from the heap too).

    Elsewhere (musl, macOS, Windows) it does nothing. ``benchmarks/bench_memory.py`` measures it.

    Arguments:
        work_bytes: the call's planned working memory (``Engine.frame_bytes`` x frames).
    """
    global _large_calls
    lib = glibc()
    if lib is None:
        yield
        return
    reuse = work_bytes >= LARGE_CALL_BYTES
    if reuse:
        with _allocator_lock:
            _large_calls += 1
            if _large_calls == 1:
                lib.mallopt(_M_MMAP_MAX, 0)
                lib.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield
    finally:
        if reuse:
            with _allocator_lock:
                _large_calls -= 1
                if _large_calls == 0:
                    lib.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX)
                    lib.mallopt(_M_TRIM_THRESHOLD, _GLIBC_TRIM_THRESHOLD)
        lib.malloc_trim(0)
