"""The decoder trainer, end to end on tiny generated folders (CPU, a few steps each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from PIL import Image
from safetensors.torch import load_file

import adain
from adain.cli._train import main
from adain.modeling._decoder import Decoder
from adain.training._checkpoint import list_checkpoints
from adain.training._config import TrainConfig
from adain.training._loop import TrainingError, train
from adain.training._report import read_log

TINY = [
    "--image-size",
    "48",
    "--crop-size",
    "32",
    "--batch-size",
    "2",
    "--min-image-side",
    "16",
    "--workers",
    "0",
    "--log-every",
    "1",
]


def write_images(folder: Path, count: int, seed: int, size=(64, 80)) -> Path:
    """Smooth random RGB pictures (upsampled noise), so that they have structure for the VGG to see."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size[1], size[0]), Image.Resampling.BICUBIC).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    return write_images(tmp_path / "content", 4, seed=1), write_images(tmp_path / "style", 4, seed=2)


def args_for(folders, legacy_weights, out: Path, *extra: str) -> list[str]:
    return [
        "--content-dir",
        str(folders[0]),
        "--style-dir",
        str(folders[1]),
        "--vgg",
        str(legacy_weights[0]),
        "--out",
        str(out),
        *TINY,
        *extra,
    ]


def decoder_of(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(run / "final" / "model.safetensors")).items() if k.startswith("decoder.")}


@pytest.mark.slow
def test_end_to_end_run_writes_checkpoints_samples_logs_and_a_loadable_final_model(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    assert (
        main(args_for(folders, legacy_weights, run, "--max-iter", "4", "--save-every", "2", "--sample-every", "2")) == 0
    )
    assert [p.name for p in list_checkpoints(run)] == ["step-00000002.pt", "step-00000004.pt"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        *("quality-00000002.png", "quality-00000004.png"),  # the held-out pairs' grid at each checkpoint
        *("step-00000002.png", "step-00000004.png"),
    ]
    assert Image.open(run / "samples" / "step-00000004.png").size == (3 * 32, 2 * 32)  # content | style | output
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == [1, 2, 3, 4]
    assert Image.open(run / "loss_curve.png").size[0] > 0
    model = adain.load_pretrained(str(run / "final"))
    saved = torch.load(list_checkpoints(run)[-1], weights_only=True)["decoder"]
    for key, value in saved.items():
        assert torch.equal(model.decoder.state_dict()[key], value)
    assert model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.slow
def test_loss_goes_down_when_overfitting_one_pair(tmp_path, legacy_weights):
    # Square pictures resized to the crop size: the very same pair at every step.
    content = write_images(tmp_path / "c", 1, seed=3, size=(64, 64))
    style = write_images(tmp_path / "s", 1, seed=4, size=(64, 64))
    config = TrainConfig(
        content_dir=str(content),
        style_dir=str(style),
        vgg=str(legacy_weights[0]),
        out=str(tmp_path / "run"),
        max_iter=30,
        batch_size=1,
        lr=1e-4,
        image_size=32,
        crop_size=32,
        min_image_side=16,
        workers=0,
        log_every=1,
        save_every=30,
        sample_every=0,
    )
    train(config)
    losses = [float(r["loss"]) for r in read_log(tmp_path / "run" / "log.csv")]
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5])


@pytest.mark.slow
def test_resume_from_halfway_gives_a_bit_identical_decoder(folders, legacy_weights, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(args_for(folders, legacy_weights, straight, "--max-iter", "6", "--save-every", "3")) == 0
    assert main(args_for(folders, legacy_weights, resumed, "--max-iter", "3", "--save-every", "3")) == 0
    # The order of the data does not depend on the number of loader processes: resume with one worker.
    assert main(["--out", str(resumed), "--resume", "--max-iter", "6", "--workers", "1"]) == 0
    a, b = decoder_of(straight), decoder_of(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [int(r["step"]) for r in read_log(resumed / "log.csv")] == [1, 2, 3, 4, 5, 6]


def test_a_run_directory_with_checkpoints_is_not_overwritten_without_resume(folders, legacy_weights, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "2", "--save-every", "2")) == 0
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "2")) == 1
    assert "--resume" in capsys.readouterr().err


@pytest.mark.slow
def test_corrupt_newest_checkpoint_is_reported_and_the_previous_one_used(folders, legacy_weights, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "4", "--save-every", "2")) == 0
    newest = list_checkpoints(run)[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated, as by a full disk
    previous = list_checkpoints(run)[0]
    events = []
    config = TrainConfig.from_run(run)  # the newest valid checkpoint's configuration: step 2's
    assert config.resume and config.out == str(run) and config.max_iter == 4
    train(config, events.append)
    assert [e.path for e in events if e.kind == "invalid_checkpoint"] == [newest]
    assert [(e.start_step, e.resumed_from) for e in events if e.kind == "start"] == [(2, previous)]
    assert main(["--out", str(run), "--resume"]) == 0  # via the CLI: step-4 was rewritten, all valid again
    newest.write_bytes(b"not a checkpoint")
    assert main(["--out", str(run), "--resume"]) == 0
    assert "step-00000004.pt is unusable" in capsys.readouterr().err


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "train", *args],
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the training subprocess")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_sigkilled_run_resumes_from_its_last_checkpoint(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    proc = _spawn(args_for(folders, legacy_weights, run, "--max-iter", "100000", "--save-every", "3"))
    _wait_for(lambda: len(read_log(run / "log.csv")) >= 4, proc)  # past the first checkpoint, mid-interval
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    last = int(list_checkpoints(run)[-1].name[5:13])
    assert last >= 3
    starts = []
    config = replace(TrainConfig.from_run(run), max_iter=last + 2)
    train(config, lambda event: starts.append(event.start_step) if event.kind == "start" else None)
    assert starts == [last]
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == list(range(1, last + 3))


