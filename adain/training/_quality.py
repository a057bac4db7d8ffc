"""The decoder's quality at each checkpoint: the AdaIN paper's content and style losses on fixed pairs, and a grid.

The pairs are fixed for the whole run (and across resumes): the first ``eval_pairs`` crops of
``eval_content_dir`` x ``eval_style_dir`` when those folders are given (held out: images the run never trains
on), else the first pairs of the training data (the same pairs as the sample grids; then the losses track fit,
not generalisation, and the record says ``held_out`` false). Each checkpoint appends a row to
``RUN_DIR/quality.csv`` (step, content, style, held_out), saves ``samples/quality-<step>.png`` (rows of
content | style | output), logs ``quality/content``, ``quality/style`` and the grid to TensorBoard when it is
installed, and reports a ``QualityEvent``. The losses are ``adain.metrics.content_loss``/``style_loss``
(unit layer weights, whatever the training's ``style_layer_weights``), averaged over the pairs.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .._images import tensor_to_pil
from .._io import save_image
from ..metrics._losses import content_loss, style_loss
from ..modeling._encoder import CONTENT_LAYER
from ..modeling._ops import adain
from ._data import Batch, ImageStream, PairDataset, collate_pairs
from ._report import grid_image

QUALITY_NAME = "quality.csv"
QUALITY_FIELDS = ("step", "content", "style", "held_out")


@dataclass(frozen=True)
class QualitySet:
    """The fixed pairs scored at each checkpoint: ``pairs`` (a ``Batch``) and whether they are held out."""

    pairs: Batch
    held_out: bool


def quality_set(
    training: torch.utils.data.Dataset,
    eval_content_dir: str,
    eval_style_dir: str,
    n_pairs: int,
    *,
    image_size: int,
    crop_size: int,
    seed: int,
) -> QualitySet:
    """The pairs of the run: crops of the evaluation folders when both are given, else the first training pairs."""
    if not (eval_content_dir and eval_style_dir):
        return QualitySet(collate_pairs([training[k] for k in range(n_pairs)]), held_out=False)
    streams = [
        ImageStream(folder, image_size=image_size, crop_size=crop_size, seed=seed, stream=stream)
        for folder, stream in ((eval_content_dir, 2), (eval_style_dir, 3))
    ]
    dataset = PairDataset(*streams)
    return QualitySet(collate_pairs([dataset[k] for k in range(n_pairs)]), held_out=True)


@torch.no_grad()
def score_quality(
    encoder: nn.Module, decoder: nn.Module, pairs: Batch, device: torch.device
) -> tuple[float, float, torch.Tensor]:
    """Mean content and style losses of ``decoder`` on ``pairs`` and its outputs ``(B, 3, H, W)`` (on the CPU)."""
    was_training = decoder.training
    decoder.eval()
    try:
        c, s = pairs.content.to(device), pairs.style.to(device)
        out = decoder(adain(encoder(c)[CONTENT_LAYER], encoder(s)[CONTENT_LAYER])).float()
        loss_c = content_loss(encoder, out, c, s).mean().item()
        loss_s = style_loss(encoder, out, s).mean().item()
    finally:
        decoder.train(was_training)
    return loss_c, loss_s, out.cpu()


class QualityLog:
    """``RUN_DIR/quality.csv``; on resume from ``start_step`` rows after that step are dropped (as ``log.csv``'s)."""

    def __init__(self, run_dir: str | os.PathLike, start_step: int = 0) -> None:
        self.path = Path(run_dir) / QUALITY_NAME
        rows = read_quality(self.path) if start_step > 0 else []
        rows = [r for r in rows if int(r["step"]) <= start_step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=QUALITY_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, step: int, content: float, style: float, held_out: bool) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=QUALITY_FIELDS).writerow(
                {"step": step, "content": content, "style": style, "held_out": int(held_out)}
            )


def read_quality(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``quality.csv`` as dicts of strings (empty if there is no file)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("step")]


def quality_grid(pairs: Batch, outputs: torch.Tensor, path: Path) -> torch.Tensor:
    """Save rows of content | style | output as a PNG at ``path``; returns the grid ``(3, H, W)`` in [0, 1]."""
    grid = grid_image(pairs.content, pairs.style, outputs)
    save_image(tensor_to_pil(grid), path)
    return grid
