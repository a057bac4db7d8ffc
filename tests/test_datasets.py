"""adain.datasets and ``adain stylize-dataset``: determinism over shards, workers and batch sizes, resuming after
SIGKILL, refusals, skipped images, WebDataset shards, the preset, torchrun. Random weights, 16 px images."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import adain
from adain.datasets import PRESETS, DatasetConfig, style_index, stylize_dataset
from adain.datasets._compute import prepare_content
from adain.datasets._plan import output_name
from adain.inference import StyleBank

STYLE_SIZE = 16
N_IMAGES = 15
REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, rng: np.random.Generator, h: int, w: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, Path]:
    """``(content_root, style_root)``: 15 images in 3 class folders (3 of another size), one corrupt file, 3 styles
    (a small tree: 16 px images still cost a full VGG pass each on a shared 2-core CPU)."""
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        h, w = (16, 24) if i % 5 == 0 else (16, 16)
        _write(root / "content" / f"class{i % 3}" / f"img_{i:02d}.png", rng, h, w)
    (root / "content" / "class1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for i in range(3):
        _write(root / "style" / f"painting{i}.jpg", rng, 20, 28)
    return root / "content", root / "style"


def _hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file of a dataset folder except its hidden state (records, staging) and the style bank,
    whose safetensors metadata is stored in no fixed order: its values are compared instead."""
    bank = StyleBank.load(folder / "style-bank.safetensors")
    hashes = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }
    values = b"".join(t.numpy().tobytes() for t in (bank.mean, bank.std)) + repr(bank.keys).encode()
    hashes["style-bank.safetensors"] = hashlib.sha256(values).hexdigest()
    return hashes


def _config(**changes) -> DatasetConfig:
    return DatasetConfig(style_size=STYLE_SIZE, **changes)


def _run(tree, out: Path, model, **options):
    return stylize_dataset(*tree, out, model=model, config=options.pop("config", _config()), device="cpu", **options)


