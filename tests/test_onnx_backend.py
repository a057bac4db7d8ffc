"""``Stylizer(backend="onnxruntime")``: the encoder and decoder as onnxruntime sessions, every feature unchanged.

The graphs of the session's random-weight model are exported once for the module into a temporary cache
(``ADAIN_CACHE``); the parity tests compare each feature (sizes, blends, masks, colour modes, alpha,
tiling) with the PyTorch float32 path. The int8 decision is tested with patched timings, and its quality
measure against an independent numpy formula.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

import adain
from adain.errors import InputError
from adain.export import _int8, _networks
from adain.inference import _prepared

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOL = 1e-4  # float rounding: onnxruntime's kernels sum in another order than oneDNN's


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache root holding the model's float32 graphs, set as ``ADAIN_CACHE`` for the module."""
    root = tmp_path_factory.mktemp("cache")
    old = os.environ.get("ADAIN_CACHE")
    os.environ["ADAIN_CACHE"] = str(root)
    yield root
    if old is None:
        del os.environ["ADAIN_CACHE"]
    else:
        os.environ["ADAIN_CACHE"] = old


@pytest.fixture(scope="module")
def pair(model, cache):
    """``(onnxruntime Stylizer, torch float32 Stylizer)`` of the same model."""
    return adain.Stylizer(model, backend="onnxruntime"), adain.Stylizer(model, "cpu", "float32")


def _pictures(*shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(shape, generator=gen) for shape in shapes]


def _both(pair, content, style, **options):
    call = {k: options.pop(k) for k in ("alpha", "tile_size") if k in options}
    outs = [s.set_style(style, style_size=None, **options)(content, output_type="pt", **call) for s in pair]
    return outs


@pytest.mark.slow
@pytest.mark.parametrize("size", [(3, 9, 9), (3, 37, 45), (3, 64, 64), (3, 20, 100)])
def test_sizes_match_torch(pair, size):
    content, style = _pictures(size, (3, 33, 40))
    ours, theirs = _both(pair, content, style)
    assert ours.shape == theirs.shape == (3, *size[1:])
    assert float((ours - theirs).abs().max()) < TOL


@pytest.mark.slow
def test_the_backend_is_onnxruntime_not_torch(pair):
    stylizer = pair[0]
    assert stylizer.backend == "onnxruntime"
    assert isinstance(stylizer.model, _prepared.OnnxModel)
    assert stylizer.device == torch.device("cpu") and stylizer.dtype == torch.float32


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"alpha": 0.3},
        {"alpha": 0.0},
        {"preserve_color": "coral"},
        {"preserve_color": "luminance", "alpha": 0.7},
    ],
)
def test_alpha_and_colour_modes_match_torch(pair, options):
    content, style = _pictures((3, 40, 48), (3, 30, 30), seed=1)
    ours, theirs = _both(pair, content, style, **options)
    assert float((ours - theirs).abs().max()) < TOL


@pytest.mark.slow
def test_blends_and_masks_match_torch(pair):
    content, a, b = _pictures((3, 48, 64), (3, 30, 30), (3, 25, 41), seed=2)
    ours, theirs = _both(pair, content, [a, b], style_weights=[0.3, 0.7])
    assert float((ours - theirs).abs().max()) < TOL
    mask = torch.zeros(48, 64)
    mask[:, :20] = 1
    ours, theirs = _both(pair, content, [a, b], mask=mask)
    assert float((ours - theirs).abs().max()) < TOL


@pytest.mark.slow
def test_tiling_matches_torch_untiled(pair):
    content, style = _pictures((3, 96, 80), (3, 30, 30), seed=3)
    ours_tiled, _ = _both(pair, content, style, tile_size=48)
    _, theirs = _both(pair, content, style)
    assert float((ours_tiled - theirs).abs().max()) < TOL


