"""``adain.stylize_video`` and ``adain video``: round trips through PyAV, folders of frames, safety, smoothing.

Clips are tiny (64x48, 8 frames) and generated here, with an AAC sine track; the model has random weights.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from PIL import Image

import adain
from adain.cli import main
from adain.cli._signals import StopRequests
from adain.video import MissingDependencyError, VideoInterrupted, VideoReadError
from adain.video._temporal import StatsSmoother

av = pytest.importorskip("av")

W, H, N, RATE = 64, 48, 8, 25
STYLE_SIZE = 32


def _scene(t: int, h: int = H, w: int = W) -> np.ndarray:
    """A smooth colour pattern that moves with ``t`` (frames differ from each other)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.4 * np.sin((x + 3 * t) / 7.0)
    g = 0.5 + 0.4 * np.cos((y - 2 * t) / 5.0)
    b = 0.5 + 0.4 * np.sin((x + y + 5 * t) / 9.0)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def _make_clip(path, *, n=N, w=W, h=H, pts=None, audio=True, rotation=0):
    """An H.264 MP4 (time base 1/1000; ``pts`` in ms, default every 40 ms) with an AAC 440 Hz sine."""
    pts = list(range(0, 40 * n, 40)) if pts is None else pts
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=RATE)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.time_base = stream.codec_context.time_base = tb = Fraction(1, 1000)  # the muxer changes stream's
    stream.options = {"crf": "10"}
    if rotation:
        stream.set_display_rotation(rotation)
    sound = out.add_stream("aac", rate=44100) if audio else None
    for i, p in enumerate(pts):
        frame = av.VideoFrame.from_ndarray(_scene(i, h, w), format="rgb24")
        frame.pts, frame.time_base = p, tb
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    if sound is not None:
        seconds = (pts[-1] + 40) / 1000
        t = np.arange(int(44100 * seconds)) / 44100
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        for packet in [*sound.encode(frame), *sound.encode(None)]:
            out.mux(packet)
    out.close()
    return path


