"""One command-line vocabulary: the flags and folder mode ``adain stylize`` and ``adain gatys`` share.

Everything runs ``adain.cli.main`` in-process, with the random-weight model of the fixtures saved by
``save_pretrained``; gatys runs are a couple of L-BFGS steps on 32x40 pictures without a pyramid.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from PIL import Image

import adain
from adain.cli import build_parser, main
from adain.cli._common import SHARED_OPTIONS

FAST_GATYS = ["--iterations", "2", "--no-pyramid", "--device", "cpu", "--quiet"]
BACKENDS = {"stylize": adain.stylize, "gatys": adain.gatys}


def _picture(path, h, w, seed):
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    small.resize((w, h), Image.BILINEAR).save(path)
    return path


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else Image.open(image)).astype(int)


def _parse(*argv):
    return vars(build_parser().parse_args([str(a) for a in argv]))


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("model"))


@pytest.fixture
def pair(tmp_path):
    return _picture(tmp_path / "photo.png", 32, 40, seed=0), _picture(tmp_path / "style.png", 36, 36, seed=1)


@pytest.fixture(scope="module")
def bad_vgg(legacy_weights, tmp_path_factory):
    """The fixtures' vgg_normalised.pth with a first conv that is not the normalised VGG's preprocessing."""
    state = torch.load(legacy_weights[0], map_location="cpu", weights_only=True)
    state["0.weight"] = state["0.weight"] * 0.5
    path = tmp_path_factory.mktemp("bad") / "bad.pth"
    torch.save(state, path)
    return path


# ---- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(BACKENDS))
def test_shared_flag_defaults_are_each_backends_signature_defaults(command):
    args = _parse(command, "c.png", "s.png", "-o", "o.png")
    params = inspect.signature(BACKENDS[command]).parameters
    for name in SHARED_OPTIONS:
        assert args[name] == params[name].default, name
    assert args["weights"] is None and params["model"].default is None  # None = the default model


@pytest.mark.parametrize("command", sorted(BACKENDS))
def test_shared_flags_parse_alike_in_both_commands(command):
    base = [command, "c.png", "a.png", "b.png", "-o", "out"]
    commas = _parse(
        *base,
        "--style-weights",
        "1,3",
        "--content-size",
        "none",
        "--style-size",
        "0",
        "--max-memory",
        "4GiB",
        "--preserve-color",
        "--dtype",
        "bfloat16",
        "--weights",
        "my_model",
    )
    spaces = _parse(
        *base,
        "--style-weights",
        "1",
        "3",
        "--content-size",
        "None",
        "--style-size",
        "none",
        "--max-memory",
        "4294967296",
        "--preserve-color",
        "coral",
        "--dtype",
        "bfloat16",
        "--weights",
        "my_model",
    )
    assert commas == spaces
    assert commas["style_weights"] == [1.0, 3.0]
    assert commas["content_size"] is None and commas["style_size"] is None
    assert commas["max_memory"] == 4 * 2**30 and commas["preserve_color"] == "coral"
    assert _parse(*base, "--max-memory", "2e9")["max_memory"] == 2_000_000_000


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--max-memory", "lots"),
        ("--max-memory", "0"),
        ("--content-size", "-3"),
        ("--preserve-color", "sepia"),
        ("--style-weights", "1,x"),
    ],
)
def test_bad_shared_values_are_usage_errors_naming_the_flag(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["gatys", "c.png", "s.png", "-o", "o.png", flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_deprecated_gatys_flags_parse_as_the_new_ones_with_a_notice_each(capsys):
    base = ["gatys", "c.png", "a.png", "b.png", "-o", "out"]
    old = _parse(*base, "--model", "m", "--style-blend", "1,3", "--memory-limit", "2e9", "--preserve-color", "match")
    notices = capsys.readouterr().err.splitlines()
    new = _parse(
        *base, "--weights", "m", "--style-weights", "1", "3", "--max-memory", "2e9", "--preserve-color", "coral"
    )
    assert old == new
    assert capsys.readouterr().err == ""
    assert len(notices) == 4
    renamed = [
        ("--model", "--weights"),
        ("--style-blend", "--style-weights"),
        ("--memory-limit", "--max-memory"),
        ("--preserve-color match", "--preserve-color coral"),
    ]
    for old_flag, new_flag in renamed:
        assert (
            sum(line.startswith("adain: warning: " + old_flag) and line.endswith("use " + new_flag) for line in notices)
            == 1
        ), (old_flag, notices)


# ---- running -------------------------------------------------------------------------------------


def test_gatys_with_the_shared_flags_writes_what_the_library_returns(model, model_dir, pair, tmp_path):
    content, style = pair
    out = tmp_path / "out.png"
    code = main(
        [
            "gatys",
            str(content),
            str(style),
            "-o",
            str(out),
            "--weights",
            str(model_dir),
            "--preserve-color",
            "coral",
            "--style-weights",
            "1",
            "--content-size",
            "none",
            *FAST_GATYS,
        ]
    )
    assert code == 0
    expected = adain.gatys(
        content,
        style,
        model=model,
        preserve_color="coral",
        style_weights=[1],
        content_size=None,
        iterations=2,
        pyramid=False,
        device="cpu",
    )
    assert Image.open(out).size == (40, 32) == expected.size
    assert np.abs(_pixels(out) - _pixels(expected)).max() <= 1


def test_stylize_with_the_same_flags_writes_what_the_library_returns(model, model_dir, pair, tmp_path):
    content, style = pair
    out = tmp_path / "out.png"
    code = main(
        [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(out),
            "--weights",
            str(model_dir),
            "--preserve-color",
            "coral",
            "--style-weights",
            "1",
            "--content-size",
            "none",
            "--style-size",
            "0",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    expected = adain.stylize(
        content,
        style,
        model=model,
        preserve_color="coral",
        style_weights=[1],
        content_size=None,
        style_size=None,
        device="cpu",
    )
    assert Image.open(out).size == (40, 32) == expected.size
    assert np.abs(_pixels(out) - _pixels(expected)).max() <= 1


@pytest.mark.slow
def test_gatys_folder_mode_writes_the_names_stylize_writes_and_counts_failures(model_dir, tmp_path, capsys):
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    _picture(contents / "a.png", 32, 40, seed=2)
    _picture(contents / "sub" / "b.JPG", 40, 32, seed=3)
    (contents / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    _picture(styles / "x.png", 32, 32, seed=4)
    _picture(styles / "y.png", 32, 32, seed=5)
    written = {}
    for command, extra in [("stylize", ["--device", "cpu", "--style-size", "0"]), ("gatys", FAST_GATYS)]:
        out = tmp_path / command
        code = main(
            [
                command,
                str(contents),
                str(styles),
                "-o",
                str(out),
                "--weights",
                str(model_dir),
                "--content-size",
                "0",
                *extra,
            ]
        )
        err = capsys.readouterr().err
        assert code == 1, err
        assert err.count("broken.png") == 2 and "adain: 2 of 6 outputs failed" in err and "Traceback" not in err
        written[command] = {str(p.relative_to(out)): Image.open(p).size for p in out.rglob("*") if p.is_file()}
    assert written["gatys"] == written["stylize"]
    assert sorted(written["gatys"]) == [
        "a_stylized_x.png",
        "a_stylized_y.png",
        "sub/b_stylized_x.jpg",
        "sub/b_stylized_y.jpg",
    ]
    assert written["gatys"]["sub/b_stylized_x.jpg"] == (32, 40)  # content size kept, exactly


def test_gatys_mask_puts_two_styles_into_one_output_named_as_stylize_names_it(model_dir, tmp_path):
    content = _picture(tmp_path / "c.png", 32, 40, seed=6)
    s1, s2 = _picture(tmp_path / "s1.png", 32, 32, seed=7), _picture(tmp_path / "s2.png", 32, 32, seed=8)
    mask = tmp_path / "m.png"
    Image.fromarray(np.tile(np.arange(40, dtype=np.uint8) * 6, (32, 1))).save(mask)
    for command, extra in [("stylize", ["--device", "cpu", "--style-size", "0"]), ("gatys", FAST_GATYS)]:
        out = tmp_path / command
        assert (
            main(
                [
                    command,
                    str(content),
                    str(s1),
                    str(s2),
                    "-o",
                    str(out),
                    "--weights",
                    str(model_dir),
                    "--mask",
                    str(mask),
                    "--content-size",
                    "none",
                    *extra,
                ]
            )
            == 0
        )
        assert [p.name for p in out.iterdir()] == ["c_stylized_s1+s2.png"]


def test_deprecated_gatys_flags_still_run_and_say_so(model_dir, pair, tmp_path, capsys):
    content, style = pair
    out = tmp_path / "old.png"
    code = main(
        [
            "gatys",
            str(content),
            str(style),
            "-o",
            str(out),
            "--model",
            str(model_dir),
            "--style-blend",
            "1",
            "--memory-limit",
            "4e9",
            "--preserve-color",
            "match",
            "--content-size",
            "none",
            *FAST_GATYS,
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert Image.open(out).size == (40, 32)
    assert err.count("is deprecated") == 4 and len(err.splitlines()) == 4


def test_gatys_refuses_float16_in_one_line_naming_dtype(model_dir, pair, tmp_path, capsys):
    content, style = pair
    code = main(
        [
            "gatys",
            str(content),
            str(style),
            "-o",
            str(tmp_path / "o.png"),
            "--weights",
            str(model_dir),
            "--dtype",
            "float16",
            *FAST_GATYS,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("adain: error: --dtype:") and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_gatys_vgg_and_weights_together_are_refused(model_dir, legacy_weights, pair, tmp_path, capsys):
    content, style = pair
    code = main(
        [
            "gatys",
            str(content),
            str(style),
            "-o",
            str(tmp_path / "o.png"),
            "--weights",
            str(model_dir),
            "--vgg",
            str(legacy_weights[0]),
            *FAST_GATYS,
        ]
    )
    assert code == 2
    assert "--vgg and --weights" in capsys.readouterr().err


def test_a_vgg_file_that_is_not_the_normalised_vgg_is_refused_alike_everywhere(
    bad_vgg, legacy_weights, pair, tmp_path, capsys
):
    content, style = pair
    assert main(["convert", "reference-port", str(bad_vgg), str(legacy_weights[1]), str(tmp_path / "conv")]) == 1
    reference = capsys.readouterr().err
    assert reference.startswith(f"adain: error: {bad_vgg}: the first 1x1 conv is not the normalised VGG")
    assert reference.count("\n") == 1

    assert (
        main(["gatys", str(content), str(style), "-o", str(tmp_path / "g.png"), "--vgg", str(bad_vgg), *FAST_GATYS])
        == 1
    )
    assert capsys.readouterr().err == reference

    folder = content.parent
    assert (
        main(
            [
                "train",
                "--content-dir",
                str(folder),
                "--style-dir",
                str(folder),
                "--vgg",
                str(bad_vgg),
                "--out",
                str(tmp_path / "run"),
                "--max-iter",
                "1",
                "--workers",
                "0",
            ]
        )
        == 1
    )
    assert capsys.readouterr().err == reference
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "conv").exists()
