"""A malicious pickle saved as .pth is refused by every public loading path and its payload never runs."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT
from http_servers import FileServer, HubServer

import adain
from adain.weights import _registry as registry
from adain.weights._cache import LOCK_NAME
from adain.weights._registry import LegacyFile, UrlSource


class _Payload:
    """Unpickling this runs ``touch <marker>`` through os.system."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil(tmp_path):
    """``(evil.pth, marker)``: a torch.save'd dict whose unpickling would create ``marker``."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"0.weight": _Payload(str(marker))}, path)
    yield path, marker
    assert not marker.exists(), "the payload ran"


def test_payload_is_real_when_unpickled_unsafely(tmp_path):
    # The control experiment: the same kind of file *does* run code under an unsafe load.
    marker = tmp_path / "control"
    path = tmp_path / "control.pth"
    torch.save({"x": _Payload(str(marker))}, path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_from_original_refuses(evil, legacy_weights):
    with pytest.raises(adain.CorruptWeightsError, match="refused without running it"):
        adain.AdaINModel.from_original(evil[0], legacy_weights[1])


def test_convert_reference_port_refuses(evil, legacy_weights):
    from adain.weights._legacy import load_reference_port

    with pytest.raises(adain.CorruptWeightsError, match="refused"):
        load_reference_port(legacy_weights[0], evil[0])


def test_torch7_reader_refuses(evil):
    from adain.weights._torch7 import read_t7

    with pytest.raises(adain.CorruptWeightsError, match="not a valid Torch7 file"):
        read_t7(evil[0])


def test_local_directory_with_pickle_as_safetensors_refuses(evil, tmp_path, model):
    folder = model.save_pretrained(tmp_path / "dir")
    (folder / "model.safetensors").write_bytes(evil[0].read_bytes())
    with pytest.raises(adain.CorruptWeightsError, match="safetensors"):
        adain.load_pretrained(folder)


def test_named_weights_from_mirror_refuse_and_clean_up(evil, legacy_weights, tmp_path, monkeypatch):
    with FileServer() as server:
        server.add("/m/vgg_normalised.pth", evil[0].read_bytes())
        server.add("/m/decoder.pth", legacy_weights[1].read_bytes())
        entry = dataclasses.replace(
            registry.REFERENCE_PORT,
            name="evil",
            files=(LegacyFile("vgg_normalised.pth"), LegacyFile("decoder.pth")),
            sources=(UrlSource(server.url + "/m"),),
        )
        monkeypatch.setitem(registry.REGISTRY, "evil", entry)
        with pytest.raises(adain.CorruptWeightsError, match="refused"):
            adain.load_pretrained("evil", cache_dir=tmp_path / "cache")
    # Nothing downloaded is left (the entry's empty lock file stays, as after any load: adain.weights._cache).
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != LOCK_NAME] == []


def test_hub_repo_with_pickle_as_safetensors_refuses(evil, tmp_path, model, monkeypatch):
    folder = model.save_pretrained(tmp_path / "repo")
    (folder / "model.safetensors").write_bytes(evil[0].read_bytes())
    with HubServer() as hub:
        hub.add_repo("org/evil", folder)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        with pytest.raises(adain.CorruptWeightsError, match="safetensors"):
            adain.load_pretrained("org/evil", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("kind", ["reference-port", "torchvision"])
def test_cli_convert_refuses(evil, legacy_weights, tmp_path, kind, capsys):
    from adain.cli import main

    args = [str(evil[0]), str(legacy_weights[1]), str(tmp_path / "out")] if kind == "reference-port" else [
        str(tmp_path / "out"), "--state-dict", str(evil[0])]  # fmt: skip
    assert main(["convert", kind, *args]) == 1
    assert "refused without running it" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_in_a_subprocess_refuses(evil, legacy_weights, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "adain", "convert", "reference-port", str(evil[0]), str(legacy_weights[1]),
         str(tmp_path / "o")],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "refused without running it" in proc.stderr
