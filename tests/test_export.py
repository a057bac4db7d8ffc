"""ONNX export: ``adain export`` / ``adain.export.export_onnx`` write two graphs that onnxruntime runs to the
same pictures as ``adain.Stylizer`` (the library's pad-and-crop around the content graph).

The calibrated random-weight model is exported once for the module, through the command line (which
calls ``adain.export.export_onnx``); every other test reads those files or is refused before exporting.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
import torch

import adain
from adain.cli import main
from adain.export import export_onnx
from adain.export._onnx import OPSET, check_outputs, output_paths
from adain.modeling._ops import calc_mean_std
from adain.modeling._padding import pad_bottom_right, padded_side

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """``(weights folder, ONNXFiles)``: the model saved, then exported by ``adain export``."""
    weights = model.save_pretrained(tmp_path_factory.mktemp("weights") / "model")
    files = output_paths(tmp_path_factory.mktemp("onnx") / "adain.onnx")
    assert main(["export", str(weights), str(files.content)]) == 0
    return weights, files


@pytest.fixture(scope="module")
def sessions(exported):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    files = exported[1]
    open_ = lambda path: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])  # noqa: E731
    return open_(files.style), open_(files.content)


def _style_stats(sessions, style: torch.Tensor):
    return sessions[0].run(None, {"style": style.numpy()})


def _onnx_stylize(sessions, content: torch.Tensor, stats, alpha: float) -> torch.Tensor:
    """The library's pad-and-crop around the content graph."""
    h, w = content.shape[-2:]
    padded = pad_bottom_right(content, padded_side(h), padded_side(w))
    feeds = {
        "content": padded.numpy(),
        "style_mean": stats[0],
        "style_std": stats[1],
        "alpha": np.array([alpha], dtype=np.float32),
    }
    (image,) = sessions[1].run(None, feeds)
    assert image.shape == padded.shape
    return torch.from_numpy(image[..., :h, :w])


def _images(*shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(*shape, generator=gen) for shape in shapes]


@pytest.mark.slow
@pytest.mark.parametrize("size", [(40, 56), (37, 61)], ids=["40x56", "37x61"])
def test_onnx_matches_the_stylizer(model, sessions, size):
    content, style = _images((2, 3, *size), (1, 3, 33, 50))
    want = adain.Stylizer(model, device="cpu", dtype="float32").set_style(style[0], style_size=None)(content)
    assert want.std() > 0.05  # the calibrated weights give a real picture, not a constant
    got = _onnx_stylize(sessions, content, _style_stats(sessions, style), 1.0)
    assert (got - want).abs().max() <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.35])
def test_alpha_between_0_and_1_matches(model, sessions, alpha):
    content, style = _images((1, 3, 37, 61), (1, 3, 24, 40), seed=1)
    want = adain.Stylizer(model, device="cpu", dtype="float32").set_style(style[0], style_size=None)(content, alpha)
    got = _onnx_stylize(sessions, content, _style_stats(sessions, style), alpha)
    assert (got - want).abs().max() <= 1e-3


@pytest.mark.slow
def test_style_graph_gives_calc_mean_std_of_relu4_1_per_style(model, sessions):
    (styles,) = _images((2, 3, 33, 50), seed=2)
    mean, std = _style_stats(sessions, styles)
    with torch.no_grad():
        want_mean, want_std = calc_mean_std(model.encode(styles), model.config.eps)
    assert mean.shape == std.shape == (2, 512, 1, 1)
    scale = float(want_mean.abs().max())
    assert np.abs(mean - want_mean.numpy()).max() <= 1e-5 * scale
    assert np.abs(std - want_std.numpy()).max() <= 1e-5 * scale


@pytest.mark.slow
def test_one_style_per_frame_or_one_for_all(sessions):
    content, styles = _images((2, 3, 24, 32), (2, 3, 20, 20), seed=3)
    per_frame = _onnx_stylize(sessions, content, _style_stats(sessions, styles), 1.0)
    for i in range(2):
        alone = _onnx_stylize(sessions, content, _style_stats(sessions, styles[i : i + 1]), 1.0)
        assert (per_frame[i] - alone[i]).abs().max() <= 1e-6


