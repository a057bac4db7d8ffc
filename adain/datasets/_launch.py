"""Which share of the dataset this process computes, and on which device, from its arguments and from the
variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

Shards share nothing but the file system: no process group is started, so no rank ever waits for another,
and a rank that fails leaves the others running and its own finished outputs in place (a rerun resumes it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from ..errors import InputError


def _env_int(env: Mapping[str, str], name: str, minimum: int) -> int | None:
    text = env.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise InputError(f"{name}: the environment variable must be an integer >= {minimum}, got {text!r}")
    return value


def launch_shard(
    shard_index: int, num_shards: int, device: str | torch.device | None, env: Mapping[str, str] | None = None
) -> tuple[int, int, str | torch.device | None]:
    """The shard this process computes and its device.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) each of the ``num_shards`` shards is split again over the ranks:
    rank ``r`` computes shard ``shard_index * WORLD_SIZE + r`` of ``num_shards * WORLD_SIZE`` (a Slurm array of
    torchrun jobs splits the dataset over every GPU), and ``device`` ``None`` or ``"cuda"`` means
    ``cuda:LOCAL_RANK`` where CUDA is available: one GPU per rank.

    Arguments:
        shard_index: this job's shard, ``0 <= shard_index < num_shards``.
        num_shards: how many shards the dataset is split into.
        device: the device asked for.
        env: the environment (default ``os.environ``).

    Returns:
        ``(shard_index, num_shards, device)`` for this process.
    """
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1) or 1
    if world == 1:
        return shard_index, num_shards, device
    rank = _env_int(env, "RANK", 0)
    if rank is None or rank >= world:
        raise InputError(f"RANK: expected an integer below WORLD_SIZE={world}, got {env.get('RANK')!r}")
    local = _env_int(env, "LOCAL_RANK", 0) or 0
    if (device is None or str(device) == "cuda") and torch.cuda.is_available():
        device = torch.device("cuda", local % torch.cuda.device_count())
    return shard_index * world + rank, num_shards * world, device