def _decode(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _describe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        info = {
            "frames": len(frames),
            "rate": v.average_rate,
            "size": (frames[0].width, frames[0].height),
            "times": [float(f.pts * f.time_base) for f in frames],
            "rotation": frames[0].rotation,
            "codec": v.codec_context.name,
        }
    with av.open(str(path)) as c:
        a = c.streams.audio
        info["audio"] = float(a[0].duration * a[0].time_base) if a else None
        info["audio_codec"] = a[0].codec_context.name if a else None
    return info


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    path = tmp_path_factory.mktemp("style") / "style.png"
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((40, 40), Image.BILINEAR).save(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return _make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("model"))


def _expected(model, style, frames: np.ndarray) -> np.ndarray:
    stylizer = adain.Stylizer(model, "cpu").set_style(str(style), style_size=STYLE_SIZE)
    out = stylizer(torch.from_numpy(frames).permute(0, 3, 1, 2))
    return out.permute(0, 2, 3, 1).numpy()


def _close(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute difference (in [0, 1] units) and correlation of two images."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.abs(a - b).mean()), float(np.corrcoef(a, b)[0, 1])


# ---- round trips ---------------------------------------------------------------------------------


def test_round_trip_keeps_frames_rate_size_timestamps_rotation_and_audio(model, style, tmp_path):
    pts = [0, 40, 80, 150, 190, 260, 300, 340]  # variable frame rate
    source = _make_clip(tmp_path / "vfr.mp4", pts=pts, rotation=90)
    out = tmp_path / "out.mp4"
    result = adain.stylize_video(
        source, str(style), out, model=model, style_size=STYLE_SIZE, smoothing=0, device="cpu", batch_size=3
    )
    assert result.output == out and result.frames == N and not result.stopped
    before, after = _describe(source), _describe(out)
    assert after["codec"] == "h264" and after["audio_codec"] == "aac"
    for key in ("frames", "rate", "size", "times", "rotation"):
        assert after[key] == before[key], key
    assert abs(after["audio"] - before["audio"]) < 1 / RATE
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left

    expected, got = _expected(model, style, _decode(source)), _decode(out) / 255.0
    for i in range(N):
        diff, corr = _close(got[i], expected[i])
        assert diff < 0.05 and corr > 0.9, (i, diff, corr)
    # ... and frame i is not just as close to another frame's stylization
    assert _close(got[2], expected[5])[0] > 2 * _close(got[2], expected[2])[0]


def test_a_folder_of_frames_in_and_out(model, style, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(N):  # natural order: 2 before 10
        Image.fromarray(_scene(i)).save(frames / f"f{i * 4 + 2}.png")
    out = tmp_path / "out"
    result = adain.stylize_video(frames, str(style), out, model=model, style_size=STYLE_SIZE, smoothing=0, device="cpu")
    names = sorted(p.name for p in out.iterdir())
    assert result.frames == N and names == [f"frame_{i:06d}.png" for i in range(1, N + 1)]
    expected = _expected(model, style, np.stack([_scene(i) for i in range(N)]))
    got = np.stack([np.asarray(Image.open(out / name)) for name in names]) / 255.0
    assert np.abs(got - expected).max() <= 1 / 255 + 1e-6
    video = tmp_path / "from_frames.mp4"
    adain.stylize_video(frames, str(style), video, model=model, style_size=STYLE_SIZE, fps=12, device="cpu")
    info = _describe(video)
    assert info["frames"] == N and info["rate"] == 12 and info["audio"] is None and info["size"] == (W, H)


def test_a_video_to_frames_is_turned_upright_and_odd_sizes_are_padded_for_h264(model, style, tmp_path):
    source = _make_clip(tmp_path / "rot.mp4", n=3, rotation=-90, audio=False)
    out = tmp_path / "frames"
    adain.stylize_video(source, str(style), out, model=model, style_size=STYLE_SIZE, device="cpu")
    assert Image.open(out / "frame_000001.png").size == (H, W)
    frames = tmp_path / "odd"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(_scene(i, 21, 31)).save(frames / f"{i}.png")
    adain.stylize_video(frames, str(style), tmp_path / "odd.mp4", model=model, style_size=STYLE_SIZE, device="cpu")
    assert _describe(tmp_path / "odd.mp4")["size"] == (32, 22)


def test_progress_reaches_the_total_and_the_callback_can_stop(model, style, clip, tmp_path):
    seen = []
    adain.stylize_video(
        clip,
        str(style),
        tmp_path / "a.mp4",
        model=model,
        style_size=STYLE_SIZE,
        device="cpu",
        batch_size=2,
        callback=seen.append,
    )
    assert [p.frames for p in seen] == [2, 4, 6, 8] and seen[-1].total == N
    assert seen[-1].fps > 0 and seen[-1].eta == 0 and seen[0].eta > 0
    result = adain.stylize_video(
        clip,
        str(style),
        tmp_path / "b.mp4",
        model=model,
        style_size=STYLE_SIZE,
        device="cpu",
        batch_size=2,
        callback=lambda p: p.frames >= 4,
    )
    assert result.stopped and result.frames == 4 and _describe(tmp_path / "b.mp4")["frames"] == 4


# ---- interruption --------------------------------------------------------------------------------


def test_an_interrupt_leaves_a_closed_playable_partial_video(model, style, clip, tmp_path):
    handlers = []

    def interrupt(p):
        handlers.append(signal.getsignal(signal.SIGTERM))
        if p.frames == 4:
            raise KeyboardInterrupt

    out = tmp_path / "partial.mp4"
    with pytest.raises(VideoInterrupted, match="holds the first 4 of 8 frames") as info:
        adain.stylize_video(
            clip, str(style), out, model=model, style_size=STYLE_SIZE, device="cpu", batch_size=2, callback=interrupt
        )
    assert info.value.frames == 4 and info.value.path == out
    described = _describe(out)
    assert described["frames"] == 4 and described["audio"] <= 4 / RATE + 0.03
    assert set(handlers) == {signal.SIG_DFL}  # the library installs no signal handler


@pytest.mark.slow
def test_a_sigterm_stops_at_the_end_of_the_batch_through_the_callback_as_the_command_line_arranges(
    model, style, clip, tmp_path
):
    def progress(p):
        if p.frames == 4:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs here
        return stop.requested

    out = tmp_path / "partial.mp4"
    with StopRequests() as stop:
        result = adain.stylize_video(
            clip, str(style), out, model=model, style_size=STYLE_SIZE, device="cpu", batch_size=2, callback=progress
        )
    assert result.stopped and result.frames == 4 and result.output == out
    described = _describe(out)
    assert described["frames"] == 4 and described["audio"] <= 4 / RATE + 0.03
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


@pytest.mark.slow
def test_sigterm_on_the_command_line_prints_how_many_frames_were_written(model_dir, style, tmp_path):
    source = _make_clip(tmp_path / "long.mp4", n=150, audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adain", "video", str(source), str(style), "-o", str(out), "--weights", str(model_dir),
         "--device", "cpu", "--style-size", str(STYLE_SIZE), "--batch-size", "2"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    deadline = time.monotonic() + 60  # the writer's temporary (named with its pid and host) shows it has begun
    while (
        not list(tmp_path.glob(f".{out.name}.tmp-{proc.pid}-*")) and proc.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adain: interrupted: "), stderr
    if "holds the first" in lines[0]:
        written = int(lines[0].split("holds the first ")[1].split()[0])
        assert 0 < written < 150 and _describe(out)["frames"] == written
    assert not list(tmp_path.glob(f".{out.name}.tmp-{proc.pid}-*"))


# ---- errors and safety ---------------------------------------------------------------------------


def test_without_pyav_the_error_says_what_to_install(model, style, clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "av", None)  # ``import av`` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'adain\[video\]'"):
        adain.stylize_video(clip, str(style), tmp_path / "o.mp4", model=model, device="cpu")
    assert main(["video", str(clip), str(style), "-o", str(tmp_path / "o.mp4"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'adain[video]'" in err[0]
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(
    "content", [b"", b"this is not a video at all\n" * 10, b"\x00\x00\x00\x18ftypmp42" + bytes(64)]
)
def test_an_unreadable_video_is_one_line_naming_the_file(style, tmp_path, capsys, content):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    with pytest.raises(VideoReadError, match="broken.mp4"):
        adain.stylize_video(bad, str(style), tmp_path / "out.mp4", device="cpu")  # fails before loading weights
    code = main(["video", str(bad), str(style), "-o", str(tmp_path / "out.mp4"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and str(bad) in err[0] and "Traceback" not in err[0], err
    assert list(tmp_path.glob("*out*")) == [] and list(tmp_path.glob(".out*")) == []


@pytest.mark.slow
def test_a_bad_frame_names_the_file_and_leaves_no_output(model, style, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        Image.fromarray(_scene(i)).save(frames / f"{i}.png")
    (frames / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(adain.InputError, match="2.png"):
        adain.stylize_video(frames, str(style), tmp_path / "o.mp4", model=model, device="cpu", batch_size=1)
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_outputs_are_never_clobbered_without_overwrite(model, style, clip, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    kwargs = dict(model=model, style_size=STYLE_SIZE, device="cpu")
    with pytest.raises(adain.OutputExistsError, match=re.escape(f"{out}: exists; pass overwrite=True")):
        adain.stylize_video(clip, str(style), out, **kwargs)
    assert out.read_bytes() == b"precious"
    with pytest.raises(adain.OutputIsInputError, match="this output is the input"):
        adain.stylize_video(clip, str(style), clip, overwrite=True, **kwargs)
    adain.stylize_video(clip, str(style), out, overwrite=True, **kwargs)
    assert _describe(out)["frames"] == N
    folder = tmp_path / "frames"
    adain.stylize_video(clip, str(style), folder, **kwargs)
    with pytest.raises(adain.OutputExistsError, match=re.escape(f"{folder / 'frame_000001.png'}: exists")):
        adain.stylize_video(clip, str(style), folder, **kwargs)
    with pytest.raises(adain.OutputIsInputError, match="this output is the input"):
        adain.stylize_video(folder, str(style), folder, overwrite=True, **kwargs)


@pytest.mark.slow
def test_the_command_line_writes_the_video(model, model_dir, style, clip, tmp_path):
    out = tmp_path / "cli.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "adain", "video", str(clip), str(style), "-o", str(out), "--weights", str(model_dir),
         "--device", "cpu", "--style-size", str(STYLE_SIZE), "--smoothing", "0", "--alpha", "0.7"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = (
        adain.Stylizer(model, "cpu")
        .set_style(str(style), style_size=STYLE_SIZE)(torch.from_numpy(_decode(clip)).permute(0, 3, 1, 2), 0.7)
        .permute(0, 2, 3, 1)
        .numpy()
    )
    diff, corr = _close(_decode(out)[3] / 255.0, expected[3])
    assert diff < 0.05 and corr > 0.9
    again = subprocess.run(
        [sys.executable, "-m", "adain", "video", str(clip), str(style), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert again.returncode == 3 and again.stderr.strip().splitlines() == [
        f"adain: skipped {out}: it exists (--overwrite replaces it)"
    ]


# ---- temporal smoothing --------------------------------------------------------------------------


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    """Random colours on an 8-pixel grid, interpolated: a photo-like texture."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8))
    return np.asarray(small.resize((w + 16, h + 16), Image.BICUBIC))[8 : 8 + h, 8 : 8 + w]


def _flicker(frames: np.ndarray, dx: int, dy: int, keep: np.ndarray) -> float:
    """Warping error: mean |out[t+1](p) - out[t](p + d)| over the pixels ``keep`` (the flow is a known shift)."""
    h, w = keep.shape
    a = frames[1:, : h - dy, : w - dx].astype(np.float64)
    b = frames[:-1, dy:, dx:].astype(np.float64)
    return float(np.abs(a - b)[:, keep[: h - dy, : w - dx]].mean())


@pytest.mark.slow
def test_smoothing_the_statistics_reduces_flicker_from_a_blinking_light(model, style, tmp_path):
    """A still texture with a light blinking in one corner: the per-frame statistics jump with the light
    and the whole stylized frame with them; the moving average damps that far from the light."""
    h, w, n = 96, 128, 6
    scene = _texture(h, w, seed=3)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for t in range(n):
        frame = scene.copy()
        if t % 2 == 0:
            frame[:24, :24] = 255
        Image.fromarray(frame).save(frames_dir / f"{t}.png")
    keep = np.zeros((h, w), bool)
    keep[h // 2 :, w // 2 :] = True  # the quarter farthest from the light
    flicker = {}
    for smoothing in (0, 0.5):
        out = tmp_path / f"out_{int(smoothing * 10)}"
        adain.stylize_video(
            frames_dir, str(style), out, model=model, style_size=STYLE_SIZE, device="cpu", smoothing=smoothing
        )
        frames = np.stack([np.asarray(Image.open(p)) for p in sorted(out.iterdir())])
        flicker[smoothing] = _flicker(frames, 0, 0, keep)
    assert flicker[0.5] < 0.6 * flicker[0], flicker


def test_the_smoother_restarts_at_a_scene_cut_and_matches_plain_adain_there(model, style):
    smoother = StatsSmoother(0.9, 0.3)
    stylizer = adain.Stylizer(model, "cpu").set_style(str(style), style_size=STYLE_SIZE)
    a = torch.from_numpy(np.stack([_scene(i) for i in range(3)])).permute(0, 3, 1, 2)
    b = 128 + a // 2  # a different scene (other colours)
    for batch in (a, b):
        smoother.observe(batch)
        out = stylizer(batch, content_stats=smoother)
        # the first frame of each scene has its own statistics: exactly per-frame AdaIN
        torch.testing.assert_close(out[0], stylizer(batch[:1])[0])
        assert not torch.allclose(out[2], stylizer(batch[2:])[0])
    assert smoother.cuts == 1


@pytest.mark.slow
def test_content_stats_hook_sees_each_batch_in_order_and_identity_changes_nothing(model, style):
    stylizer = adain.Stylizer(model, "cpu").set_style(str(style), style_size=STYLE_SIZE)
    frames = torch.from_numpy(np.stack([_scene(i) for i in range(3)])).permute(0, 3, 1, 2)
    seen = []

    def identity(mean, std):
        seen.append(mean.shape)
        return mean, std

    torch.testing.assert_close(stylizer(frames, 0.8, content_stats=identity), stylizer(frames, 0.8))
    assert seen == [torch.Size([3, 512, 1, 1])]
    masked = adain.Stylizer(model, "cpu").set_style([str(style), str(style)], mask=np.ones((4, 4), bool))
    with pytest.raises(adain.InputError, match="content_stats"):
        masked(frames, content_stats=identity)
