"""One policy for where and how the package computes: the device, the compute dtype, the memory budget.

Both backends (``Stylizer``/``stylize`` and ``gatys``) and the trainer resolve their ``device``,
``dtype`` and ``max_memory`` arguments here, so the same value means the same thing everywhere:

- ``device=None`` (or ``"auto"``): CUDA when available, else the CPU. A named device must be one this
  machine has (``available_devices``): ``"cpu"``, ``"cuda"``/``"cuda:N"``, or ``"mps"`` on Apple silicon;
  anything else is an ``InputError`` listing what is available.
- ``dtype=None`` (or ``"auto"``): bfloat16 on a CUDA device that supports it, float32 elsewhere.
  Statistics and losses are float32 whatever the compute dtype.
- ``max_memory=None``: 80% of the memory free on the device when the call starts; ``None`` again when
  the platform cannot tell (then nothing is refused).
"""

from __future__ import annotations

import os

import torch

from .arguments import check_int
from .errors import InputError

__all__ = ["resolve_device", "available_devices", "resolve_dtype", "free_memory", "memory_budget", "check_max_memory",
           "DTYPES"]

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


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device,
                  allowed: tuple[str, ...] = tuple(DTYPES)) -> torch.dtype:
    """The compute dtype: ``None``/``"auto"`` is bfloat16 on a CUDA device with bf16 support, else float32.

    Names (``"bfloat16"``, ``"bf16"``, ...) and torch dtypes are accepted when listed in ``allowed``.
    """
    if dtype is None or dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
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


def check_max_memory(max_memory) -> int | None:
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
