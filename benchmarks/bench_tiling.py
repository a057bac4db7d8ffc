"""Tiled stylization (``adain.inference._tiling``): exactness and cost against untiled, and memory for huge images.

Tiled vs untiled (``--exact-sizes``, default 1024x1024): images that fit whole are stylized whole and in
tiles of ``--tile-size``, in one process; the PSNR and largest pixel difference between the two, and the
time of the tiled run (pass 1 encodes each tile once and keeps its features, pass 2 decodes) against the
untiled run: wall seconds and CPU seconds (user + system, all threads), the fair measure on a shared
machine, where the wall clock mostly counts other people's work. Also the peak resident memory.

Huge images (``--memory-sizes``, default 2048x2048; ``--8k`` adds 7680x4320, ``--12k`` 12000x12000): each
size in a fresh process (so that peaks do not mix), a random content tensor stylized with
``max_memory=--max-memory``, i.e. in as few tiles as fit (features in memory or in a temporary file, as
the plan decides); reports the time (wall and CPU, and CPU seconds per megapixel, to set beside the
untiled rate above), the tiles, where the features were kept, the peak resident memory of the process
(``VmHWM``: interpreter, model, content, output, features and tiles together; not ``ru_maxrss``, which
Linux carries over from the parent through exec) and, on CUDA, ``torch.cuda.max_memory_allocated``.
Untiled runs of such sizes need more memory than a workstation has (8K: 40 GB), so their untiled time is
the untiled rate per megapixel of the first table times the size.

Weights are random (calibrated so the output spans about [0, 1]): speed does not depend on their values.

    python benchmarks/bench_tiling.py                                   # 1024^2 tiled vs untiled; 2048^2 tiled
    python benchmarks/bench_tiling.py --exact-sizes 1024x1024,2048x1536 --memory-sizes 3840x2160 --json out.json
    python benchmarks/bench_tiling.py --8k --12k --max-memory 8GiB       # the issue's sizes (long on 2 cores)
    python benchmarks/bench_tiling.py --device cuda --dtype bfloat16 --max-memory 2e9 --memory-sizes 7680x4320
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adain  # noqa: E402
from adain.inference import _tile_grid as tile_grid  # noqa: E402
from adain.inference import _tiling as tiling  # noqa: E402

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def random_model(seed: int = 0) -> adain.AdaINModel:
    """An ``AdaINModel`` with He-initialised convs, the real preprocessing conv (RGB->BGR, x255, minus the
    Caffe mean) and the decoder's last conv scaled so that outputs span about [0, 1]."""
    torch.manual_seed(seed)
    model = adain.AdaINModel().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.normal_(m.bias, std=0.01)
        pre = model.encoder.preprocess
        pre.weight.zero_()
        for i in range(3):
            pre.weight[i, 2 - i] = 255.0
        pre.bias.copy_(-torch.tensor(CAFFE_MEAN_BGR))
        model.encoder.conv1_1.weight.div_(100)  # keep features O(1) behind the x255 input scale
        out = model.decode(model.encode(torch.rand(2, 3, 64, 64)))
        last, scale = model.decoder.conv1_1, 0.25 / out.std().item()
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(0.5 - out.mean().item() * scale)
    return model


