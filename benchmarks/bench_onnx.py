"""Time the exported ONNX graph in onnxruntime (CPU) against ``adain.Stylizer`` in float32 and bfloat16.

The style is cached everywhere (its statistics computed once), so each timing is one content image:
pad (a no-op at multiples of 8), encode, AdaIN, decode, crop. Both sides use the same number of threads
(``--threads``, default 2). Repetitions are interleaved (onnxruntime, float32, bfloat16, onnxruntime, ...)
and medians reported, because shared machines are noisy; the ratios come from the same run.
Weights are random (speed does not depend on their values); the model is exported once to a temporary folder.

    python benchmarks/bench_onnx.py                      # 512x512, 2 threads
    python benchmarks/bench_onnx.py --quick --json out.json
    python benchmarks/bench_onnx.py --sizes 512x512,1024x768 --threads 4

Needs the export extra: pip install 'adain[export]'.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adain  # noqa: E402
from adain.export import export_onnx  # noqa: E402
from adain.export._onnx import require_export_extra  # noqa: E402
from adain.modeling._padding import pad_bottom_right, padded_side  # noqa: E402


def _sessions(ort, model: adain.AdaINModel, folder: Path, threads: int):
    files = export_onnx(model, folder / "adain.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return [
        ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"]) for f in (files.style, files.content)
    ]


def bench_size(width: int, height: int, model, sessions, args) -> dict:
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, height, width, generator=gen)
    style = torch.rand(1, 3, 512, 512, generator=gen)
    mean, std = sessions[0].run(None, {"style": style.numpy()})
    alpha = np.array([1.0], np.float32)

    def onnxruntime_run():
        padded = pad_bottom_right(content, padded_side(height), padded_side(width)).numpy()
        (out,) = sessions[1].run(None, {"content": padded, "style_mean": mean, "style_std": std, "alpha": alpha})
        return torch.from_numpy(out[..., :height, :width])

    stylizers = {
        dtype: adain.Stylizer(model, "cpu", dtype).set_style(style[0], style_size=None)
        for dtype in ("float32", "bfloat16")
    }
    runs = {
        "onnxruntime": onnxruntime_run,
        "float32": lambda: stylizers["float32"](content),
        "bfloat16": lambda: stylizers["bfloat16"](content),
    }
    outputs = {name: fn() for name, fn in runs.items()}  # warm-up (allocators, kernel choice) + agreement
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "size": f"{width}x{height}",
        "median_s": med,
        "all_s": times,
        "onnxruntime_speedup_vs_float32": med["float32"] / med["onnxruntime"],
        "onnxruntime_speedup_vs_bfloat16": med["bfloat16"] / med["onnxruntime"],
        "max_abs_diff_vs_float32": float((outputs["onnxruntime"] - outputs["float32"]).abs().max()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512x512", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--threads", type=int, default=2, help="threads for onnxruntime and torch alike")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="256x256 only, 2 repeats: a smoke run")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = "256x256", 2
    torch.set_num_threads(args.threads)
    _, ort = require_export_extra()
    model = adain.AdaINModel().eval()
    results = {
        "threads": args.threads,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "repeats": args.repeats,
        "sizes": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        sessions = _sessions(ort, model, Path(folder), args.threads)
        print(f"CPU, {args.threads} threads, torch {torch.__version__}, onnxruntime {ort.__version__}")
        print(
            f"{'size':>10} {'onnxruntime':>12} {'float32':>10} {'bfloat16':>10} {'ort vs f32':>11} "
            f"{'ort vs bf16':>12} {'max |diff|':>11}"
        )
        for spec in args.sizes.split(","):
            width, height = (int(v) for v in spec.lower().split("x"))
            r = bench_size(width, height, model, sessions, args)
            results["sizes"].append(r)
            m = r["median_s"]
            print(
                f"{r['size']:>10} {m['onnxruntime'] * 1e3:>10.0f}ms {m['float32'] * 1e3:>8.0f}ms "
                f"{m['bfloat16'] * 1e3:>8.0f}ms {r['onnxruntime_speedup_vs_float32']:>10.2f}x "
                f"{r['onnxruntime_speedup_vs_bfloat16']:>11.2f}x {r['max_abs_diff_vs_float32']:>11.1e}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
