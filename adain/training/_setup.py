"""What a training run is set up with: this process (its rank in a data-parallel run, its device, its seeds,
whether every rank stops) and the weights going into and out of it (the frozen encoder, the initial decoder,
the exported model)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._arguments import environment_rank
from .._runtime import resolve_device
from ..model import AdaINModel, load_pretrained
from ..modeling._config import ModelConfig
from ..modeling._decoder import Decoder
from ..modeling._encoder import VGGEncoder
from ..weights._legacy import read_legacy_decoder, read_legacy_vgg

_LEGACY_SUFFIXES = (".pth", ".pt")


# ---- the process -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run (``torchrun``); one process is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0


def init_distributed(device_spec: str) -> Distributed:
    """Join the process group when ``WORLD_SIZE`` says this is one of several processes (NCCL on CUDA, else gloo)."""
    world = environment_rank("WORLD_SIZE", 1)
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        use_nccl = device_spec != "cpu" and torch.cuda.is_available()
        dist.init_process_group("nccl" if use_nccl else "gloo")
    return Distributed(
        dist.get_rank(),
        dist.get_world_size(),
        environment_rank("LOCAL_RANK"),
    )


def training_device(spec: str, dist_info: Distributed) -> torch.device:
    """The device this process trains on (``TrainConfig.device``; a bare ``cuda`` means this rank's own GPU)."""
    device = resolve_device(spec)
    if device.type == "cuda" and device.index is None:  # one GPU per process in data-parallel runs
        device = torch.device("cuda", dist_info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def data_parallel(
    decoder: nn.Module, device: torch.device, dist_info: Distributed
) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
    """The decoder as the training step calls it, and how the step averages values over ranks.

    One process: the decoder itself and no averaging (``None``). Several: the decoder wrapped in
    DistributedDataParallel (which averages the gradients) and an all-reduce mean.
    """
    if dist_info.world <= 1:
        return decoder, None
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model = DistributedDataParallel(decoder, device_ids=[device.index] if device.type == "cuda" else None)

    def average(values: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(values)  # a NaN on any rank makes the sum NaN: every rank skips together
        return values / dist_info.world

    return model, average


def should_stop(requested: bool, dist_info: Distributed, device: torch.device) -> bool:
    """Whether a stop was ``requested`` here or, in a data-parallel run, on any rank."""
    if dist_info.world == 1:
        return requested
    import torch.distributed as dist

    flag = torch.tensor([1 if requested else 0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # one rank asked: every rank stops at the same step
    return bool(flag.item())


# ---- the weights -----------------------------------------------------------------------------------


def load_encoder(spec: str) -> VGGEncoder:
    """The VGG encoder from a package directory, a legacy ``vgg_normalised.pth`` (fingerprint checked, as
    ``adain convert`` does), or a named weight."""
    path = Path(spec)
    if path.is_dir():
        return AdaINModel.from_pretrained(path).encoder
    if path.suffix in _LEGACY_SUFFIXES:
        encoder = VGGEncoder("relu5_1")
        encoder.load_state_dict(read_legacy_vgg(path), strict=True)
        return encoder
    return load_pretrained(spec).encoder


def load_decoder(spec: str) -> Decoder:
    """Decoder weights to fine-tune from: a package directory, a legacy ``decoder.pth``, or a named weight."""
    path = Path(spec)
    if path.is_dir():
        return AdaINModel.from_pretrained(path).decoder
    if path.suffix in _LEGACY_SUFFIXES:
        decoder = Decoder()
        decoder.load_state_dict(read_legacy_decoder(path), strict=True)
        return decoder
    return load_pretrained(spec).decoder


def export_final(encoder: VGGEncoder, decoder: Decoder, final: Path, *, description: str = "") -> Path:
    """Write the trained model in the package format (``AdaINModel.save_pretrained``) to ``final``."""
    model = AdaINModel(ModelConfig(encoder_last_layer=encoder.last_layer, description=description))
    model.encoder.load_state_dict(encoder.state_dict())
    model.decoder.load_state_dict(decoder.state_dict())
    return model.save_pretrained(final)