@pytest.mark.slow
def test_graphs_are_cached_per_weights(model, pair, cache, monkeypatch):
    folder = _networks.networks_folder(model)
    assert folder.parent == cache / "onnx" and (folder / "encoder.onnx").is_file()
    _prepared.clear()  # a new process: nothing in memory, the graphs on disk are reused without exporting
    monkeypatch.setattr(_networks, "_export", lambda *a: pytest.fail("exported again"))
    assert isinstance(adain.Stylizer(model, backend="onnxruntime").model, _prepared.OnnxModel)
    other = type(model)(model.config)
    other.load_state_dict(model.state_dict())
    assert _networks.networks_id(other) == _networks.networks_id(model)
    with torch.no_grad():
        other.decoder.conv1_1.bias.add_(1e-3)
    assert _networks.networks_id(other) != _networks.networks_id(model)


@pytest.mark.slow
def test_one_call_stylize_takes_the_backend(model, pair):
    content, style = _pictures((3, 24, 40), (3, 24, 24), seed=4)
    ours = adain.stylize(
        content, style, model=model, content_size=None, style_size=None, output_type="pt", backend="onnxruntime"
    )
    theirs = adain.stylize(
        content, style, model=model, content_size=None, style_size=None, output_type="pt", device="cpu", dtype="float32"
    )
    assert float((ours - theirs).abs().max()) < TOL


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"backend": "tensorrt"}, "backend"),
        ({"backend": "onnxruntime", "dtype": "bfloat16"}, "dtype"),
        ({"backend": "onnxruntime", "device": "meta"}, "device"),
        ({"backend": "onnxruntime", "compile": True}, "compile"),
    ],
)
def test_unusable_settings_are_refused_naming_the_argument(model, kwargs, names):
    with pytest.raises(InputError, match=f"^{names}: "):
        adain.Stylizer(model, **kwargs)


def test_gatys_refuses_a_backend():
    with pytest.raises(InputError, match="backend"):
        adain.stylize(torch.rand(3, 16, 16), torch.rand(3, 16, 16), method="gatys", backend="onnxruntime")


# ---- int8 -------------------------------------------------------------------------------------------


def test_quality_matches_an_independent_formula():
    gen = np.random.default_rng(0)
    a = gen.uniform(-0.1, 1.1, (1, 3, 17, 19))
    b = np.clip(a + gen.normal(0, 0.03, a.shape), 0, 1)
    mad, psnr = _int8.quality(torch.from_numpy(a), torch.from_numpy(b))
    diff = np.clip(a, 0, 1) - np.clip(b, 0, 1)
    assert mad == pytest.approx(np.mean(np.abs(diff)), rel=1e-9)
    assert psnr == pytest.approx(10 * np.log10(1.0 / np.mean(diff**2)), rel=1e-9)
    assert _int8.quality(torch.ones(1, 3, 4, 4), torch.ones(1, 3, 4, 4)) == (0.0, float("inf"))


@pytest.mark.parametrize(
    ("speedup", "mad", "psnr", "accepted", "says"),
    [
        (2.0, 0.01, 35.0, True, "faster"),
        (1.49, 0.01, 35.0, False, "1.49x"),
        (0.8, 0.0, 60.0, False, "0.80x"),
        (2.0, 0.03, 35.0, False, "0.0300 mean abs"),
        (2.0, 0.01, 29.0, False, "29.0 dB"),
        (float("nan"), 0.01, 35.0, False, "nanx"),
    ],
)
def test_decide(speedup, mad, psnr, accepted, says):
    ok, reason = _int8.decide(speedup, mad, psnr)
    assert ok is accepted and says in reason


