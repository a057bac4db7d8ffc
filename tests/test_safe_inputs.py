"""Library inputs are safe by default: a bad call fails at once, before any weights are loaded, with one
line naming the argument or file; odd but valid inputs (numpy numbers, big-endian arrays, tiny images,
masks of another resolution) just work.

CPU only, generated images, the random-weight ``model`` fixture; gatys runs take two steps on small images.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import adain
import adain.inference._one_call
import adain.optimization._inputs
from adain import _images as images
from adain._runtime import resolve_device
from adain.errors import ImageReadError, InputError
from adain.optimization import GatysOptions, gatys_tensor

_KW = {"content_size": None, "style_size": None, "device": "cpu"}
_FAST = {"iterations": 2, "pyramid": False, "pooling": "max", "content_size": None, "style_size": 36, "device": "cpu"}


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _png(path, h=32, w=40, seed=0):
    arr = (_rand(h, w, 3, seed=seed).numpy() * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _zero_size_png(path):
    """A PNG whose header says 0x0 (Pillow will not write one, so the chunks are written by hand)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


@pytest.fixture
def no_weights(monkeypatch):
    """Loading weights fails the test: everything must be refused before."""

    def refuse(*args, **kwargs):
        pytest.fail("load_pretrained was called before the arguments were checked")

    monkeypatch.setattr(adain.inference._one_call, "load_pretrained", refuse)
    monkeypatch.setattr(adain.optimization._inputs, "load_pretrained", refuse)


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and message.strip() == message
    return message


def _same(a: Image.Image, b: Image.Image) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


# ---- 1. every argument and every file is checked before weights are loaded ------------------------


@pytest.mark.parametrize("method", ["adain", "gatys"])
@pytest.mark.parametrize("which", ["content", "style", "second style", "mask"])
def test_a_missing_file_is_named_before_any_weights_load(tmp_path, no_weights, method, which):
    good = str(_png(tmp_path / "good.png"))
    missing = str(tmp_path / "missing.jpg")
    content, styles, mask = good, [good, good], good
    if which == "content":
        content = missing
    elif which == "style":
        styles[0] = missing
    elif which == "second style":
        styles[1] = missing
    else:
        mask = missing
    with pytest.raises(ImageReadError, match="missing.jpg") as info:
        adain.stylize(content, styles, mask=mask, method=method)
    _one_line(info)


def test_stylize_with_no_model_names_a_missing_content_file(no_weights):
    with pytest.raises(ImageReadError, match="missing.jpg: no such file"):
        adain.stylize("missing.jpg", "s.jpg")


@pytest.mark.parametrize("kind", ["text", "empty", "zero-size header"])
def test_an_unreadable_file_is_named_before_any_weights_load(tmp_path, no_weights, kind):
    bad = tmp_path / "bad.png"
    if kind == "text":
        bad.write_text("not an image")
    elif kind == "empty":
        bad.write_bytes(b"")
    else:
        _zero_size_png(bad)
    good = str(_png(tmp_path / "good.png"))
    for call in (
        lambda: adain.stylize(good, str(bad)),
        lambda: adain.gatys(str(bad), good),
        lambda: adain.stylize(good, [good, good], mask=str(bad)),
    ):
        with pytest.raises(ImageReadError, match="bad.png") as info:
            call()
        _one_line(info)


