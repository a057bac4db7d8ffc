"""Named weights from Hub repos holding the legacy files (``HubFilesSource``), on a loopback Hub (HF_ENDPOINT)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from pathlib import Path

import pytest
import torch
from http_servers import FileServer

import adain
from adain.cli import main
from adain.weights import _registry as registry
from adain.weights._registry import HubFilesSource, LegacyFile, UrlSource

NAME = "test-mirrors"
BOTH = ("vgg_normalised.pth", "decoder.pth")
VGG_ONLY = ("vgg_normalised.pth",)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def good(legacy_weights):
    """The folder holding the right legacy files."""
    return legacy_weights[0].parent


@pytest.fixture(scope="module")
def wrong(tmp_path_factory, good):
    """A folder whose VGG has one flipped byte (its decoder is right)."""
    folder = tmp_path_factory.mktemp("wrong")
    bad = bytearray((good / "vgg_normalised.pth").read_bytes())
    bad[-1] ^= 0xFF
    (folder / "vgg_normalised.pth").write_bytes(bytes(bad))
    shutil.copyfile(good / "decoder.pth", folder / "decoder.pth")
    return folder


def _register(monkeypatch, good, *sources) -> None:
    files = tuple(LegacyFile(name, _sha(good / name)) for name in BOTH)
    entry = dataclasses.replace(registry.REFERENCE_PORT, name=NAME, files=files, sources=sources)
    monkeypatch.setitem(registry.REGISTRY, NAME, entry)


def _assert_same(loaded: adain.AdaINModel, model: adain.AdaINModel) -> None:
    expected = model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())


@pytest.mark.slow
def test_hub_mirror_with_the_right_legacy_files_loads_and_converts(hub, good, model, tmp_path, monkeypatch):
    hub.add_repo("org/legacy", good, files=BOTH)
    _register(monkeypatch, good, HubFilesSource("org/legacy", files=BOTH))
    _assert_same(adain.load_pretrained(NAME, cache_dir=tmp_path), model)
    assert (tmp_path / NAME / "model" / "model.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / NAME / "files").iterdir() if p.name != ".lock") == sorted(BOTH)
    assert list((tmp_path / "hub").glob("models--org--legacy/snapshots/*/vgg_normalised.pth"))  # via the Hub cache


@pytest.mark.slow
def test_hub_mirror_serving_wrong_bytes_is_refused_and_the_next_is_tried(
    hub, good, wrong, model, tmp_path, monkeypatch, caplog
):
    hub.add_repo("bad/mirror", wrong, files=BOTH)
    hub.add_repo("good/mirror", good, files=BOTH)
    _register(monkeypatch, good, HubFilesSource("bad/mirror", files=BOTH), HubFilesSource("good/mirror", files=BOTH))
    with caplog.at_level(logging.WARNING, logger="adain.weights._resolve"):
        _assert_same(adain.load_pretrained(NAME, cache_dir=tmp_path), model)
    refused = [r.getMessage() for r in caplog.records if "bad/mirror" in r.getMessage()]
    assert len(refused) == 1 and "sha256" in refused[0] and "vgg_normalised.pth" in refused[0]
    assert ("GET", "/good/mirror/resolve/main/vgg_normalised.pth") in hub.requests


@pytest.mark.slow
def test_wrong_bytes_are_never_copied_into_the_cache(hub, good, wrong, tmp_path, monkeypatch):
    hub.add_repo("bad/mirror", wrong, files=BOTH)
    _register(monkeypatch, good, HubFilesSource("bad/mirror", files=BOTH), UrlSource("http://127.0.0.1:9/dead"))
    with pytest.raises(adain.CorruptWeightsError, match=r"hf-hub:bad/mirror .*sha256"):
        adain.load_pretrained(NAME, cache_dir=tmp_path)
    assert not (tmp_path / NAME / "files" / "vgg_normalised.pth").exists()
    assert not (tmp_path / NAME / "model").exists()


@pytest.mark.slow
def test_wrong_hub_mirror_then_url_mirror(hub, good, wrong, model, tmp_path, monkeypatch):
    hub.add_repo("bad/mirror", wrong, files=VGG_ONLY)
    with FileServer() as files:
        for name in BOTH:
            files.add(f"/m/{name}", (good / name).read_bytes())
        _register(monkeypatch, good, HubFilesSource("bad/mirror", files=VGG_ONLY), UrlSource(files.url + "/m"))
        _assert_same(adain.load_pretrained(NAME, cache_dir=tmp_path), model)
        assert ("GET", "/m/vgg_normalised.pth") in files.requests


@pytest.mark.slow
def test_vgg_only_mirror_and_a_decoder_source_complete_the_pair(hub, good, model, tmp_path, monkeypatch):
    hub.add_repo("vgg/only", good, files=VGG_ONLY)
    with FileServer() as files:
        files.add("/m/decoder.pth", (good / "decoder.pth").read_bytes())  # this mirror has no VGG
        _register(monkeypatch, good, HubFilesSource("vgg/only", files=VGG_ONLY), UrlSource(files.url + "/m"))
        _assert_same(adain.load_pretrained(NAME, cache_dir=tmp_path), model)
        assert [p for _, p in files.requests] == ["/m/decoder.pth"]


@pytest.mark.slow
def test_decoder_only_hub_mirror_after_a_vgg_only_one(hub, good, model, tmp_path, monkeypatch):
    hub.add_repo("vgg/only", good, files=VGG_ONLY)
    hub.add_repo("decoder/only", good, files=("decoder.pth",))
    _register(
        monkeypatch,
        good,
        HubFilesSource("vgg/only", files=VGG_ONLY),
        HubFilesSource("decoder/only", files=("decoder.pth",)),
    )
    _assert_same(adain.load_pretrained(NAME, cache_dir=tmp_path), model)


def test_offline_and_nothing_cached_is_the_offline_error_without_requests(hub, good, tmp_path, monkeypatch):
    hub.add_repo("org/legacy", good, files=BOTH)
    _register(monkeypatch, good, HubFilesSource("org/legacy", files=BOTH))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(adain.WeightsOfflineError, match="org/legacy"):
        adain.load_pretrained(NAME, cache_dir=tmp_path)
    assert hub.requests == []


def test_download_list_prints_the_sources_in_order(good, monkeypatch, capsys):
    _register(
        monkeypatch,
        good,
        UrlSource("https://example.org/release"),
        HubFilesSource("org/vgg", files=VGG_ONLY),
        HubFilesSource("org/pair", revision="abc", files=BOTH),
    )
    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    block = out[out.index(NAME) :].splitlines()[1:4]
    assert block == [
        "  1. https://example.org/release",
        "  2. hf-hub:org/vgg (vgg_normalised.pth)",
        "  3. hf-hub:org/pair@abc (vgg_normalised.pth, decoder.pth)",
    ]


def test_default_tries_the_github_release_first_then_the_hub_mirrors():
    sources = adain.weights._resolve.pretrained_info("default").sources
    assert isinstance(sources[0], UrlSource) and "github.com/naoto0804" in sources[0].base_url
    mirrors = [s for s in sources[1:] if isinstance(s, HubFilesSource)]
    assert mirrors and all(set(m.files) <= set(BOTH) for m in mirrors)
    card = (Path(__file__).resolve().parents[1] / "weights" / "cards" / "reference-port.md").read_text()
    assert all(f"`{m.repo_id}`" in card for m in mirrors)  # each mirror is recorded with where it was found
