"""Hub repos through a Hub-compatible server on 127.0.0.1 (HF_ENDPOINT), huggingface_hub's cache and offline mode.

``adain.weights`` reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` when called (huggingface_hub freezes them at
import), so these tests set them with ``monkeypatch.setenv`` in-process.
"""

from __future__ import annotations

import pytest
import torch
from http_servers import HubServer

import adain
from adain.weights._hub import check_push_access, push_to_hub


@pytest.fixture(scope="module")
def model():
    """A small random model (encoder to relu4_1, the shortest that loads): the Hub round trip does not depend on the
    size."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return adain.AdaINModel(adain.ModelConfig(encoder_last_layer="relu4_1")).eval()


@pytest.fixture(scope="module")
def repo_folder(tmp_path_factory, model):
    return model.save_pretrained(tmp_path_factory.mktemp("repo"))


def _assert_same_weights(a: adain.AdaINModel, b: adain.AdaINModel) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_hub_repo_round_trips_bit_exactly(hub, repo_folder, model, tmp_path):
    hub.add_repo("org/repo", repo_folder)
    loaded = adain.load_pretrained("org/repo", cache_dir=tmp_path)
    _assert_same_weights(loaded, model)
    assert loaded.config == model.config


def test_hub_prefix_with_pinned_commit(hub, repo_folder, model, tmp_path):
    commit = hub.add_repo("org/repo", repo_folder)
    loaded = adain.load_pretrained(f"hf-hub:org/repo@{commit}", cache_dir=tmp_path)
    _assert_same_weights(loaded, model)
    assert any(commit in path for _, path in hub.requests)


def test_second_load_with_hf_hub_offline_uses_cache_without_requests(hub, repo_folder, model, tmp_path, monkeypatch):
    hub.add_repo("org/repo", repo_folder)
    adain.load_pretrained("org/repo", cache_dir=tmp_path)
    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = adain.load_pretrained("org/repo", cache_dir=tmp_path)
    _assert_same_weights(loaded, model)
    assert hub.requests == []


def test_local_files_only_uses_cache(hub, repo_folder, model, tmp_path):
    hub.add_repo("org/repo", repo_folder)
    adain.load_pretrained("org/repo", cache_dir=tmp_path)
    hub.requests.clear()
    _assert_same_weights(adain.load_pretrained("org/repo", cache_dir=tmp_path, local_files_only=True), model)
    assert hub.requests == []


def test_offline_with_empty_cache_gives_actionable_error(hub, repo_folder, tmp_path, monkeypatch):
    hub.add_repo("org/repo", repo_folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(adain.WeightsOfflineError, match="org/repo.*not in the local cache and offline"):
        adain.load_pretrained("org/repo", cache_dir=tmp_path)
    assert hub.requests == []


def test_unknown_repo_is_not_found(hub, tmp_path):
    with pytest.raises(adain.WeightsNotFoundError, match="no such repository.*no local directory .org/missing."):
        adain.load_pretrained("org/missing", cache_dir=tmp_path)


def test_repo_without_weights_file_says_what_format_is_expected(hub, repo_folder, tmp_path):
    hub.add_repo("org/half", repo_folder, files=("config.json",))
    with pytest.raises(adain.WeightsNotFoundError, match="adain format"):
        adain.load_pretrained("org/half", cache_dir=tmp_path)


def test_unreachable_hub_fails_fast_with_not_found(tmp_path, monkeypatch):
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(adain.WeightsNotFoundError, match="unreachable"):
        adain.load_pretrained("org/repo", cache_dir=tmp_path)
    assert time.monotonic() - start < 5  # no back-off retries


def test_push_to_hub_uploads_a_loadable_package_folder(model, monkeypatch):
    calls = {}

    class FakeApi:
        def __init__(self, endpoint=None, token=None):
            calls["endpoint"] = endpoint

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["created"] = repo_id

        def upload_folder(self, *, repo_id, folder_path, revision, commit_message, allow_patterns):
            calls["files"] = sorted(p.name for p in __import__("pathlib").Path(folder_path).iterdir())
            calls["reloaded"] = adain.AdaINModel.from_pretrained(folder_path)
            return "https://hub.example/org/repo/commit/abc"

    monkeypatch.setattr("adain.weights._hub.HfApi", FakeApi)
    url = push_to_hub(model, "org/repo", verify=False)
    assert url.endswith("/commit/abc")
    assert calls["created"] == "org/repo"
    assert calls["files"] == ["README.md", "config.json", "model.safetensors"]
    _assert_same_weights(calls["reloaded"], model)


def test_push_to_hub_rejects_bad_repo_id(model):
    with pytest.raises(ValueError, match="user/name"):
        push_to_hub(model, "not a repo id")


def test_download_progress_reaches_the_callback_and_nothing_is_drawn(hub, repo_folder, tmp_path, capfd):
    hub.add_repo("org/repo", repo_folder)
    reports = []
    adain.load_pretrained("org/repo", cache_dir=tmp_path, progress=reports.append)
    size = (repo_folder / "model.safetensors").stat().st_size
    assert any(r.done_bytes == size for r in reports)
    assert capfd.readouterr().err == ""


def test_cached_pinned_commit_loads_without_any_request(hub, repo_folder, model, tmp_path):
    commit = hub.add_repo("org/repo", repo_folder)
    adain.load_pretrained("org/repo", revision=commit, cache_dir=tmp_path)
    hub.requests.clear()
    _assert_same_weights(adain.load_pretrained("org/repo", revision=commit, cache_dir=tmp_path), model)
    assert hub.requests == []


def test_blob_not_matching_its_sha256_is_refused_and_removed(hub, repo_folder, tmp_path):
    hub.add_repo("org/repo", repo_folder, tamper=True)
    with pytest.raises(adain.CorruptWeightsError, match="sha256"):
        adain.load_pretrained("org/repo", cache_dir=tmp_path)
    assert not [p for p in (tmp_path / "hub").rglob("*") if p.is_file() and p.stat().st_size > 1000]


def test_push_to_hub_verifies_what_the_hub_serves_back(model, tmp_path, monkeypatch):
    other = adain.AdaINModel(adain.ModelConfig(encoder_last_layer="relu4_1")).save_pretrained(tmp_path / "other")
    with HubServer() as hub:
        # The Hub ends up holding different weights from the ones uploaded.
        monkeypatch.setattr("adain.weights._hub.HfApi", hub.api_class(serve_instead=other))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        with pytest.raises(adain.WeightsError, match="differs"):
            push_to_hub(model, "org/repo")


# ---- check_push_access: what `adain train --push-to-hub` asks before training --------------------------


def test_push_access_with_a_write_token_names_the_user(hub, monkeypatch):
    hub.add_user("hf_alice", "alice", orgs=("lab",))
    monkeypatch.setenv("HF_TOKEN", "hf_alice")
    assert check_push_access("alice/decoder") == "alice"
    assert check_push_access("lab/decoder") == "alice"
    assert ("GET", "/api/whoami-v2") in hub.requests


@pytest.mark.parametrize(
    "token, repo, match",
    [
        ("hf_wrong", "alice/decoder", "refused the token"),
        ("hf_reader", "alice/decoder", "read-only"),
        ("hf_alice", "someone-else/decoder", "logged in as alice, who is not someone-else"),
    ],
)
def test_push_access_problems_are_one_line_naming_the_repo(hub, monkeypatch, token, repo, match):
    hub.add_user("hf_alice", "alice")
    hub.add_user("hf_reader", "alice", role="read")
    monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(adain.WeightsError, match=match) as info:
        check_push_access(repo)
    assert str(info.value).startswith(f"cannot push to {repo} on {hub.url}") and "\n" not in str(info.value)


def test_push_access_without_any_token_says_how_to_log_in(hub, monkeypatch):
    monkeypatch.setattr("adain.weights._hub.get_token", lambda: None)
    with pytest.raises(adain.WeightsError, match="not logged in.*hf auth login"):
        check_push_access("alice/decoder")
    assert hub.requests == []


def test_push_access_to_an_unreachable_hub_fails_at_once(monkeypatch):
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_alice")
    start = time.monotonic()
    with pytest.raises(adain.WeightsError, match="cannot be reached"):
        check_push_access("alice/decoder")
    assert time.monotonic() - start < 5
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(adain.WeightsError, match="HF_HUB_OFFLINE"):
        check_push_access("alice/decoder")
