"""The command line's one voice (issue 21): exit statuses command by command, flags rather than Python keywords,
writability checked before any weights load, one-line refusals.

In-process ``adain.cli.main`` with the fixtures' random-weight model; nothing here computes a picture.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import io
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image
from test_fail_first import refuse_writes_in

from adain.cli import EXIT_ERROR, EXIT_SKIPPED, EXIT_USAGE, build_parser, exit_status, main
from adain.cli._flags import command_flags, in_flags
from adain.errors import ImageReadError, InputError, OutputExistsError, WeightsError, install_hint
from adain.inference._checks import MIN_TILE_SIZE
from adain.weights._resolve import pretrained_info

DOCS = REPO_ROOT / "docs" / "guides" / "command-line.md"


def _picture(path: Path, w: int = 40, h: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("model"))


@pytest.fixture
def no_weights(monkeypatch):
    """Loading weights fails the test: whatever is refused here is refused before any weights load."""
    _no_weights(monkeypatch)


@pytest.fixture
def files(tmp_path, monkeypatch):
    """``c.png``, ``s.png``, a folder ``frames/`` of two frames, in the current folder."""
    monkeypatch.chdir(tmp_path)
    _picture(tmp_path / "c.png")
    _picture(tmp_path / "s.png", 24, 24)
    for i in range(2):
        _picture(tmp_path / "frames" / f"{i:03d}.png", 32, 24)
    return tmp_path


# ---- the table -------------------------------------------------------------------------------------

# (command line, exit status, what the one line names): every usage error is 2, a failure 1, an output kept 3.
CASES = [
    (["stylize", "c.png", "s.png", "-o", "o.png", "--alpha", "abc"], 2, "--alpha"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--alpha", "2"], 2, "--alpha"),
    (
        ["stylize", "c.png", "s.png", "-o", "o.png", "--tile-size", "8"],
        2,
        f"--tile-size: must be an integer >= {MIN_TILE_SIZE}",
    ),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--max-pixels", "0"], 2, "--max-pixels"),
    (["stylize", "c.png", "s.png", "-o", "o.png", "--metadata", "some"], 2, "--metadata"),
    (["stylize", "missing.png", "s.png", "-o", "o.png"], 1, "missing.png: no such file"),
    (["stylize", "c.png", "s.png", "-o", "c.png"], 2, "c.png"),  # the output is the input
    (["gatys", "c.png", "s.png", "-o", "o.png", "--iterations", "0"], 2, "--iterations"),
    (["video", "frames", "s.png", "-o", "o.mp4", "--fps", "0"], 2, "--fps"),
    (["video", "frames", "s.png", "-o", "o.mp4", "--alpha", "2"], 2, "--alpha"),
    (["export", "MODEL", "model.bin"], 2, "model.bin"),
    (["train", "--content-dir", "frames", "--style-dir", "frames", "--max-iter", "0", "--out", "run"], 2, "--max-iter"),
    (["convert", "reference-port", "text.pth", "text.pth", "out"], 1, "text.pth"),
]


@pytest.mark.parametrize(("argv", "status", "named"), CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_exit_status_command_by_command(argv, status, named, files, model_dir, capsys, no_weights):
    (files / "text.pth").write_text("not a checkpoint\n")
    argv = [str(model_dir) if a == "MODEL" else a for a in argv]
    if argv[0] in ("stylize", "gatys", "video"):
        argv += ["--device", "cpu"]
    with _argparse_exit() as code:
        code.value = main(argv)
    err = capsys.readouterr().err
    assert code.value == status, err
    assert named in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_an_output_that_exists_is_status_3_for_every_command(files, model_dir, capsys, no_weights):
    _picture(files / "o.png")
    for name in ("o.onnx", "o.style.onnx", "o.json", "o.mp4"):
        (files / name).write_bytes(b"the user's file")
    commands = [
        ["stylize", "c.png", "s.png", "-o", "o.png", "--device", "cpu"],
        ["gatys", "c.png", "s.png", "-o", "o.png", "--device", "cpu"],
        ["export", str(model_dir), "o.onnx"],
        ["video", "frames", "s.png", "-o", "o.mp4", "--device", "cpu", "--weights", str(model_dir)],
    ]
    for argv in commands:
        assert main(argv) == EXIT_SKIPPED, argv
        err = capsys.readouterr().err
        assert err.startswith("adain: skipped ") and "--overwrite" in err and err.count("\n") == 1, err
    assert (files / "o.onnx").read_bytes() == b"the user's file"


def test_the_status_table_in_the_guide_is_the_one_the_code_uses():
    text = DOCS.read_text()
    rows = dict(re.findall(r"^\| (\d+) \| ([^|]+)\|", text, flags=re.M))
    assert set(rows) == {"0", "1", "2", "3", "130", "143"}
    assert "usage" in rows[str(EXIT_USAGE)] and "exists" in rows[str(EXIT_SKIPPED)] and "fail" in rows[str(EXIT_ERROR)]
    assert exit_status(InputError("alpha: ...")) == EXIT_USAGE
    assert exit_status(ImageReadError("x.png: not an image")) == EXIT_ERROR
    assert exit_status(WeightsError("no weights")) == EXIT_ERROR
    assert exit_status(OutputExistsError("o.png: exists")) == EXIT_SKIPPED


class _argparse_exit:
    """``main`` returns a status, argparse exits with one: either way ``.value`` is the status."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, SystemExit):
            self.value = exc.code
            return True
        return False


