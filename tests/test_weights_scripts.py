"""The maintainers' scripts in weights/: build a folder with its card, publish it, read it back."""

from __future__ import annotations

import dataclasses
import importlib.util
import re

import pytest
import torch
from conftest import REPO_ROOT
from http_servers import HubServer

import adain
from adain.weights import _registry as registry


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"weights_{name}", REPO_ROOT / "weights" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_name_has_a_model_card():
    for name in adain.list_pretrained():
        card = (REPO_ROOT / "weights" / "cards" / f"{name}.md").read_text()
        for spec in registry.REGISTRY[name].files:
            assert spec.filename in card
            if spec.sha256:
                assert spec.sha256 in card


def test_build_refuses_files_whose_sha256_differs_from_the_registry(tmp_path, legacy_weights):
    with pytest.raises(adain.CorruptWeightsError, match="sha256"):
        _script("convert").build("reference-port", tmp_path / "out", [str(p) for p in legacy_weights])


def test_build_writes_a_loadable_folder_with_its_card(tmp_path, legacy_weights, model, monkeypatch):
    unpinned = dataclasses.replace(
        registry.REFERENCE_PORT, files=tuple(dataclasses.replace(f, sha256=None) for f in registry.REFERENCE_PORT.files)
    )
    monkeypatch.setitem(registry.REGISTRY, "reference-port", unpinned)
    folder = _script("convert").build("reference-port", tmp_path / "build", [str(p) for p in legacy_weights])
    assert "## Provenance" in (folder / "README.md").read_text()
    loaded = adain.AdaINModel.from_pretrained(folder)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_publish_uploads_and_verifies_from_the_hub(tmp_path, monkeypatch):
    torch.manual_seed(0)
    folder = adain.AdaINModel(adain.ModelConfig(encoder_last_layer="relu4_1")).save_pretrained(tmp_path / "small")
    with HubServer() as hub:
        monkeypatch.setattr("adain.weights._hub.HfApi", hub.api_class())  # uploads land on the loopback Hub
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        commit = _script("publish").publish(folder, "org/adain-reference")
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert ("GET", f"/org/adain-reference/resolve/{commit}/model.safetensors") in hub.requests
