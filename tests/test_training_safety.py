"""The trainer never destroys a run, never loses its result silently, and never answers with a traceback:
the run-directory lock, --check-data, the bad-file rule, typed TOML configs, --push-to-hub checked
before and failing after training, and a full disk while checkpointing."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from PIL import Image
from test_training import _spawn, _wait_for, args_for, write_images

import adain
from adain.cli._train import main
from adain.cli._train import message as train_message
from adain.errors import InputError
from adain.training._badfiles import bad_files_tolerated
from adain.training._checkpoint import list_checkpoints
from adain.training._config import TrainConfig, read_toml
from adain.training._data import ImageStream
from adain.training._lock import lock_run_dir
from adain.training._loop import TrainingError, train
from adain.training._report import read_log


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    return write_images(tmp_path / "content", 4, seed=1), write_images(tmp_path / "style", 4, seed=2)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# ---- one run per run directory ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_run_on_the_same_out_is_refused_at_once_naming_the_first_ones_pid(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    # With a loader worker, forked while the trainer holds the lock.
    first = _spawn(
        args_for(folders, legacy_weights, run, "--max-iter", "100000", "--save-every", "1", "--workers", "1")
    )
    try:
        _wait_for(lambda: len(read_log(run / "log.csv")) >= 2, first)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
        second = subprocess.run(
            [sys.executable, "-m", "train", "--out", str(run), "--resume"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"adain train: error: {run} is in use by another training run (PID {first.pid}); wait for it to end, "
            "or choose another --out"
        ]
        assert first.poll() is None, "the first run goes on"
        first.kill()  # SIGKILL to the trainer alone
        first.communicate()
        assert (run / ".lock").read_text().split()[0] == str(first.pid)  # a stale lock file, left behind
        last = int(list_checkpoints(run)[-1].name[5:13])
        assert main(["--out", str(run), "--resume", "--max-iter", str(last + 1)]) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
        try:
            os.killpg(first.pid, signal.SIGKILL)  # the session started for it: its orphaned loader worker
        except ProcessLookupError:
            pass


_FORK_AND_DIE = """
import os, sys, time
from adain.training._lock import lock_run_dir