@pytest.mark.slow
def test_int8_slower_is_refused_and_remembered(model, pair, monkeypatch):
    """Timing patched to int8 slower than float32: nothing shipped, the refusal kept and given again without
    measuring; quantisation replaced by a copy (what is tested is the decision, not the quantiser)."""
    folder = _networks.networks_folder(model)
    monkeypatch.setattr(_int8, "quantize", lambda source, target, *_: shutil.copyfile(source, target))
    monkeypatch.setattr(_int8, "TIMING_SIDE", 32)
    monkeypatch.setattr(_int8, "timings", lambda runs, content: {"float32": 1.0, "int8": 1.25})
    try:
        with pytest.raises(InputError, match=r"^backend='onnxruntime-int8'.*0\.80x.*use backend='onnxruntime'$"):
            adain.Stylizer(model, backend="onnxruntime-int8")
        assert not (folder / "encoder.int8.onnx").exists() and not (folder / "decoder.int8.onnx").exists()
        record = json.loads((folder / "int8.json").read_text())
        assert record["accepted"] is False and record["speedup"] == pytest.approx(0.8)
        assert record["psnr_db"] == float("inf")  # the copied graphs are the float32 ones
        monkeypatch.setattr(_int8, "measure", lambda *a, **k: pytest.fail("measured again"))
        with pytest.raises(InputError, match="int8.json; delete it"):
            adain.Stylizer(model, backend="onnxruntime-int8")
    finally:
        (folder / "int8.json").unlink(missing_ok=True)
        _prepared.clear()


@pytest.mark.slow
def test_int8_quantises_and_runs_when_accepted(model, pair, monkeypatch):
    """The real quantiser on small calibration pictures; speed requirement lifted (timing is not tested)."""
    folder = _networks.networks_folder(model)
    monkeypatch.setattr(_int8, "REQUIRED_SPEEDUP", 0.0)
    monkeypatch.setattr(_int8, "MIN_PSNR_DB", 0.0)
    monkeypatch.setattr(_int8, "MAX_MEAN_ABS_DIFF", 1.0)
    monkeypatch.setattr(_int8, "TIMING_SIDE", 32)
    content, style = _pictures((3, 40, 40), (3, 32, 32), seed=6)
    try:  # calibrated on the very pictures stylized below: their activation ranges are covered
        files = _int8.int8_networks(model, contents=[content[None]], styles=[style[None]])
        import onnx

        ops = {node.op_type for node in onnx.load(str(files.decoder)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        record = json.loads((folder / "int8.json").read_text())
        assert record["accepted"] is True and record["side"] == 32
        stylizer = adain.Stylizer(model, backend="onnxruntime-int8")
        ours = stylizer.set_style(style, style_size=None)(content, output_type="pt")
        theirs = pair[1].set_style(style, style_size=None)(content, output_type="pt")
        assert ours.shape == theirs.shape and 0 < float((ours - theirs).abs().mean()) < 0.03
    finally:
        for name in ("int8.json", "encoder.int8.onnx", "decoder.int8.onnx"):
            (folder / name).unlink(missing_ok=True)
        _prepared.clear()


@pytest.mark.slow
def test_cli_stylize_takes_the_backend(model, pair, tmp_path):
    from PIL import Image

    from adain.cli import main

    weights = model.save_pretrained(tmp_path / "model")
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    for path, (h, w), seed in ((content, (40, 56), 7), (style, (32, 32), 8)):
        array = (np.random.default_rng(seed).uniform(0, 1, (h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(array).save(path)
    outs = {}
    for backend in ("onnxruntime", "torch"):
        out = tmp_path / f"{backend}.png"
        args = ["stylize", str(content), str(style), "-o", str(out), "--weights", str(weights), "--backend", backend]
        assert main([*args, "--content-size", "0", "--style-size", "0", "--dtype", "float32"]) == 0
        outs[backend] = np.asarray(Image.open(out), dtype=np.int16)
    assert np.abs(outs["onnxruntime"] - outs["torch"]).max() <= 1  # 8-bit rounding of float-rounding differences


def test_cli_refuses_an_unknown_backend(tmp_path, capsys):
    from adain.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["stylize", "a.png", "b.png", "-o", str(tmp_path / "o.png"), "--backend", "tensorrt"])
    assert exit_.value.code == 2 and "--backend" in capsys.readouterr().err
