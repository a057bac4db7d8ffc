"""A process killed with SIGKILL in the middle of each kind of large write leaves a temporary (never a partial
file under the real name), and the next use of the same folder removes it at once: its owner is dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from http_servers import FileServer
from PIL import Image

import adain
from adain._temporaries import STALE_AFTER_S, host_id, remove_stale_temporaries, temporary_name
from adain.training._checkpoint import list_checkpoints, save_checkpoint
from adain.weights._download import download_url

WRITER = Path(__file__).with_name("killed_writer.py")
# Each kill starts a Python process that imports torch (slow tests); the rules of ownership are tested directly below.
pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and PIDs of this host: POSIX")


def _kill_mid_write(kind: str, target: Path, *extra: str) -> int:
    """Run ``killed_writer.py KIND TARGET``, SIGKILL it once it is in the middle of writing; returns its PID."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, str(WRITER), kind, str(target), *extra],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.strip() == "ready", f"the {kind} writer did not reach its write:\n{process.communicate()[1]}"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL
    return process.pid


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.name != ".lock")


def _left_by(pid: int, folder: Path) -> list[str]:
    """The temporaries in ``folder`` (recursively) named by the killed process: the precondition of each test."""
    left = [name for name in _temporaries(folder) if f"-{pid}-{host_id()}" in name]
    assert left, f"the killed writer left nothing to clean up in {folder}: {_temporaries(folder)}"
    return left


@pytest.mark.slow  # a subprocess importing torch: about 8 s on 2 busy cores
def test_a_download_killed_midway_is_cleaned_up_by_the_next_download(tmp_path):
    body = bytes(range(256)) * 4096 * 3  # 3 MiB: the first 1 MiB read completes before the stall
    target = tmp_path / "files" / "decoder.pth"
    with FileServer() as server:
        stalling = server.add("/stall/decoder.pth", body, stall_s=60, stall_after=len(body) // 2)
        pid = _kill_mid_write("download", target, stalling)
        _left_by(pid, target.parent)
        assert not target.exists()  # no partial file under the real name
        download_url(server.add("/ok/decoder.pth", body), target)
    assert target.read_bytes() == body
    assert _temporaries(target.parent) == []


@pytest.mark.slow
def test_a_conversion_killed_midway_is_cleaned_up_by_the_next_load(tmp_path, legacy_weights, model, monkeypatch):
    import dataclasses

    from adain.weights import _registry as registry

    entry = tmp_path / "test-weights"
    (entry / "files").mkdir(parents=True)
    for path in legacy_weights:
        (entry / "files" / path.name).write_bytes(path.read_bytes())
    pid = _kill_mid_write("conversion", tmp_path)
    assert any(name.startswith(".model.tmp-") for name in _left_by(pid, entry))
    assert not (entry / "model").exists()
    files = (registry.LegacyFile("vgg_normalised.pth"), registry.LegacyFile("decoder.pth"))
    monkeypatch.setitem(
        registry.REGISTRY,
        "test-weights",
        dataclasses.replace(
            registry.REFERENCE_PORT,
            name="test-weights",
            files=files,
            sources=(registry.UrlSource("http://127.0.0.1:9"),),
        ),
    )
    loaded = adain.load_pretrained("test-weights", cache_dir=tmp_path, local_files_only=True)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert _temporaries(entry) == []


@pytest.mark.slow  # a subprocess importing torch: about 8 s on 2 busy cores
def test_a_checkpoint_killed_midway_is_cleaned_up_by_the_next_checkpoint(tmp_path):
    pid = _kill_mid_write("checkpoint", tmp_path)
    _left_by(pid, tmp_path / "checkpoints")
    assert list_checkpoints(tmp_path) == []  # nothing under a real name
    save_checkpoint(tmp_path, {"step": 2, "decoder": {"w": torch.ones(4)}})
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000002.pt"]


@pytest.mark.slow  # a subprocess importing torch: about 8 s on 2 busy cores
def test_an_image_killed_midway_is_cleaned_up_by_the_next_image_into_that_folder(tmp_path):
    pid = _kill_mid_write("image", tmp_path / "out" / "a.png")
    _left_by(pid, tmp_path / "out")
    adain._io.save_image(Image.new("RGB", (8, 8)), tmp_path / "out" / "b.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.png"]  # no a.png, whole or partial


@pytest.mark.slow  # a subprocess importing torch: about 8 s on 2 busy cores
def test_a_video_killed_midway_is_cleaned_up_by_the_next_video_into_that_folder(tmp_path):
    pytest.importorskip("av")
    from fractions import Fraction

    from adain.video._sink import VideoWriter
    from adain.video._source import VideoInfo

    pid = _kill_mid_write("video", tmp_path / "a.mp4")
    left = _left_by(pid, tmp_path)
    assert (tmp_path / left[0]).stat().st_size > 0 and not (tmp_path / "a.mp4").exists()
    info = VideoInfo(Path("in.mp4"), 32, 32, Fraction(25), Fraction(1, 25), 2)
    writer = VideoWriter(tmp_path / "b.mp4", info, overwrite=False, crf=30, audio=False)
    for pts in range(2):
        writer.write(np.zeros((32, 32, 3), np.uint8), pts, 1)
    assert writer.close() == tmp_path / "b.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.mp4"]


