"""One training run's pieces and how they are set up: ``setup`` joins the process group, builds the models and
the optimizer, restores a checkpoint's state, opens the data and returns a ``Run``, which the loop (``_loop``) and
the finish (``_finish``) then use. ``note_bad`` keeps the run's count of unreadable images, found by the setup
(entries of the folders) and by the loop (images of a batch) alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._runtime import resolve_dtype
from ..modeling._decoder import Decoder
from ..modeling._encoder import VGGEncoder
from ._badfiles import count_under, too_many_bad
from ._checkpoint import restore_rng_state
from ._config import TrainConfig
from ._data import Batch, ImageStream, PairDataset, StepBatchSampler, collate_pairs
from ._errors import BadImagesError
from ._events import BadImageEvent, Reporter, StartEvent
from ._quality import QualityLog, QualitySet, quality_set
from ._report import ScalarLog
from ._rundir import SKIPPED_NAME
from ._setup import (
    Distributed,
    data_parallel,
    init_distributed,
    load_decoder,
    load_encoder,
    seed_everything,
    training_device,
)
from ._step import LossWeights, frozen, make_optimizer


@dataclass
class Run:
    """One run's pieces: built by ``setup``, used by the loop (``_loop``) and the finish (``_finish``).

    ``bad`` (unreadable images) and ``nonfinite`` (skipped steps) grow as the loop goes; every
    checkpoint saves them so that a resumed run goes on counting.
    """

    config: TrainConfig
    emit: Reporter
    dist: Distributed
    device: torch.device
    run_dir: Path
    encoder: VGGEncoder
    decoder: Decoder
    optimizer: torch.optim.Optimizer
    step_encoder: Callable[..., Any]  # the encoder and decoder as train_step calls them: compiled, and DDP-wrapped
    step_model: Callable[..., Any]
    average: Callable[[torch.Tensor], torch.Tensor] | None
    autocast_dtype: torch.dtype | None
    content: ImageStream
    style: ImageStream
    loader: torch.utils.data.DataLoader
    samples: Batch | None  # rank 0 only, as are the log and every file written
    log: ScalarLog | None
    quality: QualitySet | None  # rank 0 with eval_pairs > 0: the pairs scored at each checkpoint
    quality_log: QualityLog | None
    weights: LossWeights
    start_step: int
    bad: set[str]
    nonfinite: int

    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0


def setup(
    config: TrainConfig,
    emit: Reporter,
    resumed: tuple[Path | None, dict] | None,
    worker_init_fn: Callable[[int], None] | None,
) -> Run:
    """Join the process group, build the models and the optimizer, restore ``resumed`` (a checkpoint's path and
    state), open the data."""
    dist_info = init_distributed(config.device)
    is_main = dist_info.rank == 0
    device = training_device(config.device, dist_info)
    run_dir = Path(config.out)
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)  # same on every rank: identical initial decoders
    encoder, decoder, optimizer = _models(config, device)
    start_step, bad, nonfinite = _restore(resumed[1] if resumed else None, decoder, optimizer)
    step_encoder, step_model, average, autocast_dtype = _execution(config, encoder, decoder, device, dist_info)
    pin_memory = device.type == "cuda"
    content, style, loader = _data(config, start_step, dist_info, pin_memory=pin_memory, worker_init_fn=worker_init_fn)
    relu1_1, relu2_1, relu3_1, relu4_1 = config.style_layer_weights  # four: checked by validate()
    samples = collate_pairs([loader.dataset[k] for k in range(min(4, config.batch_size))]) if is_main else None
    run = Run(
        config=config,
        emit=emit,
        dist=dist_info,
        device=device,
        run_dir=run_dir,
        encoder=encoder,
        decoder=decoder,
        optimizer=optimizer,
        step_encoder=step_encoder,
        step_model=step_model,
        average=average,
        autocast_dtype=autocast_dtype,
        content=content,
        style=style,
        loader=loader,
        samples=samples,
        log=ScalarLog(run_dir, start_step) if is_main else None,
        quality=_quality_set(config, loader.dataset) if is_main and config.eval_pairs else None,
        quality_log=QualityLog(run_dir, start_step) if is_main and config.eval_pairs else None,
        weights=LossWeights(config.content_weight, config.style_weight, (relu1_1, relu2_1, relu3_1, relu4_1)),
        start_step=start_step,
        bad=bad,
        nonfinite=nonfinite,
    )
    emit(
        StartEvent(
            start_step=start_step,
            max_iter=config.max_iter,
            device=str(device),
            world_size=dist_info.world,
            content_images=len(content),
            style_images=len(style),
            autocast=str(autocast_dtype) if autocast_dtype else "float32",
            resumed_from=resumed[0] if resumed else None,
        )
    )
    note_bad(run, content.problems + style.problems)  # entries of the folders that could not be read
    return run


def _quality_set(config: TrainConfig, training: torch.utils.data.Dataset) -> QualitySet:
    return quality_set(
        training,
        config.eval_content_dir,
        config.eval_style_dir,
        config.eval_pairs,
        image_size=config.image_size,
        crop_size=config.crop_size,
        seed=config.seed,
    )


def _models(config: TrainConfig, device: torch.device) -> tuple[VGGEncoder, Decoder, torch.optim.Optimizer]:
    """The frozen encoder, the decoder to train (fresh, or ``init_decoder``) and its optimizer."""
    encoder = frozen(load_encoder(config.vgg)).to(device)
    torch.manual_seed(config.seed)  # the initial decoder depends on the seed alone, not on how the encoder was built
    decoder = (load_decoder(config.init_decoder) if config.init_decoder else Decoder()).to(device)
    # channels_last: faster convolutions with cuDNN and, measured here, 5-10% faster with oneDNN on CPU too.
    encoder, decoder = encoder.to(memory_format=torch.channels_last), decoder.to(memory_format=torch.channels_last)
    return encoder, decoder, make_optimizer(decoder.parameters(), config.lr)


def _restore(state: dict | None, decoder: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, set[str], int]:
    """Load a checkpoint's weights, optimizer and RNG states; returns its step, bad images and skipped steps."""
    if state is None:
        return 0, set(), 0
    decoder.load_state_dict(state["decoder"], strict=True)
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_state(state["rng"])
    return int(state["step"]), set(state["data"].get("bad", [])), int(state["data"].get("nonfinite", 0))


