"""Named weights from plain URL mirrors on 127.0.0.1: fall-through, verification, the conversion cache."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging

import pytest
import torch
from http_servers import FileServer

import adain
from adain.weights import _registry as registry
from adain.weights._cache import LOCK_NAME
from adain.weights._registry import LegacyFile, PretrainedWeights, UrlSource

NAME = "test-weights"


def _entry(*base_urls: str, sha: dict[str, str | None]) -> PretrainedWeights:
    return dataclasses.replace(
        registry.REFERENCE_PORT,
        name=NAME,
        files=(LegacyFile("vgg_normalised.pth", sha["vgg"]), LegacyFile("decoder.pth", sha["decoder"])),
        sources=tuple(UrlSource(u) for u in base_urls),
    )


@pytest.fixture(scope="module")
def legacy_bytes(legacy_weights) -> dict[str, bytes]:
    vgg, dec = legacy_weights
    return {"vgg": vgg.read_bytes(), "decoder": dec.read_bytes()}


@pytest.fixture(scope="module")
def shas(legacy_bytes) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in legacy_bytes.items()}


@pytest.fixture
def server():
    with FileServer() as s:
        yield s


def _serve(server: FileServer, prefix: str, legacy_bytes: dict[str, bytes], **vgg_route) -> str:
    server.add(f"{prefix}/vgg_normalised.pth", legacy_bytes["vgg"], **vgg_route)
    server.add(f"{prefix}/decoder.pth", legacy_bytes["decoder"])
    return server.url + prefix


def _cached_files(root) -> list[str]:
    """Every file under ``root`` but the entries' lock files (empty, and kept: see adain.weights._cache)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != LOCK_NAME)


@pytest.fixture(scope="module")
def first_load(tmp_path_factory, legacy_bytes, shas):
    """One real first load: mirror 1 answers 404, mirror 2 serves the files. Yields what happened."""
    root = tmp_path_factory.mktemp("cache")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("adain.weights._resolve")
    logger.addHandler(handler)
    with FileServer() as server, pytest.MonkeyPatch.context() as mp:
        good = _serve(server, "/good", legacy_bytes)
        mp.setitem(registry.REGISTRY, NAME, _entry(server.url + "/dead", good, sha=shas))
        model = adain.load_pretrained(NAME, cache_dir=root)
        requests = list(server.requests)
    logger.removeHandler(handler)
    return {"root": root, "model": model, "requests": requests, "records": records}


def test_dead_first_mirror_falls_through_to_second(first_load):
    paths = [p for _, p in first_load["requests"]]
    assert paths[0] == "/dead/vgg_normalised.pth"
    assert "/good/vgg_normalised.pth" in paths and "/good/decoder.pth" in paths


def test_dead_mirror_is_logged_in_one_line(first_load):
    lines = [r.getMessage() for r in first_load["records"] if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "HTTP 404" in lines[0] and "\n" not in lines[0]


def test_named_weights_equal_direct_conversion(first_load, model):
    loaded = first_load["model"].state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def test_conversion_is_written_once_as_safetensors(first_load):
    files = _cached_files(first_load["root"])
    assert f"{NAME}/model/model.safetensors" in files and f"{NAME}/model/config.json" in files


def test_second_load_reads_the_safetensors_not_the_pth(first_load, shas, monkeypatch):
    def no_pth(*args, **kwargs):
        raise AssertionError("the .pth was read again")

    monkeypatch.setattr(torch, "load", no_pth)
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry("http://127.0.0.1:9/unused", sha=shas))
    again = adain.load_pretrained(NAME, cache_dir=first_load["root"], local_files_only=True)
    ref = first_load["model"].state_dict()
    assert all(torch.equal(ref[k], v) for k, v in again.state_dict().items())


def test_corrupted_bytes_fail_checksum_and_leave_nothing(server, legacy_bytes, shas, tmp_path, monkeypatch):
    broken = bytearray(legacy_bytes["vgg"])
    broken[len(broken) // 2] ^= 0xFF
    base = _serve(server, "/m", {**legacy_bytes, "vgg": bytes(broken)})
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry(base, sha=shas))
    with pytest.raises(adain.CorruptWeightsError, match="sha256"):
        adain.load_pretrained(NAME, cache_dir=tmp_path)
    assert _cached_files(tmp_path) == []


