"""One output policy (``adain._atomic.check_output``) for every writer: image saving, the video sink, the ONNX
export and the command line.

An output that exists is ``OutputExistsError`` unless ``overwrite``; an output that is one of the inputs (the
same file through a symbolic link or, where the file system ignores case, another letter case) is
``OutputIsInputError`` even with ``overwrite``. Either way the file is left byte-identical and nothing is
written beside it.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction

import pytest
from PIL import Image

import adain
from adain import _io as io
from adain._atomic import InputFiles, check_output
from adain.cli import EXIT_SKIPPED, build_parser, main
from adain.cli._folders import plan_pairs
from adain.errors import InputError, OutputExistsError, OutputIsInputError
from adain.export import export_onnx
from adain.video._sink import open_sink
from adain.video._source import VideoInfo

PRECIOUS = b"the user's file"
WAYS = ["symlink", "letter case"]


def _precious(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PRECIOUS)
    return path


def _alias(target, how, where):
    """``where``, another name of the file ``target``: a symbolic link made there, or (``where`` spelling
    ``target``'s name in other letters cases) the same name on a file system that ignores case."""
    if how == "symlink":
        where.symlink_to(target)
        return where
    assert where.name.casefold() == target.name.casefold() and where.name != target.name
    if not (os.path.exists(where) and os.path.samefile(where, target)):
        pytest.skip(
            f"the file system of {target.parent} tells letter cases apart: no other spelling of a name is the same file"
        )
    return where


def _unchanged(folder, files):
    """Every file of ``folder`` is one of ``files`` and holds ``PRECIOUS``: nothing written, nothing replaced."""
    names = sorted(p.name for p in folder.iterdir() if not p.is_symlink())
    return names == sorted(f.name for f in files) and all(f.read_bytes() == PRECIOUS for f in files)


# ---- the policy --------------------------------------------------------------------------------------


def test_the_two_errors_are_public_and_keep_their_builtin_families():
    assert adain.OutputExistsError is OutputExistsError and adain.OutputIsInputError is OutputIsInputError
    assert {"OutputExistsError", "OutputIsInputError"} <= set(adain.__all__)
    assert issubclass(OutputExistsError, FileExistsError) and issubclass(OutputIsInputError, InputError)
    assert not issubclass(OutputIsInputError, OutputExistsError)  # refused even with overwrite: not "exists"


def test_an_existing_output_needs_overwrite(tmp_path):
    out = _precious(tmp_path / "out.png")
    with pytest.raises(OutputExistsError) as caught:
        check_output(out)
    assert str(caught.value) == f"{out}: exists; pass overwrite=True to replace it"
    assert caught.value.filename == str(out)
    check_output(out, overwrite=True)
    check_output(tmp_path / "new.png")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError):  # a dangling link is a name that is taken
        check_output(tmp_path / "broken")


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_input_is_refused_through_symbolic_and_hard_links(tmp_path, overwrite):
    photo = _precious(tmp_path / "photo.png")
    (tmp_path / "soft.png").symlink_to(photo)
    os.link(photo, tmp_path / "hard.png")
    for name in ("photo.png", "soft.png", "hard.png"):
        with pytest.raises(OutputIsInputError) as caught:
            check_output(tmp_path / name, overwrite=overwrite, inputs=[photo])
        assert str(caught.value).startswith(f"{tmp_path / name}: this output is the input {photo};")
        assert "\n" not in str(caught.value)
        assert (caught.value.filename, caught.value.input) == (str(tmp_path / name), str(photo))
    check_output(tmp_path / "other.png", overwrite=overwrite, inputs=[photo])


def test_an_input_folder_stands_for_itself_and_the_files_directly_in_it(tmp_path):
    weights = tmp_path / "weights"
    config, deep = _precious(weights / "config.json"), _precious(weights / "sub" / "deep.json")
    known = InputFiles([weights, tmp_path / "missing"])
    assert known.find(weights) == weights and known.find(config) == config
    assert known.find(deep) is None and known.find(tmp_path / "missing") is None
    with pytest.raises(OutputIsInputError):
        check_output(config, overwrite=True, inputs=known)


@pytest.mark.parametrize("how", WAYS)
def test_letter_case_and_links_are_found_by_identity(tmp_path, how):
    photo = _precious(tmp_path / "photo.png")
    alias = _alias(photo, how, tmp_path / ("link.png" if how == "symlink" else "PHOTO.png"))
    assert InputFiles([photo]).find(alias) == photo


# ---- each writer ---------------------------------------------------------------------------------------


def test_save_image_refuses_an_existing_output_without_overwrite(tmp_path):
    out = _precious(tmp_path / "out.png")
    with pytest.raises(OutputExistsError, match=re.escape(f"{out}: exists")):
        io.save_image(Image.new("RGB", (4, 4)), out, overwrite=False)
    assert _unchanged(tmp_path, [out])


