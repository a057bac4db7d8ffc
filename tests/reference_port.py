"""An independent re-implementation of the reference PyTorch AdaIN port, for parity tests.

Written from the reference's documented numerics (DESIGN.md), deliberately in the reference's own
style: positional ``nn.Sequential`` models, explicit ``ReflectionPad2d`` modules, the AdaIN function
spelled out. It shares no code with the package. Also writes random weights in the legacy layout.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def reference_vgg() -> nn.Sequential:
    """The 53-module normalised VGG-19 up to relu5_4, positional layout."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
    cin = 3
    for item in plan:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, (0, 0), ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, item, 3), nn.ReLU()]
            cin = item
    assert len(layers) == 53
    return nn.Sequential(*layers)


def reference_decoder() -> nn.Sequential:
    def block(cin, cout, relu=True):
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)] + ([nn.ReLU()] if relu else [])

    up = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(
        *block(512, 256), up,
        *block(256, 256), *block(256, 256), *block(256, 256), *block(256, 128),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *block(128, 128), *block(128, 64), nn.Upsample(scale_factor=2, mode="nearest"),
        *block(64, 64), *block(64, 3, relu=False),
    )  # fmt: skip


def ref_calc_mean_std(feat, eps=1e-5):
    n, c = feat.size()[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def ref_adain(content_feat, style_feat):
    size = content_feat.size()
    s_mean, s_std = ref_calc_mean_std(style_feat)
    c_mean, c_std = ref_calc_mean_std(content_feat)
    normalized = (content_feat - c_mean.expand(size)) / c_std.expand(size)
    return normalized * s_std.expand(size) + s_mean.expand(size)


def ref_coral(source, target):
    """Reference CORAL: source (style) recoloured to target (content); cov = z z^T + I; SVD square roots."""

    def flat_mean_std(x):
        f = x.view(3, -1)
        return f, f.mean(dim=-1, keepdim=True), f.std(dim=-1, keepdim=True)

    def mat_sqrt(x):
        u, d, v = torch.svd(x)
        return u @ torch.diag(d.pow(0.5)) @ v.t()

    s, s_mean, s_std = flat_mean_std(source)
    s_norm = (s - s_mean) / s_std
    s_cov = s_norm @ s_norm.t() + torch.eye(3)
    t, t_mean, t_std = flat_mean_std(target)
    t_norm = (t - t_mean) / t_std
    t_cov = t_norm @ t_norm.t() + torch.eye(3)
    transfer = mat_sqrt(t_cov) @ torch.inverse(mat_sqrt(s_cov)) @ s_norm
    return (transfer * t_std + t_mean).view(source.size())


@torch.no_grad()
def ref_style_transfer(vgg, decoder, content, style, alpha=1.0, interpolation_weights=None):
    """The port's ``style_transfer``: ``vgg`` is the Sequential truncated to relu4_1 (first 31 modules)."""
    content_f = vgg(content)
    style_f = vgg(style)
    if interpolation_weights is not None:
        _, c, h, w = content_f.size()
        feat = torch.zeros(1, c, h, w)
        base = ref_adain(content_f.expand_as(style_f) if content_f.shape[0] == 1 else content_f, style_f)
        for i, w_i in enumerate(interpolation_weights):
            feat = feat + w_i * base[i : i + 1]
        content_f = content_f[0:1]
    else:
        feat = ref_adain(content_f, style_f)
    feat = feat * alpha + content_f * (1 - alpha)
    return decoder(feat)


def ref_to_uint8(img):
    """torchvision.utils.save_image's conversion: x*255 + 0.5, clamp, truncate."""
    return img.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def _init_he(seq: nn.Sequential, gen: torch.Generator) -> None:
    # He initialisation keeps activations at a useful scale through 16 ReLU layers, so that parity
    # tests compare real, varied pictures rather than all-zero or saturated ones.
    for m in seq:
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            with torch.no_grad():
                m.weight.normal_(0, (2.0 / fan_in) ** 0.5, generator=gen)
                m.bias.normal_(0, 0.01, generator=gen)


def random_reference_models(seed: int = 0) -> tuple[nn.Sequential, nn.Sequential]:
    """A VGG with the real preprocessing conv (RGB->BGR, x255, minus the Caffe mean) and random convs, and a
    random decoder calibrated so its output spans roughly [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    vgg, dec = reference_vgg(), reference_decoder()
    _init_he(vgg, gen)
    _init_he(dec, gen)
    with torch.no_grad():
        # Features grow with the x255 input; scale conv1_1 down so deeper activations stay O(1).
        pre = vgg[0]
        pre.weight.zero_()
        for i in range(3):
            pre.weight[i, 2 - i, 0, 0] = 255.0
        pre.bias.copy_(-torch.tensor(CAFFE_MEAN_BGR))
        vgg[2].weight.div_(100.0)
        probe = torch.rand(2, 3, 64, 64, generator=gen)
        out = dec(vgg[:31](probe))
        last = dec[-1]
        scale = 0.25 / out.std().item()
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(0.5 - out.mean().item() * scale)
    return vgg.eval(), dec.eval()


def write_legacy_weights(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Save random reference models as ``vgg_normalised.pth`` and ``decoder.pth`` state dicts."""
    vgg, dec = random_reference_models(seed)
    directory.mkdir(parents=True, exist_ok=True)
    vgg_path, dec_path = directory / "vgg_normalised.pth", directory / "decoder.pth"
    torch.save(vgg.state_dict(), vgg_path)
    torch.save(dec.state_dict(), dec_path)
    return vgg_path, dec_path
