"""Style augmentation throughput (``adain.augment``) beside the model alone, in one run.

Rows, each timed on the same batch (default 64 images of 224x224, calibrated random weights from
``bench_stylize``), repetitions interleaved and medians reported because shared machines are noisy:

    model alone         ``Engine.run`` on the batch with one cached style, alpha 1: the floor
    bank                ``StyleAugment`` with p = 1, a bank of 64 styles: one random style and alpha per sample
    batch               ``StyleAugment`` with p = 1, the in-batch styles (each partner's statistics encoded too)
    gaussian            ``StyleAugment`` with p = 1, a ``StyleGaussian`` fitted to the bank
    bank p=0.5          ``StyleAugment`` with the default p = 0.5: about half the samples through the model
    transform           ``RandomStyle`` with p = 1 on single images, as one DataLoader worker runs it (timed on
                        the first 8 images; a loader with W workers runs about W of these at once)

    python benchmarks/bench_augment.py                   # CPU: batch 64 at 224x224, 1 repetition
    python benchmarks/bench_augment.py --device cuda --repeats 5
    python benchmarks/bench_augment.py --quick           # batch 8 at 96x96: a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_stylize import calibrated_models  # noqa: E402

from adain.augment import RandomStyle, StyleAugment, StyleGaussian  # noqa: E402
from adain.inference import Engine, StyleBank  # noqa: E402

ROWS = ("model alone", "bank", "batch", "gaussian", "bank p=0.5", "transform")
TRANSFORM_IMAGES = 8


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _pictures(n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` smooth random pictures ``(n, 3, size, size)`` in [0, 1], more like photographs than noise."""
    small = torch.rand(n, 3, max(2, size // 16), max(2, size // 16), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)


def rows(model, device: torch.device, dtype: str, batch: torch.Tensor, tmp: Path) -> dict:
    """``{row: (callable, images it stylizes)}``."""
    engine = Engine(model, device, getattr(torch, dtype))
    bank = StyleBank.build(engine, [(f"s{i}", p[None]) for i, p in enumerate(_pictures(64, 224, seed=2))])
    style = bank.style(0)
    gen = torch.Generator().manual_seed(0)
    n = batch.shape[0]

    def augment(styles, p=1.0):
        module = StyleAugment(model, styles, p=p, dtype=dtype, generator=gen)
        return lambda: module(batch)

    transform = RandomStyle(bank, weights=model.save_pretrained(tmp / "model"), p=1, dtype=dtype).load()
    singles = [image.cpu() for image in batch[:TRANSFORM_IMAGES]]
    return {
        "model alone": (lambda: engine.run(batch, style, 1.0), n),
        "bank": (augment(bank), n),
        "batch": (augment("batch"), n),
        "gaussian": (augment(StyleGaussian.fit(bank)), n),
        "bank p=0.5": (augment(bank, p=0.5), n),
        "transform": (lambda: [transform(image) for image in singles], len(singles)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--dtype", default="float32", help="compute dtype of every row (default float32)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224, help="side of the square images")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated among {', '.join(ROWS)}")
    parser.add_argument("--quick", action="store_true", help="batch 8 at 96x96: a smoke run")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.size = 8, 96
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    wanted = [r.strip() for r in args.rows.split(",")]
    model = calibrated_models()[0]
    batch = _pictures(args.batch, args.size, seed=1).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        table = {name: row for name, row in rows(model, device, args.dtype, batch, Path(tmp)).items() if name in wanted}
        for fn, _ in table.values():  # warm-up: allocators, kernel choice, the prepared models
            fn()
        times: dict[str, list[float]] = {name: [] for name in table}
        for _ in range(args.repeats):
            for name, (fn, _) in table.items():
                _sync(device)
                start = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - start)
    floor = statistics.median(times["model alone"]) / args.batch if "model alone" in times else None
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dtype": args.dtype,
        "batch": args.batch,
        "size": args.size,
        "repeats": args.repeats,
        "rows": {},
    }
    print(f"{result['device']}, {result['threads']} threads, {args.dtype}, batch {args.batch} at {args.size}^2")
    print(f"{'':>12} {'images/s':>10} {'ms/image':>10} {'vs model alone':>15}")
    for name, ts in times.items():
        per_image = statistics.median(ts) / table[name][1]
        ratio = floor / per_image if floor else None
        result["rows"][name] = {"images_per_s": 1 / per_image, "ms_per_image": 1e3 * per_image, "vs_model": ratio}
        shown = f"{ratio:.2f}x" if ratio else "-"
        print(f"{name:>12} {1 / per_image:>10.2f} {1e3 * per_image:>10.1f} {shown:>15}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