@pytest.mark.parametrize("how", WAYS)
def test_save_image_refuses_an_input_even_with_overwrite(tmp_path, how):
    photo = _precious(tmp_path / "photo.png")
    alias = _alias(photo, how, tmp_path / ("link.png" if how == "symlink" else "PHOTO.png"))
    with pytest.raises(OutputIsInputError, match=re.escape(f"{alias}: this output is the input {photo}")):
        io.save_image(Image.new("RGB", (4, 4)), alias, overwrite=True, inputs=[photo])
    assert _unchanged(tmp_path, [photo])


def _video_info(path):
    return VideoInfo(path=path, width=8, height=8, rate=Fraction(25), time_base=Fraction(1, 25), total=1)


def test_the_video_sink_refuses_an_existing_video_or_frames_without_overwrite(tmp_path):
    source = _precious(tmp_path / "in.mp4")
    out = _precious(tmp_path / "out.mp4")
    with pytest.raises(OutputExistsError, match=re.escape(f"{out}: exists")):
        open_sink(out, _video_info(source))
    frames = tmp_path / "frames"
    frame = _precious(frames / "frame_000001.png")
    with pytest.raises(OutputExistsError, match=re.escape(f"{frame}: exists")):
        open_sink(frames, _video_info(source))
    assert _unchanged(frames, [frame]) and source.read_bytes() == out.read_bytes() == PRECIOUS


@pytest.mark.parametrize("how", WAYS)
def test_the_video_sink_refuses_the_input_even_with_overwrite(tmp_path, how):
    source = _precious(tmp_path / "in.mp4")
    alias = _alias(source, how, tmp_path / ("link.mp4" if how == "symlink" else "IN.mp4"))
    with pytest.raises(OutputIsInputError, match=re.escape(f"{alias}: this output is the input {source}")):
        open_sink(alias, _video_info(source), overwrite=True)
    assert _unchanged(tmp_path, [source])


def test_export_onnx_refuses_an_existing_output_without_overwrite(model, tmp_path):
    out = _precious(tmp_path / "adain.onnx")
    with pytest.raises(OutputExistsError, match=re.escape(f"{out}: exists")):
        export_onnx(model, out)
    assert _unchanged(tmp_path, [out])


@pytest.mark.parametrize("how", WAYS)
def test_export_onnx_refuses_an_input_even_with_overwrite(model, tmp_path, how):
    weights = tmp_path / "weights"
    config = _precious(weights / "config.json")
    # The sidecar of out.onnx is out.json: made another name of the input weights/config.json.
    out = tmp_path / "out.onnx" if how == "symlink" else weights / "CONFIG.onnx"
    sidecar = _alias(config, how, out.with_suffix(".json"))
    with pytest.raises(OutputIsInputError, match=re.escape(f"{sidecar}: this output is the input {config}")):
        export_onnx(model, out, overwrite=True, inputs=[weights])
    assert _unchanged(weights, [config]) and not out.exists()


def _stylize_args(content, style, out, *extra):
    return build_parser().parse_args(["stylize", str(content), str(style), "-o", str(out), "--device", "cpu", *extra])


def _picture(path, seed=0):
    Image.effect_noise((24, 16), 60 + seed).convert("RGB").save(path)
    return path


def test_the_command_line_skips_or_refuses_an_existing_output(tmp_path, capsys):
    content, style = _picture(tmp_path / "c.png"), _picture(tmp_path / "s.png", 1)
    out = _precious(tmp_path / "out.png")
    assert plan_pairs(_stylize_args(content, style, out), combine=False).existing == {(0, 0)}
    assert plan_pairs(_stylize_args(content, style, out, "--overwrite"), combine=False).existing == set()
    # stylize and export alike: a notice naming the flag and exit status 3 (no weights needed).
    argv = ["stylize", str(content), str(style), "-o", str(out), "--weights", str(tmp_path / "none")]
    assert main(argv) == EXIT_SKIPPED
    assert capsys.readouterr().err == f"adain: skipped {out}: it exists (--overwrite replaces it)\n"
    onnx_out = _precious(tmp_path / "m.onnx")
    assert main(["export", str(tmp_path / "none"), str(onnx_out)]) == EXIT_SKIPPED
    assert capsys.readouterr().err == f"adain: skipped {onnx_out}: it exists (--overwrite replaces it)\n"
    assert out.read_bytes() == onnx_out.read_bytes() == PRECIOUS


@pytest.mark.parametrize("how", WAYS)
def test_the_command_line_refuses_an_input_even_with_overwrite(tmp_path, how, capsys):
    content, style = _picture(tmp_path / "c.png"), _picture(tmp_path / "s.png", 1)
    before = style.read_bytes()
    alias = _alias(style, how, tmp_path / ("link.png" if how == "symlink" else "S.png"))
    with pytest.raises(OutputIsInputError, match=re.escape(f"{alias}: this output is the input {style}")):
        plan_pairs(_stylize_args(content, style, alias, "--overwrite"), combine=False)
    argv = ["stylize", str(content), str(style), "-o", str(alias), "--overwrite", "--weights", str(tmp_path / "none")]
    assert main(argv) == 2  # a usage error: the -o given
    err = capsys.readouterr().err
    assert err.startswith(f"adain: error: {alias}: this output is the input {style};") and err.count("\n") == 1
    assert style.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.png", alias.name, "s.png"]