@pytest.mark.parametrize("kwargs, name", [
    ({"alpha": 2.0}, "alpha"),
    ({"content_size": 1.5}, "content_size"),
    ({"style_size": True}, "style_size"),
    ({"preserve_color": "hue"}, "preserve_color"),
    ({"style_weights": [1, 2, 3]}, "style_weights"),
    ({"style_weights": [1, 2], "mask": "MASK"}, "style_weights"),
    ({"device": "gpu"}, "device"),
    ({"dtype": "int8"}, "dtype"),
    ({"max_memory": -1}, "max_memory"),
    ({"method": "nope"}, "method"),
    ({"iterations": 3}, "iterations"),
    ({"method": "gatys", "iterations": 0}, "iterations"),
    ({"method": "gatys", "style_weight": "big"}, "style_weight"),
    ({"method": "gatys", "device": "xla"}, "device"),
    ({"method": "gatys", "masks": ["MASK"]}, "masks"),
])  # fmt: skip
def test_every_argument_is_checked_before_any_weights_load(tmp_path, no_weights, kwargs, name):
    good = str(_png(tmp_path / "good.png"))
    kwargs = {
        k: ([good if m == "MASK" else m for m in v] if isinstance(v, list) else good if v == "MASK" else v)
        for k, v in kwargs.items()
    }
    with pytest.raises(InputError, match=name) as info:
        adain.stylize(good, [good, good], **kwargs)
    _one_line(info)


def test_set_style_checks_every_style_before_decoding_any(model, tmp_path, monkeypatch):
    good = str(_png(tmp_path / "good.png"))
    for decoder in ("to_mask", "decode_mask"):
        monkeypatch.setattr(images, decoder, lambda *a, **k: pytest.fail("the mask was decoded first"))
    for decoder in ("to_tensor", "decode"):
        monkeypatch.setattr(images, decoder, lambda *a, **k: pytest.fail("a style was decoded first"))
    stylizer = adain.Stylizer(model, device="cpu")
    with pytest.raises(ImageReadError, match="missing.png"):
        stylizer.set_style([good, str(tmp_path / "missing.png")], mask=good)


def test_gatys_checks_every_image_before_decoding_any(model, tmp_path, monkeypatch):
    good, missing = str(_png(tmp_path / "good.png")), str(tmp_path / "missing.png")
    monkeypatch.setattr(adain.optimization._inputs, "to_tensor", lambda *a, **k: pytest.fail("an image was decoded"))
    monkeypatch.setattr(adain.optimization._inputs, "to_mask", lambda *a, **k: pytest.fail("a mask was decoded"))
    for options in ({"masks": [good, missing]}, {"init": missing}, {"mask": missing}):
        with pytest.raises(InputError, match="missing.png"):
            adain.gatys(good, [good, good], model=model, **options, **_FAST)


def test_gatys_refuses_a_model_that_is_not_one(tmp_path):
    good = str(_png(tmp_path / "good.png"))
    with pytest.raises(InputError, match="model: expected an adain.AdaINModel"):
        adain.gatys(good, good, model="reference-port", **_FAST)


def test_gatys_refuses_style_weights_that_masks_would_ignore(model):
    c, s = _rand(3, 32, 40), _rand(3, 36, 36, seed=1)
    mask = np.ones((32, 40), bool)
    with pytest.raises(InputError, match="style_weights"):
        adain.gatys(c, [s, s], model=model, mask=mask, style_weights=[1, 3], **_FAST)
    with pytest.raises(InputError, match="style_weights"):
        adain.gatys(c, [s, s], model=model, masks=[mask, ~mask], style_weights=[1, 3], **_FAST)


# ---- 2. numbers: numpy scalars and integral floats where a number is meant ---------------------


def test_stylize_takes_numpy_numbers_and_integral_floats(model):
    c, s1, s2 = _rand(3, 32, 40), _rand(3, 32, 32, seed=1), _rand(3, 32, 32, seed=2)
    plain = adain.stylize(
        c,
        [s1, s2],
        0.5,
        model=model,
        content_size=24,
        style_size=32,
        max_memory=2 * 10**9,
        style_weights=[1, 3],
        device="cpu",
    )
    odd = adain.stylize(
        c,
        [s1, s2],
        np.float32(0.5),
        model=model,
        content_size=24.0,
        style_size=np.int64(32),
        max_memory=2e9,
        style_weights=np.array([1, 3]),
        device="cpu",
    )
    assert _same(plain, odd) and plain.size == (30, 24)
    tensor_weights = adain.stylize(
        c,
        [s1, s2],
        0.5,
        model=model,
        content_size=24,
        style_size=32,
        style_weights=torch.tensor([1.0, 3.0]),
        device="cpu",
    )
    assert _same(plain, tensor_weights)


