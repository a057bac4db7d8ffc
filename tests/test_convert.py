"""Converters: the reference port's .pth pair (library + CLI), the fingerprint, and torchvision's VGG-19."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torchvision
from conftest import REPO_ROOT

import adain
from adain.modeling._encoder import VGG_CONVS
from adain.weights._legacy import check_vgg_fingerprint
from adain.weights._torchvision import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, encoder_from_torchvision


def _preprocess(weight_scale: float = 255.0, mean=(103.939, 116.779, 123.68)):
    w = torch.zeros(3, 3, 1, 1)
    for i in range(3):
        w[i, 2 - i] = weight_scale
    return w, -torch.tensor(mean)


def test_fingerprint_accepts_bgr_x255_minus_caffe_mean():
    check_vgg_fingerprint(*_preprocess(), "vgg")


@pytest.mark.parametrize(
    "weight, bias",
    [
        _preprocess(weight_scale=1.0),
        _preprocess(mean=(0.0, 0.0, 0.0)),
        (torch.eye(3).reshape(3, 3, 1, 1) * 255, _preprocess()[1]),
    ],
    ids=["not-x255", "no-mean", "rgb-not-bgr"],
)
def test_fingerprint_rejects_other_first_convs(weight, bias):
    with pytest.raises(adain.CorruptWeightsError, match="vgg: the first 1x1 conv"):
        check_vgg_fingerprint(weight, bias, "vgg")


@pytest.mark.slow
def test_cli_converts_reference_port_pair(tmp_path, legacy_weights, model):
    out = tmp_path / "converted"
    proc = subprocess.run(
        [sys.executable, "-m", "adain", "convert", "reference-port", *map(str, legacy_weights), str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    loaded = adain.load_pretrained(out)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert "vgg_normalised.pth" in loaded.config.description


def test_cli_reports_swapped_files_in_one_line(tmp_path, legacy_weights, capsys):
    from adain.cli import main

    vgg, dec = legacy_weights
    assert main(["convert", "reference-port", str(dec), str(vgg), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("adain: error:") and "decoder.pth" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def torchvision_vgg():
    torch.manual_seed(0)
    return torchvision.models.vgg19(weights=None).eval()


@pytest.mark.slow
def test_torchvision_encoder_taps_equal_torchvision_features(torchvision_vgg):
    """Same input, same network: our relu taps equal torchvision's features after each ReLU.

    Our encoder reflection-pads (AdaIN's choice) where torchvision zero-pads, so for this comparison
    the test switches our convs to zero padding; everything else (weights, preprocessing from RGB in
    [0, 1] to torchvision's normalisation, pooling on even sizes) is the converted encoder as built.
    """
    encoder = encoder_from_torchvision(torchvision_vgg.state_dict())
    for name, _, _ in VGG_CONVS:
        getattr(encoder, name).padding_mode = "zeros"
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    normalised = (x - torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD_RGB).view(
        1, 3, 1, 1
    )
    relus = [f"relu{n[4:]}" for n, _, _ in VGG_CONVS]
    with torch.no_grad():
        ours = encoder(x, relus)
        h, k = normalised, 0
        for module in torchvision_vgg.features:
            h = module(h)
            if isinstance(module, torch.nn.ReLU):
                torch.testing.assert_close(ours[relus[k]], h, rtol=1e-4, atol=1e-5, msg=relus[k])
                k += 1
                if k == len(relus):
                    break
    assert k == len(relus)


def test_torchvision_preprocess_maps_unit_rgb_to_imagenet_normalisation(torchvision_vgg):
    encoder = encoder_from_torchvision(torchvision_vgg.state_dict(), last_layer="relu1_1")
    x = torch.rand(2, 3, 5, 5)
    mean = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1)
    torch.testing.assert_close(encoder.preprocess(x), (x - mean) / std)


def test_torchvision_model_has_untrained_decoder_and_says_so(torchvision_vgg):
    model = adain.AdaINModel.from_torchvision(torchvision_vgg.state_dict(), seed=0)
    assert "NOT trained" in model.config.description
    torch.manual_seed(0)
    assert torch.equal(model.decoder.conv1_1.weight, adain.AdaINModel().decoder.conv1_1.weight)


def test_convert_torchvision_offline_says_how_to_pass_the_file(tmp_path, monkeypatch, capsys):
    import urllib.error

    import torch.hub

    from adain.cli import main

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # nothing cached
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    out = tmp_path / "tv"
    assert main(["convert", "torchvision", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("adain: error: could not download torchvision's VGG-19 weights")
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in err
    assert "--state-dict vgg19-dcbb9e9d.pth" in err and not out.exists()


@pytest.mark.slow
def test_convert_torchvision_with_state_dict_needs_no_network(tmp_path, torchvision_vgg, monkeypatch):
    import torch.hub

    from adain.cli import main

    monkeypatch.setattr(torch.hub, "download_url_to_file", None)  # any download attempt would fail loudly
    state = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(torchvision_vgg.state_dict(), state)
    assert main(["convert", "torchvision", str(tmp_path / "tv"), "--state-dict", str(state)]) == 0
    assert "NOT trained" in adain.load_pretrained(tmp_path / "tv").config.description
