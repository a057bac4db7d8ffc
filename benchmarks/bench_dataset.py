"""Dataset stylization throughput: ``adain.datasets.stylize_dataset`` end to end against the model alone.

A generated dataset (JPEG photos-like noise at 320x240 in class folders, 8 styles) is stylized with the
``stylized-imagenet`` preset (content 256 then centre 224, style square 224, alpha 1, PNG): end to end is
listing, the style bank, decoding in DataLoader workers, the model, PNG encoding in the writer threads, the
records and the manifest. The model alone, in the same process, on the same device and dtype, is the same
engine stylizing 224x224 frames already in memory, in the same batches, with the same per-image statistics
(``stylize_frames``), copied back to the host as uint8: the ratio says how much of the model's speed the
pipeline keeps. Peak RSS is this process's (the model, the batches in flight) and, separately, the largest of
its DataLoader workers. Weights are random (calibrated): speed does not depend on their values.

    python benchmarks/bench_dataset.py                              # 64 images, default device
    python benchmarks/bench_dataset.py --device cuda --images 2000 --workers 8 --batch-size 64
    python benchmarks/bench_dataset.py --images 2000 --json out.json   # the 2,000-image run: time, peak RSS
    python benchmarks/bench_dataset.py --images 2000 --size 32         # the same pipeline, tiny images (a busy CPU)

The machine may be shared: ``uptime``'s load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_stylize import calibrated_models  # noqa: E402

from adain._runtime import resolve_device, resolve_dtype  # noqa: E402
from adain.datasets import DatasetConfig, stylize_dataset  # noqa: E402
from adain.datasets._compute import stylize_frames  # noqa: E402
from adain.inference import Engine  # noqa: E402


def make_dataset(root: Path, images: int, classes: int = 10, styles: int = 8) -> tuple[Path, Path]:
    """``images`` JPEGs (320x240, smooth noise: PNG-compressible like photos) in ``classes`` folders, and
    ``styles`` 300x400 style images."""
    rng = np.random.default_rng(0)

    def picture(h: int, w: int) -> Image.Image:
        small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)

    for i in range(images):
        path = root / "content" / f"n{i % classes:08d}" / f"n{i % classes:08d}_{i}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture(240, 320).save(path, format="JPEG", quality=90)
    for i in range(styles):
        path = root / "style" / f"painting{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture(300, 400).save(path, quality=90)
    return root / "content", root / "style"


def model_alone(engine: Engine, batch: int, repeats: int, size: int) -> float:
    """Images per second of ``stylize_frames`` on ``size x size`` uint8 frames already in memory."""
    frames = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(batch)]
    mean, std = torch.rand(batch, 512, 1, 1), torch.rand(batch, 512, 1, 1) + 0.5
    stylize_frames(engine, frames, mean, std, 1.0)  # warm-up: allocator, oneDNN/cuDNN plans
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        stylize_frames(engine, frames, mean, std, 1.0)  # returns host tensors: synchronised
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="content images in the dataset (2000: the big run)")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: CUDA when available)")
    parser.add_argument("--dtype", default=None, help="compute dtype (default: the device's)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--writer-threads", type=int, default=4)
    parser.add_argument(
        "--size", type=int, default=224, help="content crop and style side (224: the preset; smaller: a quick run)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="batches timed for the model alone")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model = calibrated_models()[0]
    engine = Engine(model, device, dtype)
    with tempfile.TemporaryDirectory() as tmp:
        content, style = make_dataset(Path(tmp), args.images)
        alone = model_alone(engine, args.batch_size, args.repeats, args.size)
        times: list[float] = []
        start = time.perf_counter()
        result = stylize_dataset(
            content,
            style,
            Path(tmp) / "out",
            config=DatasetConfig.from_preset(
                "stylized-imagenet", content_size=args.size * 256 // 224, content_crop=args.size, style_size=args.size
            ),
            model=model,
            device=device,
            dtype=dtype,
            batch_size=args.batch_size,
            workers=args.workers,
            writer_threads=args.writer_threads,
            callback=lambda p: times.append(time.perf_counter()),
        )
        wall = time.perf_counter() - start
    assert result.computed == args.images and not result.skipped
    figures = {
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "images": args.images,
        "size": args.size,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "end_to_end_images_per_s": args.images / wall,
        "model_alone_images_per_s": alone,
        "ratio": args.images / wall / alone,
        "wall_s": wall,
        "first_batch_s": (times[0] - start) if times else None,  # listing, bank, the first batch
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "load_average": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
    }
    for key, value in figures.items():
        print(f"{key:>26}: {value:.3g}" if isinstance(value, float) else f"{key:>26}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