def test_html_error_page_saved_as_pth_is_refused_and_removed(server, legacy_bytes, tmp_path, monkeypatch):
    page = b"<!DOCTYPE html><html><body>AllAccessDisabled</body></html>"
    base = _serve(server, "/m", {**legacy_bytes, "vgg": page})
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry(base, sha={"vgg": None, "decoder": None}))
    with pytest.raises(adain.CorruptWeightsError, match="vgg_normalised.pth"):
        adain.load_pretrained(NAME, cache_dir=tmp_path)
    assert _cached_files(tmp_path) == []


def test_wrong_first_conv_fails_fingerprint_and_is_removed(server, legacy_bytes, legacy_weights, tmp_path, monkeypatch):
    state = torch.load(legacy_weights[0], weights_only=True)
    state["0.weight"] = torch.eye(3).reshape(3, 3, 1, 1)  # an RGB identity: not the normalised VGG
    buffer = io.BytesIO()
    torch.save(state, buffer)
    base = _serve(server, "/m", {**legacy_bytes, "vgg": buffer.getvalue()})
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry(base, sha={"vgg": None, "decoder": None}))
    with pytest.raises(adain.CorruptWeightsError, match="RGB->BGR x255"):
        adain.load_pretrained(NAME, cache_dir=tmp_path)
    assert _cached_files(tmp_path) == []


def test_truncated_download_is_never_used(server, legacy_bytes, tmp_path, monkeypatch):
    base = _serve(server, "/m", legacy_bytes, truncate_to=1000)
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry(base, sha={"vgg": None, "decoder": None}))
    with pytest.raises(adain.WeightsNotFoundError, match="ended early"):
        adain.load_pretrained(NAME, cache_dir=tmp_path)
    assert _cached_files(tmp_path) == []


def test_stalled_mirror_times_out_and_error_lists_every_source(server, legacy_bytes, shas, tmp_path, monkeypatch):
    slow = _serve(server, "/slow", legacy_bytes, stall_s=3)
    monkeypatch.setenv("ADAIN_DOWNLOAD_TIMEOUT", "0.3")
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry(server.url + "/dead", slow, sha=shas))
    with pytest.raises(adain.WeightsNotFoundError) as info:
        adain.load_pretrained(NAME, cache_dir=tmp_path)
    message = str(info.value)
    assert "/dead/vgg_normalised.pth: HTTP 404" in message
    assert "/slow/vgg_normalised.pth: timed out" in message
    assert str(tmp_path / NAME / "files") in message and str(tmp_path / NAME / "model") in message


def test_files_placed_by_hand_are_used_offline(legacy_bytes, shas, tmp_path, monkeypatch, model):
    files = tmp_path / NAME / "files"
    files.mkdir(parents=True)
    (files / "vgg_normalised.pth").write_bytes(legacy_bytes["vgg"])
    (files / "decoder.pth").write_bytes(legacy_bytes["decoder"])
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry("http://127.0.0.1:9/unused", sha=shas))
    loaded = adain.load_pretrained(NAME, cache_dir=tmp_path, local_files_only=True)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_offline_and_not_cached_is_offline_error(shas, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry("http://127.0.0.1:9/unused", sha=shas))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(adain.WeightsOfflineError, match="put vgg_normalised.pth and decoder.pth"):
        adain.load_pretrained(NAME, cache_dir=tmp_path)


def test_default_is_the_reference_port_release():
    assert adain.list_pretrained()[0] == "reference-port"
    entry = adain.weights._resolve.pretrained_info("default")
    assert entry.license == "MIT"
    assert entry.sources[0].url("decoder.pth").startswith("https://github.com/naoto0804/pytorch-AdaIN/releases/")


def test_local_directory_loads(tmp_path, model):
    folder = model.save_pretrained(tmp_path / "mine")
    loaded = adain.load_pretrained(str(folder))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_unknown_name_lists_what_is_accepted():
    with pytest.raises(adain.WeightsNotFoundError, match="reference-port.*save_pretrained.*user/name"):
        adain.load_pretrained("no such weights")