def test_numpy_reflect_padding_is_the_library_padding():
    (image,) = _images((1, 3, 37, 61), seed=4)
    ph, pw = padded_side(37) - 37, padded_side(61) - 61
    padded = np.pad(image.numpy(), ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    assert np.array_equal(padded, pad_bottom_right(image, padded_side(37), padded_side(61)).numpy())


@pytest.mark.slow
def test_graphs_have_dynamic_axes_and_the_sidecar_describes_them(exported):
    _, files = exported
    meta = json.loads(files.sidecar.read_text())
    assert meta["adain_version"] == adain.__version__ and meta["opset"] == OPSET
    assert meta["padding"]["multiple"] == 8 and meta["padding"]["min_side"] == 16
    assert meta["padding"]["mode"] == "reflect" and meta["padding"]["sides"] == ["bottom", "right"]
    for key, path in (("content_graph", files.content), ("style_graph", files.style)):
        graph = meta[key]
        assert graph["file"] == path.name and graph["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        proto = onnx.load(str(path), load_external_data=False)
        assert proto.opset_import[0].version == OPSET
        for side, values in (("inputs", proto.graph.input), ("outputs", proto.graph.output)):
            assert list(graph[side]) == [v.name for v in values]
            for value in values:
                dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
                assert dims == graph[side][value.name]["shape"], value.name


@pytest.mark.slow
def test_cli_refuses_to_overwrite_without_overwrite(exported, capsys):
    weights, files = exported
    before = {path: path.read_bytes() for path in files}
    capsys.readouterr()
    assert main(["export", str(weights), str(files.content)]) == 3  # kept: skipped, as an existing image is
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"adain: skipped {files.content}: it exists (--overwrite replaces it)"]
    assert {path: path.read_bytes() for path in files} == before
    check_outputs(files, overwrite=True)  # --overwrite lets the same files through


@pytest.mark.slow
def test_an_output_that_is_an_input_is_refused_even_with_overwrite(exported, capsys):
    weights, _ = exported
    config = (weights / "config.json").read_bytes()
    assert main(["export", str(weights), str(weights / "config.onnx"), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(weights / "config.json") in err[0] and "inputs" in err[0]
    assert (weights / "config.json").read_bytes() == config and not (weights / "config.onnx").exists()


@pytest.mark.slow
def test_output_must_be_an_onnx_file_name(exported, tmp_path, capsys):
    assert main(["export", str(exported[0]), str(tmp_path / "model.bin")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.bin" in err[0] and ".onnx" in err[0]


@pytest.mark.slow
def test_missing_onnxruntime_is_one_line_naming_the_extra(model, exported, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    out = tmp_path / "m.onnx"
    assert main(["export", str(exported[0]), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "onnxruntime" in err[0] and "pip install 'adain[export]'" in err[0]
    with pytest.raises(adain.InputError, match=r"onnxruntime: pip install 'adain\[export\]'"):
        export_onnx(model, out)
    assert list(tmp_path.iterdir()) == []


def test_torch_without_the_dynamo_exporter_is_one_line(model, tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    hint = r"pip install 'adain\[export\]' \(from a clone: pip install -e '\.\[export\]'\)$"
    with pytest.raises(adain.InputError, match=r"torch >= 2\.6 .* this is 2\.5\.1: " + hint):
        export_onnx(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_model_method_is_deprecated_and_calls_export_onnx(model, tmp_path, monkeypatch):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    with (
        pytest.warns(DeprecationWarning, match=r"adain\.export\.export_onnx\(model, path\)"),
        pytest.raises(adain.OutputExistsError, match="m.onnx: exists"),
    ):
        model.export_onnx(out)  # refused by export_onnx's own check: the call reached it, overwrite=False
    monkeypatch.setattr(torch, "__version__", "2.5.1")  # past the output checks, stopped before exporting
    with pytest.warns(DeprecationWarning), pytest.raises(adain.InputError, match=r"torch >= 2\.6"):
        model.export_onnx(out, overwrite=True)
    assert out.read_bytes() == b"precious" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
