"""Choosing a device and asking how much memory it has free: shared by both backends."""

from __future__ import annotations

import os

import torch

from .errors import InputError

__all__ = ["resolve_device", "free_memory"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; a name or device is checked (``InputError`` if unusable)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device: {device!r} is not a device name such as 'cpu' or 'cuda' ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} requested but CUDA is not available; use device='cpu'")
    return dev


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
