"""``adain.metrics``: every value against an independent formula written here (random weights, small images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adain.metrics import (
    CFSD,
    LPIPS,
    InceptionV3,
    content_loss,
    feature_statistics,
    frechet_distance,
    gram_loss,
    ssim,
    style_loss,
)
from adain.modeling import VGGEncoder

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return VGGEncoder("relu4_1").eval()


def _mean_std(f):
    flat = f.flatten(2)
    return flat.mean(2), (flat.var(2, unbiased=True) + 1e-5).sqrt()


def _images(n, h, w, seed):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_content_loss_is_the_mse_of_relu4_1_to_the_adain_target_per_pair(encoder):
    out, c, s = _images(2, 32, 32, 1), _images(2, 32, 32, 2), _images(2, 40, 24, 3)
    with torch.no_grad():
        fo, fc, fs = (encoder(x)["relu4_1"] for x in (out, c, s))
        (mc, sc), (ms, ss) = _mean_std(fc), _mean_std(fs)
        t = (fc - mc[..., None, None]) / sc[..., None, None] * ss[..., None, None] + ms[..., None, None]
        want = [F.mse_loss(fo[i], t[i]).item() for i in range(2)]
    assert content_loss(encoder, out, c, s).tolist() == pytest.approx(want, rel=1e-5)


def test_style_loss_sums_mean_and_std_mses_over_the_four_layers(encoder):
    out, s = _images(2, 32, 32, 4), _images(2, 48, 32, 5)
    with torch.no_grad():
        fo, fs = encoder(out, LAYERS), encoder(s, LAYERS)
        want = [
            sum(
                F.mse_loss(_mean_std(fo[k][i : i + 1])[0], _mean_std(fs[k][i : i + 1])[0]).item()
                + F.mse_loss(_mean_std(fo[k][i : i + 1])[1], _mean_std(fs[k][i : i + 1])[1]).item()
                for k in LAYERS
            )
            for i in range(2)
        ]
    assert style_loss(encoder, out, s).tolist() == pytest.approx(want, rel=1e-5)


def test_gram_loss_compares_position_normalised_gram_matrices(encoder):
    out, s = _images(1, 32, 32, 6), _images(1, 24, 40, 7)
    with torch.no_grad():
        fo, fs = encoder(out, LAYERS), encoder(s, LAYERS)

        def gram(f):
            x = f[0].flatten(1).double()
            return torch.einsum("ip,jp->ij", x, x) / x.shape[1]

        want = sum(((gram(fo[k]) - gram(fs[k])) ** 2).mean().item() for k in LAYERS)
    assert gram_loss(encoder, out, s).item() == pytest.approx(want, rel=1e-4)


def _ssim_by_windows(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one grey image pair, window by window (11x11 Gaussian, sigma 1.5), as Wang et al. define it."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_the_window_by_window_definition_and_is_one_for_identical_images():
    a = _images(1, 14, 15, 8)
    b = (a + 0.2 * _images(1, 14, 15, 9)).clamp(0, 1)
    want = np.mean([_ssim_by_windows(a[0, k].double().numpy(), b[0, k].double().numpy()) for k in range(3)])
    assert ssim(a, b).item() == pytest.approx(want, abs=1e-5)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[..., :10, :10], b[..., :10, :10])


def test_feature_statistics_are_numpys_mean_and_unbiased_covariance():
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    mean, cov = feature_statistics(x)
    assert np.allclose(mean.numpy(), x.numpy().mean(0)) and np.allclose(cov.numpy(), np.cov(x.numpy(), rowvar=False))


def test_frechet_distance_of_diagonal_gaussians_has_its_closed_form():
    rng = np.random.default_rng(0)
    ma, mb, va, vb = rng.normal(size=5), rng.normal(size=5), rng.uniform(0.1, 2, 5), rng.uniform(0.1, 2, 5)
    want = ((ma - mb) ** 2).sum() + ((np.sqrt(va) - np.sqrt(vb)) ** 2).sum()
    got = frechet_distance(*(torch.tensor(v) for v in (ma, np.diag(va), mb, np.diag(vb))))
    assert got == pytest.approx(want, rel=1e-9)


def test_frechet_distance_of_full_covariances_matches_scipys_sqrtm():
    linalg = pytest.importorskip("scipy.linalg", reason="scipy gives the independent matrix square root")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    sa, sb, ma, mb = a @ a.T, b @ b.T, rng.normal(size=6), rng.normal(size=6)
    want = ((ma - mb) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(linalg.sqrtm(sa @ sb).real)
    assert frechet_distance(*(torch.tensor(v) for v in (ma, sa, mb, sb))) == pytest.approx(want, rel=1e-7)


def _scaled(module: torch.nn.Module, seed: int) -> dict:
    """Random weights small enough that deep networks stay finite, with non-trivial batch-norm statistics."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            fan = max(1, v[0].numel()) if v.dim() > 1 else 1
            state[k] = torch.randn(v.shape, generator=g) / fan**0.5
    return state


