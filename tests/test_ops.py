"""The AdaIN operation and its statistics."""

from __future__ import annotations

import torch
from reference_port import ref_adain, ref_calc_mean_std, ref_coral

from adain.modeling._ops import adain, adain_with_stats, affine, blend_stats, calc_mean_std, coral, masked_adain


def test_adain_output_has_the_style_statistics():
    c = torch.randn(2, 8, 9, 11) * 3 + 1
    s = torch.randn(2, 8, 5, 4) * 0.5 - 2
    out = adain(c, s)
    o_mean, o_std = calc_mean_std(out)
    s_mean, s_std = calc_mean_std(s)
    torch.testing.assert_close(o_mean, s_mean, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(o_std, s_std, rtol=1e-3, atol=1e-3)


def test_adain_matches_reference_formula():
    c, s = torch.randn(1, 16, 12, 10), torch.randn(1, 16, 7, 7)
    torch.testing.assert_close(adain(c, s), ref_adain(c, s), rtol=1e-5, atol=1e-5)
    for a, b in zip(calc_mean_std(c), ref_calc_mean_std(c)):
        torch.testing.assert_close(a, b)


def test_single_position_feature_map_is_finite():
    c, s = torch.randn(1, 4, 1, 1), torch.randn(1, 4, 1, 1)
    assert torch.isfinite(adain(c, s)).all()


def test_bf16_features_get_fp32_statistics():
    c = (torch.randn(1, 4, 64, 64) * 10 + 100).bfloat16()
    mean, std = calc_mean_std(c)
    assert mean.dtype == torch.float32
    out = adain_with_stats(c, torch.zeros(1, 4, 1, 1), torch.ones(1, 4, 1, 1))
    assert out.dtype == torch.bfloat16


def test_blended_statistics_equal_the_interpolated_adain_outputs():
    c = torch.randn(1, 8, 6, 6)
    styles = [torch.randn(1, 8, 5, 5) * k for k in (1, 2, 3)]
    weights = [0.2, 0.5, 0.3]
    expected = sum(w * ref_adain(c, s) for w, s in zip(weights, styles))
    stats = [calc_mean_std(s) for s in styles]
    mean, std = blend_stats([m for m, _ in stats], [s for _, s in stats], weights)
    torch.testing.assert_close(adain_with_stats(c, mean, std), expected, rtol=1e-5, atol=1e-5)


def test_masked_adain_uses_each_regions_own_statistics():
    c = torch.randn(1, 4, 8, 8)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :, :3] = True
    fg = (torch.full((1, 4, 1, 1), 5.0), torch.full((1, 4, 1, 1), 2.0))
    bg = (torch.full((1, 4, 1, 1), -3.0), torch.full((1, 4, 1, 1), 0.5))
    out = masked_adain(c, mask, fg, bg)
    fg_vals = out[..., :, :3].reshape(4, -1)
    bg_vals = out[..., :, 3:].reshape(4, -1)
    torch.testing.assert_close(fg_vals.mean(1), torch.full((4,), 5.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(fg_vals.std(1), torch.full((4,), 2.0), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(bg_vals.mean(1), torch.full((4,), -3.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(bg_vals.std(1), torch.full((4,), 0.5), atol=1e-3, rtol=1e-3)
    # Each region is the region's own content, standardised: compare against AdaIN on that region alone.
    region = c[..., :, :3].reshape(1, 4, -1, 1)
    torch.testing.assert_close(out[..., :, :3].reshape(1, 4, -1, 1), adain_with_stats(region, *fg))


def test_coral_matches_reference_including_the_unnormalised_covariance_quirk():
    g = torch.Generator().manual_seed(0)
    style = torch.rand(3, 20, 30, generator=g) ** 2
    content = torch.rand(3, 16, 16, generator=g)
    torch.testing.assert_close(coral(style, content), ref_coral(style, content), rtol=1e-4, atol=1e-4)


def test_the_adain_affine_is_the_normalise_then_restyle_formula_in_the_statistics_dtype():
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 5, 4, 3, generator=g, dtype=torch.float64)
    c = (
        torch.randn(2, 5, 1, 1, generator=g, dtype=torch.float64),
        torch.rand(2, 5, 1, 1, generator=g, dtype=torch.float64) + 0.5,
    )
    s = (
        torch.randn(1, 5, 1, 1, generator=g, dtype=torch.float64),
        torch.rand(1, 5, 1, 1, generator=g, dtype=torch.float64) + 0.5,
    )
    expected = (feat - c[0]) / c[1] * s[1] + s[0]
    torch.testing.assert_close(affine(feat, c, s), expected)
    out = affine(feat.to(torch.bfloat16), tuple(t.float() for t in c), tuple(t.float() for t in s))
    assert out.dtype == torch.float32  # statistics decide the precision, not the (half) features