def test_gatys_takes_numpy_numbers_and_integral_floats(model):
    c, s1, s2 = _rand(3, 32, 40), _rand(3, 36, 36, seed=1), _rand(3, 36, 36, seed=2)
    common = {"model": model, "pyramid": False, "pooling": "max", "device": "cpu"}
    plain = adain.gatys(
        c,
        [s1, s2],
        iterations=2,
        style_weight=5.0,
        content_size=32,
        style_size=36,
        max_memory=2 * 10**9,
        style_weights=[1, 3],
        lr=1.0,
        **common,
    )
    odd = adain.gatys(
        c,
        [s1, s2],
        iterations=np.int64(2),
        style_weight=np.float64(5),
        content_size=32.0,
        style_size=np.int32(36),
        max_memory=2e9,
        style_weights=np.array([1, 3]),
        lr=np.float32(1),
        **common,
    )
    assert _same(plain, odd)
    options = GatysOptions(iterations=np.int64(3), content_size=512.0, max_memory=2e9, average_decay=np.float32(0.5))
    assert type(options.iterations) is int and type(options.content_size) is int and type(options.max_memory) is int
    assert type(options.average_decay) is float


@pytest.mark.parametrize("name, value", [
    ("content_size", 32.5), ("content_size", True), ("style_size", "32"), ("max_memory", 1.5),
    ("max_memory", True), ("iterations", 2.5), ("iterations", True), ("style_weight", True),
    ("style_weight", float("nan")), ("seed", 0.5), ("history_size", np.float64(2.5)), ("pyramid", "no"),
    ("layer_weights", np.array([1.0, -1, 1, 1, 1])), ("style_weights", np.array([1.0, np.nan])),
])  # fmt: skip
def test_gatys_refuses_non_integral_sizes_bools_and_non_numbers_in_one_line(model, name, value):
    c, s = _rand(3, 32, 40), _rand(3, 36, 36, seed=1)
    with pytest.raises(InputError, match=name) as info:
        adain.gatys(c, [s, s], model=model, **{**_FAST, name: value})
    _one_line(info)


@pytest.mark.parametrize("name, value", [
    ("content_size", 32.5), ("style_size", False), ("max_memory", 1.5), ("max_memory", np.bool_(True)),
    ("alpha", True), ("alpha", np.float64(1.5)), ("style_weights", np.array([[1, 3]])),
])  # fmt: skip
def test_stylize_refuses_non_integral_sizes_bools_and_non_numbers_in_one_line(model, name, value):
    with pytest.raises(InputError, match=name) as info:
        adain.stylize(_rand(3, 16, 16), [_rand(3, 16, 16)] * 2, model=model, **{**_KW, name: value})
    _one_line(info)


# ---- 3. masks: the content's aspect ratio, any resolution ------------------------------------------


