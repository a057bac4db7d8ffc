"""Video throughput and flicker of ``adain.stylize_video``.

Throughput: frames per second of the whole pipeline (decode + stylize + encode + audio copy) on a
generated H.264 clip with an AAC track, at 1280x720 and 1920x1080. Also, with the same batch size, the
stylizing alone (frames already decoded, in memory) and the decoding + encoding alone (no stylizing):
the pipeline runs decoding and encoding in background threads, so on a GPU the whole should approach
the stylizing alone. On a CPU all three compete for the same cores.

Flicker: the warping error of the output on a synthetic video whose motion is known exactly: a photo
(``../shared/data/images/content/`` when present, else a generated texture) panned by whole pixels
per frame (2 px right, 1 px down), so that frame t+1 at p is frame t at p + d. The error is mean
|O[t+1](p) - O[t](p + d)| in 8-bit levels over the interior (16 px from the borders), without and with the smoothing
of the content statistics (``smoothing``, ``adain.video._temporal``); then again with a light
blinking in one corner, which makes the per-frame statistics jump (the error is measured away from
the light), and the same light over a still picture (zero flow), where nothing but the statistics
changes. The input's own warping error is 0 away from the light (whole-pixel shifts), so all of it
is the stylization's.

Weights are random (calibrated so the output spans [0, 1]): speed does not depend on their values;
flicker figures with random weights are only indicative of a trained decoder's.

    python benchmarks/bench_video.py                         # 720p and 1080p, 30 frames, default device
    python benchmarks/bench_video.py --device cpu --frames 4 # a CPU: few frames
    python benchmarks/bench_video.py --quick --json out.json # 320x180, 6 frames; flicker at 128x96
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_stylize import calibrated_models  # noqa: E402

import adain  # noqa: E402
from adain.video._api import frames_per_batch  # noqa: E402
from adain.video._pipeline import batches, run_pipeline  # noqa: E402
from adain.video._sink import open_sink  # noqa: E402
from adain.video._source import open_source  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def picture(folder: str, min_w: int, min_h: int, seed: int) -> np.ndarray:
    """The first photo of ``SHARED/folder`` resized to cover ``min_w x min_h``, else a generated texture."""
    files = sorted((SHARED / folder).glob("*.jpg")) if (SHARED / folder).is_dir() else []
    if files:
        image = Image.open(files[0]).convert("RGB")
        scale = max(min_w / image.width, min_h / image.height, 1e-9)
        image = image.resize(
            (max(min_w, round(image.width * scale)), max(min_h, round(image.height * scale))), Image.BICUBIC
        )
        return np.asarray(image)
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (min_h // 16 + 2, min_w // 16 + 2, 3), dtype=np.uint8))
    return np.asarray(small.resize((min_w + 32, min_h + 32), Image.BICUBIC))[16 : 16 + min_h, 16 : 16 + min_w]


def panned(photo: np.ndarray, w: int, h: int, n: int, dx: int, dy: int) -> list[np.ndarray]:
    return [photo[t * dy : t * dy + h, t * dx : t * dx + w] for t in range(n)]


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 30) -> Path:
    """H.264 (crf 18) at ``rate`` fps with a 440 Hz AAC track as long as the video."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt, video.options = "yuv420p", {"crf": "18"}
        audio = out.add_stream("aac", rate=48000)
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(video.encode(None))
        t = np.arange(int(48000 * len(frames) / rate)) / 48000
        sound = av.AudioFrame.from_ndarray(
            (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp", layout="mono"
        )
        sound.sample_rate, sound.pts = 48000, 0
        out.mux([*audio.encode(sound), *audio.encode(None)])
    return path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_size(w: int, h: int, args, model, style: str, tmp: Path) -> dict:
    clip = write_clip(
        tmp / f"clip_{w}x{h}.mp4",
        panned(picture("content", w + 2 * args.frames, h + args.frames, 1), w, h, args.frames, 2, 1),
    )
    kwargs = dict(model=model, device=args.device, dtype=args.dtype, overwrite=True)
    stylizer = adain.Stylizer(model, args.device, args.dtype).set_style(style)
    source = open_source(clip)
    size = frames_per_batch(source.info, stylizer)
    frames = [f for f, _, _ in source.frames()]
    source.close()
    x = torch.from_numpy(np.stack(frames[:size])).to(stylizer.device).permute(0, 3, 1, 2)
    stylizer(x[:1])  # warm-up (kernels, allocator)
    sync(stylizer.device)
    start = time.perf_counter()
    for i in range(0, len(frames), size):
        x = torch.from_numpy(np.stack(frames[i : i + size])).to(stylizer.device).permute(0, 3, 1, 2)
        stylizer(x).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu()
    compute = time.perf_counter() - start
    source = open_source(clip)
    sink = open_sink(tmp / "io.mp4", source.info, overwrite=True)
    start = time.perf_counter()
    run_pipeline(batches(source.frames(), size), lambda f: f, sink.write)
    sink.close()
    io = time.perf_counter() - start
    source.close()
    seen = []
    result = adain.stylize_video(clip, style, tmp / "out.mp4", batch_size=size, callback=seen.append, **kwargs)
    n = len(frames)
    return {
        "size": f"{w}x{h}",
        "frames": n,
        "batch": size,
        "fps_pipeline": seen[-1].fps,
        "fps_whole_call": n / result.seconds,
        "fps_stylize_only": n / compute,
        "fps_decode_encode_only": n / io,
    }


def warping_error(frames: np.ndarray, dx: int, dy: int, keep: np.ndarray, margin: int = 16) -> float:
    h, w = keep.shape
    a = frames[1:, margin : h - dy - margin, margin : w - dx - margin].astype(np.float64)
    b = frames[:-1, margin + dy : h - margin, margin + dx : w - margin].astype(np.float64)
    return float(np.abs(a - b)[:, keep[margin : h - dy - margin, margin : w - dx - margin]].mean())


SCENES = {"pan": ((2, 1), False), "pan+blinking light": ((2, 1), True), "still+blinking light": ((0, 0), True)}
"""Flicker scenes: whole-pixel shift per frame (dx, dy), and whether a light blinks in the top-left corner."""


def bench_flicker(args, model, style: str, tmp: Path) -> dict:
    w, h, n = args.flicker_width, args.flicker_height, args.flicker_frames
    photo = picture("content", w + 2 * n, h + n, 2)
    side = h // 4
    results = {"size": f"{w}x{h}", "frames": n, "decays": args.decays}
    for scene, ((dx, dy), blink) in SCENES.items():
        folder = tmp / scene.replace("+", "_").replace(" ", "_")
        folder.mkdir()
        for t, frame in enumerate(panned(photo, w, h, n, dx, dy)):
            frame = frame.copy()
            if blink and t % 2 == 0:
                frame[:side, :side] = 255
            Image.fromarray(frame).save(folder / f"{t:04d}.png")
        keep = np.ones((h, w), bool)
        if blink:
            keep[: 2 * side, : 2 * side] = False  # measured away from the light
        errors = []
        for decay in args.decays:
            out = tmp / f"{folder.name}_out_{decay}"
            adain.stylize_video(folder, style, out, model=model, smoothing=decay, device=args.device, dtype=args.dtype)
            frames = np.stack([np.asarray(Image.open(p)) for p in sorted(out.iterdir())])
            errors.append(warping_error(frames, dx, dy, keep))
        results[scene] = errors
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--sizes", default="1280x720,1920x1080", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=30, help="frames of each throughput clip")
    parser.add_argument("--flicker-frames", type=int, default=12)
    parser.add_argument("--flicker-size", default="256x192", help="WIDTHxHEIGHT of the flicker video")
    parser.add_argument("--decays", default="0,0.5,0.8", help="smoothing values compared (0 = off)")
    parser.add_argument("--skip", choices=("throughput", "flicker"), default=None)
    parser.add_argument("--quick", action="store_true", help="320x180, 6 frames; flicker 128x96, 8 frames")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.frames, args.flicker_size, args.flicker_frames = "320x180", 6, "128x96", 8
    args.flicker_width, args.flicker_height = (int(v) for v in args.flicker_size.lower().split("x"))
    args.decays = [float(v) for v in args.decays.split(",")]
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.device = str(device)
    model = calibrated_models()[0]
    results = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pyav": av.__version__,
        "dtype": args.dtype or "auto",
        "throughput": [],
        "flicker": None,
    }
    print(f"device {results['device']}, {results['threads']} threads, torch {torch.__version__}, PyAV {av.__version__}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        style_files = sorted((SHARED / "style").glob("*.jpg")) if (SHARED / "style").is_dir() else []
        style = str(style_files[0]) if style_files else str(_generated_style(tmp))
        if args.skip != "throughput":
            print(
                "frames/s: pipeline = stylize_video once started (decoding, stylizing, encoding at once); whole call\n"
                "= also loading the model, encoding the style, flushing the encoder; then each part alone"
            )
            print(
                f"{'size':>10} {'frames':>6} {'batch':>5} {'pipeline':>10} {'whole call':>10} {'stylize only':>12} "
                f"{'dec+enc only':>12}"
            )
            for spec in args.sizes.split(","):
                w, h = (int(v) for v in spec.lower().split("x"))
                r = bench_size(w, h, args, model, style, tmp)
                results["throughput"].append(r)
                print(
                    f"{r['size']:>10} {r['frames']:>6} {r['batch']:>5} {r['fps_pipeline']:>10.3g} "
                    f"{r['fps_whole_call']:>10.3g} {r['fps_stylize_only']:>12.3g} {r['fps_decode_encode_only']:>12.3g}",
                    flush=True,
                )
        if args.skip != "flicker":
            f = results["flicker"] = bench_flicker(args, model, style, tmp)
            print(f"flicker (warping error, 8-bit levels) at {f['size']}, {f['frames']} frames; pans move 2,1 px/frame")
            print(f"{'smoothing':>22} " + " ".join(f"{d:>7g}" for d in f["decays"]))
            for scene in SCENES:
                print(f"{scene:>22} " + " ".join(f"{e:>7.3f}" for e in f[scene]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _generated_style(tmp: Path) -> Path:
    rng = np.random.default_rng(5)
    path = tmp / "style.png"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((256, 256), Image.BICUBIC).save(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
