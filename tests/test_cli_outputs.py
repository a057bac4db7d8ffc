"""Safe by default: ``adain stylize`` and ``adain gatys`` never destroy a user's file, never lose an output
silently, never show a traceback.

In-process ``adain.cli.main`` with the fixtures' random-weight model saved by ``save_pretrained``; gatys
runs two L-BFGS steps without a pyramid; signals need a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image, ImageCms

import adain.model
from adain.cli import EXIT_SKIPPED, main
from adain.cli._outputs import case_insensitive, unique_names

FAST = {
    "stylize": ["--device", "cpu", "--content-size", "0", "--style-size", "0"],
    "gatys": ["--device", "cpu", "--content-size", "0", "--iterations", "2", "--no-pyramid", "--quiet"],
}


def _picture(path, h=32, w=40, seed=0, **save):
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    small.resize((w, h), Image.BILINEAR).save(path, **save)
    return path


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("model"))


@pytest.fixture
def no_weights(monkeypatch):
    """Loading weights fails the test: what must be checked first is checked before any weights."""

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(adain.model, "load_pretrained_state", refuse)
    monkeypatch.setattr("adain.cli._gatys.read_legacy_vgg", refuse)


def _run(command, *args, weights=None, extra=()):
    argv = [command, *map(str, args), *FAST[command], *extra]
    return main(argv + (["--weights", str(weights)] if weights else []))


# ---- no-clobber ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["stylize", "gatys"])
def test_an_existing_output_is_skipped_with_a_notice_and_exit_status_3(command, model_dir, tmp_path, capsys):
    content, style = _picture(tmp_path / "c.png", seed=1), _picture(tmp_path / "s.png", seed=2)
    out = tmp_path / "out.png"
    out.write_bytes(b"the user's file")
    assert _run(command, content, style, "-o", out, weights=model_dir) == EXIT_SKIPPED == 3
    err = capsys.readouterr().err
    assert err == f"adain: skipped {out}: it exists (--overwrite replaces it)\n"
    assert out.read_bytes() == b"the user's file"
    assert _run(command, content, style, "-o", out, weights=model_dir, extra=["--overwrite"]) == 0
    assert Image.open(out).size == (40, 32)
    assert _files(tmp_path) == ["c.png", "out.png", "s.png"]  # replaced atomically: no temporary left


def test_folder_mode_computes_only_missing_outputs_and_says_how_many_were_skipped(model_dir, tmp_path, capsys):
    contents, style = tmp_path / "contents", _picture(tmp_path / "s.png", seed=3)
    _picture(contents / "a.png", seed=4)
    _picture(contents / "b.png", seed=5)
    out = tmp_path / "out"
    (out / "a_stylized_s.png").parent.mkdir()
    (out / "a_stylized_s.png").write_bytes(b"keep")
    assert _run("stylize", contents, style, "-o", out, weights=model_dir) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"adain: skipped {out / 'a_stylized_s.png'}: it exists (--overwrite replaces it)",
        "adain: 1 of 2 outputs skipped because they exist (--overwrite replaces them)",
    ]
    assert (out / "a_stylized_s.png").read_bytes() == b"keep" and Image.open(out / "b_stylized_s.png").size == (40, 32)


def test_nothing_to_compute_loads_no_weights(model_dir, tmp_path, no_weights):
    content, style = _picture(tmp_path / "c.png"), _picture(tmp_path / "s.png", seed=1)
    (tmp_path / "o.png").write_bytes(b"x")
    assert _run("stylize", content, style, "-o", tmp_path / "o.png", weights=model_dir) == 3
    assert _run("gatys", content, style, "-o", tmp_path / "o.png", weights=model_dir) == 3


# ---- an input is never an output -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["stylize", "gatys"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_writing_onto_an_input_is_refused_even_with_overwrite(command, overwrite, model_dir, tmp_path, capsys):
    photo = _picture(tmp_path / "photo.jpg", seed=6)
    mask = _picture(tmp_path / "mask.png", seed=7)
    (tmp_path / "link.jpg").symlink_to(photo)
    os.link(mask, tmp_path / "hard.png")
    before = {p.name: p.read_bytes() for p in (photo, mask)}
    for output, styles, more in [
        (photo, [photo], []),
        (tmp_path / "link.jpg", [photo], []),
        (tmp_path / "hard.png", [photo, photo], ["--mask", str(mask)]),
    ]:
        code = _run(command, photo, *styles, "-o", output, weights=model_dir, extra=[*more, *overwrite])
        err = capsys.readouterr().err
        assert code == 2, err  # a usage error: the -o given
        assert err.startswith(f"adain: error: {output}: this output is the input") and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in (photo, mask)} == before


def test_the_output_folder_may_not_be_an_input_folder(model_dir, tmp_path, capsys, no_weights):
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    _picture(photos / "a.png")
    _picture(styles / "x.png", seed=1)
    for out in (photos, styles):
        assert _run("stylize", photos, styles, "-o", out, weights=model_dir) == 2
        assert "inside the input folder" in capsys.readouterr().err
    assert _files(photos) == ["a.png"] and _files(styles) == ["x.png"]


def test_an_output_folder_inside_the_input_folder_is_not_read_back(model_dir, tmp_path, capsys):
    photos = tmp_path / "photos"
    _picture(photos / "a.png")
    style = _picture(tmp_path / "s.png", seed=1)
    assert _run("stylize", photos, style, "-o", photos / "out", weights=model_dir) == 0
    assert _run("stylize", photos, style, "-o", photos / "out", weights=model_dir) == 3  # not x_stylized_s_stylized_s
    assert _files(photos) == ["a.png", "out/a_stylized_s.png"]


# ---- output names --------------------------------------------------------------------------------


def test_colliding_output_names_keep_the_input_extension(model_dir, tmp_path):
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    for name, seed in [("pic.jpg", 1), ("pic.png", 2), ("sub/a.jpg", 3), ("sub/a.JPG", 4)]:
        _picture(contents / name, seed=seed)
    _picture(styles / "x.jpg", seed=5)
    _picture(styles / "x.png", seed=6)
    assert _run("stylize", contents, styles, "-o", tmp_path / "out", "--ext", "png", weights=model_dir) == 0
    assert _files(tmp_path / "out") == [
        "pic_jpg_stylized_x_jpg.png",
        "pic_jpg_stylized_x_png.png",
        "pic_png_stylized_x_jpg.png",
        "pic_png_stylized_x_png.png",
        "sub/a_JPG_stylized_x_jpg.png",
        "sub/a_JPG_stylized_x_png.png",
        "sub/a_jpg_stylized_x_jpg.png",
        "sub/a_jpg_stylized_x_png.png",
    ]
    # Without --ext the content's own extension already tells pic.jpg and pic.png apart: names stay short.
    assert _run("stylize", contents, styles / "x.png", "-o", tmp_path / "own", weights=model_dir) == 0
    assert _files(tmp_path / "own") == [
        "pic_stylized_x.jpg",
        "pic_stylized_x.png",
        "sub/a_JPG_stylized_x.jpg",
        "sub/a_jpg_stylized_x.jpg",
    ]


def test_names_still_shared_are_numbered_in_order_and_case_is_folded_where_the_file_system_folds_it(tmp_path):
    entries = [(None, "sub_x", "sub_x_png"), (None, "sub_x", "sub_x_png"), (None, "sub_x_png_2", "-")]
    assert unique_names(entries, insensitive=False) == ["sub_x_png", "sub_x_png_3", "sub_x_png_2"]
    entries = [(None, "a", "a_jpg"), (None, "a", "a_JPG"), (None, "A", "A_png")]
    assert unique_names(entries, insensitive=False) == ["a_jpg", "a_JPG", "A"]
    assert unique_names(entries, insensitive=True) == ["a_jpg", "a_JPG_2", "A_png"]
    assert case_insensitive(tmp_path / "not" / "yet") is False  # Linux file systems tell case apart


# ---- extensions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["stylize", "gatys"])
@pytest.mark.parametrize("flag, value", [("--ext", "xyz"), ("-o", "out.xyz")])
def test_unknown_output_extensions_fail_at_once_naming_the_argument(command, flag, value, tmp_path, capsys, no_weights):
    content = _picture(tmp_path / "c.png")
    argv = [command, str(content), str(content), "-o", str(tmp_path / "out")]
    argv += [flag, str(tmp_path / value) if flag == "-o" else value]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err and ".xyz" not in {p.suffix for p in tmp_path.iterdir()}


def test_an_image_extension_makes_a_file_and_a_slash_a_folder(model_dir, tmp_path, capsys):
    content, style = _picture(tmp_path / "c.png"), _picture(tmp_path / "s.png", seed=1)
    (tmp_path / "taken.png").mkdir()
    assert _run("stylize", content, style, "-o", tmp_path / "taken.png", weights=model_dir) == 2
    assert "is a folder" in capsys.readouterr().err
    assert _run("stylize", content, style, "-o", f"{tmp_path / 'run.v2'}/", weights=model_dir) == 0
    assert _files(tmp_path / "run.v2") == ["c_stylized_s.png"]


# ---- failures are counted, never fatal to the others -----------------------------------------------


def test_a_failing_pair_or_style_does_not_stop_the_others_and_counts_are_exact(model_dir, tmp_path, capsys):
    contents, styles, out = tmp_path / "contents", tmp_path / "styles", tmp_path / "out"
    _picture(contents / "a.png", seed=1)
    _picture(contents / "sub" / "b.png", seed=2)
    _picture(contents / ("n" * 240 + ".png"), seed=3)  # its outputs' names are over 255 bytes
    _picture(styles / "good.png", seed=4)
    (styles / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out.mkdir()
    (out / "sub").write_bytes(b"a file where the sub-folder should go")  # an unwritable folder
    code = _run("stylize", contents, styles, "-o", out, weights=model_dir)
    err = capsys.readouterr().err.splitlines()
    assert code == 1 and "Traceback" not in "\n".join(err)
    assert err[-1] == "adain: 5 of 6 outputs failed"
    assert sum("bad.png" in line and "(2 outputs not written)" in line for line in err) == 1
    assert sum("over the 255" in line for line in err) == 2
    assert sum("cannot create the folder" in line and "a file is in the way" in line for line in err) == 1
    assert _files(out) == ["a_stylized_good.png", "sub"]


def test_symlink_loops_give_each_picture_once(model_dir, tmp_path):
    contents = tmp_path / "contents"
    _picture(contents / "a.png", seed=1)
    _picture(contents / "b.png", seed=2)
    (contents / "loop").symlink_to(".")
    (contents / ".hidden").mkdir()
    _picture(contents / ".hidden" / "h.png", seed=3)
    style = _picture(tmp_path / "s.png", seed=4)
    assert _run("stylize", contents, style, "-o", tmp_path / "out", weights=model_dir) == 0
    assert _files(tmp_path / "out") == ["a_stylized_s.png", "b_stylized_s.png"]


def test_an_unreadable_folder_is_one_line_and_a_failure(model_dir, tmp_path, capsys, monkeypatch):
    contents = tmp_path / "contents"
    _picture(contents / "a.png", seed=1)
    _picture(contents / "locked" / "b.png", seed=2)
    style = _picture(tmp_path / "s.png", seed=3)
    real_scandir = os.scandir

    def scandir(path="."):  # root can read anything: simulate a folder it may not list
        if os.fspath(path) == str(contents / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert _run("stylize", contents, style, "-o", tmp_path / "out", weights=model_dir) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"adain: error: {contents / 'locked'}: cannot be read (cannot list the folder: Permission denied); left out",
        "adain: 0 of 1 outputs failed; 1 unreadable input entry left out",
    ]
    assert _files(tmp_path / "out") == ["a_stylized_s.png"]


# ---- metadata and quality --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["stylize", "gatys"])
def test_the_contents_colour_profile_and_exif_are_kept_with_the_orientation_reset(command, model_dir, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: read_image gives 32 x 40 pixels from a 40 x 32 file
    exif[0x010F] = "Maker"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    content = _picture(tmp_path / "c.jpg", exif=exif.tobytes(), icc_profile=profile)
    style = _picture(tmp_path / "s.png", seed=1)
    assert _run(command, content, style, "-o", tmp_path / "o.jpg", weights=model_dir) == 0
    with Image.open(tmp_path / "o.jpg") as out:
        assert out.size == (32, 40) and out.info["icc_profile"] == profile
        assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "Maker"


def test_quality_sets_the_jpeg_quality(model_dir, tmp_path, capsys):
    content, style = _picture(tmp_path / "c.png", 48, 64), _picture(tmp_path / "s.png", seed=1)
    for quality in ("10", "95"):
        out = tmp_path / f"q{quality}.jpg"
        assert _run("stylize", content, style, "-o", out, weights=model_dir, extra=["--quality", quality]) == 0
    assert (tmp_path / "q10.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size * 0.7
    with pytest.raises(SystemExit):
        main(["stylize", str(content), str(style), "-o", str(tmp_path / "x.jpg"), "--quality", "0"])
    assert "--quality" in capsys.readouterr().err


# ---- arguments and inputs before weights -----------------------------------------------------------


@pytest.mark.parametrize(
    "command, args, named",
    [
        ("stylize", ["missing.png", "s.png"], "missing.png"),
        ("stylize", ["c.png", "s.png", "missing.png", "--style-weights", "1", "1"], "missing.png"),
        ("stylize", ["c.png", "s.png", "s.png", "--mask", "missing.png"], "missing.png"),
        ("stylize", ["c.png", "s.png", "s.png", "--style-weights", "1", "2", "3"], "--style-weights"),
        ("stylize", ["c.png", "s.png", "s.png", "s.png", "--mask", "c.png"], "mask"),
        ("stylize", ["c.png", "s.png", "--device", "toaster"], "device"),
        ("gatys", ["missing.png", "s.png"], "missing.png"),
        ("gatys", ["c.png", "s.png", "s.png", "--masks", "c.png", "missing.png"], "missing.png"),
        ("gatys", ["c.png", "s.png", "--init", "missing.png"], "init"),
        ("gatys", ["c.png", "s.png", "--style-layers", "relu9_9"], "--style-layers"),
        ("gatys", ["c.png", "s.png", "--vgg", "missing.pth"], "missing.pth"),
    ],
)
def test_arguments_and_inputs_are_checked_before_weights_are_loaded(
    command, args, named, model_dir, tmp_path, monkeypatch, capsys, no_weights
):
    _picture(tmp_path / "c.png")
    _picture(tmp_path / "s.png", seed=1)
    monkeypatch.chdir(tmp_path)
    weights = [] if "--vgg" in args else ["--weights", str(model_dir)]
    # A missing input file is a failure (1), an argument that cannot be used a usage error (2).
    status = 1 if named.startswith("missing") else 2
    assert main([command, "--device", "cpu", *args, "-o", "out.png", *weights]) == status
    err = capsys.readouterr().err
    assert err.startswith("adain: error: ") and named in err and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()


# ---- --debug and signals -----------------------------------------------------------------------------


def test_debug_works_after_the_command_too(model_dir, tmp_path, capsys):
    content = _picture(tmp_path / "c.png")
    args = ["stylize", str(content), str(content), "-o", str(tmp_path / "o.png"), "--alpha", "2"]
    assert main([*args, "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["--debug", *args]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err


# A test hook: the real Image.save writes the temporary file, then the signal arrives before the rename.
_SIGNAL_WHILE_WRITING = """
import os, signal, sys, time
from PIL import Image
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job ignores Ctrl-C)
real_save = Image.Image.save
def save(self, fp, *args, **kwargs):
    real_save(self, fp, *args, **kwargs)
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    time.sleep(60)
Image.Image.save = save
from adain.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, code, message", [("SIGINT", 130, "adain: interrupted"), ("SIGTERM", 143, "adain: stopped by SIGTERM")]
)
def test_a_signal_while_writing_leaves_no_temporary_file(name, code, message, model_dir, tmp_path):
    contents = tmp_path / "contents"
    _picture(contents / "a.png", seed=1)
    _picture(contents / "b.png", seed=2)
    style = _picture(tmp_path / "s.png", seed=3)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _SIGNAL_WHILE_WRITING,
            name,
            "stylize",
            str(contents),
            str(style),
            "-o",
            str(out),
            "--weights",
            str(model_dir),
            *FAST["stylize"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == message and "Traceback" not in proc.stderr
    assert _files(out) == []  # stopped at the first output: no temporary file, no second output