with lock_run_dir(sys.argv[1]):
    child = os.fork()
    if child == 0:  # a child forked while the lock is held (e.g. a data-loader worker) lives on
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    os.kill(os.getpid(), 9)  # the trainer dies without unlocking
"""


@pytest.mark.slow
def test_a_forked_child_does_not_keep_a_dead_trainers_lock(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _FORK_AND_DIE, str(tmp_path / "run")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    child = int(done.stdout)
    try:
        assert done.returncode == -signal.SIGKILL
        os.kill(child, 0)  # still alive, holding a copy of the lock file's descriptor
        with lock_run_dir(tmp_path / "run"):
            pass
    finally:
        os.kill(child, signal.SIGKILL)


# ---- --check-data ----------------------------------------------------------------------------------


def _break(folder: Path, *names: str) -> list[str]:
    """Bad files in ``folder``: ``empty``, ``truncated``, ``text`` (not a picture) or ``tiny`` (8x8)."""
    good = (folder / "img0.png").read_bytes()
    makers = {
        "empty": ("empty.png", b""),
        "truncated": ("truncated.png", good[: len(good) // 3]),
        "text": ("notes.JPG", b"this is not a picture"),
    }
    for name in names:
        if name == "tiny":
            Image.new("RGB", (8, 8)).save(folder / "tiny.png")
        else:
            (folder / makers[name][0]).write_bytes(makers[name][1])
    return [str(folder / ("tiny.png" if n == "tiny" else makers[n][0])) for n in names]


def test_check_data_lists_every_bad_file_of_both_folders_without_training(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = _break(folders[0], "empty", "truncated", "text", "tiny") + _break(folders[1], "truncated", "tiny")
    code = main(
        [
            "--check-data",
            "--content-dir",
            str(folders[0]),
            "--style-dir",
            str(folders[1]),
            "--min-image-side",
            "16",
            "--workers",
            "0",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert sorted(line.split(": ")[0] for line in out[:-1]) == sorted(bad)  # one line per bad file, nothing else
    assert out[-1].startswith(f"6 bad files: 4 of 8 in {folders[0]}, 2 of 6 in {folders[1]}")
    assert "a run would stop on" in out[-1]  # 4 of 8 is half the content folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content", "style"]  # no run directory, no training


def test_check_data_exits_0_when_every_image_is_usable(folders, capsys):
    assert (
        main(
            [
                "--check-data",
                "--content-dir",
                str(folders[0]),
                "--style-dir",
                str(folders[1]),
                "--min-image-side",
                "16",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == [f"all 8 images are usable (4 in {folders[0]}, 4 in {folders[1]})"]


# ---- how many bad files a run tolerates ------------------------------------------------------------


@pytest.mark.parametrize(
    "n, fraction, tolerated",
    [
        (11, 0.05, 3),
        (8, 0.2, 3),
        (8, 0.6, 4),
        (1000, 0.05, 50),
        (4, 0.05, 2),
        (2, 0.05, 1),
        (1, 0.05, 0),
        (100, 0.0, 3),
    ],
)
def test_a_few_bad_files_are_always_tolerated_but_never_half_a_folder(n, fraction, tolerated):
    assert bad_files_tolerated(n, fraction) == tolerated


def test_one_unreadable_picture_among_eleven_trains_and_is_listed(tmp_path, legacy_weights):
    content = write_images(tmp_path / "content", 11, seed=1)
    # Break the picture the data order reads first (seed 0, the content stream), so one step meets it.
    broken = ImageStream(content, image_size=48, crop_size=32, seed=0, stream=0).path_at(0)
    broken.write_bytes(broken.read_bytes()[:100])
    style = write_images(tmp_path / "style", 3, seed=2)
    run = tmp_path / "run"
    assert main(args_for((content, style), legacy_weights, run, "--max-iter", "1", "--sample-every", "0")) == 0
    assert [line.split(": ")[0] for line in (run / "skipped.txt").read_text().splitlines()] == [str(broken)]
    assert (run / "final" / "model.safetensors").is_file()


def test_a_folder_that_is_mostly_not_pictures_stops_with_a_clear_message(tmp_path, legacy_weights):
    content = write_images(tmp_path / "content", 2, seed=1)
    for i in range(9):
        (content / f"page{i}.jpg").write_text("a text file with a picture's name")
    style = write_images(tmp_path / "style", 2, seed=2)
    config = TrainConfig(
        content_dir=str(content),
        style_dir=str(style),
        vgg=str(legacy_weights[0]),
        out=str(tmp_path / "run"),
        max_iter=6,
        batch_size=2,
        image_size=48,
        crop_size=32,
        min_image_side=16,
        workers=0,
        sample_every=0,
    )
    with pytest.raises(
        TrainingError,
        match=r"of 11 images are unreadable.*more than the 3 a run tolerates "
        r"\(max_bad_fraction=0.05.*right folder.*skipped.txt",
    ) as info:
        train(config)
    # The command line spells the option as a flag and says how to list every bad file.
    assert re.search(
        r"more than the 3 a run tolerates \(--max-bad-fraction 0.05.*right folder.*--check-data",
        train_message(info.value),
    )


def test_unreadable_entries_the_folder_listing_reports_are_skipped_and_checked(
    folders, legacy_weights, tmp_path, monkeypatch, capsys
):
    # The test runs as root, for whom chmod 000 changes nothing: make os.scandir refuse one sub-folder,
    # as it would for a folder without read permission, and let adain._io.list_images report it.
    locked = folders[0] / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert (
        main(
            [
                "--check-data",
                "--content-dir",
                str(folders[0]),
                "--style-dir",
                str(folders[1]),
                "--min-image-side",
                "16",
                "--workers",
                "0",
            ]
        )
        == 1
    )
    assert (
        capsys.readouterr().out.splitlines()[0]
        == f"{locked}: cannot be read (cannot list the folder: Permission denied)"
    )
    run = tmp_path / "run"
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "1", "--sample-every", "0")) == 0
    assert f"{locked}: cannot be read" in (run / "skipped.txt").read_text()
    assert "skipped" in capsys.readouterr().err


# ---- typed TOML configs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ('max_iter = "ten"', 'max_iter = "ten" must be an integer'),
        ("max_iter = 1.5", "max_iter = 1.5 must be an integer"),
        ("lr = [1]", "lr = [1] must be a number"),
        ("lr = true", "lr = true must be a number"),
        ("batch-size = false", "batch-size = false must be an integer"),
        ("style_layer_weights = 3", "style_layer_weights = 3 must be a list of numbers, e.g. [1.0, 1.0, 1.0, 1.0]"),
        (
            'style_layer_weights = [1, "2", 3, 4]',
            'style_layer_weights = [1, "2", 3, 4] must be a list of numbers, e.g. [1.0, 1.0, 1.0, 1.0]',
        ),
        ("compile = 1", "compile = 1 must be true or false"),
        ("out = 5", "out = 5 must be a string in quotes"),
        ("styel_weight = 3", "unknown key 'styel_weight' (did you mean style_weight?)"),
    ],
)
def test_toml_values_of_the_wrong_type_are_one_line_errors_naming_the_key_and_file(tmp_path, capsys, line, expected):
    path = tmp_path / "run.toml"
    path.write_text(line + "\n")
    assert main(["--config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"adain train: error: --config {path}: {expected}"]


def test_toml_integers_are_accepted_where_numbers_are_expected(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("lr = 1\nstyle_weight = 2\nstyle-layer-weights = [1, 2, 3, 4]\nmax_iter = 7\ncompile = false\n")
    values = read_toml(str(path))
    assert values == {
        "lr": 1.0,
        "style_weight": 2.0,
        "style_layer_weights": (1.0, 2.0, 3.0, 4.0),
        "max_iter": 7,
        "compile": False,
    }
    assert isinstance(values["lr"], float) and isinstance(values["max_iter"], int)
    with pytest.raises(InputError, match="run.toml"):
        path.write_text('dtype = ["float32"]\n')
        read_toml(str(path))


# ---- --push-to-hub ---------------------------------------------------------------------------------


def test_push_credentials_are_checked_before_training(folders, legacy_weights, tmp_path, hub, monkeypatch, capsys):
    hub.add_user("hf_alice", "alice")
    monkeypatch.setenv("HF_TOKEN", "hf_expired")
    run = tmp_path / "run"
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "2", "--push-to-hub", "alice/decoder")) == 1
    err = capsys.readouterr().err
    assert error_lines(err) == [
        f"adain train: error: cannot push to alice/decoder on {hub.url}: the Hub refused the "
        "token (invalid or expired: check HF_TOKEN, or run `hf auth login`)"
    ]
    assert not (run / "log.csv").exists() and not list_checkpoints(run)  # not one step was trained


@pytest.mark.slow
def test_a_push_that_fails_after_training_keeps_the_model_and_says_where(
    folders, legacy_weights, tmp_path, hub, monkeypatch, capsys
):
    hub.add_user("hf_alice", "alice")
    monkeypatch.setenv("HF_TOKEN", "hf_alice")

    class TransportError(Exception):
        """huggingface_hub's transport errors (httpx) are not OSErrors: nothing generic catches them."""

    class BrokenUpload(hub.api_class()):
        def upload_folder(self, **kwargs):
            raise TransportError("Connection reset by peer\n  ... 60 more lines ...")

    monkeypatch.setattr("adain.weights._hub.HfApi", BrokenUpload)
    run = tmp_path / "run"
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "1", "--push-to-hub", "alice/decoder")) == 1
    err = capsys.readouterr().err
    final = run / "final"
    assert f"done: final model in {final}" in err and "Traceback" not in err
    assert error_lines(err) == [
        f"adain train: error: training finished but the push to alice/decoder failed (TransportError: Connection "
        f"reset by peer); the final model is in {final}: push it later with "
        f"adain.weights.push_to_hub('{final}', 'alice/decoder')"
    ]
    assert adain.load_pretrained(str(final)).decoder is not None


