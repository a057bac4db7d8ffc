"""``adain.training`` as a library: train() resumes or refuses an earlier run itself, reports typed events, stops
when its callback asks, and names options the Python way (the command line spells them as flags)."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from test_training import _spawn, _wait_for, args_for, write_images

from adain.cli._train import main
from adain.cli._train_flags import attribute_docs, flag_spelling
from adain.errors import InputError
from adain.training import (
    BadImageEvent,
    CheckpointEvent,
    ConfigError,
    DoneEvent,
    Interrupted,
    LogEvent,
    NewRunEvent,
    QualityEvent,
    RunExistsError,
    StartEvent,
    StepEvent,
    TrainConfig,
    train,
)
from adain.training._checkpoint import list_checkpoints
from adain.training._errors import Setting, TrainingError
from adain.training._report import read_log
from adain.training._rundir import RUN_ENTRIES


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    return write_images(tmp_path / "content", 4, seed=1), write_images(tmp_path / "style", 4, seed=2)


def tiny(folders, legacy_weights, out: Path, **options) -> TrainConfig:
    return TrainConfig(
        content_dir=folders[0],
        style_dir=folders[1],
        vgg=legacy_weights[0],
        out=out,
        image_size=48,
        crop_size=32,
        batch_size=2,
        min_image_side=16,
        workers=0,
        log_every=1,
        **options,
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones included) -> the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---- resume or refuse --------------------------------------------------------------------------------


@pytest.mark.slow
def test_training_into_a_run_with_checkpoints_leaves_every_file_of_it_byte_identical(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    train(tiny(folders, legacy_weights, run, max_iter=4, save_every=2, sample_every=2))
    before = snapshot(run)
    assert {
        "checkpoints/step-00000004.pt",
        "log.csv",
        "samples/step-00000004.png",
        "final/model.safetensors",
        "loss_curve.png",
        ".lock",
    } <= set(before)
    with pytest.raises(RunExistsError) as info:
        train(tiny(folders, legacy_weights, run, max_iter=2, seed=7))
    assert snapshot(run) == before
    assert info.value.run_dir == run and info.value.field == "out"
    assert {"checkpoints", "log.csv", "samples", "final", "loss_curve.png"} <= set(info.value.entries)
    assert str(info.value) == (
        f"out: {run} already holds a run ({', '.join(info.value.entries)}): continue it with "
        "resume=True, or choose another out"
    )


@pytest.mark.slow
def test_training_into_a_run_killed_before_its_first_checkpoint_leaves_its_log_and_samples(
    folders, legacy_weights, tmp_path, capsys
):
    run = tmp_path / "run"
    proc = _spawn(
        args_for(folders, legacy_weights, run, "--max-iter", "100000", "--save-every", "100000", "--sample-every", "1")
    )
    _wait_for(lambda: len(read_log(run / "log.csv")) >= 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not list_checkpoints(run)
    before = snapshot(run)
    assert {"log.csv", "samples/step-00000001.png", ".lock"} <= set(before)
    assert (run / ".lock").read_text().split()[0] == str(proc.pid)  # another process's: left as it is
    with pytest.raises(RunExistsError, match="already holds a run"):
        train(tiny(folders, legacy_weights, run, max_iter=1))
    assert snapshot(run) == before
    # The command line refuses it alike, in its own words.
    assert main(args_for(folders, legacy_weights, run, "--max-iter", "1")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"adain train: error: --out: {run} already holds a run (log.csv, quality.csv, samples): continue it with "
        "--resume, or choose another --out"
    )
    assert snapshot(run) == before


@pytest.mark.slow
def test_every_entry_a_run_writes_counts_as_an_earlier_run(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    train(tiny(folders, legacy_weights, run, max_iter=2, save_every=1, sample_every=1))
    (run / "skipped.txt").write_text("")  # written when an image is skipped; TensorBoard's folder when installed
    written = {p.name for p in run.iterdir()} - {".lock"}
    assert written <= set(RUN_ENTRIES) and set(RUN_ENTRIES) - written <= {"tensorboard"}


def test_resume_without_a_valid_checkpoint_starts_a_new_run_and_says_so(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    assert TrainConfig.from_run(run) is None
    events = []
    train(tiny(folders, legacy_weights, run, max_iter=1, resume=True), events.append)
    assert isinstance(events[0], NewRunEvent) and events[0].run_dir == run
    assert [(e.start_step, e.resumed_from) for e in events if isinstance(e, StartEvent)] == [(0, None)]


# ---- events and stopping -----------------------------------------------------------------------------


def test_progress_arrives_as_frozen_typed_events(folders, legacy_weights, tmp_path):
    events = []
    train(tiny(folders, legacy_weights, tmp_path / "run", max_iter=2, save_every=2, sample_every=0), events.append)
    assert [e.kind for e in events] == ["start", "step", "log", "step", "log", "checkpoint", "quality", "done"]
    assert [type(e) for e in events] == [
        StartEvent,
        StepEvent,
        LogEvent,
        StepEvent,
        LogEvent,
        CheckpointEvent,
        QualityEvent,
        DoneEvent,
    ]
    start, step, log = events[:3]
    assert (start.start_step, start.max_iter, start.world_size, start.content_images) == (0, 2, 1, 4)
    assert step.step == 1 and step.applied and step.images == 2 and isinstance(step.loss, float)
    assert log.step == 1 and log.loss == step.loss and log.bad_images == 0
    assert events[5].path == list_checkpoints(tmp_path / "run")[-1]
    assert events[6].step == 2 and events[6].grid.is_file()
    assert events[7].final == tmp_path / "run" / "final"
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.loss = 0.0
    assert BadImageEvent("x: bad").kind == "bad_image"


@pytest.mark.slow
def test_a_callback_returning_true_stops_at_the_end_of_the_step_with_a_checkpoint(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    config = tiny(folders, legacy_weights, run, max_iter=10, save_every=100, sample_every=0)
    with pytest.raises(Interrupted) as info:
        train(config, lambda event: isinstance(event, StepEvent) and event.step == 2)
    assert info.value.step == 2 and info.value.path == run / "checkpoints" / "step-00000002.pt"
    assert str(info.value) == f"interrupted at step 2; checkpoint {info.value.path}; continue with resume=True"
    assert [p.name for p in list_checkpoints(run)] == ["step-00000002.pt"]
    starts = []
    train(
        dataclasses.replace(config, resume=True, max_iter=3),
        lambda event: starts.append(event.start_step) if isinstance(event, StartEvent) else None,
    )
    assert starts == [2]


def test_two_argument_callbacks_still_work_with_a_deprecation_warning(folders, legacy_weights, tmp_path):
    seen = []
    with pytest.warns(DeprecationWarning, match="callback\\(kind, info\\) is deprecated"):
        train(
            tiny(folders, legacy_weights, tmp_path / "run", max_iter=1, sample_every=0),
            lambda kind, info: seen.append((kind, info)) or True,
        )  # what they return is ignored, as it was
    assert [kind for kind, _ in seen] == ["start", "step", "log", "checkpoint", "quality", "done"]
    assert seen[0][1]["start_step"] == 0 and seen[1][1]["result"].loss == seen[1][1]["loss"]


def test_paths_are_accepted_and_stored_as_strings_so_the_checkpoint_resumes(folders, legacy_weights, tmp_path):
    config = tiny(folders, legacy_weights, tmp_path / "run", max_iter=1, sample_every=0)
    assert isinstance(config.out, Path) and config.validate().out == str(tmp_path / "run")
    train(config)
    resumed = TrainConfig.from_run(tmp_path / "run")  # loads with weights_only=True: plain values only
    assert resumed.content_dir == str(folders[0]) and resumed.resume


# ---- option names in messages ------------------------------------------------------------------------


def test_configuration_errors_name_the_field_and_the_command_line_spells_it_as_a_flag(folders, capsys):
    config = TrainConfig(content_dir=str(folders[0]), style_dir=str(folders[1]), batch_size=0)
    with pytest.raises(ConfigError) as info:
        config.validate()
    assert isinstance(info.value, InputError) and info.value.field == "batch_size"
    assert str(info.value) == "batch_size: must be an integer, at least 1, got 0"
    assert info.value.render(flag_spelling) == "--batch-size: must be an integer, at least 1, got 0"
    assert main(["--content-dir", str(folders[0]), "--style-dir", str(folders[1]), "--batch-size", "0"]) == 1
    assert capsys.readouterr().err == "adain train: error: --batch-size: must be an integer, at least 1, got 0\n"
    with pytest.raises(ConfigError, match=r"^crop_size: .* at most image_size \(48\), got 64$") as info:
        dataclasses.replace(config, batch_size=1, image_size=48, crop_size=64).validate()
    assert info.value.settings == ("crop_size", "image_size")
    assert (
        info.value.render(lambda name, value: name.upper()) == "CROP_SIZE: must be a multiple of 8 and at most "
        "IMAGE_SIZE (48), got 64"
    )


@pytest.mark.parametrize(
    "name, value, python, flag",
    [
        ("resume", True, "resume=True", "--resume"),
        ("compile", False, "compile=False", "--no-compile"),
        ("lr", 1e-4, "lr=0.0001", "--lr 0.0001"),
        (
            "style_layer_weights",
            (1.0, 2.0, 3.0, 4.0),
            "style_layer_weights=(1.0, 2.0, 3.0, 4.0)",
            "--style-layer-weights 1.0,2.0,3.0,4.0",
        ),
        ("out", None, "out", "--out"),
    ],
)
def test_a_setting_in_a_message_is_spelled_either_way(name, value, python, flag):
    error = TrainingError("set ", Setting(name) if value is None else Setting(name, value), " and go")
    assert str(error) == f"set {python} and go"
    assert error.render(flag_spelling) == f"set {flag} and go"


def test_no_library_message_of_the_trainer_speaks_command_line():
    # Docstrings may mention the command line; strings a user can be shown may not.
    root = Path(__file__).resolve().parents[1] / "adain" / "training"
    offenders = []
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        offenders += [
            f"{path.name}:{node.lineno}: {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and re.search(r"(^|[\s(`])--[a-z]|adain train", node.value)
        ]
    assert not offenders, "\n".join(offenders)


# ---- the configuration's documentation ---------------------------------------------------------------


def test_each_field_is_documented_once_in_the_docstring_and_the_flags_help_comes_from_it(capsys):
    fields = dataclasses.fields(TrainConfig)
    docs = attribute_docs(TrainConfig)
    assert list(docs) == [f.name for f in fields]
    assert all(not f.metadata for f in fields), "no argparse text in the library: document fields in the docstring"
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "--crop-size CROP_SIZE random square crop, pixels; a multiple of 8, at most --image-size (default: 256)"
        in help_text
    )
    assert f"--lr LR {docs['lr'].rstrip('.')} (default: {TrainConfig.lr})" in help_text


@pytest.mark.slow
def test_the_run_config_of_the_cli_layers_defaults_checkpoint_toml_and_flags(folders, legacy_weights, tmp_path):
    run = tmp_path / "run"
    train(tiny(folders, legacy_weights, run, max_iter=1, sample_every=0, style_weight=3.0, seed=5, lr=2e-4))
    recipe = tmp_path / "more.toml"
    recipe.write_text("max_iter = 3\nlr = 3e-4\n")
    assert main(["--out", str(run), "--resume", "--config", str(recipe), "--lr", "5e-4"]) == 0
    state = torch.load(list_checkpoints(run)[-1], weights_only=True)
    assert state["step"] == 3
    saved = state["config"]
    assert (saved["style_weight"], saved["seed"], saved["max_iter"], saved["lr"]) == (3.0, 5, 3, 5e-4)
    assert saved["out"] == str(run) and saved["content_dir"] == str(folders[0]) and os.path.isdir(run / "final")
