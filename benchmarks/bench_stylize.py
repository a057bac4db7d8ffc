"""Time ``adain.Stylizer`` against a plain re-implementation of the reference PyTorch port.

The reference here is written the way the port is (positional ``nn.Sequential`` with explicit
``ReflectionPad2d`` modules, fp32, eager, ``torch.no_grad``) and shares no code with the package.
Weights are random: speed does not depend on their values. Repetitions are interleaved (reference,
ours full, ours cached, reference, ...) and medians reported, because shared machines are noisy.

    python benchmarks/bench_stylize.py                       # 512x512 and 1920x1080, default device
    python benchmarks/bench_stylize.py --quick --json out.json
    python benchmarks/bench_stylize.py --device cuda --dtype bfloat16 --sizes 512x512,3840x2160

"full" = encode style + encode content + AdaIN + decode (the reference's work per image);
"cached" = a Stylizer whose style is already set (the per-frame cost for video).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adain  # noqa: E402
from reference_port import ref_decoder, ref_mean_std, ref_vgg  # noqa: E402


@torch.no_grad()
def reference_style_transfer(vgg, decoder, content, style, alpha=1.0):
    content_f, style_f = vgg(content), vgg(style)
    s_mean, s_std = ref_mean_std(style_f)
    c_mean, c_std = ref_mean_std(content_f)
    feat = (content_f - c_mean) / c_std * s_std + s_mean
    return decoder(feat * alpha + content_f * (1 - alpha))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench_size(width: int, height: int, args, device: torch.device) -> dict:
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, height, width, generator=gen).to(device)
    style = torch.rand(1, 3, 512, 512, generator=gen).to(device)
    vgg, dec = ref_vgg()[:31].to(device).eval(), ref_decoder().to(device).eval()
    stylizer = adain.Stylizer(adain.AdaINModel().eval(), device, args.dtype)
    cached = adain.Stylizer(adain.AdaINModel().eval(), device, args.dtype).set_style(style[0], style_size=None)

    runs = {
        "reference": lambda: reference_style_transfer(vgg, dec, content, style),
        "ours_full": lambda: stylizer.set_style(style[0], style_size=None)(content),
        "ours_cached": lambda: cached(content),
    }
    for fn in runs.values():  # warm-up: allocator, oneDNN/cuDNN algorithm choice
        _timed(fn, device)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].append(_timed(fn, device))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "size": f"{width}x{height}",
        "median_s": med,
        "all_s": times,
        "speedup_full": med["reference"] / med["ours_full"],
        "speedup_cached": med["reference"] / med["ours_cached"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"), help="ours only")
    parser.add_argument("--sizes", default="512x512,1920x1080", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="256x256 only, 2 repeats: a smoke run")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = "256x256", 2
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    results = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dtype": args.dtype or "float32",
        "repeats": args.repeats,
        "sizes": [],
    }
    print(f"device {results['device']}, {results['threads']} threads, torch {torch.__version__}, ours in {results['dtype']}")
    print(f"{'size':>10} {'reference':>11} {'ours full':>11} {'ours cached':>12} {'ratio full':>11} {'ratio cached':>13}")
    for spec in args.sizes.split(","):
        width, height = (int(v) for v in spec.lower().split("x"))
        r = bench_size(width, height, args, device)
        results["sizes"].append(r)
        m = r["median_s"]
        print(
            f"{r['size']:>10} {m['reference'] * 1e3:>9.1f}ms {m['ours_full'] * 1e3:>9.1f}ms "
            f"{m['ours_cached'] * 1e3:>10.1f}ms {r['speedup_full']:>10.2f}x {r['speedup_cached']:>12.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