# ---- a full disk while checkpointing ---------------------------------------------------------------


@pytest.mark.slow
def test_a_full_disk_while_checkpointing_is_one_line_and_the_previous_checkpoint_resumes(
    folders, legacy_weights, tmp_path, monkeypatch, capsys
):
    real_save, calls = torch.save, []

    def disk_fills_up(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return real_save(obj, f, *args, **kwargs)
        # What a full disk does: some bytes land, then the write fails. torch raises a C++ RuntimeError for a
        # path and the OSError of the Python file object otherwise.
        if isinstance(f, (str, os.PathLike)):
            Path(f).write_bytes(b"PK\x03\x04")
            raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 704 vs 598")
        f.write(b"PK\x03\x04")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", disk_fills_up)
    run = tmp_path / "run"
    assert (
        main(args_for(folders, legacy_weights, run, "--max-iter", "2", "--save-every", "1", "--sample-every", "0")) == 1
    )
    err = capsys.readouterr().err
    kept = run / "checkpoints" / "step-00000001.pt"
    (line,) = error_lines(err)
    assert re.fullmatch(
        re.escape(f"adain train: error: cannot write checkpoint {run / 'checkpoints' / 'step-00000002.pt'}: ")
        + r"no space left on the device; it needs [0-9.]+ [kMG]?B \(\d+ bytes\), .* free there; "
        + re.escape(f"the previous checkpoint {kept} is intact: free some space and continue with --resume"),
        line,
    ), line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [kept.name]  # no partial or temporary file
    monkeypatch.setattr(torch, "save", real_save)  # space freed
    assert main(["--out", str(run), "--resume"]) == 0
    assert "starting at step 1" in capsys.readouterr().err
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == [1, 2]