@pytest.fixture(scope="module")
def reference(tree, model, tmp_path_factory):
    """One process, no workers, batches of 8: the folder, its result and its hashes."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = _run(tree, out, model, batch_size=8)
    return out, result, _hashes(out)


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


# ---- choices that need no model ----------------------------------------------------------------


def test_style_index_is_sha256_of_seed_and_path():
    key = "n01440764/n01440764_10026.JPEG"
    expected = int(hashlib.sha256(b"7:" + key.encode()).hexdigest()[:16], 16) % 1000
    assert style_index(7, key, 1000) == expected
    assert {style_index(0, f"c/{i}.png", 5) for i in range(200)} == set(range(5))  # every style gets used


def test_preset_sizes_and_names():
    config = DatasetConfig.from_preset("stylized-imagenet", seed=3)
    assert (config.content_size, config.content_crop, config.style_size, config.style_crop) == (256, 224, 224, True)
    assert (config.alpha, config.format, config.seed, config.preset) == (1.0, "png", 3, "stylized-imagenet")
    assert PRESETS["stylized-imagenet"].seed == 0
    assert output_name("n01440764/n01440764_10026.JPEG", config) == "n01440764/n01440764_10026.png"
    # Resize(256) (shorter side, PIL bilinear) + CenterCrop(224) with torchvision's rounding, rebuilt here.
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (301, 450, 3), dtype=np.uint8))
    resized = img.resize((int(256 * 450 / 301), 256), Image.Resampling.BILINEAR)
    left, top = int(round((resized.width - 224) / 2)), int(round((256 - 224) / 2))
    expected = np.asarray(resized.crop((left, top, left + 224, top + 224)))
    np.testing.assert_array_equal(np.asarray(prepare_content(img, config)), expected)


def test_bad_config_values_name_the_field():
    with pytest.raises(adain.InputError, match="^alpha"):
        DatasetConfig(alpha=1.5)
    with pytest.raises(adain.InputError, match="^format"):
        DatasetConfig(format="gif")
    with pytest.raises(adain.InputError, match="^preset"):
        DatasetConfig.from_preset("stylized-coco")


# ---- runs ----------------------------------------------------------------------------------------


def test_reference_run_outputs_manifest_and_skip(tree, reference, model):
    out, result, hashes = reference
    rows = _manifest(out)
    assert [r["content"] for r in rows] == sorted(r["content"] for r in rows) and len(rows) == N_IMAGES + 1
    broken = next(r for r in rows if r["content"] == "class1/broken.png")
    assert broken["status"] == "skipped" and "broken.png" in broken["reason"] and broken["output"] is None
    assert (
        result.skipped.keys() == {"class1/broken.png"} and result.computed == N_IMAGES and result.manifest is not None
    )
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == N_IMAGES and all(r["output"] in hashes and r["alpha"] == 1.0 for r in done)
    styles = sorted(p.name for p in tree[1].iterdir())
    for r in done:  # the style is the one chosen from (seed, relative path), independently recomputed
        assert r["style"] == styles[style_index(0, r["content"], 3)]
    # An output equals stylizing its content with its style through the one-image API (within rounding).
    r = done[5]
    expected = adain.stylize(
        tree[0] / r["content"],
        tree[1] / r["style"],
        model=model,
        style_size=STYLE_SIZE,
        content_size=None,
        device="cpu",
    )
    got = np.asarray(Image.open(out / r["output"]), dtype=np.int16)
    assert np.abs(got - np.asarray(expected, dtype=np.int16)).max() <= 1


def test_same_bytes_for_shards_workers_and_batch_sizes(tree, reference, model, tmp_path):
    out, _, hashes = reference
    for i in range(3):
        result = _run(tree, tmp_path / "shards", model, shard_index=i, num_shards=3, batch_size=8)
        assert (result.manifest is None) == (i < 2)  # the last shard to finish writes the manifest
    _run(tree, tmp_path / "workers", model, workers=2, batch_size=8)
    _run(tree, tmp_path / "batch1", model, batch_size=1)
    for name in ("shards", "workers", "batch1"):
        assert _hashes(tmp_path / name) == hashes, name


def test_rerun_computes_nothing_and_changed_settings_are_refused(tree, reference, model):
    out, _, hashes = reference
    result = _run(tree, out, model)
    assert (result.computed, result.reused) == (0, N_IMAGES) and _hashes(out) == hashes
    with pytest.raises(adain.InputError, match=r"seed=0 \(asked: 1\)"):
        _run(tree, out, model, config=_config(seed=1))
    with pytest.raises(adain.InputError, match="alpha"):
        _run(tree, out, model, config=_config(alpha=0.5))
    assert _hashes(out) == hashes


def test_a_folder_of_other_files_is_refused(tree, model, tmp_path):
    (tmp_path / "mine.txt").write_text("a user's file")
    with pytest.raises(adain.InputError, match="not a stylized dataset"):
        _run(tree, tmp_path, model)
    assert sorted(os.listdir(tmp_path)) == ["mine.txt"]


def test_webdataset_shards_read_back_into_the_same_images(tree, reference, model, tmp_path):
    out, _, hashes = reference
    config = _config(layout="webdataset", samples_per_shard=4)
    for i in (1, 0):
        result = _run(tree, tmp_path, model, config=config, shard_index=i, num_shards=2, batch_size=3)
    assert result.manifest is not None
    index = json.loads((tmp_path / "shards.json").read_text())
    images = {}
    for shard in index["shardlist"]:
        with tarfile.open(tmp_path / shard["url"]) as tar:
            names = tar.getnames()
            assert len(names) == 2 * shard["nsamples"] and names == sorted(names)
            for name in names:
                data = tar.extractfile(name).read()
                if name.endswith(".png"):
                    images[name] = data
                else:
                    meta = json.loads(data)
                    assert meta["content"].rsplit(".", 1)[0] == name[: -len(".json")]
    assert [s["nsamples"] for s in index["shardlist"]] == [4, 3, 4, 4]  # 4 positions per tar, the broken file's missing
    for name, data in images.items():  # the same pixels as the mirrored tree's files
        tree_png = np.asarray(Image.open(out / name))
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), tree_png)
    assert len(images) == N_IMAGES
    rows = _manifest(tmp_path)
    assert [(r["content"], r["style"], r["status"]) for r in rows] == [
        (r["content"], r["style"], r["status"]) for r in _manifest(out)
    ]


# ---- processes -----------------------------------------------------------------------------------

_KILLED_RUN = """
import os, signal, sys
from adain import AdaINModel
from adain.datasets import DatasetConfig, stylize_dataset
kill_after = int(sys.argv[4])
def progress(p):
    if p.done + p.skipped >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup at all, maybe while writer threads write
