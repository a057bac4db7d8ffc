"""``adain.stylize`` and ``adain.Stylizer``: parity with the reference pipeline, exact sizes, options."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from reference_port import ref_coral, ref_style_transfer, ref_to_uint8

import adain
from adain.errors import InputError
from adain.inference._engine import BYTES_PER_PIXEL
from adain.modeling._ops import calc_mean_std


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _smooth(h, w, seed=0):
    """A smooth random picture (3, h, w) in [0, 1], more image-like than white noise."""
    small = _rand(1, 3, max(2, h // 8), max(2, w // 8), seed=seed)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]


def _reference(reference_models, content, style, alpha=1.0, weights=None):
    vgg, dec = reference_models
    styles = style if isinstance(style, list) else [style]
    s = torch.stack(styles)
    c = content[None].expand(len(styles), -1, -1, -1) if weights is not None else content[None]
    out = ref_style_transfer(vgg[:31], dec, c, s, alpha, interpolation_weights=weights)
    return ref_to_uint8(out[0]).permute(1, 2, 0).numpy().astype(int)


def _assert_within_2_levels(ours: Image.Image, ref: np.ndarray) -> None:
    arr = np.asarray(ours).astype(int)
    assert arr.shape == ref.shape
    assert np.abs(arr - ref).max() <= 2


def _pil(t: torch.Tensor) -> Image.Image:
    return Image.fromarray((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_stylize_equals_reference_pipeline_on_multiples_of_8(model, reference_models):
    content, style = _smooth(48, 64, seed=1), _smooth(40, 56, seed=2)
    out = adain.stylize(content, style, alpha=0.7, model=model, content_size=None, style_size=None, device="cpu")
    _assert_within_2_levels(out, _reference(reference_models, content, style, alpha=0.7))


def test_stylize_resizes_like_torchvision_resize_then_matches_reference(model, reference_models):
    content_img, style_img = _pil(_smooth(60, 90, seed=3)), _pil(_smooth(70, 50, seed=4))
    out = adain.stylize(content_img, style_img, model=model, content_size=32, style_size=40, device="cpu")
    # transforms.Resize(N) on a PIL image: shorter side N, the other int(N * long / short), PIL bilinear.
    c = torch.from_numpy(np.array(content_img.resize((48, 32), Image.BILINEAR))).permute(2, 0, 1) / 255
    s = torch.from_numpy(np.array(style_img.resize((40, 56), Image.BILINEAR))).permute(2, 0, 1) / 255
    assert out.size == (48, 32)
    _assert_within_2_levels(out, _reference(reference_models, c.float(), s.float()))


def test_crop_takes_the_centre_square_of_content_and_style(model, reference_models):
    content, style = _smooth(32, 48, seed=5), _smooth(56, 40, seed=6)
    out = adain.stylize(content, style, model=model, content_size=None, style_size=None, crop=True, device="cpu")
    expected = _reference(reference_models, content[:, :, 8:40], style[:, 8:48, :])
    assert out.size == (32, 32)
    _assert_within_2_levels(out, expected)


def test_interpolation_weights_are_normalised_and_match_reference(model, reference_models):
    content = _smooth(32, 40, seed=7)
    styles = [_smooth(32, 32, seed=8), _smooth(32, 32, seed=9) ** 2]
    out = adain.stylize(
        content, styles, model=model, content_size=None, style_size=None, style_weights=[1, 3], device="cpu"
    )
    _assert_within_2_levels(out, _reference(reference_models, content, styles, weights=[0.25, 0.75]))


def test_preserve_color_coral_recolours_the_style_like_the_reference(model, reference_models):
    content, style = _smooth(32, 48, seed=10), _smooth(40, 40, seed=11) ** 3
    out = adain.stylize(
        content, style, model=model, content_size=None, style_size=None, preserve_color=True, device="cpu"
    )
    _assert_within_2_levels(out, _reference(reference_models, content, ref_coral(style, content)))


def test_alpha_zero_decodes_the_content_features(model, reference_models):
    content, style = _smooth(40, 32, seed=12), _smooth(32, 32, seed=13)
    out = adain.stylize(content, style, alpha=0.0, model=model, content_size=None, style_size=None, device="cpu")
    _assert_within_2_levels(out, _reference(reference_models, content, style, alpha=0.0))


@pytest.mark.parametrize("size", [(33, 50), (17, 9), (5, 7), (1, 1), (1, 30)])
def test_output_has_exactly_the_content_size(model, size):
    out = adain.stylize(
        _rand(3, *size), _rand(3, 20, 20), model=model, content_size=None, style_size=None, device="cpu"
    )
    assert out.size == (size[1], size[0])
    assert np.isfinite(np.asarray(out)).all()


def test_tiny_style_image_is_padded_up_for_the_encoder(model):
    out = adain.stylize(_rand(3, 16, 16), _rand(3, 3, 2), model=model, content_size=None, style_size=None, device="cpu")
    assert out.size == (16, 16)


class _Capture(torch.nn.Module):
    """Stands in for the decoder: records its input (the AdaIN features) and returns a blank image."""

    def forward(self, t):
        self.features = t.clone()
        return torch.zeros(t.shape[0], 3, t.shape[2] * 8, t.shape[3] * 8, dtype=t.dtype)


def _capturing_stylizer(model) -> tuple[adain.Stylizer, _Capture]:
    stylizer = adain.Stylizer(model, device="cpu")
    stylizer.model = copy.deepcopy(stylizer.model)  # a private copy whose decoder we can replace
    capture = _Capture()
    stylizer.model.decoder = capture
    return stylizer, capture


def test_padding_does_not_enter_the_content_statistics(model):
    # 8x64 is padded to 16x64 (the encoder's minimum): a 2x8 feature grid of which only the first row
    # is image. AdaIN's content statistics come from that row, so it gets exactly the style's statistics.
    stylizer, capture = _capturing_stylizer(model)
    style = _smooth(32, 32, seed=14)
    stylizer.set_style(style, style_size=None)
    stylizer(_smooth(8, 64, seed=15)[None], 1.0)
    assert capture.features.shape[-2:] == (2, 8)
    with torch.inference_mode():
        s_mean, s_std = calc_mean_std(model.encode(style[None]))
        padded = torch.nn.functional.pad(_smooth(8, 64, seed=15)[None], (0, 0, 0, 7), mode="reflect")
        padded = torch.nn.functional.pad(padded, (0, 0, 0, 1), mode="reflect")
        c_mean, c_std = calc_mean_std(model.encode(padded)[..., :1, :])
    o_mean, o_std = calc_mean_std(capture.features[..., :1, :].float())
    alive = c_std.flatten() > 0.05  # random weights leave some channels (nearly) constant on 8 positions
    assert alive.float().mean() > 0.5
    torch.testing.assert_close(o_mean.flatten()[alive], s_mean.flatten()[alive], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        o_std.flatten()[alive], s_std.flatten()[alive], rtol=1e-3, atol=3e-3
    )  # eps counted twice


def test_mask_gives_each_region_its_own_style_statistics(model):
    stylizer, capture = _capturing_stylizer(model)
    styles = [_smooth(32, 32, seed=16), _smooth(32, 32, seed=17) ** 2]
    mask = torch.zeros(64, 64)
    mask[:, :24] = 0.9  # foreground: the left 24 of 64 columns -> 3 of 8 feature columns
    stylizer.set_style(styles, style_size=None, mask=mask)
    stylizer(_smooth(64, 64, seed=18), 1.0)
    feats = capture.features.float()
    with torch.inference_mode():
        stats = [calc_mean_std(model.encode(s[None])) for s in styles]
        f_c = model.encode(_smooth(64, 64, seed=18)[None])
    for cols, (s_mean, s_std) in ((slice(0, 3), stats[0]), (slice(3, 8), stats[1])):
        r_mean, r_std = calc_mean_std(feats[..., cols])
        alive = calc_mean_std(f_c[..., cols])[1].flatten() > 0.05  # skip channels random weights left flat
        assert alive.float().mean() > 0.5
        torch.testing.assert_close(r_mean.flatten()[alive], s_mean.flatten()[alive], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(r_std.flatten()[alive], s_std.flatten()[alive], rtol=1e-3, atol=3e-3)


def test_mask_is_binarised_before_resizing(model):
    # A mask of 0.3 everywhere is all background: the output equals stylizing with the second style only.
    content, styles = _smooth(32, 32, seed=19), [_smooth(32, 32, seed=20), _smooth(32, 32, seed=21)]
    kwargs = dict(model=model, content_size=None, style_size=None, device="cpu")
    masked = adain.stylize(content, styles, mask=np.full((32, 32), 0.3, dtype=np.float32), **kwargs)
    plain = adain.stylize(content, styles[1], **kwargs)
    assert np.abs(np.asarray(masked).astype(int) - np.asarray(plain).astype(int)).max() <= 1


def test_luminance_mode_keeps_the_contents_chroma(model):
    content = 0.25 + 0.5 * _smooth(32, 40, seed=22)  # mid-tones, so the result is rarely clipped
    out = adain.stylize(content, _smooth(32, 32, seed=23), model=model, content_size=None, style_size=None,
                        preserve_color="luminance", device="cpu")  # fmt: skip
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rgb = torch.from_numpy(np.array(out)).permute(2, 0, 1).float() / 255
    unclipped = ((rgb > 0.01) & (rgb < 0.99)).all(0)
    assert unclipped.float().mean() > 0.5
    chroma_out = torch.einsum("ij,jhw->ihw", yiq, rgb)[1:, unclipped]
    chroma_in = torch.einsum("ij,jhw->ihw", yiq, content)[1:, unclipped]
    assert (chroma_out - chroma_in).abs().max() < 3 / 255
    # ...while the luminance did change.
    assert (torch.einsum("j,jhw->hw", yiq[0], rgb) - torch.einsum("j,jhw->hw", yiq[0], content)).abs().mean() > 0.02


def test_stylizer_batch_equals_per_image_calls(model):
    stylizer = adain.Stylizer(model, device="cpu").set_style(_smooth(32, 32, seed=24), style_size=None)
    frames = torch.stack([_smooth(24, 40, seed=s) for s in (25, 26, 27)])
    batch = stylizer(frames, 0.8)
    assert batch.shape == frames.shape and batch.dtype == torch.float32
    for frame, out in zip(frames, batch):
        torch.testing.assert_close(out, stylizer(frame, 0.8), rtol=1e-4, atol=1e-4)


def test_stylizer_encodes_the_style_once(model, monkeypatch):
    stylizer = adain.Stylizer(model, device="cpu").set_style(_smooth(32, 32, seed=28), style_size=None)
    sizes = []
    encode = stylizer.model.encode
    monkeypatch.setattr(stylizer.model, "encode", lambda x: sizes.append(tuple(x.shape[-2:])) or encode(x))
    for seed in (29, 30):
        stylizer(_smooth(16, 24, seed=seed), 1.0)
    assert sizes == [(16, 24), (16, 24)]  # content only; the 32x32 style was not encoded again


def test_batch_larger_than_memory_limit_is_split_with_same_result(model, monkeypatch):
    frames = torch.stack([_smooth(16, 16, seed=s) for s in (31, 32, 33)])
    style = _smooth(16, 16, seed=34)  # within the limit too: styles are checked the same way
    whole = adain.Stylizer(model, device="cpu").set_style(style, style_size=None)(frames)
    limited = adain.Stylizer(model, device="cpu", max_memory=BYTES_PER_PIXEL * 16 * 16 + 1)
    limited.set_style(style, style_size=None)
    batch_sizes = []
    encode = limited.model.encode
    monkeypatch.setattr(limited.model, "encode", lambda x: batch_sizes.append(x.shape[0]) or encode(x))
    torch.testing.assert_close(limited(frames), whole, rtol=1e-4, atol=1e-4)
    assert batch_sizes == [1, 1, 1]


def test_content_too_large_even_for_tiles_is_refused_before_any_allocation(model, monkeypatch):
    # Larger images are tiled (tests/test_tiling.py); below the smallest tile's memory nothing can run.
    stylizer = adain.Stylizer(model, device="cpu", max_memory=10**7).set_style(
        _smooth(32, 32, seed=35), style_size=None
    )
    monkeypatch.setattr(stylizer.model, "encode", lambda x: pytest.fail("encoder reached"))
    huge = torch.zeros(1, 3, 1, 1).expand(1, 3, 12000, 12000)  # 432 MB as pixels, but no memory at all here
    with pytest.raises(InputError, match=r"even in the smallest tiles.*raise max_memory.*content_size"):
        stylizer(huge)


def test_memory_limit_is_a_parameter(model, tmp_path):
    path = tmp_path / "c.png"
    _pil(_smooth(64, 64, seed=36)).save(path)
    with pytest.raises(InputError, match=r"content: a 64x64 image.*raise max_memory"):
        adain.stylize(path, _rand(3, 16, 16), model=model, content_size=None, style_size=None, device="cpu",
                      max_memory=10**6)  # fmt: skip
    out = adain.stylize(path, _rand(3, 16, 16), model=model, content_size=None, style_size=None, device="cpu",
                        max_memory=10**8)  # fmt: skip
    assert out.size == (64, 64)


def test_tensor_in_tensor_out_and_list_in_list_out(model):
    stylizer = adain.Stylizer(model, device="cpu").set_style(_rand(3, 16, 16), style_size=None)
    assert stylizer(_rand(3, 12, 20)).shape == (3, 12, 20)
    outs = stylizer([_pil(_rand(3, 12, 20)), np.zeros((9, 10, 3), np.uint8)])
    assert [o.size for o in outs] == [(20, 12), (10, 9)]


def test_bfloat16_on_cpu_runs_with_float32_statistics(model):
    content, style = _smooth(32, 32, seed=37), _smooth(32, 32, seed=38)
    ours = adain.stylize(
        content, style, model=model, content_size=None, style_size=None, device="cpu", dtype="bfloat16"
    )
    full = adain.stylize(content, style, model=model, content_size=None, style_size=None, device="cpu")
    assert ours.size == (32, 32)
    assert np.abs(np.asarray(ours).astype(int) - np.asarray(full).astype(int)).mean() < 8
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is not converted


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "1", True])
def test_alpha_outside_unit_interval_is_rejected(model, alpha):
    with pytest.raises(InputError, match="alpha"):
        adain.stylize(_rand(3, 8, 8), _rand(3, 8, 8), alpha, model=model, device="cpu")


@pytest.mark.parametrize("weights", [[1, -1], [1, float("nan")], [0, 0], [1], [1, 2, 3], ["a", 1]])
def test_bad_style_weights_are_rejected(model, weights):
    with pytest.raises(InputError, match="weights"):
        adain.stylize(
            _rand(3, 8, 8), [_rand(3, 8, 8), _rand(3, 8, 8)], model=model, style_weights=weights, device="cpu"
        )


def test_mask_needs_exactly_two_styles(model):
    with pytest.raises(InputError, match="two styles"):
        adain.stylize(_rand(3, 8, 8), _rand(3, 8, 8), model=model, mask=torch.ones(8, 8), device="cpu")


@pytest.mark.parametrize(
    "kwargs, name",
    [({"method": "nope"}, "method"), ({"preserve_color": "hue"}, "preserve_color"),
     ({"dtype": "int8"}, "dtype"), ({"device": "toaster"}, "device"), ({"content_size": 0}, "content")],
)  # fmt: skip
def test_bad_options_raise_input_error_naming_the_argument(model, kwargs, name):
    with pytest.raises(InputError, match=name):
        adain.stylize(_rand(3, 8, 8), _rand(3, 8, 8), model=model, **{"device": "cpu", **kwargs})


def test_stylizer_without_style_says_so(model):
    with pytest.raises(InputError, match="set_style"):
        adain.Stylizer(model, device="cpu")(_rand(3, 8, 8))


def test_huge_style_is_refused_naming_style_size(model):
    stylizer = adain.Stylizer(model, device="cpu", max_memory=10**6)
    with pytest.raises(InputError, match="style_size"):
        stylizer.set_style(torch.zeros(1, 1, 1).expand(3, 4000, 4000), style_size=None)


def test_stylize_refuses_a_batch(model):
    with pytest.raises(InputError, match="Stylizer"):
        adain.stylize(_rand(2, 3, 8, 8), _rand(3, 8, 8), model=model, device="cpu")


def test_model_defaults_to_load_pretrained(model, monkeypatch):
    import adain.inference._one_call

    calls = []
    monkeypatch.setattr(adain.inference._one_call, "load_pretrained", lambda *a, **k: calls.append(a) or model)
    out = adain.stylize(_rand(3, 16, 16), _rand(3, 16, 16), content_size=None, style_size=None, device="cpu")
    assert out.size == (16, 16) and calls == [()]


# ---- method="gatys": stylize's arguments reach the optimisation backend --------------------------

_GATYS_FAST = {"iterations": 2, "pyramid": False, "pooling": "max"}


def _gatys_inputs():
    g = torch.Generator().manual_seed(5)
    return torch.rand(3, 32, 40, generator=g), torch.rand(3, 36, 36, generator=g), torch.rand(3, 36, 36, generator=g)


def test_method_gatys_equals_calling_gatys_with_the_same_options(model):
    c, s, _ = _gatys_inputs()
    via_stylize = adain.stylize(
        c,
        s,
        model=model,
        method="gatys",
        content_size=None,
        style_size=36,
        device="cpu",
        preserve_color="coral",
        **_GATYS_FAST,
    )
    direct = adain.gatys(
        c, s, model=model, content_size=None, style_size=36, device="cpu", preserve_color="coral", **_GATYS_FAST
    )
    assert via_stylize.size == (40, 32)
    assert np.array_equal(np.asarray(via_stylize), np.asarray(direct))


def test_method_gatys_turns_the_mask_into_one_guide_per_style(model):
    c, s1, s2 = _gatys_inputs()
    mask = torch.zeros(32, 40)
    mask[:, :20] = 0.9  # >= 0.5: the first style's region
    via_stylize = adain.stylize(
        c,
        [s1, s2],
        model=model,
        method="gatys",
        mask=mask,
        content_size=None,
        style_size=36,
        device="cpu",
        **_GATYS_FAST,
    )
    fg = (mask >= 0.5).float()[None]
    direct = adain.gatys(
        c, [s1, s2], model=model, masks=[fg, 1 - fg], content_size=None, style_size=36, device="cpu", **_GATYS_FAST
    )
    assert np.array_equal(np.asarray(via_stylize), np.asarray(direct))


def test_method_gatys_refuses_alpha_it_cannot_honour(model):
    c, s, _ = _gatys_inputs()
    with pytest.raises(InputError, match="alpha.*style_weight"):
        adain.stylize(c, s, 0.5, model=model, method="gatys", content_size=None, device="cpu", **_GATYS_FAST)


def test_gatys_options_are_refused_for_method_adain(model):
    c, s, _ = _gatys_inputs()
    with pytest.raises(InputError, match="iterations.*method='adain'"):
        adain.stylize(c, s, model=model, iterations=3, device="cpu")