def _content(width: int, height: int, seed: int = 0) -> torch.Tensor:
    """A smooth random picture ``(3, H, W)`` in [0, 1]."""
    small = torch.rand(1, 3, max(2, height // 64), max(2, width // 64), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_exact(width: int, height: int, args, device: torch.device) -> dict:
    """Whole vs ``args.tile_size`` tiles on one image that fits whole."""
    stylizer = adain.Stylizer(random_model(), device, args.dtype).set_style(_content(256, 256, seed=1), style_size=None)
    content = _content(width, height).to(device)
    stylizer(_content(256, 256).to(device))  # warm-up: allocator, oneDNN/cuDNN algorithm choice
    _sync(device)
    start, cpu = time.perf_counter(), cpu_seconds()
    whole = stylizer(content)
    _sync(device)
    t_whole, cpu_whole = time.perf_counter() - start, cpu_seconds() - cpu
    marks: list[tuple[float, tiling.TileProgress]] = []
    start, cpu = time.perf_counter(), cpu_seconds()
    tiled = stylizer(content, tile_size=args.tile_size, callback=lambda p: marks.append((time.perf_counter(), p)))
    _sync(device)
    t_tiled, cpu_tiled = time.perf_counter() - start, cpu_seconds() - cpu
    tiles = marks[-1][1].tiles
    t_stats = next(t for t, p in marks if p.done >= tiles) - start  # pass 1 ends when every tile was encoded
    mse = float(((tiled.float() - whole.float()) ** 2).mean())
    return {
        "size": f"{width}x{height}",
        "tile_size": args.tile_size,
        "tiles": tiles,
        "psnr_db": 10 * torch.log10(torch.tensor(1 / max(mse, 1e-20))).item(),
        "max_abs_diff": float((tiled - whole).abs().max()),
        "untiled_s": t_whole,
        "tiled_s": t_tiled,
        "pass1_s": t_stats,
        "pass2_s": t_tiled - t_stats,
        "overhead": t_tiled / t_whole,
        "untiled_cpu_s": cpu_whole,
        "tiled_cpu_s": cpu_tiled,
        "cpu_overhead": cpu_tiled / cpu_whole,
        "untiled_cpu_s_per_mp": cpu_whole / (width * height / 1e6),
        "peak_rss_gib": peak_rss_gib(),
    }


def peak_rss_gib() -> float:
    """This process's peak resident memory: ``VmHWM`` (Linux), which starts afresh at ``exec``; ``ru_maxrss``
    elsewhere, which Linux carries over from the parent through ``fork`` + ``exec``."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**20
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(width: int, height: int, args) -> dict:
    """One huge image in this (fresh) process; what ``bench_memory`` reads back."""
    device = torch.device(args.device)
    stylizer = adain.Stylizer(random_model(), device, args.dtype, max_memory=args.max_memory)
    stylizer.set_style(_content(256, 256, seed=1), style_size=None)
    content = _content(width, height)  # on the CPU: only tiles go to the device
    baseline = peak_rss_gib()  # the interpreter, the model, the content
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    steps: list[tiling.TileProgress] = []
    plan = stylizer.engine.tile_plan(height, width)
    start, cpu = time.perf_counter(), cpu_seconds()
    out = stylizer(content, callback=steps.append)
    _sync(device)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert out.shape == content.shape
    return {
        "size": f"{width}x{height}",
        "megapixels": width * height / 1e6,
        "seconds": seconds,
        "cpu_s": cpu,
        "cpu_s_per_mp": cpu / (width * height / 1e6),
        "features": "whole" if plan is None else "disk" if plan.features_on_disk else "memory",
        "tiles": steps[-1].tiles if steps else 1,
        "rss_before_gib": baseline,
        "peak_rss_gib": peak_rss_gib(),
        "cuda_peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }


def bench_memory(width: int, height: int, args) -> dict:
    """``child`` in a fresh interpreter."""
    command = [
        sys.executable,
        __file__,
        "--child",
        f"{width}x{height}",
        "--device",
        args.device,
        "--max-memory",
        str(args.max_memory),
    ] + (["--dtype", args.dtype] if args.dtype else [])
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{width}x{height}: the child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bytes(text: str) -> int:
    """``2e9``, ``8GiB``, ``500MB`` -> bytes."""
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 10**3, "mb": 10**6, "gb": 10**9}
    low = text.strip().lower()
    unit = next((u for u in units if low.endswith(u)), None)
    return int(float(low[: -len(unit)]) * units[unit]) if unit else int(float(low))


def _sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in spec.lower().split("x")) for spec in text.split(",") if spec]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--exact-sizes", default="1024x1024", help="WIDTHxHEIGHT,... that fit whole ('' to skip)")
    parser.add_argument("--tile-size", type=int, default=512, help="tile size of the exactness runs")
    parser.add_argument(
        "--memory-sizes",
        default="2048x2048",
        help="WIDTHxHEIGHT,... run tiled, each in a fresh process ('' to skip); 4K: 3840x2160, 16K: 15360x8640",
    )
    parser.add_argument("--8k", dest="eight_k", action="store_true", help="also 7680x4320 (about 10 min on 2 cores)")
    parser.add_argument("--12k", dest="twelve_k", action="store_true", help="also 12000x12000 (about 40 min)")
    parser.add_argument(
        "--max-memory", default="2e9", help="bytes (or 8GiB, 500MB) for a memory run: content, output, features, tiles"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.device = str(torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu")))
    args.max_memory = _bytes(args.max_memory)
    args.memory_sizes = ",".join(
        [args.memory_sizes] * bool(args.memory_sizes) + ["7680x4320"] * args.eight_k + ["12000x12000"] * args.twelve_k
    )
    if args.child:
        print(json.dumps(child(*_sizes(args.child)[0], args)))
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results = {
        "device": name,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dtype": args.dtype or "auto",
        "overlap_px": tile_grid.OVERLAP,
        "exact": [],
        "memory": [],
    }
    print(f"device {name}, {results['threads']} threads, torch {torch.__version__}, overlap {tile_grid.OVERLAP} px")
    if args.exact_sizes:
        print(
            f"{'size':>10} {'tiles':>5} {'PSNR dB':>8} {'max diff':>9} {'untiled s':>9} {'tiled s':>8} "
            f"{'pass 1 s':>8} {'pass 2 s':>8} {'overhead':>8} {'CPU untiled s':>13} {'CPU tiled s':>11} "
            f"{'CPU ratio':>9} {'peak RSS GiB':>12}"
        )
    for w, h in _sizes(args.exact_sizes):
        r = bench_exact(w, h, args, device)
        results["exact"].append(r)
        print(
            f"{r['size']:>10} {r['tiles']:>5} {r['psnr_db']:>8.1f} {r['max_abs_diff']:>9.1e} {r['untiled_s']:>9.2f} "
            f"{r['tiled_s']:>8.2f} {r['pass1_s']:>8.2f} {r['pass2_s']:>8.2f} {r['overhead']:>7.2f}x "
            f"{r['untiled_cpu_s']:>13.1f} {r['tiled_cpu_s']:>11.1f} {r['cpu_overhead']:>8.2f}x "
            f"{r['peak_rss_gib']:>12.2f}",
            flush=True,
        )
    if args.memory_sizes:
        print(f"max_memory {args.max_memory / 1e9:g} GB; each size in a fresh process")
        print(
            f"{'size':>12} {'MP':>6} {'tiles':>5} {'features':>8} {'seconds':>8} {'CPU s':>8} {'CPU s/MP':>8} "
            f"{'RSS before GiB':>14} {'peak RSS GiB':>12} {'CUDA peak GiB':>13}"
        )
    for w, h in _sizes(args.memory_sizes):
        r = bench_memory(w, h, args)
        results["memory"].append(r)
        cuda = f"{r['cuda_peak_gib']:.2f}" if r["cuda_peak_gib"] is not None else "-"
        print(
            f"{r['size']:>12} {r['megapixels']:>6.1f} {r['tiles']:>5} {r['features']:>8} {r['seconds']:>8.1f} "
            f"{r['cpu_s']:>8.1f} {r['cpu_s_per_mp']:>8.2f} {r['rss_before_gib']:>14.2f} {r['peak_rss_gib']:>12.2f} "
            f"{cuda:>13}",
            flush=True,
        )
    if results["exact"] and results["memory"]:
        rate = results["exact"][0]["untiled_cpu_s_per_mp"]
        print(f"untiled CPU rate {rate:.2f} s/MP ({results['exact'][0]['size']}); tiled rate / untiled rate:")
        for r in results["memory"]:
            print(f"{r['size']:>12} {r['cpu_s_per_mp'] / rate:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