def test_revision_with_local_directory_is_an_input_error(tmp_path, model):
    folder = model.save_pretrained(tmp_path / "mine")
    with pytest.raises(adain.InputError, match="revision"):
        adain.load_pretrained(folder, revision="main")


@pytest.mark.parametrize(
    "damage, check",
    [
        ("html-page", "not a plain state dict"),
        ("truncated", "not a readable PyTorch file"),
        ("decoder-as-vgg", "unexpected key"),
        ("wrong-sha256", "failed the sha256 check"),
        ("wrong-first-conv", "fingerprint check"),
    ],
)
def test_bad_file_placed_in_cache_is_refused_and_moved_aside(
    damage, check, legacy_bytes, legacy_weights, shas, tmp_path, monkeypatch
):
    state = torch.load(legacy_weights[0], weights_only=True)
    state["0.weight"] = torch.eye(3).reshape(3, 3, 1, 1)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    vgg = {
        "html-page": b"<html><head><title>404 Not Found</title></head></html>",
        "truncated": legacy_bytes["vgg"][: len(legacy_bytes["vgg"]) // 2],
        "decoder-as-vgg": legacy_bytes["decoder"],
        "wrong-sha256": legacy_bytes["vgg"][:-1] + bytes([legacy_bytes["vgg"][-1] ^ 1]),
        "wrong-first-conv": buffer.getvalue(),
    }[damage]
    files = tmp_path / NAME / "files"
    files.mkdir(parents=True)
    (files / "vgg_normalised.pth").write_bytes(vgg)
    (files / "decoder.pth").write_bytes(legacy_bytes["decoder"])
    pinned = {"vgg": shas["vgg"] if damage == "wrong-sha256" else None, "decoder": None}
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry("http://127.0.0.1:9/unused", sha=pinned))
    with pytest.raises(adain.CorruptWeightsError) as info:
        adain.load_pretrained(NAME, cache_dir=tmp_path, local_files_only=True)
    (moved,) = (files / "rejected").iterdir()
    assert moved.name.startswith("vgg_normalised.pth.") and moved.read_bytes() == vgg  # the user's bytes, intact
    message = str(info.value)
    assert check in message and f"vgg_normalised.pth was moved to {moved} (not deleted)" in message
    # Nothing that failed stays under its name; the decoder, never found bad, stays where the user put it.
    assert _cached_files(tmp_path) == [f"{NAME}/files/decoder.pth", f"{NAME}/files/rejected/{moved.name}"]


def test_same_bad_file_placed_twice_is_moved_aside_twice(legacy_bytes, tmp_path, monkeypatch):
    files = tmp_path / NAME / "files"
    files.mkdir(parents=True)
    monkeypatch.setitem(
        registry.REGISTRY, NAME, _entry("http://127.0.0.1:9/unused", sha={"vgg": None, "decoder": None})
    )
    for _ in range(2):
        (files / "vgg_normalised.pth").write_bytes(b"not a pth")
        (files / "decoder.pth").write_bytes(legacy_bytes["decoder"])
        with pytest.raises(adain.CorruptWeightsError, match="moved to"):
            adain.load_pretrained(NAME, cache_dir=tmp_path, local_files_only=True)
    assert len(list((files / "rejected").iterdir())) == 2


def test_unusable_converted_folder_is_moved_aside_and_converted_again(legacy_bytes, shas, tmp_path, monkeypatch, model):
    entry = tmp_path / NAME
    (entry / "model").mkdir(parents=True)
    (entry / "model" / "model.safetensors").write_bytes(b"half a file")  # no config.json either
    (entry / "files").mkdir()
    (entry / "files" / "vgg_normalised.pth").write_bytes(legacy_bytes["vgg"])
    (entry / "files" / "decoder.pth").write_bytes(legacy_bytes["decoder"])
    monkeypatch.setitem(registry.REGISTRY, NAME, _entry("http://127.0.0.1:9/unused", sha=shas))
    loaded = adain.load_pretrained(NAME, cache_dir=tmp_path, local_files_only=True)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    (moved,) = (entry / "rejected").iterdir()
    assert (moved / "model.safetensors").read_bytes() == b"half a file"