def _half_mask(h, w):
    mask = np.zeros((h, w), bool)
    mask[:, : w // 2] = True
    return mask


@pytest.mark.slow
def test_a_mask_of_another_aspect_ratio_is_refused_naming_both_sizes(model):
    c, s1, s2 = _rand(3, 32, 40), _rand(3, 36, 36, seed=1), _rand(3, 36, 36, seed=2)
    wrong = _half_mask(32, 64)
    calls = [
        lambda: adain.stylize(c, [s1, s2], mask=wrong, model=model, **_KW),
        lambda: adain.stylize(c, [s1, s2], mask=wrong, model=model, method="gatys", **_FAST),
        lambda: adain.gatys(c, [s1, s2], mask=wrong, model=model, **_FAST),
        lambda: adain.gatys(c, [s1, s2], masks=[wrong, ~wrong], model=model, **_FAST),
        lambda: adain.Stylizer(model, device="cpu").set_style([s1, s2], mask=wrong)(c),
    ]
    for call in calls:
        with pytest.raises(InputError, match=r"mask.*64x32.*40x32") as info:
            call()
        _one_line(info)


def test_a_mask_of_the_same_aspect_at_another_resolution_is_resized(model):
    c, s1, s2 = _rand(3, 32, 40), _rand(3, 36, 36, seed=1), _rand(3, 36, 36, seed=2)
    exact, double = _half_mask(32, 40), _half_mask(64, 80)
    assert _same(
        adain.stylize(c, [s1, s2], mask=exact, model=model, **_KW),
        adain.stylize(c, [s1, s2], mask=double, model=model, **_KW),
    )
    rounded = _half_mask(16, 21)  # 16 x 20 is exact; one pixel of rounding is allowed
    assert adain.stylize(c, [s1, s2], mask=rounded, model=model, **_KW).size == (40, 32)
    assert adain.gatys(c, [s1, s2], mask=double, model=model, **_FAST).size == (40, 32)


def test_with_crop_the_mask_is_cropped_like_the_content(model):
    c, s1, s2 = _rand(3, 32, 48), _rand(3, 32, 32, seed=1), _rand(3, 32, 32, seed=2)
    mask = np.zeros((32, 48), bool)
    mask[:, :20] = True  # inside the centre square (columns 8-39) only columns 8-19 are foreground
    cropped = adain.stylize(c, [s1, s2], mask=mask, crop=True, model=model, **_KW)
    by_hand = adain.stylize(c[:, :, 8:40], [s1, s2], mask=mask[:, 8:40], model=model, **_KW)
    assert cropped.size == (32, 32) and _same(cropped, by_hand)
    fast = {**_FAST, "style_size": None}
    via_gatys = adain.stylize(c, [s1, s2], mask=mask, crop=True, model=model, method="gatys", **fast)
    gatys_by_hand = adain.gatys(c[:, :, 8:40], [s1, s2], mask=mask[:, 8:40], model=model, **fast)
    assert _same(via_gatys, gatys_by_hand)


# ---- 4. edge inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("source, match", [
    (Image.new("RGB", (0, 0)), "no pixels"),
    (np.zeros((0, 0, 3), np.uint8), "no pixels"),
    (np.zeros((0, 5), np.float32), "no pixels"),
    (torch.zeros(3, 0, 0), "no pixels"),
    (torch.empty(3, 8, 8, device="meta"), "meta tensor"),
    (torch.rand(3, 8, 8).to_sparse(), "sparse"),
], ids=["pil-0x0", "numpy-0x0", "numpy-0x5", "tensor-0x0", "meta", "sparse"])  # fmt: skip
@pytest.mark.parametrize("role", ["content", "style", "mask"])
def test_empty_and_meta_images_are_refused_naming_the_argument(no_weights, source, match, role):
    good = _rand(3, 16, 16)
    args = {"content": good, "style": [good, good], "mask": None}
    args[role] = source if role != "style" else [source, good]
    for method in ("adain", "gatys"):
        with pytest.raises(InputError, match=f"{role}.*{match}") as info:
            adain.stylize(args["content"], args["style"], mask=args["mask"], method=method, device="cpu")
        _one_line(info)


def test_meta_and_empty_batches_are_refused_by_a_stylizer(model):
    stylizer = adain.Stylizer(model, device="cpu").set_style(_rand(3, 16, 16), style_size=None)
    for batch, match in ((torch.empty(2, 3, 8, 8, device="meta"), "meta"), (torch.zeros(0, 3, 8, 8), "no pixels")):
        with pytest.raises(InputError, match=match):
            stylizer(batch)


