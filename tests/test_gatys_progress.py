"""What a Gatys run tells while it runs: the forecast of its remaining time, the command line's expected
duration and its progress lines without a terminal; and relative losses, which make the weights independent
of the network's activation scale (the raw Caffe VGG's deep layers are orders of magnitude larger).

Tiny generated images and random weights from the fixtures; a few steps each.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from adain.optimization import gatys_tensor
from adain.optimization._optimize import Forecast


def test_forecast_extrapolates_step_times_by_pixels():
    forecast = Forecast([(10, 10), (20, 20)], [3, 2])  # 100 px x 3 steps, then 400 px x 2 steps
    assert forecast.remaining(0, 1, now=5.0) is None  # the first step is not timed
    # step 2 ended 1 s after step 1: 1 s per 100 px step; left: 1 step of 100 px + 2 steps of 400 px
    assert forecast.remaining(0, 2, now=6.0) == pytest.approx(1 * 1.0 + 2 * 4.0)
    assert forecast.remaining(0, 3, now=8.0) == pytest.approx(2 * (1.5 * 4))  # now 1.5 s per 100 px step
    assert forecast.remaining(1, 1, now=20.0) == pytest.approx(1 * 6.0)  # the previous rate, until timed
    assert forecast.remaining(1, 2, now=22.0) == pytest.approx(0.0)


def _images():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 28), indexing="ij")
    return torch.stack((xx, yy, 1 - xx * yy)).clamp(0, 1), torch.rand(3, 28, 28, generator=g)


def test_progress_carries_a_remaining_time_after_the_first_step(model):
    content, style = _images()
    seen = []
    gatys_tensor(content, style, model=model, content_size=None, iterations=4, pyramid=False, callback=seen.append)
    assert seen[0].remaining is None
    assert all(p.remaining is not None and p.remaining >= 0 for p in seen[1:])
    assert seen[-1].remaining == pytest.approx(0.0)


def _scaled_last_conv(model, factor: float):
    """The same network with relu5_1 multiplied by ``factor`` (conv5_1's weight and bias scaled)."""
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.encoder.conv5_1.weight.mul_(factor)
        scaled.encoder.conv5_1.bias.mul_(factor)
    return scaled


@pytest.mark.parametrize("content_layers", [("relu4_2",), ("relu5_1",)])
def test_relative_losses_do_not_depend_on_a_layers_activation_scale(model, content_layers):
    content, style = _images()
    options = {"content_size": None, "iterations": 4, "pyramid": False, "pooling": "max", "average": False}
    options |= {"content_layers": content_layers}
    big = _scaled_last_conv(model, 30.0)
    same = gatys_tensor(content, style, model=model, **options)
    scaled = gatys_tensor(content, style, model=big, **options)
    torch.testing.assert_close(scaled, same, rtol=1e-3, atol=1e-3)
    raw = gatys_tensor(content, style, model=model, loss_scale="absolute", **options)
    raw_scaled = gatys_tensor(content, style, model=big, loss_scale="absolute", **options)
    assert float((raw_scaled - raw).abs().max()) > 1e-2  # the raw objective is dominated by the scaled layer


def test_cli_prints_expected_duration_and_progress_lines_without_a_terminal(
    legacy_weights, tmp_path, monkeypatch, capsys
):
    from adain.cli import _gatys, main

    content, style = _images()
    for name, image in (("c.png", content), ("s.png", style)):
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(tmp_path / name)
    monkeypatch.setattr(_gatys, "LINE_INTERVAL", 0.0)  # a line at every step (the default: one a minute)
    args = ["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(tmp_path / "out.png")]
    args += ["--vgg", str(legacy_weights[0]), "--content-size", "24", "--iterations", "4", "--no-pyramid"]
    assert main(args) == 0
    lines = capsys.readouterr().err.splitlines()
    expected = [line for line in lines if "expected to take about" in line]
    assert len(expected) == 1 and "cpu" in expected[0]
    steps = [line for line in lines if "scale 1/1 28x24, step" in line]
    assert [line.split("step ")[1].split(",")[0] for line in steps] == ["1/4", "2/4", "3/4", "4/4"]
    assert lines.index(expected[0]) < lines.index(steps[-1])
    assert "left" in steps[2] and "elapsed" in steps[-1]

    monkeypatch.setattr(_gatys, "LINE_INTERVAL", 3600.0)
    main([*args, "--overwrite"])
    steps = [line for line in capsys.readouterr().err.splitlines() if ", step " in line]
    assert [line.split("step ")[1].split(",")[0] for line in steps] == ["4/4"]  # only the closing line
    main([*args, "--overwrite", "--quiet"])
    assert capsys.readouterr().err == ""
