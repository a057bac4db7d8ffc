"""The tensor-level stage (``adain.inference.Engine`` and its immutable ``Style``) and the ``Stylizer`` surface
built on it: ``stylize_tensor``, ``frames_per_batch``, ``output_type``, and inputs checked once per call."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from PIL import Image
from reference_port import ref_style_transfer, ref_to_uint8

import adain
from adain import _arguments, _images, _runtime
from adain.errors import InputError
from adain.inference import Engine, Style, Stylizer, TileProgress
from adain.inference._checks import MIN_TILE_SIZE
from adain.inference._engine import BYTES_PER_PIXEL, CPU_BATCH_PIXELS, MAX_BATCH
from adain.modeling._ops import calc_mean_std

CPU = torch.device("cpu")


def _smooth(h, w, seed=0):
    """A smooth random picture (3, h, w) in [0, 1]."""
    small = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]


def _engine(model, max_memory=None) -> Engine:
    return Engine(model, CPU, torch.float32, max_memory=max_memory)


def _png(path, h, w, seed):
    Image.fromarray((_smooth(h, w, seed).permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
    return str(path)


# ---- Engine and Style ------------------------------------------------------------------------------------


def test_engine_run_matches_the_reference_pipeline(model, reference_models):
    engine = _engine(model)
    frames = torch.stack([_smooth(48, 64, seed=s) for s in (1, 2)])
    style_image = _smooth(40, 56, seed=3)
    out = engine.run(frames, engine.style([style_image[None]], [1.0]), 0.7)
    assert out.shape == frames.shape and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    vgg, dec = reference_models
    for frame, ours in zip(frames, out):
        ref = ref_style_transfer(vgg[:31], dec, frame[None], style_image[None], 0.7)
        assert (ref_to_uint8(ours).int() - ref_to_uint8(ref[0]).int()).abs().max() <= 2


@pytest.mark.parametrize(
    "options",
    [{}, {"style_weights": [1, 3]}, {"preserve_color": "coral"}, {"preserve_color": "luminance"}, {"mask": "half"}],
)
def test_engine_run_equals_the_stylizer_call_on_the_same_tensors(model, options):
    styles = [_smooth(40, 40, seed=4), _smooth(32, 48, seed=5) ** 2]
    frames = torch.stack([_smooth(40, 56, seed=s) for s in (6, 7, 8)])
    mask = None
    if options.get("mask") == "half":
        mask = torch.zeros(40, 56, dtype=torch.bool)
        mask[:, :20] = True
        options = {"mask": mask}
    chosen = styles if "style_weights" in options or mask is not None else styles[:1]
    stylizer = Stylizer(model, "cpu", "float32").set_style(chosen, style_size=None, **options)
    weights = _arguments.normalize_style_weights(options.get("style_weights"), len(chosen))
    engine = _engine(model)
    style = engine.style([s[None] for s in chosen], weights, mask=mask, color=options.get("preserve_color"))
    torch.testing.assert_close(engine.run(frames, style, 0.8), stylizer(frames, 0.8), rtol=0, atol=1e-6)
    # The Stylizer's own style and engine are public too, and give the same.
    torch.testing.assert_close(
        stylizer.engine.run(frames, stylizer.style, 0.8), stylizer(frames, 0.8), rtol=0, atol=1e-6
    )


def test_a_style_is_immutable_and_independent_of_the_callers_tensors(model):
    engine = _engine(model)
    image = _smooth(32, 32, seed=9)[None]
    style = engine.style([image], [1.0], color="coral")
    assert isinstance(style, Style) and style.stats is None and len(style.images) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        style.color = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        style.weights = (0.5,)
    content = _smooth(24, 32, seed=10)[None]
    before = engine.run(content, style)
    image.zero_()  # the caller's tensor changes; the style keeps its own copy
    torch.testing.assert_close(engine.run(content, style), before, rtol=0, atol=0)


def test_cached_style_statistics_are_the_style_images_feature_statistics(model):
    engine = _engine(model)
    image = _smooth(40, 56, seed=11)[None]
    style = engine.style([image], [1.0])
    assert style.images == () and style.color is None and style.weights == (1.0,)
    with torch.inference_mode():
        mean, std = calc_mean_std(model.encode(image), model.config.eps)
    torch.testing.assert_close(style.stats[0][0], mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(style.stats[0][1], std, rtol=1e-5, atol=1e-5)
    assert engine.style_stats(style, _smooth(16, 16)[None]) == list(style.stats)
    assert engine.encode(image).shape == (1, 512, 5, 7)


def test_render_with_frozen_statistics_equals_measuring_them(model):
    engine = _engine(model)
    style = engine.style([_smooth(32, 32, seed=12)[None]], [1.0])
    x = _smooth(40, 48, seed=13)[None]
    seen = []
    measured = engine.render(x, style, 0.9, hook=lambda m, s: seen.append((m, s)) or (m, s))
    frozen = engine.render(x, style, 0.9, content_stats=seen[0])
    torch.testing.assert_close(frozen, measured, rtol=0, atol=0)
    assert seen[0][0].shape == (1, 512, 1, 1)


def test_frames_per_batch_follows_the_budget_and_the_batch_policy(model):
    h, w = 64, 80
    frame = BYTES_PER_PIXEL * 64 * 80  # float32, padded sides are multiples of 8 already
    assert _engine(model, max_memory=3 * frame + 1).frames_per_batch(h, w) == 3
    assert _engine(model, max_memory=100 * frame).frames_per_batch(h, w) == MAX_BATCH
    assert _engine(model, max_memory=10**12).frames_per_batch(600, 800) == CPU_BATCH_PIXELS // (600 * 800)
    assert _engine(model, max_memory=10**12).frames_per_batch(2000, 2000) == 1  # over a megapixel: alone
    # Half precision needs half the memory per pixel.
    assert Engine(model, CPU, torch.bfloat16, max_memory=3 * frame + 1).frames_per_batch(h, w) == 6
    # Too large to stylize whole: alone, in tiles; refused when not even the smallest tiles fit.
    tight = _engine(model, max_memory=BYTES_PER_PIXEL * 640 * 800 // 2)
    assert tight.frames_per_batch(640, 800) == 1 and len(tight.tile_plan(640, 800).tiles) > 1
    with pytest.raises(InputError, match=r"clip.mp4: a 80x64 image.*smallest tiles"):
        _engine(model, max_memory=10**4).frames_per_batch(h, w, what="clip.mp4")


@pytest.mark.slow
def test_the_engine_tiles_from_its_own_budget_with_the_untiled_result(model):
    content, style_image = _smooth(300, 160, seed=14)[None], _smooth(48, 48, seed=15)[None]
    whole_engine = _engine(model)
    whole = whole_engine.run(content, whole_engine.style([style_image], [1.0]))
    limited = _engine(model, max_memory=BYTES_PER_PIXEL * 304 * 160 * 3 // 4)
    steps: list[TileProgress] = []
    tiled = limited.run(content, limited.style([style_image], [1.0]), callback=steps.append)
    assert steps[-1].tiles > 1 and steps[-1].done == steps[-1].total
    assert (tiled - whole).abs().max() < 1e-5
    uint8 = limited.run(content, limited.style([style_image], [1.0]), as_uint8=True)
    assert uint8.dtype == torch.uint8 and (uint8.int() - _images.to_uint8(whole).int()).abs().max() <= 1


def test_run_returns_an_ordinary_tensor_the_caller_may_change(model):
    engine = _engine(model)
    out = engine.run(_smooth(16, 24)[None], engine.style([_smooth(16, 16, seed=1)[None]], [1.0]))
    assert not out.is_inference()
    out.mul_(0.5)


# ---- Stylizer: stylize_tensor and frames_per_batch -------------------------------------------------------


def test_stylize_tensor_is_tensor_in_tensor_out_with_the_call_options(model):
    stylizer = Stylizer(model, "cpu", "float32").set_style(_smooth(32, 32, seed=16), style_size=None)
    frames = torch.stack([_smooth(40, 56, seed=s) for s in (17, 18)])
    seen = []

    def hook(mean, std):
        seen.append(mean.shape)
        return mean, std

    out = stylizer.stylize_tensor(frames, 0.6, content_stats=hook)
    assert out.shape == frames.shape and seen == [(2, 512, 1, 1)]
    torch.testing.assert_close(out, stylizer(frames, 0.6), rtol=0, atol=0)
    one = stylizer.stylize_tensor(frames[0], 0.6, content_size=20, crop=True)
    assert one.shape == (3, 20, 20)
    as_uint8 = stylizer.stylize_tensor((frames * 255).round().to(torch.uint8), 0.6)
    assert as_uint8.dtype == torch.float32 and (as_uint8 - out).abs().max() < 0.05
    steps = []
    wide = _smooth(40, 160, seed=19)[None]  # wider than the smallest tile (MIN_TILE_SIZE): several tiles
    tiled = stylizer.stylize_tensor(wide, 0.6, tile_size=MIN_TILE_SIZE, callback=steps.append)
    assert steps and (tiled - stylizer.stylize_tensor(wide, 0.6)).abs().max() < 1e-5
    with pytest.raises(InputError, match="content: stylize_tensor takes a"):
        stylizer.stylize_tensor(frames[0].numpy())


def test_stylizer_frames_per_batch_is_the_engines(model):
    stylizer = Stylizer(model, "cpu", "float32", max_memory=BYTES_PER_PIXEL * 64 * 80 * 2 + 1)
    assert stylizer.frames_per_batch(64, 80) == stylizer.engine.frames_per_batch(64, 80) == 2
    with pytest.raises(InputError, match="height"):
        stylizer.frames_per_batch(0, 80)


def test_the_stylizer_attributes_read_through_to_its_engine(model):
    stylizer = Stylizer(model, "cpu", "float32", max_memory=10**9)
    assert (stylizer.device, stylizer.dtype, stylizer.max_memory) == (CPU, torch.float32, 10**9)
    assert stylizer.model is stylizer.engine.model and stylizer.compile_stats is None and stylizer.style is None
    stylizer.max_memory = 2e9
    assert stylizer.engine.max_memory == 2 * 10**9
    with pytest.raises(InputError, match="max_memory"):
        stylizer.max_memory = -1


# ---- output_type -----------------------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path):
    """One content of each kind, all the same 30x44 picture (uint8 values, so every kind is exact)."""
    path = _png(tmp_path / "c.png", 30, 44, seed=19)
    arr = np.array(Image.open(path))
    tensor = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    return {"path": path, "pil": Image.open(path), "numpy": arr, "tensor": tensor}


@pytest.mark.parametrize("kind", ["path", "pil", "numpy", "tensor"])
def test_output_type_is_the_callers_choice_for_each_input_kind(model, inputs, kind):
    stylizer = Stylizer(model, "cpu", "float32").set_style(_smooth(32, 32, seed=20), style_size=None)
    content = inputs[kind]
    pt = stylizer(content, output_type="pt")
    arr = stylizer(content, output_type="np")
    pil = stylizer(content, output_type="pil")
    assert pt.shape == (3, 30, 44) and pt.dtype == torch.float32 and pt.device == CPU
    assert arr.shape == (30, 44, 3) and arr.dtype == np.uint8 and arr.flags["C_CONTIGUOUS"]
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (44, 30)
    assert np.array_equal(np.asarray(pil), arr)
    assert np.array_equal(_images.to_uint8(pt).permute(1, 2, 0).numpy(), arr)
    default = stylizer(content)
    assert isinstance(default, torch.Tensor) if kind == "tensor" else isinstance(default, Image.Image)
    listed = stylizer([content, content], output_type="np")
    assert isinstance(listed, list) and len(listed) == 2 and all(np.array_equal(a, arr) for a in listed)


def test_output_type_of_a_batch(model, inputs):
    stylizer = Stylizer(model, "cpu", "float32").set_style(_smooth(32, 32, seed=20), style_size=None)
    batch = torch.stack([inputs["tensor"], inputs["tensor"].flip(-1)])
    pt = stylizer(batch)
    arr = stylizer(batch, output_type="np")
    pictures = stylizer(batch, output_type="pil")
    assert pt.shape == (2, 3, 30, 44) and arr.shape == (2, 30, 44, 3) and arr.dtype == np.uint8
    assert len(pictures) == 2 and all(np.array_equal(np.asarray(p), a) for p, a in zip(pictures, arr))
    assert np.array_equal(_images.to_uint8(pt).permute(0, 2, 3, 1).numpy(), arr)


@pytest.mark.parametrize("method", ["adain", "gatys"])
def test_one_call_stylize_takes_output_type_and_defaults_to_pil(model, inputs, method):
    options = {"iterations": 2, "pyramid": False, "pooling": "max"} if method == "gatys" else {}
    common = dict(model=model, method=method, content_size=None, style_size=36, device="cpu", **options)
    style = _smooth(36, 36, seed=21)
    pil = adain.stylize(inputs["path"], style, **common)
    arr = adain.stylize(inputs["path"], style, output_type="np", **common)
    pt = adain.stylize(inputs["path"], style, output_type="pt", **common)
    assert isinstance(pil, Image.Image) and np.array_equal(np.asarray(pil), arr)
    assert pt.shape == (3, 30, 44) and np.array_equal(_images.to_uint8(pt).permute(1, 2, 0).numpy(), arr)


@pytest.mark.parametrize("call", ["stylizer", "stylize", "gatys"])
def test_a_bad_output_type_is_refused_naming_it(model, call):
    content, style = _smooth(16, 16), _smooth(16, 16, seed=1)
    with pytest.raises(InputError, match="output_type: expected one of 'pil', 'np', 'pt'"):
        if call == "stylizer":
            Stylizer(model, "cpu").set_style(style, style_size=None)(content, output_type="tensor")
        else:
            adain.stylize(
                content,
                style,
                model=model,
                device="cpu",
                method="adain" if call == "stylize" else "gatys",
                output_type="PIL",
                **({"iterations": 1} if call == "gatys" else {}),
            )


def test_methods_is_the_public_dispatcher(model):
    assert adain.stylize is adain.methods.stylize and adain.methods.METHODS == ("adain", "gatys")


# ---- inputs checked once -----------------------------------------------------------------------------------


@pytest.fixture
def opens(monkeypatch):
    """Every ``PIL.Image.open`` call, by file name."""
    calls, real = [], PIL.Image.open
    monkeypatch.setattr(
        PIL.Image, "open", lambda fp, *a, **k: calls.append(str(fp).rsplit("/", 1)[-1]) or real(fp, *a, **k)
    )
    return calls


def test_each_file_is_opened_once_for_its_header_and_once_to_be_decoded(model, tmp_path, opens):
    content, style = _png(tmp_path / "c.png", 40, 48, 22), _png(tmp_path / "s.png", 32, 32, 23)
    adain.stylize(content, style, model=model, device="cpu", content_size=None, style_size=None)
    assert sorted(opens) == ["c.png", "c.png", "s.png", "s.png"]  # was three opens of each before
    opens.clear()
    Stylizer(model, "cpu").set_style(style, style_size=None)(content)
    assert sorted(opens) == ["c.png", "c.png", "s.png", "s.png"]
    opens.clear()
    mask = _png(tmp_path / "m.png", 40, 48, 24)
    adain.stylize(content, [style, style], mask=mask, model=model, device="cpu", content_size=None, style_size=None)
    assert sorted(opens) == ["c.png", "c.png", "m.png", "m.png"] + ["s.png"] * 4  # once per style given


# The argument checks whose calls are counted: each must run once per argument and call.
COUNTED = {
    "check_alpha": _arguments.check_alpha,
    "color_mode": _arguments.color_mode,
    "normalize_style_weights": _arguments.normalize_style_weights,
    "check_size": _arguments.check_size,
    "resolve_device": _runtime.resolve_device,
    "resolve_dtype": _runtime.resolve_dtype,
    "check_max_memory": _runtime.check_max_memory,
    "image_size": _images.image_size,
}


@pytest.fixture
def checks(monkeypatch):
    """``{check name: [first argument of each call]}``, counted wherever the function is bound in ``adain``."""
    calls = {name: [] for name in COUNTED}
    for name, function in COUNTED.items():

        def counting(*args, _name=name, _function=function, **kwargs):
            calls[_name].append(kwargs.get("what", args[1] if len(args) > 1 and isinstance(args[1], str) else ""))
            return _function(*args, **kwargs)

        for module in [m for n, m in sys.modules.items() if n == "adain" or n.startswith("adain.")]:
            if getattr(module, name, None) is function:
                monkeypatch.setattr(module, name, counting)
    return calls


def test_each_argument_is_checked_once_per_call(model, tmp_path, checks):
    content, style = _png(tmp_path / "c.png", 40, 48, 25), _png(tmp_path / "s.png", 32, 32, 26)
    adain.stylize(content, style, 0.5, model=model, device="cpu", content_size=None, style_size=None)
    expected = {
        "check_alpha": 1,
        "color_mode": 1,
        "normalize_style_weights": 1,
        "resolve_device": 1,
        "resolve_dtype": 1,
        "check_max_memory": 1,
    }
    assert {name: len(checks[name]) for name in expected} == expected
    assert sorted(checks["check_size"]) == ["content_size", "style_size"]
    assert sorted(checks["image_size"]) == ["content", "style"]
    for seen in checks.values():
        seen.clear()
    stylizer = Stylizer(model, "cpu").set_style(style, style_size=None)
    stylizer([content, content], 0.5)  # a list: one check of the options, one of each image
    assert {name: len(checks[name]) for name in expected} == expected
    assert sorted(checks["check_size"]) == ["content_size", "style_size"]
    assert sorted(checks["image_size"]) == ["content", "content", "style"]
