"""Training checkpoints: everything needed to continue a run exactly, written so a crash cannot corrupt one.

A checkpoint is ``RUN_DIR/checkpoints/step-00001000.pt``, a ``torch.save`` dict with the decoder and
optimizer state, the step, the RNG states (Python, NumPy, torch CPU and CUDA), the data-order state
and the run's config. Each is written to a temporary file, fsynced, then renamed over the final name
(and the directory fsynced), so a killed process leaves either the previous set or a complete new
file, never a half-written one under a real name; the temporary of a killed run is removed by the next
checkpoint write (``adain._temporaries``: its name carries its owner's PID and host). A write that fails removes
its temporary file and raises ``CheckpointWriteError``, one line naming the checkpoint that is still there to
resume from; a full disk, however reported (``OSError`` ENOSPC/EDQUOT or torch's zip writer's
``RuntimeError``), is ``CheckpointDiskFullError``, also a ``DiskFullError`` naming the bytes needed and free.
Files are read with ``weights_only=True``: loading a checkpoint can never run code.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_path, disk_full_error, is_disk_full
from ..errors import AdaINError, DiskFullError
from ._errors import NamesSettings, Setting, TrainingError

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{8,})\.pt$")
_REQUIRED = ("step", "decoder", "optimizer", "rng", "data", "config")


class CheckpointWriteError(NamesSettings, AdaINError, OSError):
    """A checkpoint could not be written; the previous checkpoints are intact."""


class CheckpointDiskFullError(CheckpointWriteError, DiskFullError):
    """A checkpoint could not be written for lack of space or quota; the previous checkpoints are intact.
    ``errno`` (ENOSPC or EDQUOT) and ``filename`` (the checkpoint) are set."""


def capture_rng_state() -> dict[str, Any]:
    """Every global RNG state, as plain containers and tensors (loadable with ``weights_only=True``)."""
    numpy_state = np.random.get_state(legacy=True)
    if not isinstance(numpy_state, tuple):  # a dict: np.random.set_bit_generator replaced the legacy MT19937
        raise TrainingError(
            f"cannot checkpoint NumPy's global random state: its generator is "
            f"{numpy_state['bit_generator']}, not MT19937 (np.random.set_bit_generator); "
            "leave NumPy's global generator as it is while training"
        )
    kind, keys, pos, has_gauss, gauss = numpy_state
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng_state`` (CUDA states restored when CUDA is in use)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], *, keep: int = 3) -> Path:
    """Atomically write ``state`` (must hold ``step``) as the newest checkpoint; keep only the last ``keep``.

    Returns the checkpoint's path. Raises ``CheckpointWriteError`` when the file cannot be written; the
    checkpoints written before are then left as they were.
    """
    directory = Path(run_dir) / CHECKPOINT_DIR
    path = directory / f"step-{int(state['step']):08d}.pt"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Through a Python file object: a full disk is then an OSError (ENOSPC), not torch's C++ message.
        with atomic_path(path, durable=True, expected_bytes=_tensor_bytes(state)) as tmp, open(tmp, "wb") as f:
            torch.save(state, f)
    except (OSError, RuntimeError) as exc:
        raise _write_error(path, exc) from None
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def _tensor_bytes(state: Any) -> int:
    """The bytes of the tensors in ``state`` (nested dicts, lists, tuples): about a checkpoint's size."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(_tensor_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(_tensor_bytes(v) for v in state)
    return 0


def _write_error(path: Path, exc: Exception) -> CheckpointWriteError:
    """One line: which checkpoint could not be written, why, and which one a resumed run will use."""
    full = is_disk_full(exc) is not None
    if full:  # DiskFullError from atomic_path: the file, the bytes needed and free
        disk = exc if isinstance(exc, DiskFullError) else disk_full_error(path, exc)
        reason = str(disk).removeprefix(f"{path}: cannot write it, ").split("; nothing was written")[0]
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    advice = ("free some space and continue with " if full else "continue with ", Setting("resume", True))
    previous = [p for p in list_checkpoints(path.parent.parent) if p != path]
    kept = (
        (f"the previous checkpoint {previous[-1]} is intact: ", *advice)
        if previous
        else ("no checkpoint of this run was written yet",)
    )
    if not full:
        return CheckpointWriteError(f"cannot write checkpoint {path}: {reason}; ", *kept)
    error = CheckpointDiskFullError(f"cannot write checkpoint {path}: {reason}; ", *kept)
    error.errno, error.filename = is_disk_full(exc), str(path)
    return error


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files of a run, oldest first (by step)."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def _load_valid(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError("not a checkpoint dict")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"missing entries {missing}")
    for key, value in state["decoder"].items():
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"decoder weight {key!r} is not finite")
    return state


def load_latest_checkpoint(
    run_dir: str | os.PathLike, on_invalid: Callable[[Path, str], None] | None = None
) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads and is complete, as ``(path, state)``; ``None`` if there is none.

    A newer file that fails (truncated, overwritten, non-finite weights) is passed to
    ``on_invalid(path, reason)`` and the previous one is tried.
    """
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, _load_valid(path)
        except Exception as exc:  # noqa: BLE001 -- any failure to read means "not usable", reported
            if on_invalid is not None:
                on_invalid(
                    path, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                )
    return None