# ---- writability before weights ----------------------------------------------------------------------

WRITERS = {
    "stylize": ["stylize", "c.png", "s.png", "-o", "ro/o.png", "--device", "cpu", "--weights", "MODEL"],
    "stylize folder": ["stylize", "frames", "s.png", "-o", "ro", "--device", "cpu", "--weights", "MODEL"],
    "gatys": ["gatys", "c.png", "s.png", "-o", "ro/o.png", "--device", "cpu", "--weights", "MODEL"],
    "video": ["video", "frames", "s.png", "-o", "ro/o.mp4", "--device", "cpu"],
    "video with weights": ["video", "frames", "s.png", "-o", "ro/o.mp4", "--device", "cpu", "--weights", "MODEL"],
    "export": ["export", "MODEL", "ro/model.onnx"],
    "train": ["train", "--content-dir", "frames", "--style-dir", "frames", "--out", "ro", "--max-iter", "1"],
    "download": ["download", "--cache-dir", "ro"],
    "stylize-dataset": ["stylize-dataset", "frames", "frames", "-o", "ro", "--device", "cpu", "--weights", "MODEL"],
    "evaluate": ["evaluate", "frames", "frames", "--report", "ro/r.json", "--device", "cpu", "--weights", "MODEL"],
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_read_only_output_is_refused_before_any_weights_load(
    command, files, model_dir, monkeypatch, capsys, no_weights
):
    refuse_writes_in(monkeypatch, files / "ro")
    argv = [str(model_dir) if a == "MODEL" else a for a in WRITERS[command]]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("adain: error: ") and "ro: cannot write in it (Permission denied)" in err, err
    assert err.count("\n") == 1 and list((files / "ro").iterdir()) == []


def _no_weights(monkeypatch):
    """Every way a command loads weights fails the test (each stand-in keeps the signature commands read
    their defaults from)."""

    def refusing(original):
        @functools.wraps(original)
        def refuse(*args, **kwargs):
            raise AssertionError("weights were loaded")

        return refuse

    for target in ("adain.cli._common.load_pretrained", "adain.cli._download.load_pretrained",
                   "adain.training._setup.load_pretrained", "adain.video._api.load_pretrained",
                   "adain.cli._gatys.read_legacy_vgg", "adain.model.load_pretrained_state"):  # fmt: skip
        module, name = target.rsplit(".", 1)
        monkeypatch.setattr(target, refusing(getattr(importlib.import_module(module), name)))


# ---- flags, not Python keywords -------------------------------------------------------------------------


def test_library_messages_are_told_in_the_commands_flags():
    parser = build_parser()
    gatys, stylize = command_flags(parser, "gatys"), command_flags(parser, "stylize")
    said = in_flags("out of memory; or pass on_oom='shrink', a smaller history_size, or dtype='bfloat16'", gatys)
    assert said == "out of memory; or pass --on-oom shrink, a smaller --history-size, or --dtype bfloat16"
    assert in_flags("o.png: exists; pass overwrite=True to replace it", stylize) == (
        "o.png: exists; pass --overwrite to replace it"
    )
    assert in_flags("alpha: must be in [0, 1]", stylize) == "--alpha: must be in [0, 1]"
    # Plain words in prose and names inside paths stay as they are.
    kept = "/data/max_pixels/alpha.png: the device alpha channel"
    assert in_flags(kept, stylize) == kept
    assert in_flags("raise max_pixels", stylize) == "raise --max-pixels"


def test_every_parser_flag_is_found_for_the_translation():
    parser = build_parser()
    for command in ("stylize", "stylize-dataset", "gatys", "video", "train", "evaluate", "download", "demo", "export"):
        help_text = _help(command)
        flags = command_flags(parser, command)
        shown = {re.sub(r"^--no-", "--", f) for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", help_text)}
        assert shown - {"--help"} <= set(flags.values()), command  # --no-X: the flag of X's dest
    assert command_flags(parser, "convert")["state_dict"] == "--state-dict"  # a sub-command's own


def _help(command: str) -> str:
    with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:
        main([command, "--help"])
    return out.getvalue()


# ---- convert, weights, install hints ------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"hello, this is text\n", os.urandom(4096)], ids=["text", "random"])
@pytest.mark.parametrize("kind", ["reference-port", "torch7"])
def test_convert_on_a_file_that_is_no_checkpoint_is_one_line(kind, content, tmp_path, capsys):
    bad = tmp_path / ("bad.pth" if kind == "reference-port" else "bad.t7")
    bad.write_bytes(content)
    assert main(["convert", kind, str(bad), str(bad), str(tmp_path / "out")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("adain: error: ") and str(bad) in err and err.count("\n") == 1, err
    assert "weights_only" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_convert_refuses_a_fifo_as_not_a_regular_file(tmp_path, capsys):
    fifo = tmp_path / "vgg.pth"
    os.mkfifo(fifo)
    assert main(["convert", "reference-port", str(fifo), str(fifo), str(tmp_path / "out")]) == EXIT_ERROR
    assert "vgg.pth: not a regular file" in capsys.readouterr().err


def test_the_offline_weights_error_lists_each_source_once_in_a_few_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    content = _picture(tmp_path / "c.png")
    argv = ["stylize", str(content), str(content), "-o", str(tmp_path / "out.png"), "--device", "cpu"]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    sources, first = pretrained_info("default").sources, err.splitlines()[0]
    assert err.count("\n") <= 3 and "Tried, in order" not in err, err
    assert all(first.count(source.describe()) == 1 for source in sources), err  # each source once
    assert main([*argv, "--debug"]) == EXIT_ERROR
    assert "Tried, in order" in capsys.readouterr().err


def test_missing_extra_hints_have_one_wording_for_pypi_and_a_clone():
    assert install_hint("video") == "pip install 'adain[video]' (from a clone: pip install -e '.[video]')"
    # Every message with an install command is built by install_hint: no other string spells one out.
    for path in (REPO_ROOT / "adain").rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert "pip install" not in node.value or path.name == "errors.py", (path, node.value)


# ---- demo ----------------------------------------------------------------------------------------------


def test_the_demo_with_a_bad_host_exits_2_within_ten_seconds(tmp_path):
    # Gradio would retry such a host every 5 s forever. The 10 s are the child's CPU time (the wall clock
    # of a loaded test machine says little); the timeout catches a command that never gives up.
    pytest.importorskip("gradio")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "adain", "demo", "--host", "256.1.1.1", "--weights", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) < 10
    assert proc.returncode == EXIT_USAGE and proc.stderr.startswith("adain: error: --host: cannot resolve"), proc.stderr
    assert proc.stderr.count("\n") == 1
