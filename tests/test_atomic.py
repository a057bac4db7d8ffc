"""The one atomic write: a full disk is one line naming the file, and leaves nothing half-written behind."""

from __future__ import annotations

import errno
import os

import pytest
from PIL import Image

import adain
from adain import _io as io
from adain._atomic import atomic_dir, atomic_path


def _fill_then_fail(code: int = errno.ENOSPC):
    """A writer that gets some bytes out, then finds the disk full."""

    def write(path) -> None:
        with open(path, "wb") as f:
            f.write(b"\0" * 1000)
        raise OSError(code, os.strerror(code))

    return write


def test_save_pretrained_on_a_full_disk(tmp_path, model, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"the previous weights")
    fail = _fill_then_fail()
    monkeypatch.setattr("adain.weights._format.save_file", lambda tensors, path, metadata=None: fail(path))
    with pytest.raises(adain.DiskFullError) as info:
        model.save_pretrained(folder)
    message = str(info.value)
    needed = sum(v.numel() * 4 for v in model.state_dict().values())
    assert message.startswith(f"{folder / 'model.safetensors'}: cannot write it, no space left on the device")
    assert f"({needed} bytes)" in message and "\n" not in message
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert (folder / "model.safetensors").read_bytes() == b"the previous weights"  # never half-overwritten
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]  # the temporary is gone


def test_save_image_on_a_full_disk(tmp_path, monkeypatch, capsys):
    target = tmp_path / "out.png"
    fail = _fill_then_fail(getattr(errno, "EDQUOT", errno.ENOSPC))
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, format=None, **kw: fail(fp))
    with pytest.raises(adain.DiskFullError, match=f"^{target}: cannot write it, (disk quota exceeded|no space left)"):
        io.save_image(Image.new("RGB", (4, 4)), target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_full_disk_is_one_line_on_the_command_line(tmp_path, model, monkeypatch, capsys):
    from adain.cli import main

    folder = model.save_pretrained(tmp_path / "mine")
    for name in ("content.png", "style.png"):
        Image.new("RGB", (16, 16)).save(tmp_path / name)
    fail = _fill_then_fail()
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, format=None, **kw: fail(fp))
    out = tmp_path / "out.png"
    assert (
        main(
            [
                "stylize",
                str(tmp_path / "content.png"),
                str(tmp_path / "style.png"),
                "-o",
                str(out),
                "--weights",
                str(folder),
                "--device",
                "cpu",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith(f"adain: error: {out}: cannot write it, no space left") and err.count("\n") == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.png")]


def test_other_write_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(PermissionError):
        with atomic_path(tmp_path / "f") as tmp:
            tmp.write_bytes(b"x")
            raise PermissionError(errno.EACCES, "denied")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_shows_the_folder_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_bytes(b"a")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "a").write_bytes(b"a")
        assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "a").read_bytes() == b"a"
