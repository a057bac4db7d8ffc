"""The cache of named weights under concurrent and crashed processes: locking, stale temporaries."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from http_servers import FileServer

import adain
from adain._atomic import STALE_AFTER_S, remove_stale_temporaries
from adain.weights import _registry as registry
from adain.weights._registry import LegacyFile, UrlSource

NAME = "test-weights"
FILLER = Path(__file__).with_name("cache_filler.py")


@pytest.fixture(scope="module")
def legacy_bytes(legacy_weights) -> dict[str, bytes]:
    return {"vgg": legacy_weights[0].read_bytes(), "decoder": legacy_weights[1].read_bytes()}


def _start(role: str, base: str, cache: Path, legacy_bytes, signals: Path) -> subprocess.Popen:
    shas = [hashlib.sha256(legacy_bytes[k]).hexdigest() for k in ("vgg", "decoder")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(FILLER), role, base, str(cache), *shas, str(signals)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, process: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert process.poll() is None, f"the first process ended early:\n{process.communicate()[1]}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_processes_fill_one_entry_at_once_and_both_succeed(legacy_bytes, tmp_path, model):
    """The second process starts while the first has written model.safetensors but not config.json yet:
    it must neither remove the first one's half-written model folder nor fail."""
    cache, signals = tmp_path / "cache", tmp_path / "signals"
    signals.mkdir()
    with FileServer() as server:
        server.add("/m/vgg_normalised.pth", legacy_bytes["vgg"])
        server.add("/m/decoder.pth", legacy_bytes["decoder"])
        first = _start("first", server.url + "/m", cache, legacy_bytes, signals)
        try:
            _wait_for(signals / "first-paused", first)
            second = _start("second", server.url + "/m", cache, legacy_bytes, signals)
            outputs = [p.communicate(timeout=300) for p in (first, second)]
        finally:
            first.kill()
    for role, process, (out, err) in zip(("first", "second"), (first, second), outputs):
        assert process.returncode == 0 and out.startswith("ok "), f"{role} process failed:\n{err}"
    assert outputs[0][0] == outputs[1][0]  # the same weights
    assert not (signals / "second-converting").exists()  # it waited, then used the first one's conversion
    assert [p.name for p in (cache / NAME).iterdir() if p.name.startswith(".") and p.name != ".lock"] == []
    loaded = adain.load_pretrained(str(cache / NAME / "model"))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


# ---- temporaries left by dead processes ------------------------------------------------------------


def _aged(path: Path, seconds: float, data: bytes = b"x") -> Path:
    """``path`` (written with ``data`` unless it is a folder) last modified ``seconds`` ago."""
    if not path.is_dir():
        path.write_bytes(data)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_stale_temporaries_are_removed_on_the_next_use_and_fresh_ones_kept(tmp_path, model, monkeypatch):
    entry = tmp_path / NAME
    model.save_pretrained(entry / "model")
    (entry / "files").mkdir()
    (entry / ".model.tmp-4242" / "sub").mkdir(parents=True)  # a whole conversion folder left by a dead process
    (entry / ".model.tmp-4242" / "sub" / "model.safetensors").write_bytes(b"half")
    day = STALE_AFTER_S
    stale = [
        _aged(entry / "files" / ".vgg_normalised.pth.part-4242", 2 * day),
        _aged(entry / "model" / ".model.safetensors.tmp-4242", day + 60),
        _aged(entry / ".model.tmp-4242", 2 * day),
    ]
    fresh = [
        _aged(entry / "files" / ".decoder.pth.part-4243", 0, b"being written by a live process"),
        _aged(entry / "model" / ".config.json.tmp-4243", day - 60),
    ]
    others = [_aged(entry / "files" / "notes.txt", 3 * day), _aged(entry / "files" / ".hidden", 3 * day)]
    monkeypatch.setitem(
        registry.REGISTRY,
        NAME,
        dataclasses.replace(
            registry.REFERENCE_PORT,
            name=NAME,
            files=(LegacyFile("vgg_normalised.pth"), LegacyFile("decoder.pth")),
            sources=(UrlSource("http://127.0.0.1:9/unused"),),
        ),
    )
    adain.load_pretrained(NAME, cache_dir=tmp_path, local_files_only=True)  # a use of the entry: loads model/
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in fresh + others)


def test_remove_stale_temporaries_matches_only_temporary_names(tmp_path):
    for name in (".a.tmp-1", ".a.png.part-22", ".a.tmp-x", "a.tmp-1", ".a.tmp-1.bak", ".a.lock"):
        _aged(tmp_path / name, 2 * STALE_AFTER_S)
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".a.png.part-22", ".a.tmp-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.lock", ".a.tmp-1.bak", ".a.tmp-x", "a.tmp-1"]


def test_cache_where_no_lock_file_can_be_made_still_gives_the_offline_error(tmp_path, monkeypatch):
    def read_only(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("adain.weights._cache.open", read_only, raising=False)  # as on a read-only cache
    monkeypatch.setitem(
        registry.REGISTRY,
        NAME,
        dataclasses.replace(registry.REFERENCE_PORT, name=NAME, sources=(UrlSource("http://127.0.0.1:9/unused"),)),
    )
    with pytest.raises(adain.WeightsOfflineError, match="put vgg_normalised.pth and decoder.pth"):
        adain.load_pretrained(NAME, cache_dir=tmp_path, local_files_only=True)