def test_lpips_is_the_unit_normalised_weighted_alexnet_distance():
    torchvision = pytest.importorskip("torchvision", reason="torchvision's AlexNet is the independent backbone")
    alex = torchvision.models.alexnet(weights=None).eval()
    alex.load_state_dict(_scaled(alex, 0))
    g = torch.Generator().manual_seed(1)
    heads = {
        f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate((64, 192, 384, 256, 256))
    }
    lpips = LPIPS()
    lpips.load_weights(alex.state_dict(), heads)
    a, b = _images(2, 64, 64, 10), _images(2, 64, 64, 11)

    def taps(x):
        x = (2 * x - 1 - torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)) / torch.tensor(
            [0.458, 0.448, 0.450]
        ).view(1, 3, 1, 1)
        out = []
        for i, layer in enumerate(alex.features):
            x = layer(x)
            if i in (1, 4, 7, 9, 11):
                out.append(x)
        return out

    with torch.no_grad():
        want = sum(
            (
                heads[f"lin{k}.model.1.weight"]
                * (fa / (fa.norm(dim=1, keepdim=True) + 1e-10) - fb / (fb.norm(dim=1, keepdim=True) + 1e-10)) ** 2
            )
            .sum(1)
            .mean((1, 2))
            for k, (fa, fb) in enumerate(zip(taps(a), taps(b)))
        )
        assert torch.allclose(lpips(a, b), want, rtol=1e-5)
        assert torch.allclose(lpips(a, a), torch.zeros(2))


def test_the_art_inception_is_torchvisions_inception_v3_features():
    torchvision = pytest.importorskip("torchvision", reason="torchvision's Inception-v3 is the independent network")
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=True, init_weights=False, transform_input=False
    ).eval()
    net.load_state_dict(_scaled(net, 2))
    ours = InceptionV3("art")
    ours.load_weights(net.state_dict())
    x = _images(1, 96, 112, 12)
    pooled = {}
    net.fc.register_forward_hook(lambda m, i, o: pooled.setdefault("x", i[0]))
    with torch.no_grad():
        net(x)
        assert torch.allclose(ours(x), pooled["x"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_fid_inception_differs_from_torchvisions_only_where_tensorflows_graph_does(monkeypatch):
    torchvision = pytest.importorskip("torchvision", reason="torchvision's Inception-v3 is the independent network")
    inception = torchvision.models.inception
    net = inception.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False).eval()
    net.load_state_dict(_scaled(net, 3), strict=False)
    ours = InceptionV3("fid")
    ours.load_weights(net.state_dict())
    # TensorFlow's pools: the padding excluded from 3x3 means; the last block's pool branch a max pool.
    in_last = {"on": False}
    avg = F.avg_pool2d

    def tf_pool(x, kernel_size, stride=None, padding=0, **kw):
        if in_last["on"]:
            return F.max_pool2d(x, kernel_size, stride, padding)
        return avg(x, kernel_size, stride, padding, count_include_pad=False)

    monkeypatch.setattr(inception.F, "avg_pool2d", tf_pool)
    net.Mixed_7c.register_forward_pre_hook(lambda m, i: in_last.update(on=True))
    net.Mixed_7c.register_forward_hook(lambda m, i, o: in_last.update(on=False))
    pooled = {}
    net.fc.register_forward_hook(lambda m, i, o: pooled.setdefault("x", i[0]))
    x = _images(1, 80, 90, 13)
    with torch.no_grad():
        net(2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1)
        assert torch.allclose(ours(x), pooled["x"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rows_per_block", [1024, 5])  # one block, and blocks that split the 36 rows unevenly
def test_cfsd_is_the_kl_divergence_of_relu3_1_self_similarity_rows(monkeypatch, rows_per_block):
    monkeypatch.setattr("adain.metrics._cfsd.ROWS_PER_BLOCK", rows_per_block)
    torchvision = pytest.importorskip("torchvision", reason="torchvision's VGG-19 is the independent network")
    vgg = torchvision.models.vgg19(weights=None).eval()
    # Weights 4x larger per layer: relu3_1 features of real magnitude (tens), so the rows are far from uniform
    # and their divergence is well above float32 rounding.
    vgg.load_state_dict(
        {k: v * 4 if "features" in k and k.endswith("weight") else v for k, v in _scaled(vgg, 4).items()}
    )
    cfsd = CFSD()
    cfsd.load_weights(vgg.state_dict())
    out, content = _images(2, 24, 24, 14), _images(2, 24, 24, 15)
    norm = torchvision.transforms.functional.normalize

    def rows(x):
        f = vgg.features[:12](norm(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
        flat = f.flatten(2).transpose(1, 2).double() / f.shape[1]
        return torch.softmax(flat @ flat.transpose(1, 2), dim=-1)

    with torch.no_grad():
        p, q = rows(content), rows(out)
        want = (p * (p.log() - q.log())).sum(dim=(1, 2))
        assert want.min() > 1e-2 and torch.allclose(cfsd(out, content).double(), want, rtol=1e-3)
        assert torch.allclose(cfsd(content, content), torch.zeros(2), atol=1e-6)