stylize_dataset(sys.argv[1], sys.argv[2], sys.argv[3], model=AdaINModel.from_pretrained(sys.argv[5]),
    config=DatasetConfig(style_size=int(sys.argv[6])), device="cpu", batch_size=4, writer_threads=3, callback=progress)
"""


@pytest.mark.slow
def test_sigkill_then_rerun_recomputes_nothing_finished(tree, reference, model, tmp_path):
    _, _, hashes = reference
    weights = model.save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(0)
    for _ in range(2):
        kill_after = rng.randrange(2, N_IMAGES - 2)
        proc = subprocess.run(
            [sys.executable, "-c", _KILLED_RUN, *map(str, (*tree, out, kill_after, weights, STYLE_SIZE))],
            env=env,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL
    finished = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.png")}
    assert finished, "the killed runs finished nothing"
    result = _run(tree, out, model)
    assert result.reused == len(finished) and result.computed == N_IMAGES - len(finished)
    assert all((p.stat().st_ino, p.stat().st_mtime_ns) == v for p, v in finished.items())  # not rewritten
    assert _hashes(out) == hashes  # the killed writes' hidden temporaries are no outputs: never listed


@pytest.mark.slow
def test_torchrun_two_ranks_gloo_cpu_equal_one_process(tree, reference, model, tmp_path):
    _, _, hashes = reference
    weights = model.save_pretrained(tmp_path / "model")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "0",
        "-m",
        "adain",
        "stylize-dataset",
        *map(str, tree),
        "-o",
        str(tmp_path / "out"),
        "--weights",
        str(weights),
        "--device",
        "cpu",
        "--style-size",
        str(STYLE_SIZE),
        "--batch-size",
        "8",
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # 1: the broken image was skipped (named in the manifest)
    assert "skipped class1/broken.png" in proc.stderr
    assert _hashes(tmp_path / "out") == hashes


def test_cli_preset_flags_change_the_preset():
    from adain.cli import build_parser
    from adain.cli._dataset import config_from

    args = build_parser().parse_args(
        [
            "stylize-dataset",
            "c",
            "s",
            "-o",
            "o",
            "--preset",
            "stylized-imagenet",
            "--seed",
            "5",
            "--content-crop",
            "none",
        ]
    )
    config = config_from(args)
    assert (config.seed, config.content_size, config.content_crop, config.style_size) == (5, 256, None, 224)
    plain = config_from(build_parser().parse_args(["stylize-dataset", "c", "s", "-o", "o"]))
    assert plain == DatasetConfig()


def test_torchrun_ranks_split_each_shard_again():
    from adain.datasets._launch import launch_shard

    assert launch_shard(1, 3, "cpu", env={}) == (1, 3, "cpu")
    env = {"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "2"}
    assert launch_shard(0, 1, "cpu", env=env) == (2, 4, "cpu")
    assert launch_shard(1, 3, "cpu", env=env) == (6, 12, "cpu")  # array task 1 of 3, rank 2 of 4
    with pytest.raises(adain.InputError, match="^RANK"):
        launch_shard(0, 1, "cpu", env={"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(adain.InputError, match="^WORLD_SIZE"):
        launch_shard(0, 1, "cpu", env={"WORLD_SIZE": "two"})


# ---- metadata: the package's one rule ------------------------------------------------------------


@pytest.mark.parametrize("metadata", ["no-gps", "keep", "strip"])
def test_outputs_keep_the_contents_exif_without_its_gps_position_unless_told(tmp_path, model, metadata):
    content, style = tmp_path / "content" / "c", tmp_path / "style"
    content.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x010F] = "a camera maker"  # Make
    gps = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # a position
    exif[0x8825] = gps
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(content / "photo.jpg", exif=exif)
    _write(style / "s.png", rng, 16, 16)
    config = _config(metadata=metadata) if metadata != "no-gps" else _config()  # no-gps is the default
    stylize_dataset(tmp_path / "content", style, tmp_path / "out", model=model, config=config, device="cpu")
    written = Image.open(tmp_path / "out" / "c" / "photo.png").getexif()
    if metadata == "strip":
        assert dict(written) == {}
    else:
        assert written.get(0x010F) == "a camera maker"
        assert dict(written.get_ifd(0x8825)) == ({} if metadata == "no-gps" else gps)
