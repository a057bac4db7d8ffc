"""Every GPU figure the package needs, each beside the reference port measured in the same run: one JSON file
and one markdown table, in at most about 8 minutes on one GPU.

Whoever is lent a GPU runs this first (``python benchmarks/gpu_suite.py``) and puts the table in
``docs/guides/speed.md``. Sections, in order (a section that would start after ``--budget`` seconds is
recorded as skipped, so the run always ends with a file):

    stylize 512x512      full and style-cached: reference, float32, bfloat16, compile (``bench_stylize``)
    1920x1080, 3840x2160 reference vs the default setting (cached and full), with peak memory
    batched 512x512      images/s: the reference on the whole batch vs a cached ``Stylizer``
    tiled 7680x4320      exact tiles within ``--tile-memory`` bytes vs the reference untiled, peak memory
    training step        batch 8 at 256x256 vs the reference step (``bench_train``)
    gatys 512x512        time to the objective the reference L-BFGS loop reaches (``bench_gatys``)
    video 1920x1080      frames/s of ``adain.stylize_video`` (``bench_video``) vs the reference frame by frame

Weights are calibrated random ones (speed does not depend on the values). ``--tiny`` runs every section on
the CPU at toy sizes in seconds: the test suite runs it so that the script cannot rot.

    python benchmarks/gpu_suite.py                          # on the GPU: gpu_suite.json + gpu_suite.md
    python benchmarks/gpu_suite.py --tiny --out /tmp/suite  # CPU smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import queue
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_gatys  # noqa: E402
import bench_stylize  # noqa: E402
import bench_train  # noqa: E402
import bench_video  # noqa: E402
from bench_stylize import calibrated_models, reference_style_transfer  # noqa: E402

import adain  # noqa: E402

FULL = {
    "sizes": [(1920, 1080), (3840, 2160)],
    "side": 512,
    "repeats": 10,
    "batch": 64,
    "huge": (7680, 4320),
    "tile_memory": 2 * 2**30,
    "train": ["--batch-size", "8", "--crop-size", "256", "--steps", "10", "--reps", "3", "--images", "32"],
    "gatys": {"size": 512, "iterations": 300, "coarse_iterations": 30, "min_size": 128},
    "video": (1920, 1080, 60),
}
TINY = {
    "sizes": [(48, 27), (64, 36)],
    "side": 32,
    "repeats": 1,
    "batch": 4,
    "huge": (128, 64),
    "tile_memory": None,  # with tile_size below
    "train": ["--batch-size", "2", "--crop-size", "32", "--image-size", "48", "--steps", "1", "--reps", "1"]
    + ["--images", "4", "--workers", "0"],
    "gatys": {"size": 32, "iterations": 2, "coarse_iterations": 1, "min_size": 16},
    "video": (64, 36, 4),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, dict]:
    """Median wall seconds of each callable (warm-up first, repetitions interleaved) and, on CUDA, the peak
    bytes allocated during one more call (``None`` on the CPU: one process's RSS mixes every row)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    result = {}
    for name, fn in fns.items():
        peak = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            fn()
            _sync(device)
            peak = torch.cuda.max_memory_allocated(device) - base
        result[name] = {"seconds": statistics.median(times[name]), "peak_bytes": peak}
    return result


def _picture(n: int, h: int, w: int, device: torch.device, seed: int) -> torch.Tensor:
    small = torch.rand(n, 3, max(2, h // 16), max(2, w // 16), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).to(device)


def stylize_512(ctx) -> dict:
    """``bench_stylize``'s rows (reference, float32, bfloat16, compile; full and cached) on one content and style
    of ``side`` pixels, with their PSNR against float32 cached."""
    groups = {"reference", "float32", "bfloat16"} | ({"compile"} if not ctx.tiny else set())
    args = SimpleNamespace(device=ctx.device, rows=groups, compile_dtype=None)
    side = ctx.sizes["side"]
    content, style = _picture(1, side, side, ctx.device, 1), _picture(1, side, side, ctx.device, 2)
    vgg, dec = ctx.reference
    fns, compile_costs = bench_stylize._rows(ctx.model, vgg, dec, content, style, args)
    rows = measure(fns, ctx.device, ctx.sizes["repeats"])
    base = fns["float32 cached"]()
    for name, row in rows.items():
        row["psnr_vs_float32_db"] = bench_stylize._psnr(fns[name](), base)
    return {"size": f"{side}x{side}", "compile": compile_costs, "rows": rows}


def large_sizes(ctx) -> dict:
    out = {}
    vgg, dec = ctx.reference
    style = _picture(1, ctx.sizes["side"], ctx.sizes["side"], ctx.device, seed=2)
    cached = adain.Stylizer(ctx.model, ctx.device).set_style(style[0], style_size=None)
    for w, h in ctx.sizes["sizes"]:
        content = _picture(1, h, w, ctx.device, seed=1)
        fns = {
            "reference": lambda c=content: reference_style_transfer(vgg, dec, c, style),
            "ours cached": lambda c=content: cached(c),
            "ours full": lambda c=content: adain.Stylizer(ctx.model, ctx.device).set_style(style[0], style_size=None)(
                c
            ),
        }
        out[f"{w}x{h}"] = measure(fns, ctx.device, ctx.sizes["repeats"])
    out["dtype"] = str(cached.dtype)
    return out


def batched(ctx) -> dict:
    vgg, dec = ctx.reference
    side, n = ctx.sizes["side"], ctx.sizes["batch"]
    style, batch = _picture(1, side, side, ctx.device, 2), _picture(n, side, side, ctx.device, 3)
    cached = adain.Stylizer(ctx.model, ctx.device).set_style(style[0], style_size=None)
    rows = measure(
        {"reference": lambda: reference_style_transfer(vgg, dec, batch, style), "ours cached": lambda: cached(batch)},
        ctx.device,
        ctx.sizes["repeats"],
    )
    for row in rows.values():
        row["images_per_s"] = n / row["seconds"]
    return {"batch": n, "size": f"{side}x{side}", "dtype": str(cached.dtype), **rows}


def tiled(ctx) -> dict:
    vgg, dec = ctx.reference
    w, h = ctx.sizes["huge"]
    side = ctx.sizes["side"]
    content, style = _picture(1, h, w, ctx.device, 4), _picture(1, side, side, ctx.device, 5)
    stylizer = adain.Stylizer(ctx.model, ctx.device, max_memory=ctx.sizes["tile_memory"])
    stylizer.set_style(style[0], style_size=None)
    tile_size = None if ctx.sizes["tile_memory"] else 64
    fns: dict[str, Callable[[], object]] = {"ours tiled": lambda: stylizer(content, tile_size=tile_size)}
    try:  # the reference untiled, where it fits
        reference_style_transfer(vgg, dec, content, style)
        fns["reference"] = lambda: reference_style_transfer(vgg, dec, content, style)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
    rows = measure(fns, ctx.device, 1)
    rows.setdefault("reference", {"seconds": None, "peak_bytes": None, "note": "out of memory untiled"})
    grid = stylizer.engine.tile_plan(h, w, tile_size)
    return {"size": f"{w}x{h}", "tiles": None if grid is None else str(grid), "dtype": str(stylizer.dtype), **rows}


def training(ctx) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench_train.main(["--device", str(ctx.device), *ctx.sizes["train"]])
    return json.loads(out.getvalue())


def gatys(ctx) -> dict:
    g = ctx.sizes["gatys"]
    cfg = {
        "device": str(ctx.device),
        "size": g["size"],
        "vgg": None,
        "iterations": g["iterations"],
        "content_weight": 1.0,
        "style_weight": 10.0,
        "threads": torch.get_num_threads(),
    }
    results: queue.Queue = queue.Queue()
    bench_gatys.run_reference(cfg, results)  # in this process: its peak memory is reset on CUDA
    reference = results.get()
    dtype = "bfloat16" if ctx.device.type == "cuda" else "float32"
    ours_cfg = {**cfg, "target": reference["objective"], "dtype": dtype, **g}
    bench_gatys.run_ours(ours_cfg, results)
    ours = results.get()
    return {"size": g["size"], "reference": reference, "ours": ours, "speedup": reference["seconds"] / ours["seconds"]}


def video(ctx, reference_frame_s: float | None) -> dict:
    w, h, frames = ctx.sizes["video"]
    with tempfile.TemporaryDirectory() as tmp:
        style = Path(tmp) / "style.png"
        Image.fromarray((_picture(1, 256, 256, torch.device("cpu"), 6)[0] * 255).byte().permute(1, 2, 0).numpy()).save(
            style
        )
        args = SimpleNamespace(device=str(ctx.device), dtype=None, frames=frames)
        result = bench_video.bench_size(w, h, args, ctx.model, str(style), Path(tmp))
    result["reference_fps_frame_by_frame"] = None if reference_frame_s is None else 1 / reference_frame_s
    return result


def run(ctx) -> dict:
    """Every section, each guarded: a failure is recorded with its traceback and the others still run."""
    report: dict = {"device": ctx.name, "torch": torch.__version__, "tiny": ctx.tiny, "sections": {}}
    start = time.perf_counter()

    def section(name, fn, *extra):
        if time.perf_counter() - start > ctx.budget:
            report["sections"][name] = {"skipped": f"past the {ctx.budget:.0f} s budget"}
            return
        began = time.perf_counter()
        try:
            report["sections"][name] = fn(ctx, *extra)
        except Exception:  # noqa: BLE001 -- one broken section must not lose the others' figures
            report["sections"][name] = {"error": traceback.format_exc(limit=6)}
        report["sections"][name]["section_seconds"] = time.perf_counter() - began

    section("stylize", stylize_512)
    section("sizes", large_sizes)
    section("batched", batched)
    section("tiled", tiled)
    section("training", training)
    section("gatys", gatys)
    w, h, _ = ctx.sizes["video"]
    ref_1080 = report["sections"].get("sizes", {}).get(f"{w}x{h}", {}).get("reference", {}).get("seconds")
    section("video", video, ref_1080)
    report["seconds"] = time.perf_counter() - start
    return report


def _ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f} ms"


def _gib(peak) -> str:
    return "-" if peak is None else f"{peak / 2**30:.2f} GiB"


def _ratio(ref, ours) -> str:
    return "-" if not ref or not ours else f"{ref / ours:.2f}x"


def markdown(report: dict) -> str:
    """The report as one markdown table: figure, ours, reference, ratio (reference time / ours), peak memory."""
    lines = [
        f"GPU suite on {report['device']}, torch {report['torch']}, {report.get('seconds', 0):.0f} s in all.",
        "",
        "| figure | ours | reference | vs reference | peak memory (ours / reference) |",
        "|---|---|---|---|---|",
    ]
    sections = report["sections"]
    for name, sec in sections.items():
        if "error" in sec or "skipped" in sec:
            why = sec.get("skipped") or sec["error"].strip().splitlines()[-1]
            lines.append(f"| {name} | {why} | | | |")
    st = sections.get("stylize", {})
    if "rows" in st:
        ref = st["rows"].get("reference", {"seconds": None, "peak_bytes": None})
        for row, r in st["rows"].items():
            if row != "reference":
                lines.append(
                    f"| stylize {st['size']} {row} (PSNR {r['psnr_vs_float32_db']:.1f} dB) | {_ms(r['seconds'])} "
                    f"| {_ms(ref['seconds'])} | {_ratio(ref['seconds'], r['seconds'])} "
                    f"| {_gib(r['peak_bytes'])} / {_gib(ref['peak_bytes'])} |"
                )
    for size, rows in sections.get("sizes", {}).items():
        if isinstance(rows, dict) and "reference" in rows:
            ref = rows["reference"]
            for row in ("ours cached", "ours full"):
                r = rows[row]
                peaks = f"{_gib(r['peak_bytes'])} / {_gib(ref['peak_bytes'])}"
                lines.append(
                    f"| {size} {row} ({sections['sizes']['dtype']}) | {_ms(r['seconds'])} | {_ms(ref['seconds'])} "
                    f"| {_ratio(ref['seconds'], r['seconds'])} | {peaks} |"
                )
    b = sections.get("batched", {})
    if "ours cached" in b:
        ours, ref = b["ours cached"], b["reference"]
        lines.append(
            f"| batched {b['size']} x{b['batch']} ({b['dtype']}) | {ours['images_per_s']:.0f} images/s "
            f"| {ref['images_per_s']:.0f} images/s | {_ratio(ref['seconds'], ours['seconds'])} "
            f"| {_gib(ours['peak_bytes'])} / {_gib(ref['peak_bytes'])} |"
        )
    t = sections.get("tiled", {})
    if "ours tiled" in t:
        ours, ref = t["ours tiled"], t["reference"]
        lines.append(
            f"| tiled {t['size']} ({t['dtype']}) | {_ms(ours['seconds'])} | {ref.get('note') or _ms(ref['seconds'])} "
            f"| {_ratio(ref['seconds'], ours['seconds'])} | {_gib(ours['peak_bytes'])} / {_gib(ref['peak_bytes'])} |"
        )
    tr = sections.get("training", {})
    for case in ("step", "e2e"):
        if case in tr:
            ours, ref = tr[case]["ours"], tr[case]["reference"]
            lines.append(
                f"| training {case}, batch {tr['batch_size']} at {tr['crop_size']}^2 | {ours['ms_per_step']} ms "
                f"| {ref['ms_per_step']} ms | {tr[case]['speedup']:.2f}x | |"
            )
    g = sections.get("gatys", {})
    if "ours" in g:
        ours, ref = g["ours"], g["reference"]
        lines.append(
            f"| gatys {g['size']}^2 to the reference's objective | {ours['seconds']:.2f} s | {ref['seconds']:.2f} s "
            f"| {g['speedup']:.2f}x | {_gib(ours['peak_bytes'])} / {_gib(ref['peak_bytes'])} |"
        )
    v = sections.get("video", {})
    if "fps_pipeline" in v:
        ref_fps = v["reference_fps_frame_by_frame"]
        shown = "-" if ref_fps is None else f"{ref_fps:.1f} frames/s (stylize only)"
        ratio = "-" if ref_fps is None else f"{v['fps_pipeline'] / ref_fps:.2f}x"
        lines.append(f"| video {v['size']} end to end | {v['fps_pipeline']:.1f} frames/s | {shown} | {ratio} | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: cuda (the CPU with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes on the CPU: a smoke run of every section")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds after which no section starts")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for gpu_suite.json and gpu_suite.md")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; run with --tiny for the CPU smoke run")
    for name in ("gpu_suite.json", "gpu_suite.md"):  # never replace an earlier run's figures
        if (args.out / name).exists():
            parser.error(f"{args.out / name} exists; move it or pass another --out")
    model, vgg, dec = calibrated_models()
    ctx = SimpleNamespace(
        device=device,
        name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        tiny=args.tiny,
        sizes=TINY if args.tiny else FULL,
        budget=args.budget,
        model=model,
        reference=(vgg.to(device), dec.to(device)),
    )
    report = run(ctx)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_suite.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    table = markdown(report)
    (args.out / "gpu_suite.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