# ---- who owns a temporary -------------------------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _aged(path: Path, seconds: float) -> Path:
    path.write_bytes(b"x")
    os.utime(path, (path.stat().st_mtime - seconds,) * 2)
    return path


def test_temporary_names_carry_the_pid_and_host_of_their_writer(tmp_path):
    name = temporary_name(tmp_path / "out.png", "part").name
    assert name == f".out.png.part-{os.getpid()}-{host_id()}"
    long = temporary_name(tmp_path / ("x" * 255)).name
    assert len(long.encode()) <= 255 and long.endswith(f".tmp-{os.getpid()}-{host_id()}")


def test_dead_owners_here_are_removed_at_once_other_hosts_after_a_day(tmp_path):
    dead, here = _dead_pid(), host_id()
    other = "0123abcd" if here != "0123abcd" else "fedc9876"
    removed_now = [_aged(tmp_path / f".a.png.tmp-{dead}-{here}", 0)]
    (tmp_path / f".model.tmp-{dead}-{here}").mkdir()  # a folder (a conversion) as well
    (tmp_path / f".model.tmp-{dead}-{here}" / "model.safetensors").write_bytes(b"half")
    kept = [
        _aged(tmp_path / f".b.png.tmp-{os.getpid()}-{here}", STALE_AFTER_S - 60),  # this live process
        _aged(tmp_path / f".c.png.tmp-{os.getppid()}-{here}", 0),  # another live process
        _aged(tmp_path / f".d.png.part-{dead}-{other}", STALE_AFTER_S - 60),  # another host: its PIDs mean nothing here
        _aged(tmp_path / f".e.png.tmp-{dead}", 0),  # an earlier version's name: no host, the age rule
        _aged(tmp_path / f"f.png.tmp-{dead}-{here}", 0),  # not hidden: not a temporary name
    ]
    old_elsewhere = _aged(tmp_path / f".g.png.part-{dead}-{other}", STALE_AFTER_S + 60)
    # A live PID that has not touched its temporary for over a day: most likely a dead writer's PID reused.
    old_live = _aged(tmp_path / f".h.png.tmp-{os.getppid()}-{here}", STALE_AFTER_S + 60)
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(
        [removed_now[0].name, f".model.tmp-{dead}-{here}", old_elsewhere.name, old_live.name]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


def test_output_folders_leave_names_without_a_host_alone(tmp_path):
    """A writer's tidy-up only removes names this version makes: ``.notes.tmp-1`` may be the user's."""
    theirs = _aged(tmp_path / f".notes.tmp-{_dead_pid()}", 3 * STALE_AFTER_S)
    dead = _aged(tmp_path / f".a.png.tmp-{_dead_pid()}-{host_id()}", 0)
    adain._io.save_image(Image.new("RGB", (4, 4)), tmp_path / "b.png")
    assert theirs.exists() and not dead.exists()