@pytest.mark.slow
def test_sigterm_to_the_process_group_writes_a_checkpoint_and_exits_cleanly(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    proc = _spawn(
        args_for(folders, legacy_weights, run, "--max-iter", "100000", "--save-every", "100000", "--workers", "1")
    )
    _wait_for(lambda: len(read_log(run / "log.csv")) >= 2, proc)
    os.killpg(proc.pid, signal.SIGTERM)  # as a scheduler does: the loader worker gets it too
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    (ckpt,) = list_checkpoints(run)
    assert torch.load(ckpt, weights_only=True)["step"] >= 2


def _bad_files(folder: Path) -> None:
    (folder / "empty.png").write_bytes(b"")
    good = (folder / "img0.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    (folder / "notes.JPG").write_text("this is not a picture")
    Image.new("RGB", (8, 8)).save(folder / "tiny.png")


def test_a_folder_with_corrupt_files_trains_anyway_and_lists_them(folders, legacy_weights, tmp_path):
    _bad_files(folders[0])  # 4 good + 4 bad content files
    run = tmp_path / "run"
    # 4 steps x 2 pairs visit all 8 positions of the first epoch, so every bad file is met once.
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "4", "--max-bad-fraction", "0.6")) == 0
    listed = (run / "skipped.txt").read_text().splitlines()
    assert sorted(Path(line.split(":")[0]).name for line in listed) == [
        "empty.png",
        "notes.JPG",
        "tiny.png",
        "truncated.png",
    ]
    assert (run / "final" / "model.safetensors").is_file()


def test_too_many_bad_images_stop_with_a_clear_message(folders, legacy_weights, tmp_path):
    _bad_files(folders[0])
    config = TrainConfig(
        content_dir=str(folders[0]),
        style_dir=str(folders[1]),
        vgg=str(legacy_weights[0]),
        out=str(tmp_path / "run"),
        max_iter=4,
        batch_size=2,
        image_size=48,
        crop_size=32,
        min_image_side=16,
        workers=0,
        max_bad_fraction=0.2,
    )
    with pytest.raises(TrainingError, match=r"\(max_bad_fraction=0.2, at least 3"):
        train(config)
    assert (tmp_path / "run" / "skipped.txt").is_file()


def test_non_finite_losses_in_a_row_abort_pointing_at_the_weights(folders, legacy_weights, tmp_path):
    state = torch.load(legacy_weights[0], weights_only=True)
    huge = {k: v * 1e30 if k.endswith("weight") and k != "0.weight" else v for k, v in state.items()}
    torch.save(huge, tmp_path / "exploding_vgg.pth")
    config = TrainConfig(
        content_dir=str(folders[0]),
        style_dir=str(folders[1]),
        vgg=str(tmp_path / "exploding_vgg.pth"),
        out=str(tmp_path / "run"),
        max_iter=10,
        batch_size=1,
        image_size=48,
        crop_size=32,
        min_image_side=16,
        workers=0,
        max_nonfinite=3,
    )
    with pytest.raises(TrainingError, match=r"3 steps in a row.*too high \(lr=0.0001\), or the vgg weights"):
        train(config)


@pytest.mark.slow
def test_two_process_gloo_ddp_matches_one_process_with_the_global_batch(folders, legacy_weights, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main(args_for(folders, legacy_weights, single, "--max-iter", "3", "--save-every", "3")) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "train",
        *args_for(folders, legacy_weights, ddp, "--max-iter", "3", "--save-every", "3", "--device", "cpu"),
    ]
    cmd[cmd.index("--batch-size") + 1] = "1"  # 2 ranks x 1 pair read the same positions as 1 process x 2
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    # The logged losses are the global batch's: identical before the first update.
    loss_single, loss_ddp = ([float(r["loss"]) for r in read_log(run / "log.csv")] for run in (single, ddp))
    assert loss_ddp[0] == pytest.approx(loss_single[0], rel=1e-5)
    assert loss_ddp == pytest.approx(loss_single, rel=1e-2)
    a, b = decoder_of(single), decoder_of(ddp)
    torch.manual_seed(0)  # the seed alone fixes the initial decoder
    start = {f"decoder.{k}": v for k, v in Decoder().state_dict().items()}
    flat = lambda state: torch.cat([state[k].flatten() for k in sorted(a)])  # noqa: E731
    # Gradients agree to ~1e-4 (summation order), but Adam's first steps move every weight by about
    # +-lr whatever its gradient's size, so the few near-zero gradients whose sign differs add up; compare
    # the whole update instead of single elements.
    assert (flat(a) - flat(b)).norm() < 0.2 * (flat(a) - flat(start)).norm()
