"""What a training run leaves for a person to look at: scalar logs, sample grids, the loss curve.

CSV is always written (``RUN_DIR/log.csv``); TensorBoard event files too when ``tensorboard`` is
installed. The loss curve is drawn with Pillow so that no plotting library is needed.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from .._images import tensor_to_pil
from .._io import save_image

LOG_FIELDS = ("step", "loss", "content", "style", "lr", "images_per_s", "nonfinite_skipped", "bad_images")
LOG_NAME = "log.csv"
TENSORBOARD_DIR = "tensorboard"


class ScalarLog:
    """Appends rows to ``RUN_DIR/log.csv`` (and TensorBoard when available).

    On resume from ``start_step`` rows after that step (written after the checkpoint, then lost
    with the crash) are dropped first, so the log reads as one run.
    """

    def __init__(self, run_dir: str | os.PathLike, start_step: int = 0) -> None:
        self.path = Path(run_dir) / LOG_NAME
        rows = read_log(self.path) if start_step > 0 else []
        rows = [r for r in rows if int(r["step"]) <= start_step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=LOG_FIELDS)
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR), purge_step=start_step or None)
        except ImportError:  # tensorboard is optional
            pass

    def write(self, row: dict) -> None:
        self._writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})
        self._file.flush()
        if self._tb is not None:
            for key in ("loss", "content", "style", "lr", "images_per_s"):
                if row.get(key) is not None:
                    self._tb.add_scalar(f"train/{key}", row[key], int(row["step"]))

    def write_quality(self, step: int, content: float, style: float, grid: Tensor) -> None:
        """TensorBoard only (``quality.csv`` is ``_quality``'s): ``quality/content``, ``quality/style`` and the grid
        ``(3, H, W)`` in [0, 1] as ``quality/samples``."""
        if self._tb is not None:
            self._tb.add_scalar("quality/content", content, step)
            self._tb.add_scalar("quality/style", style, step)
            self._tb.add_image("quality/samples", grid.clamp(0, 1), step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_log(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``log.csv`` as dicts of strings (an empty list if there is no file)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("step")]


def grid_image(content: Tensor, style: Tensor, output: Tensor) -> Tensor:
    """Rows of ``content | style | output`` (each ``(B, 3, H, W)``, about [0, 1]) as one ``(3, B*H, 3*W)`` image."""
    rows = [
        torch.cat([c, s, o.clamp(0, 1)], dim=2)
        for c, s, o in zip(content.float().cpu(), style.float().cpu(), output.float().cpu())
    ]
    return torch.cat(rows, dim=1)


def sample_grid(content: Tensor, style: Tensor, output: Tensor, path: str | os.PathLike) -> Path:
    """Save ``grid_image(content, style, output)`` as one PNG."""
    return save_image(tensor_to_pil(grid_image(content, style, output)), path)


_COLOURS = {"loss": (20, 20, 20), "content": (31, 119, 180), "style": (214, 39, 40)}


def draw_loss_curve(
    log_path: str | os.PathLike, out_path: str | os.PathLike, size: tuple[int, int] = (800, 480)
) -> Path | None:
    """Plot loss, content and style (log scale) against step from ``log.csv`` into a PNG; None if no rows."""
    rows = read_log(log_path)
    series = {k: [(int(r["step"]), float(r[k])) for r in rows if _positive(r.get(k))] for k in _COLOURS}
    points = [p for values in series.values() for p in values]
    if not points:
        return None
    width, height = size
    left, right, top, bottom = 70, 20, 20, 40
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = (math.log10(f(p[1] for p in points)) for f in (min, max))
    x_hi, y_hi = max(x_hi, x_lo + 1), max(y_hi, y_lo + 1e-3)

    def xy(step: int, value: float) -> tuple[float, float]:
        x = left + (step - x_lo) / (x_hi - x_lo) * (width - left - right)
        y = height - bottom - (math.log10(value) - y_lo) / (y_hi - y_lo) * (height - top - bottom)
        return x, y

    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    for frac in (0.0, 0.5, 1.0):
        y_val = 10 ** (y_lo + frac * (y_hi - y_lo))
        _, y = xy(x_lo, y_val)
        draw.text((4, y - 6), f"{y_val:.3g}", fill=(0, 0, 0))
        step = int(x_lo + frac * (x_hi - x_lo))
        x, _ = xy(step, 10**y_lo)
        draw.text((x - 10, height - bottom + 6), str(step), fill=(0, 0, 0))
    for i, (name, colour) in enumerate(_COLOURS.items()):
        values = series[name]
        if len(values) > 1:
            draw.line([xy(s, v) for s, v in values], fill=colour, width=2)
        elif values:
            x, y = xy(*values[0])
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        draw.text((left + 10 + 90 * i, top + 6), name, fill=colour)
    draw.text((width // 2 - 20, height - 16), "step", fill=(0, 0, 0))
    return save_image(img, out_path)


def _positive(value: str | None) -> bool:
    try:
        return value is not None and math.isfinite(float(value)) and float(value) > 0
    except ValueError:
        return False
