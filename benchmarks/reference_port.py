"""The reference PyTorch port's networks, written independently of the package, for the benchmarks.

Positional ``nn.Sequential`` models with explicit ``ReflectionPad2d`` modules and the port's
``calc_mean_std``: what the package is measured against. Shares no code with ``adain``.
"""

from __future__ import annotations

from torch import nn


def ref_vgg() -> nn.Sequential:
    """The 53-module normalised VGG-19 to relu5_4 (``[:31]`` ends at relu4_1)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    cin = 3
    for item in [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, (0, 0), ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, item, 3), nn.ReLU()]
            cin = item
    return nn.Sequential(*layers)


def ref_decoder() -> nn.Sequential:
    def block(cin, cout, relu=True):
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)] + ([nn.ReLU()] if relu else [])

    return nn.Sequential(
        *block(512, 256),
        nn.Upsample(scale_factor=2),
        *block(256, 256),
        *block(256, 256),
        *block(256, 256),
        *block(256, 128),
        nn.Upsample(scale_factor=2),
        *block(128, 128),
        *block(128, 64),
        nn.Upsample(scale_factor=2),
        *block(64, 64),
        *block(64, 3, relu=False),
    )


def ref_mean_std(feat, eps=1e-5):
    n, c = feat.size()[:2]
    var = feat.view(n, c, -1).var(dim=2) + eps
    return feat.view(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)
