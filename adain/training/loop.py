"""The decoder training loop: ``train(config)``.

``train`` runs the loop -- data, step, logs, samples, checkpoints, final export -- and reports what
happens through a callback; it never prints. Options and defaults are ``TrainConfig`` (``config``);
the command line (``adain train``, ``python -m train``) lives in ``adain.cli.train``.

Data-parallel runs (``torchrun --nproc_per_node N -m train ...``) are detected from the ``WORLD_SIZE``
environment variable: every rank trains on its own positions of the data order, DistributedDataParallel
averages the gradients, and rank 0 alone writes logs, samples, checkpoints and the final model.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import AdaINError
from ..modeling.decoder import Decoder
from ..modeling.encoder import CONTENT_LAYER
from ..modeling.ops import adain
from ..runtime import resolve_device
from ..weights.hub import push_to_hub
from .checkpoint import capture_rng_state, load_latest_checkpoint, restore_rng_state, save_checkpoint
from .config import TrainConfig
from .data import Batch, ImageStream, PairDataset, StepBatchSampler, collate_pairs, ignore_stop_signals
from .report import ScalarLog, draw_loss_curve, sample_grid
from .setup import export_final, load_decoder, load_encoder
from .step import LossWeights, StepResult, frozen, learning_rate, make_optimizer, train_step

__all__ = ["TrainingError", "Interrupted", "train", "find_resume_state"]


class TrainingError(AdaINError, RuntimeError):
    """Training cannot go on: too many bad images, or the loss keeps being non-finite."""


class Interrupted(AdaINError):
    """SIGINT/SIGTERM stopped the run; a checkpoint was written at ``step``."""

    def __init__(self, step: int, path: Path | None) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint {path}; continue with --resume")
        self.step, self.path = step, path


Callback = Callable[[str, dict[str, Any]], None]


# ---- process setup ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0


def _init_distributed(device_spec: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        use_nccl = device_spec != "cpu" and torch.cuda.is_available()
        dist.init_process_group("nccl" if use_nccl else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _device(spec: str, dist_info: _Dist) -> torch.device:
    device = resolve_device(spec)
    if device.type == "cuda" and device.index is None:  # one GPU per process in data-parallel runs
        device = torch.device("cuda", dist_info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def _stop_on_signals(stop: dict):
    """SIGINT/SIGTERM only set a flag; the loop saves a checkpoint and returns at the end of the step."""
    def handler(signum, frame):
        stop["signal"] = signum

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot be caught here
        previous = {}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ---- the loop ----------------------------------------------------------------------------------------

def train(config: TrainConfig, callback: Callback | None = None, *, resume_state: dict | None = None) -> Path:
    """Train a decoder as ``config`` says; returns ``RUN_DIR/final`` (a ``save_pretrained`` directory).

    ``callback(event, info)`` receives ``"start"``, ``"step"`` (every step, with a ``StepResult``),
    ``"log"``, ``"checkpoint"``, ``"invalid_checkpoint"``, ``"bad_image"`` and ``"done"`` events.
    ``resume_state`` is a checkpoint dict (``main`` finds it with ``--resume``). Raises ``Interrupted``
    after saving a checkpoint when SIGINT/SIGTERM arrives, ``TrainingError`` when training cannot go on.
    """
    config = config.validate()
    emit = callback or (lambda event, info: None)
    dist_info = _init_distributed(config.device)
    is_main = dist_info.rank == 0
    device = _device(config.device, dist_info)
    run_dir = Path(config.out)
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    _seed_everything(config.seed)  # same on every rank: identical initial decoders

    encoder = frozen(load_encoder(config.vgg)).to(device)
    torch.manual_seed(config.seed)  # the initial decoder depends on the seed alone, not on how the encoder was built
    decoder = (load_decoder(config.init_decoder) if config.init_decoder else Decoder()).to(device)
    on_cuda = device.type == "cuda"
    # channels_last: faster convolutions with cuDNN and, measured here, 5-10% faster with oneDNN on CPU too.
    encoder, decoder = encoder.to(memory_format=torch.channels_last), decoder.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(decoder.parameters(), config.lr)
    start_step, bad, nonfinite_total = 0, set(), 0
    if resume_state is not None:
        decoder.load_state_dict(resume_state["decoder"], strict=True)
        optimizer.load_state_dict(resume_state["optimizer"])
        restore_rng_state(resume_state["rng"])
        start_step = int(resume_state["step"])
        bad = set(resume_state["data"].get("bad", []))
        nonfinite_total = int(resume_state["data"].get("nonfinite", 0))
    autocast_dtype = torch.bfloat16 if config.dtype == "bfloat16" or (config.dtype == "auto" and on_cuda) else None

    model = decoder
    average = None
    if dist_info.world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(decoder, device_ids=[device.index] if on_cuda else None)

        def average(values: torch.Tensor) -> torch.Tensor:
            dist.all_reduce(values)  # a NaN on any rank makes the sum NaN: every rank skips together
            return values / dist_info.world
    step_encoder = torch.compile(encoder) if config.compile else encoder
    step_model = torch.compile(model) if config.compile else model

    content = ImageStream(config.content_dir, image_size=config.image_size, crop_size=config.crop_size,
                          seed=config.seed, stream=0, min_side=config.min_image_side)
    style = ImageStream(config.style_dir, image_size=config.image_size, crop_size=config.crop_size,
                        seed=config.seed, stream=1, min_side=config.min_image_side)
    dataset = PairDataset(content, style)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatchSampler(start_step, config.batch_size, dist_info.rank, dist_info.world),
        num_workers=config.workers, collate_fn=collate_pairs, pin_memory=on_cuda, worker_init_fn=ignore_stop_signals,
        prefetch_factor=4 if config.workers > 0 else None, persistent_workers=False,
    )
    samples = collate_pairs([dataset[k] for k in range(min(4, config.batch_size))]) if is_main else None
    log = ScalarLog(run_dir, start_step) if is_main else None
    weights = LossWeights(config.content_weight, config.style_weight, tuple(config.style_layer_weights))
    emit("start", {"start_step": start_step, "max_iter": config.max_iter, "device": str(device),
                   "world_size": dist_info.world, "content_images": len(content), "style_images": len(style),
                   "autocast": str(autocast_dtype) if autocast_dtype else "float32"})

    def checkpoint(step: int) -> Path | None:
        if not is_main:
            return None
        state = {"step": step, "decoder": decoder.state_dict(), "optimizer": optimizer.state_dict(),
                 "rng": capture_rng_state(), "config": asdict(config),
                 "data": {"seed": config.seed, "next_step": step, "bad": sorted(bad), "nonfinite": nonfinite_total}}
        path = save_checkpoint(run_dir, state, keep=config.keep_checkpoints)
        emit("checkpoint", {"step": step, "path": path})
        return path

    stop: dict = {}
    in_a_row, window, last_saved, last_path = 0, [], start_step, None
    tick = time.perf_counter()
    batches = iter(loader)
    with _stop_on_signals(stop):
        for step in range(start_step, config.max_iter):
            batch: Batch = next(batches)
            _note_bad(batch.bad, bad, content, style, config, run_dir if is_main else None, emit)
            c = batch.content.to(device, non_blocking=True)
            s = batch.style.to(device, non_blocking=True)
            c, s = c.contiguous(memory_format=torch.channels_last), s.contiguous(memory_format=torch.channels_last)
            lr = learning_rate(config.lr, config.lr_decay, step)
            result = train_step(step_encoder, step_model, optimizer, c, s, weights, lr,
                                autocast_dtype=autocast_dtype, average=average)
            in_a_row = 0 if result.applied else in_a_row + 1
            nonfinite_total += 0 if result.applied else 1
            if in_a_row >= config.max_nonfinite:
                raise TrainingError(
                    f"the loss was NaN or infinite for {in_a_row} steps in a row (step {step}): the learning rate "
                    f"may be too high (--lr {config.lr}), or the --vgg weights are not the normalised VGG-19 "
                    "(check the file; a random or wrong encoder gives exploding features)")
            done = step + 1
            window.append(result)
            emit("step", {"step": done, "result": result, "images": config.batch_size * dist_info.world})
            if is_main and (done % config.log_every == 0 or done == config.max_iter):
                now = time.perf_counter()
                row = _log_row(done, window, len(window) * config.batch_size * dist_info.world / (now - tick),
                               nonfinite_total, len(bad))
                log.write(row)
                emit("log", row)
                window, tick = [], now
            if is_main and config.sample_every and done % config.sample_every == 0:
                _write_samples(decoder, encoder, samples, device, run_dir / "samples" / f"step-{done:08d}.png")
            if done % config.save_every == 0:
                last_saved, last_path = done, checkpoint(done)
            if _should_stop(stop, dist_info, device):
                path = checkpoint(done) if last_saved != done else last_path
                if log:
                    log.close()
                raise Interrupted(done, path)
    if last_saved != config.max_iter and start_step < config.max_iter:
        checkpoint(config.max_iter)
    final = run_dir / "final"
    if is_main:
        log.close()
        export_final(encoder, decoder, final, description=(
            f"Decoder trained with adain train: {config.max_iter} steps, batch {config.batch_size}, content "
            f"{config.content_dir}, style {config.style_dir}, style weight {config.style_weight}."))
        draw_loss_curve(run_dir / "log.csv", run_dir / "loss_curve.png")
        if config.push_to_hub:
            push_to_hub(final, config.push_to_hub, commit_message="adain train: final decoder")
        emit("done", {"final": final, "nonfinite_skipped": nonfinite_total, "bad_images": len(bad)})
    return final


def _note_bad(messages, bad: set, content: ImageStream, style: ImageStream, config: TrainConfig,
              run_dir: Path | None, emit: Callback) -> None:
    new = [m for m in messages if m not in bad]
    if not new:
        return
    bad.update(new)
    for m in new:
        emit("bad_image", {"message": m})
    if run_dir is not None:
        (run_dir / "skipped.txt").write_text("".join(f"{m}\n" for m in sorted(bad)))
    for stream in (content, style):
        count = sum(1 for m in bad if m.startswith(str(stream.root)))
        if count > config.max_bad_fraction * len(stream):
            raise TrainingError(
                f"{stream.root}: {count} of {len(stream)} images are unreadable or too small (over "
                f"--max-bad-fraction {config.max_bad_fraction}); see {run_dir or 'RUN_DIR'}/skipped.txt")


def _should_stop(stop: dict, dist_info: _Dist, device: torch.device) -> bool:
    if dist_info.world == 1:
        return bool(stop)
    import torch.distributed as dist

    flag = torch.tensor([1 if stop else 0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # one rank signalled: every rank stops at the same step
    return bool(flag.item())


def _log_row(step: int, window: list[StepResult], images_per_s: float, nonfinite: int, bad: int) -> dict:
    ok = [r for r in window if r.applied and math.isfinite(r.loss)] or window
    mean = lambda key: sum(getattr(r, key) for r in ok) / len(ok)  # noqa: E731
    return {"step": step, "loss": mean("loss"), "content": mean("content"), "style": mean("style"),
            "lr": window[-1].lr, "images_per_s": round(images_per_s, 3), "nonfinite_skipped": nonfinite,
            "bad_images": bad}


@torch.no_grad()
def _write_samples(decoder: nn.Module, encoder: nn.Module, samples: Batch, device: torch.device, path: Path) -> None:
    c, s = samples.content.to(device), samples.style.to(device)
    out = decoder(adain(encoder(c)[CONTENT_LAYER], encoder(s)[CONTENT_LAYER]))
    sample_grid(c, s, out, path)


def find_resume_state(run_dir: str | os.PathLike, on_invalid: Callable[[Path, str], None] | None = None) -> dict | None:
    """The newest valid checkpoint's state in ``run_dir`` (``None`` if none); invalid newer ones reported."""
    found = load_latest_checkpoint(run_dir, on_invalid)
    return None if found is None else found[1]