def test_download_command_prints_every_source_tried(shas, tmp_path, monkeypatch, capsys):
    from adain.cli import main

    monkeypatch.setitem(registry.REGISTRY, NAME, _entry("http://127.0.0.1:9/a", "http://127.0.0.1:9/b", sha=shas))
    assert main(["download", NAME, "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "/a/vgg_normalised.pth" in err and "/b/vgg_normalised.pth" in err and "by hand" in err


def test_revision_for_weights_without_hub_source_is_an_input_error(tmp_path):
    with pytest.raises(adain.InputError, match="no Hub source"):
        adain.load_pretrained("reference-port", revision="main", cache_dir=tmp_path)


@pytest.mark.slow
def test_registry_size_cuts_off_a_mirror_that_streams_without_length(
    server, legacy_bytes, shas, tmp_path, monkeypatch, caplog, model
):
    size = len(legacy_bytes["vgg"])
    endless = _serve(server, "/endless", legacy_bytes, unannounced=4 * size)  # no Content-Length, never-ending
    good = _serve(server, "/good", legacy_bytes)
    entry = _entry(endless, good, sha=shas)
    sized = (dataclasses.replace(entry.files[0], size=size),) + entry.files[1:]
    monkeypatch.setitem(registry.REGISTRY, NAME, dataclasses.replace(entry, files=sized))
    with caplog.at_level(logging.WARNING, logger="adain.weights._resolve"):
        loaded = adain.load_pretrained(NAME, cache_dir=tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"/endless/vgg_normalised.pth: the server sent more than the expected {size} bytes" in warning


# ---- paths that are not model folders: say what to pass instead, never ask the Hub ----------------


@pytest.fixture
def no_hub(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a local path was tried as a Hub repo")

    monkeypatch.setattr("adain.weights._resolve.download_model_dir", refuse)


@pytest.mark.parametrize("filename", ["model.safetensors", "config.json"])
def test_a_file_of_a_model_folder_says_to_pass_the_folder(filename, tmp_path, model, no_hub, monkeypatch):
    folder = model.save_pretrained(tmp_path / "runs" / "mine")
    monkeypatch.chdir(tmp_path)
    relative = f"runs/mine/{filename}"  # spelled like a Hub repo id "runs/mine..." would be
    with pytest.raises(adain.InputError, match="one file of a model folder: pass the folder, runs/mine$"):
        adain.load_pretrained(relative)
    with pytest.raises(adain.InputError, match=f"pass the folder, {folder}$"):
        adain.load_pretrained(folder / filename)


def test_a_legacy_pth_says_how_to_convert_it(legacy_weights, no_hub):
    with pytest.raises(adain.InputError) as info:
        adain.load_pretrained(legacy_weights[1])
    message = str(info.value)
    assert "AdaINModel.from_original(VGG, DECODER)" in message and "adain convert reference-port" in message
    assert "\n" not in message


def test_a_training_run_directory_says_to_pass_its_final_folder(tmp_path, model, no_hub):
    run = tmp_path / "runs" / "mine"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step-00000010.pt").write_bytes(b"checkpoint")
    with pytest.raises(adain.InputError, match="without a final model yet"):
        adain.load_pretrained(run)
    model.save_pretrained(run / "final")
    with pytest.raises(adain.InputError, match=f"training run directory: pass its final model, {run / 'final'}$"):
        adain.load_pretrained(run)
    with pytest.raises(adain.InputError, match=f"training checkpoint: pass the run's final model, {run / 'final'}"):
        adain.load_pretrained(run / "checkpoints" / "step-00000010.pt")
    assert isinstance(adain.load_pretrained(run / "final"), adain.AdaINModel)


def test_weights_flag_given_a_file_is_one_line(tmp_path, model, no_hub, capsys):
    from PIL import Image

    from adain.cli import main

    folder = model.save_pretrained(tmp_path / "mine")
    for name in ("content.png", "style.png"):
        Image.new("RGB", (16, 16)).save(tmp_path / name)
    argv = [
        "stylize",
        str(tmp_path / "content.png"),
        str(tmp_path / "style.png"),
        "-o",
        str(tmp_path / "out.png"),
        "--weights",
        str(folder / "model.safetensors"),
    ]
    assert main(argv) == 2  # a --weights value that cannot be used
    err = capsys.readouterr().err
    assert (
        err
        == f"adain: error: {folder / 'model.safetensors'} is one file of a model folder: pass the folder, {folder}\n"
    )
