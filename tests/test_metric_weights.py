"""The metric networks' weights: fetched from a loopback server with generated files, checked, cached, offline."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch
from http_servers import FileServer

from adain.errors import CorruptWeightsError, WeightsOfflineError
from adain.metrics import CFSD, MetricWeights, fetch_weights


def _vgg_file() -> bytes:
    g = torch.Generator().manual_seed(0)
    shapes = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128)}
    state = {}
    for i, (o, c) in shapes.items():
        state[f"features.{i}.weight"] = torch.randn(o, c, 3, 3, generator=g) * 0.1
        state[f"features.{i}.bias"] = torch.zeros(o)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FileServer() as s:
        yield s


def test_a_pinned_file_is_downloaded_once_then_read_from_the_cache(server, tmp_path):
    body = _vgg_file()
    spec = MetricWeights("vgg19", "vgg.pth", server.add("/vgg.pth", body), sha256=hashlib.sha256(body).hexdigest())
    first = fetch_weights(spec, cache_dir=tmp_path)
    second = fetch_weights(spec, cache_dir=tmp_path)
    assert first == second == tmp_path / "metrics" / "vgg.pth" and first.read_bytes() == body
    assert server.requests == [("GET", "/vgg.pth")]
    model = CFSD.from_pretrained(cache_dir=tmp_path, weights=spec)
    assert torch.equal(model.convs[0].weight, torch.load(first, weights_only=True)["features.0.weight"])


@pytest.mark.parametrize("pin", ["sha256", "sha256_prefix"])
def test_a_file_whose_sha256_does_not_match_is_refused_and_never_cached(server, tmp_path, pin):
    body = _vgg_file()
    wrong = hashlib.sha256(b"another file").hexdigest()
    spec = MetricWeights(
        "vgg19", "vgg.pth", server.add("/vgg.pth", body), **{pin: wrong if pin == "sha256" else wrong[:8]}
    )
    with pytest.raises(CorruptWeightsError, match="does not match"):
        fetch_weights(spec, cache_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "metrics").iterdir()) == [".lock"]


def test_a_file_without_a_published_digest_is_trusted_on_first_use_then_held_to_it(server, tmp_path):
    body = _vgg_file()
    spec = MetricWeights("lpips-alex", "heads.pth", server.add("/heads.pth", body))
    path = fetch_weights(spec, cache_dir=tmp_path)
    assert (tmp_path / "metrics" / "heads.pth.sha256").read_text().strip() == hashlib.sha256(body).hexdigest()
    path.write_bytes(body + b"changed")
    with pytest.raises(CorruptWeightsError, match="recorded at first use"):
        fetch_weights(spec, cache_dir=tmp_path)
    assert not path.exists() and list((tmp_path / "metrics" / "rejected").iterdir())  # moved aside, not deleted
    server.add("/heads.pth", body + b"upstream changed")  # a re-download is held to the record too
    with pytest.raises(CorruptWeightsError, match="recorded at first use"):
        fetch_weights(spec, cache_dir=tmp_path)
    assert not path.exists()
    server.add("/heads.pth", body)
    assert fetch_weights(spec, cache_dir=tmp_path).read_bytes() == body


def test_offline_nothing_is_downloaded_and_the_error_names_file_and_url(server, tmp_path, monkeypatch):
    spec = MetricWeights("vgg19", "vgg.pth", server.add("/vgg.pth", _vgg_file()))
    with pytest.raises(WeightsOfflineError, match="vgg.pth.*offline.*http://127.0.0.1"):
        fetch_weights(spec, cache_dir=tmp_path, local_files_only=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsOfflineError):
        fetch_weights(spec, cache_dir=tmp_path)
    assert server.requests == []


def test_a_file_that_is_not_the_network_is_refused_naming_the_missing_tensor(server, tmp_path):
    buffer = io.BytesIO()
    torch.save({"something.else": torch.zeros(1)}, buffer)
    body = buffer.getvalue()
    spec = MetricWeights("vgg19", "x.pth", server.add("/x.pth", body), sha256=hashlib.sha256(body).hexdigest())
    with pytest.raises(CorruptWeightsError, match="features.0.weight"):
        CFSD.from_pretrained(cache_dir=tmp_path, weights=spec)