def test_tensors_that_require_grad_are_read_detached(model):
    c, s = _rand(3, 16, 24), _rand(3, 16, 16, seed=1)
    plain = adain.stylize(c, s, model=model, **_KW)
    assert _same(plain, adain.stylize(c.clone().requires_grad_(), s.clone().requires_grad_(), model=model, **_KW))
    stylizer = adain.Stylizer(model, device="cpu").set_style(s.clone().requires_grad_(), style_size=None)
    out = stylizer(c[None].clone().requires_grad_())
    assert not out.requires_grad
    c, s = _rand(3, 24, 32), _rand(3, 24, 24, seed=1)
    optimised = adain.gatys(c.clone().requires_grad_(), s.clone().requires_grad_(), model=model, **_FAST)
    assert _same(optimised, adain.gatys(c, s, model=model, **_FAST))


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">u2"])
def test_big_endian_arrays_give_the_native_result(model, dtype):
    native = np.asarray(_rand(16, 24, 3).numpy() * (65535 if dtype == ">u2" else 1)).astype(dtype[1:])
    swapped = native.astype(dtype)
    assert swapped.dtype.byteorder == ">"
    assert torch.equal(images.to_tensor(native), images.to_tensor(swapped))
    s = _rand(3, 16, 16, seed=1)
    assert _same(adain.stylize(native, s, model=model, **_KW), adain.stylize(swapped, s, model=model, **_KW))
    assert _same(adain.stylize(s, [native, s], model=model, **_KW), adain.stylize(s, [swapped, s], model=model, **_KW))


# ---- 5. gatys on tiny images ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (15, 15)])
@pytest.mark.parametrize("role", ["content", "style"])
def test_gatys_pads_tiny_images_and_returns_exactly_the_content_size(model, size, role):
    small = _rand(3, *size, seed=3)
    content, style = (small, _rand(3, 36, 36)) if role == "content" else (_rand(3, 20, 24), small)
    out = gatys_tensor(content, style, model=model, **{**_FAST, "style_size": None, "tv_weight": 1.0})
    assert out.shape == content.shape and torch.isfinite(out).all()
    assert adain.gatys(content, style, model=model, **{**_FAST, "style_size": None}).size == content.shape[:0:-1]


def test_gatys_tiny_content_with_masks_and_a_small_pyramid_scale(model):
    c, s1, s2 = _rand(3, 3, 5), _rand(3, 36, 36, seed=1), _rand(3, 36, 36, seed=2)
    out = gatys_tensor(c, [s1, s2], model=model, mask=_half_mask(3, 5), **_FAST)
    assert out.shape == (3, 3, 5) and torch.isfinite(out).all()
    # min_size=16 gives a 16 px coarse scale, one pixel short of what relu5_1 needs without padding
    sizes = []
    out = gatys_tensor(
        _rand(3, 32, 32),
        s1,
        model=model,
        **{**_FAST, "pyramid": True, "min_size": 16},
        callback=lambda p: sizes.append(p.size),
    )
    assert (16, 16) in sizes and out.shape == (3, 32, 32)


def test_stylize_method_gatys_on_a_tiny_content(model):
    assert adain.stylize(_rand(3, 1, 1), _rand(3, 36, 36), model=model, method="gatys", **_FAST).size == (1, 1)


# ---- 6. devices ----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["mps", "cuda:7", "xla", "cpu:0", "gpu", torch.device("meta"), "meta", 7])
def test_unusable_devices_are_one_line_listing_what_is_available(device, monkeypatch, no_weights):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for call in (
        lambda: resolve_device(device),
        lambda: adain.stylize(_rand(3, 8, 8), _rand(3, 8, 8), device=device),
        lambda: adain.gatys(_rand(3, 8, 8), _rand(3, 8, 8), device=device),
    ):
        with pytest.raises(InputError, match=r"device: .* is not available here \(available: cpu\)$") as info:
            call()
        assert repr(device) in _one_line(info)


def test_with_cuda_the_available_gpus_are_listed_and_usable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"'cuda:7' is not available here \(available: cpu, cuda:0\)"):
        resolve_device("cuda:7")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")  # no index: the trainer picks each rank's GPU
    assert resolve_device(0) == torch.device("cuda:0")


def test_mps_is_accepted_where_it_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")
    with pytest.raises(InputError, match=r"available: cpu, mps\)"):
        resolve_device("cuda")


def test_valid_devices_keep_working(model):
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    assert resolve_device(None).type in ("cpu", "cuda") and resolve_device("auto") == resolve_device(None)
    with pytest.raises(InputError, match="cpu:0"):
        adain.Stylizer(model, device="cpu:0")
