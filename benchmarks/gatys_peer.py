"""``bench_gatys.py --peer``: ``adain gatys`` against ``pastiche`` (a peer Gatys implementation) on the real VGG.

Both run on the same content and style, at the same size, with the same network: the Caffe VGG-19 that
pastiche ships (``caffe-vgg19`` here). pastiche runs ``--peer-steps`` L-BFGS steps with its own defaults
(relu4_2 content at weight 0.01, Gram style on relu1_1..relu5_1 at 10/C^2 each, max pooling, zero padding,
content start); ``adain.gatys`` runs with its defaults (relative losses, the pyramid, average pooling,
reflection padding). Each run keeps a copy of its iterate every few steps with the time it was made.

Afterwards, both objectives are computed *by this package's code* on both outputs and on every kept iterate:
pastiche's formula (re-written here on our encoder; our reflection padding is the one difference from
pastiche's own numbers) and ours (``adain.gatys``'s objective at the final scale, built by the library).
The target is pastiche's objective on pastiche's output; reported for each tool: the time its first kept
iterate reaches it (kept iterates are one every ``--peer-every`` steps, so a time is at most that many steps
late). Both outputs are saved, with a side-by-side picture (content, style, pastiche, adain).

    python benchmarks/bench_gatys.py --peer                       # 128 px, 60 pastiche steps: minutes on a CPU
    python benchmarks/bench_gatys.py --peer --size 256 --peer-steps 300 --out docs/images
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from PIL import Image

from adain._images import tensor_to_pil, to_tensor

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
MEAN_BGR = torch.tensor((103.939, 116.779, 123.68)).view(1, 3, 1, 1)


def _gram(f: torch.Tensor) -> torch.Tensor:
    f = f[0].reshape(f.shape[1], -1).float()
    return f @ f.T / f.shape[1]


class PasticheObjective:
    """pastiche 1.6.0's loss (``PasticheArtist._calc_loss``, defaults, no TV) on this package's encoder."""

    def __init__(self, encoder, content: torch.Tensor, style: torch.Tensor) -> None:
        self.encoder = encoder
        with torch.no_grad():
            self.p = encoder(content, (CONTENT_LAYER,), pooling="max")[CONTENT_LAYER]
            fs = encoder(style, STYLE_LAYERS, pooling="max")
        self.a = {k: _gram(fs[k]) for k in STYLE_LAYERS}

    def __call__(self, x: torch.Tensor) -> float:
        with torch.no_grad():
            f = self.encoder(x, (CONTENT_LAYER, *STYLE_LAYERS), pooling="max")
            loss = 0.01 * (f[CONTENT_LAYER] - self.p).pow(2).mean()
            for k in STYLE_LAYERS:
                loss = loss + 10.0 / f[k].shape[1] ** 2 * (_gram(f[k]) - self.a[k]).pow(2).mean()
        return float(loss)


class OurObjective:
    """``adain.gatys``'s objective with default options at the final size, built by the library itself."""

    def __init__(self, encoder, content: torch.Tensor, style: torch.Tensor) -> None:
        from adain.optimization._options import GatysOptions
        from adain.optimization._targets import measure_pool_scale, scale_objective, style_targets

        opts = GatysOptions()
        hw = (content.shape[-2], content.shape[-1])
        pool_scale = measure_pool_scale(encoder, content, None) if opts.pooling == "avg" else None
        targets = style_targets(opts, [style[0]], content, None)
        self.objective = scale_objective(
            encoder, opts, content, targets, hw, [tuple(style.shape[-2:])], pool_scale, None
        )

    def __call__(self, x: torch.Tensor) -> float:
        with torch.no_grad():
            return float(self.objective(x)[0])


def _prepare(content_path: Path, style_path: Path, size: int, folder: Path) -> tuple[Path, Path]:
    """Both images resized (shorter side ``size``, aspect kept) and saved as PNG, so both tools read the same pixels."""
    out = []
    for path, name in ((content_path, "content.png"), (style_path, "style.png")):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        scale = size / min(w, h)
        image = image.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
        image.save(folder / name)
        out.append(folder / name)
    return out[0], out[1]


def _read(path: Path) -> torch.Tensor:
    return to_tensor(path, size=None)[None]


