from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from demo_server import DemoServer  # noqa: E402
from http_servers import HubServer  # noqa: E402
from reference_port import random_reference_models, write_legacy_weights  # noqa: E402

import adain  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

# The suite never touches the network: any Hub access must go to a server a test starts itself.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# dtype=None means bf16 on CPUs with native bf16 (adain._runtime): the suite's exact-parity tests must not
# depend on the CPU of the machine that runs them (subprocesses inherit this too).
os.environ["ADAIN_CPU_BF16"] = "0"
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def legacy_weights(tmp_path_factory) -> tuple[Path, Path]:
    """Random weights in the reference port's layout: ``(vgg_normalised.pth, decoder.pth)``."""
    return write_legacy_weights(tmp_path_factory.mktemp("legacy"), seed=0)


@pytest.fixture(scope="session")
def reference_models():
    """The independent reference re-implementation with the same random weights as ``legacy_weights``."""
    return random_reference_models(seed=0)


@pytest.fixture(scope="session")
def model(legacy_weights) -> adain.AdaINModel:
    """The package's model loaded from ``legacy_weights`` (eval mode, CPU, float32)."""
    return adain.AdaINModel.from_original(*legacy_weights)


@pytest.fixture(scope="session")
def demo_server(model, tmp_path_factory):
    """``adain demo --weights DIR`` serving ``model`` (random weights) on 127.0.0.1; skipped without gradio."""
    pytest.importorskip("gradio", reason="the web demo needs gradio: pip install -e '.[dev]'")
    workdir = tmp_path_factory.mktemp("demo")
    server = DemoServer.start(model.save_pretrained(workdir / "model"), workdir, REPO_ROOT)
    yield server
    server.stop()


@pytest.fixture
def hub(monkeypatch):
    """A loopback Hugging Face Hub (tests/http_servers.py) that huggingface_hub reaches through HF_ENDPOINT."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server
