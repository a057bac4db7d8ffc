"""One full-disk path: whichever library reports "no space" (Python's OSError, safetensors, torch's zip writer,
PyAV, onnx), the write ends in one ``DiskFullError`` naming the file, the bytes needed and the bytes free, no
temporary is left, and every command prints it as one line with exit status 1.

The libraries' errors below are the ones they raise on a real full disk, recorded on a 1 MiB tmpfs (Linux,
safetensors 0.8, torch 2.14, PyAV 18): ``SafetensorError('Error while serializing: I/O error: No space left on
device (os error 28)')``, torch.save to a path ``RuntimeError('[enforce fail at inline_container.cc:672] .
unexpected pos 576 vs 534')``, torch.save to a file object, Pillow and onnx ``OSError(28)``, PyAV
``av.error.OSError(28)``. ``test_real_full_disk`` repeats the main writers on a real tmpfs where one can be
mounted (a private mount namespace: ``unshare``).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT

import adain
from adain._atomic import atomic_path, is_disk_full
from adain.cli import main
from adain.training._checkpoint import CheckpointDiskFullError, save_checkpoint

ENOSPC_TEXT = os.strerror(errno.ENOSPC)


def _safetensors_full() -> Exception:
    from safetensors import SafetensorError

    return SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


def _torch_full() -> Exception:
    return RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")


def _torch_writer_full() -> Exception:
    return RuntimeError(
        "[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file data/0: file write failed"
    )


def _pyav_full(path="out.mp4") -> Exception:
    av = pytest.importorskip("av")
    try:
        av.error.err_check(-errno.ENOSPC, str(path))  # how PyAV builds its error from FFmpeg's return code
    except Exception as exc:  # noqa: BLE001 -- the error object is what the test needs
        return exc
    raise AssertionError("err_check raised nothing")


def _os_full(code: int = errno.ENOSPC) -> Exception:
    return OSError(code, os.strerror(code))


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _no_temporaries(folder: Path) -> None:
    left = [p.name for p in folder.rglob(".*") if re.search(r"\.(tmp|part)-\d+", p.name)]
    assert left == [], left


@pytest.mark.parametrize(
    "make, code",
    [
        (_safetensors_full, errno.ENOSPC),
        (_torch_full, errno.ENOSPC),
        (_torch_writer_full, errno.ENOSPC),
        (_pyav_full, errno.ENOSPC),
        (_os_full, errno.ENOSPC),
        (lambda: _os_full(errno.EDQUOT), errno.EDQUOT),
        (lambda: RuntimeError("Error while serializing: I/O error: Disk quota exceeded (os error 122)"), errno.EDQUOT),
    ],
)
def test_every_librarys_no_space_error_is_recognised(make, code):
    assert is_disk_full(make()) == code


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.EACCES, "Permission denied"),
        RuntimeError("[enforce fail at inline_container.cc:300] . file not found: archive/data.pkl"),
        ValueError("unexpected pos"),  # torch's words, but not from its writer
        KeyError("space"),
    ],
)
def test_other_errors_are_not_a_full_disk(exc):
    assert is_disk_full(exc) is None


@pytest.mark.parametrize("make", [_safetensors_full, _torch_full, _pyav_full])
def test_the_atomic_write_turns_each_into_one_disk_full_error(make, tmp_path):
    target = tmp_path / "big.bin"
    with pytest.raises(adain.DiskFullError) as info:
        with atomic_path(target, expected_bytes=5_000_000) as tmp:
            tmp.write_bytes(b"x" * 100)
            raise make()
    message = str(info.value)
    assert message.startswith(
        f"{target}: cannot write it, no space left on the device; it needs 5.0 MB (5000000 bytes)"
    )
    assert re.search(r", [0-9.]+ [kMG]?B \(\d+ bytes\) free there|, \d+ bytes free there", message), message
    assert "\n" not in message and info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_without_an_expected_size_the_bytes_already_written_are_named(tmp_path):
    with pytest.raises(adain.DiskFullError, match=r"it needs 1.5 kB \(1500 bytes\)"):
        with atomic_path(tmp_path / "f") as tmp:
            tmp.write_bytes(b"x" * 1500)
            raise _os_full()


# ---- each command ----------------------------------------------------------------------------------


def _partial_then(error: Exception):
    """A writer that gets some bytes into its file, then fails as the library does on a full disk."""

    def write(*args, **kwargs):
        path = next((a for a in args if isinstance(a, (str, os.PathLike))), None)
        if path is not None:
            Path(path).write_bytes(b"partial")
        raise error

    return write


@pytest.mark.slow  # converts the legacy pair: about 7 s on 2 busy cores
def test_convert_on_a_full_disk_is_one_line_exit_1(legacy_weights, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("adain.weights._format.save_file", _partial_then(_safetensors_full()))
    out = tmp_path / "converted"
    assert main(["convert", "reference-port", *map(str, legacy_weights), str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"adain: error: {out / 'model.safetensors'}: cannot write it, no space left on the device")
    assert "bytes) free there" in line or "bytes free there" in line
    assert not (out / "model.safetensors").exists()
    _no_temporaries(tmp_path)


def _registered(monkeypatch, url: str) -> None:
    import dataclasses

    from adain.weights import _registry as registry

    files = (registry.LegacyFile("vgg_normalised.pth"), registry.LegacyFile("decoder.pth"))
    entry = dataclasses.replace(
        registry.REFERENCE_PORT, name="test-weights", files=files, sources=(registry.UrlSource(url),)
    )
    monkeypatch.setitem(registry.REGISTRY, "test-weights", entry)


def test_download_on_a_full_disk_while_downloading_is_one_line_exit_1(legacy_weights, tmp_path, monkeypatch, capsys):
    from http_servers import FileServer

    from adain.weights import _download

    def fill(self, response, tmp, total):
        Path(tmp).write_bytes(b"partial")
        raise _os_full()

    monkeypatch.setattr(_download._Fetch, "_copy", fill)
    with FileServer() as server:
        for path in legacy_weights:
            server.add(f"/m/{path.name}", path.read_bytes())
        _registered(monkeypatch, server.url + "/m")
        assert main(["download", "test-weights", "--cache-dir", str(tmp_path)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    target = tmp_path / "test-weights" / "files" / "vgg_normalised.pth"
    assert line.startswith(f"adain: error: {target}: cannot write it, no space left on the device; it needs ")
    assert not target.exists()
    _no_temporaries(tmp_path)


def test_download_on_a_full_disk_while_converting_is_one_line_exit_1(legacy_weights, tmp_path, monkeypatch, capsys):
    files = tmp_path / "test-weights" / "files"
    files.mkdir(parents=True)
    for path in legacy_weights:
        shutil.copy(path, files / path.name)
    _registered(monkeypatch, "http://127.0.0.1:9/unused")
    monkeypatch.setattr("adain.weights._format.save_file", _partial_then(_safetensors_full()))
    assert main(["download", "test-weights", "--cache-dir", str(tmp_path)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert re.match(rf"adain: error: {re.escape(str(tmp_path / 'test-weights'))}/\S+: cannot write it, no space", line)
    assert not (tmp_path / "test-weights" / "model").exists()
    _no_temporaries(tmp_path)


def test_a_checkpoint_on_a_full_disk_is_a_disk_full_error_naming_the_one_to_resume_from(tmp_path, monkeypatch):
    state = {"step": 1, "decoder": {"w": torch.zeros(1000)}}
    kept = save_checkpoint(tmp_path, state)
    for error in (_torch_full(), _torch_writer_full(), _os_full(errno.EDQUOT)):
        monkeypatch.setattr(torch, "save", _partial_then(error))
        with pytest.raises(CheckpointDiskFullError) as info:
            save_checkpoint(tmp_path, {**state, "step": 2})
        assert isinstance(info.value, adain.DiskFullError) and info.value.errno == is_disk_full(error)
        message = str(info.value)
        assert message.startswith(f"cannot write checkpoint {tmp_path / 'checkpoints' / 'step-00000002.pt'}: ")
        assert "it needs 4.0 kB (4000 bytes)" in message and "free there" in message and "\n" not in message
        assert f"the previous checkpoint {kept} is intact" in message
        assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [kept.name]


def test_a_video_on_a_full_disk_is_a_disk_full_error_and_leaves_nothing(tmp_path, monkeypatch):
    pytest.importorskip("av")
    from fractions import Fraction

    import numpy as np

    from adain.video._sink import VideoWriter
    from adain.video._source import VideoInfo

    info = VideoInfo(Path("in.mp4"), 32, 32, Fraction(25), Fraction(1, 25), 2)
    writer = VideoWriter(tmp_path / "out.mp4", info, overwrite=False, crf=30, audio=False)
    real, error = writer._container, _pyav_full(writer.tmp)

    class FullDisk:  # the container as it behaves once the disk is full: every packet refused
        def mux(self, packet):
            raise error

        def __getattr__(self, name):
            return getattr(real, name)

    writer._container = FullDisk()
    with pytest.raises(
        adain.DiskFullError, match=f"^{re.escape(str(tmp_path / 'out.mp4'))}: cannot write it, no space"
    ):
        for pts in range(60):
            writer.write(np.zeros((32, 32, 3), np.uint8), pts, 1)
        writer.close()
    writer._container = real
    writer.abort()  # what stylize_video does on any failure
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_export_on_a_full_disk_is_one_line_exit_1(model, tmp_path, monkeypatch, capsys):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    weights = model.save_pretrained(tmp_path / "weights")
    monkeypatch.setattr(onnx, "save_model", _partial_then(_os_full()))
    out = tmp_path / "onnx" / "adain.onnx"
    assert main(["export", str(weights), str(out)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"adain: error: {out.with_suffix('.style.onnx')}: cannot write it, no space left on the")
    assert not (tmp_path / "onnx").exists() or list((tmp_path / "onnx").iterdir()) == []


# ---- a real full disk ------------------------------------------------------------------------------

_REAL = """
import sys, torch, numpy as np
from PIL import Image
import adain
from adain import _io
from adain.training._checkpoint import save_checkpoint
root, model = sys.argv[1], adain.AdaINModel(adain.ModelConfig())
noise = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), np.uint8)  # 3 MB: no PNG makes it fit
for name, write in [
    ("safetensors", lambda: model.save_pretrained(root + "/model")),
    ("checkpoint", lambda: save_checkpoint(root + "/run", {"step": 1, "decoder": model.decoder.state_dict()})),
    ("image", lambda: _io.save_image(Image.fromarray(noise), root + "/a.png")),
]:
    try:
        write()
        print(name, "written")
    except adain.DiskFullError as exc:
        print(name, "DiskFullError", exc.errno)
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux" or shutil.which("unshare") is None, reason="tmpfs in a mount namespace")
def test_real_full_disk(tmp_path):
    """The writers on a real 1 MiB tmpfs, in a private mount namespace (nothing is mounted outside it)."""
    script = tmp_path / "write.py"
    script.write_text(_REAL)
    disk = tmp_path / "disk"
    disk.mkdir()
    command = f"mount -t tmpfs -o size=1m tmpfs {disk} && {sys.executable} {script} {disk} && ls -A {disk} {disk}/*"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(["unshare", "-rm", "sh", "-c", command], capture_output=True, text=True, env=env)
    if "mount" in run.stderr and run.returncode != 0 and "DiskFullError" not in run.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:3] == ["safetensors DiskFullError 28", "checkpoint DiskFullError 28", "image DiskFullError 28"]
    assert not re.search(r"\.(tmp|part)-\d+", run.stdout), run.stdout  # `ls -A`: no temporary left