def run_pastiche(content: Path, style: Path, steps: int, every: int) -> dict:
    """pastiche's defaults for ``steps`` L-BFGS steps; kept iterates as RGB in [0, 1] with their times."""
    from pastiche.pastiche import PasticheArtist

    h, w = Image.open(content).size[::-1]
    hs, ws = Image.open(style).size[::-1]
    start = time.perf_counter()
    artist = PasticheArtist(str(content), [str(style)], device="cpu", size=(h, w), style_size=(hs, ws))
    kept = []
    for step in range(1, steps + 1):
        artist.draw()
        if step % every == 0 or step == steps:
            kept.append((time.perf_counter() - start, step, _from_pastiche(artist.pastiche)))
            print(f"pastiche: step {step}/{steps}, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return {"seconds": time.perf_counter() - start, "kept": kept, "output": kept[-1][2]}


def _from_pastiche(x: torch.Tensor) -> torch.Tensor:
    """pastiche's BGR, 0-255, mean-subtracted tensor -> RGB in [0, 1], rounded to 8 bits as pastiche saves it."""
    bgr = x.detach().float() + MEAN_BGR
    return (bgr.flip(1).round().clamp(0, 255) / 255.0).clone()


def run_adain(model, content: Path, style: Path, every: int, options: dict) -> dict:
    """``adain.gatys`` with its defaults but ``options``; iterates kept from the encoder's input at the final scale."""
    from adain.optimization import gatys_tensor

    final_hw = tuple(_read(content).shape[-2:])
    kept: list = []
    state = {"step": 0, "start": 0.0}

    def hook(_module, args):
        x = args[0]
        if x.requires_grad and tuple(x.shape[-2:]) == final_hw and x.shape[1] == 3:
            state["step"] += 1
            if state["step"] % every == 0:
                kept.append((time.perf_counter() - state["start"], state["step"], x.detach().clamp(0, 1).clone()))

    handle = model.encoder.register_forward_pre_hook(hook)
    state["start"] = time.perf_counter()
    try:
        out = gatys_tensor(
            str(content), str(style), model=model, device="cpu", content_size=None, callback=_say, **options
        )
    finally:
        handle.remove()
    seconds = time.perf_counter() - state["start"]
    output = out[None].clamp(0, 1)
    kept.append((seconds, state["step"], output))
    return {"seconds": seconds, "kept": kept, "output": output}


def _say(p) -> None:
    if p.step % 10 == 0 or p.step == p.steps:
        left = f", about {p.remaining:.0f} s left" if p.remaining is not None else ""
        print(
            f"adain: scale {p.scale + 1}/{p.scales} step {p.step}/{p.steps}, {p.elapsed:.0f} s{left}",
            file=sys.stderr,
            flush=True,
        )


def _first_reaching(kept, objective, target: float):
    for seconds, step, image in kept:
        if objective(image) <= target * (1 + 1e-6):
            return {"seconds": seconds, "step": step}
    return None


def side_by_side(images: list[torch.Tensor], path: Path, height: int) -> None:
    panels = []
    for t in images:
        pil = tensor_to_pil(t[0].clamp(0, 1))
        panels.append(pil.resize((round(pil.width * height / pil.height), height), Image.Resampling.LANCZOS))
    canvas = Image.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), height), "white")
    x = 0
    for p in panels:
        canvas.paste(p, (x, 0))
        x += p.width + 4
    canvas.save(path, optimize=True)


def run_peer(content_path: Path, style_path: Path, size: int, steps: int, every: int, out: Path, options: dict) -> dict:
    import adain

    out.mkdir(parents=True, exist_ok=True)
    content, style = _prepare(content_path, style_path, size, out)
    model = adain.load_pretrained("caffe-vgg19")
    encoder = model.encoder.requires_grad_(False)
    peer = run_pastiche(content, style, steps, every)
    ours = run_adain(model, content, style, every, options)
    c, s = _read(content), _read(style)
    objectives = {"pastiche": PasticheObjective(encoder, c, s), "adain": OurObjective(encoder, c, s)}
    outputs = {"pastiche": peer["output"], "adain": ours["output"]}
    table = {f"{obj} objective": {who: fn(outputs[who]) for who in outputs} for obj, fn in objectives.items()}
    target = table["pastiche objective"]["pastiche"]
    reach = {
        "pastiche": _first_reaching(peer["kept"], objectives["pastiche"], target),
        "adain": _first_reaching(ours["kept"], objectives["pastiche"], target),
    }
    name = f"{content_path.stem}-{style_path.stem}-{size}"
    for who, image in outputs.items():
        tensor_to_pil(image[0]).save(out / f"{name}-{who}.png")
    side_by_side([c, s, peer["output"], ours["output"]], out / f"{name}-side-by-side.png", height=min(size, 256))
    return {
        "content": str(content_path),
        "style": str(style_path),
        "size": list(c.shape[-2:]),
        "pastiche_steps": steps,
        "adain_options": options,
        "seconds": {"pastiche": peer["seconds"], "adain": ours["seconds"]},
        "objectives": table,
        "target (pastiche objective of pastiche's output)": target,
        "time to reach target": reach,
        "pictures": str(out / f"{name}-side-by-side.png"),
    }