def _execution(
    config: TrainConfig, encoder: VGGEncoder, decoder: Decoder, device: torch.device, dist_info: Distributed
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[[torch.Tensor], torch.Tensor] | None, torch.dtype | None]:
    """How ``train_step`` runs the models: the encoder and the decoder it calls (compiled if ``config.compile``,
    the decoder DDP-wrapped in a data-parallel run), the gradient average (or ``None``) and the autocast dtype
    (``None``: float32)."""
    # "auto" means what dtype=None means everywhere (adain._runtime): bf16 on CUDA with bf16, else float32.
    dtype = resolve_dtype(config.dtype, device, allowed=("float32", "bfloat16"))
    model, average = data_parallel(decoder, device, dist_info)
    # dynamic=False: the encoder sees two batch sizes (content + style together, then the decoded batch);
    # with automatic dynamic shapes the second would replace the first graph by a slower symbolic one.
    step_encoder = torch.compile(encoder, dynamic=False) if config.compile else encoder
    step_model = torch.compile(model, dynamic=False) if config.compile else model
    return step_encoder, step_model, average, None if dtype == torch.float32 else dtype


def _data(
    config: TrainConfig,
    start_step: int,
    dist_info: Distributed,
    *,
    pin_memory: bool,
    worker_init_fn: Callable[[int], None] | None,
) -> tuple[ImageStream, ImageStream, torch.utils.data.DataLoader]:
    """The content and style streams and a loader giving this rank its batches from ``start_step`` on."""
    content = ImageStream(
        config.content_dir,
        image_size=config.image_size,
        crop_size=config.crop_size,
        seed=config.seed,
        stream=0,
        min_side=config.min_image_side,
    )
    style = ImageStream(
        config.style_dir,
        image_size=config.image_size,
        crop_size=config.crop_size,
        seed=config.seed,
        stream=1,
        min_side=config.min_image_side,
    )
    loader = torch.utils.data.DataLoader(
        PairDataset(content, style),
        batch_sampler=StepBatchSampler(start_step, config.batch_size, dist_info.rank, dist_info.world),
        num_workers=config.workers,
        collate_fn=collate_pairs,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn,
        prefetch_factor=4 if config.workers > 0 else None,
        persistent_workers=False,
    )
    return content, style, loader


def note_bad(run: Run, messages: Iterable[str]) -> None:
    """Record newly found unreadable images (``RUN_DIR/skipped.txt``); more than ``_badfiles`` tolerates stop the
    run."""
    new = [m for m in messages if m not in run.bad]
    if not new:
        return
    run.bad.update(new)
    for m in new:
        run.emit(BadImageEvent(message=m))
    skipped = run.run_dir / SKIPPED_NAME
    if run.is_main:
        skipped.write_text("".join(f"{m}\n" for m in sorted(run.bad)))
    for stream in (run.content, run.style):
        reason = too_many_bad(stream.root, count_under(stream.root, run.bad), len(stream), run.config.max_bad_fraction)
        if reason is not None:
            raise BadImagesError(*reason, f" {skipped} lists the bad files met so far")
