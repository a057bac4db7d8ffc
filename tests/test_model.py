"""The model's building blocks: layer names, legacy import, and the package's own save format."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from reference_port import random_reference_models

import adain
from adain.errors import CorruptWeightsError, WeightsNotFoundError
from adain.modeling._decoder import DECODER_CONVS
from adain.modeling._encoder import LAYER_NAMES, VGGEncoder


def test_relu4_2_is_second_conv_of_block_four(reference_models, model):
    vgg, _ = reference_models
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        ours = model.encoder(x, ("relu4_2", "relu5_1", "relu1_1", "relu2_1", "relu3_1", "relu4_1"))
        # In the positional layout relu4_2 is module 33 and relu5_1 module 43 (0-based ReLU indices).
        for name, index in (
            ("relu1_1", 3),
            ("relu2_1", 10),
            ("relu3_1", 17),
            ("relu4_1", 30),
            ("relu4_2", 33),
            ("relu5_1", 43),
        ):
            torch.testing.assert_close(ours[name], vgg[: index + 1](x), rtol=1e-4, atol=1e-4)
    assert LAYER_NAMES.index("relu4_2") == LAYER_NAMES.index("conv4_2") + 1


def test_encoder_stops_at_last_layer_and_rejects_deeper_taps():
    enc = VGGEncoder("relu4_1")
    assert not hasattr(enc, "conv4_2")
    with pytest.raises(ValueError, match="relu5_1"):
        enc(torch.rand(1, 3, 32, 32), ("relu5_1",))


def _conv_calls(module, x, layers=None):
    """The names of the convolutions that ran while ``module`` processed ``x``."""
    ran = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o, name=name: ran.append(name))
        for name, m in module.named_children()
        if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        module(x) if layers is None else module(x, layers)
    for hook in hooks:
        hook.remove()
    return ran


def test_the_encoder_walk_stops_after_the_deepest_requested_layer():
    enc = VGGEncoder("relu5_1")
    assert _conv_calls(enc, torch.rand(1, 3, 32, 32), ("relu1_1", "relu2_1")) == [
        "preprocess",
        "conv1_1",
        "conv1_2",
        "conv2_1",
    ]
    assert _conv_calls(enc, torch.rand(1, 3, 32, 32), ("pool1",)) == ["preprocess", "conv1_1", "conv1_2"]


def test_the_decoder_walk_runs_every_convolution_once_in_order():
    dec = adain.modeling.Decoder()
    assert _conv_calls(dec, torch.rand(1, 512, 2, 3)) == [step[0] for step in DECODER_CONVS if step != "up"]


def test_a_requested_convolution_keeps_its_negative_values_and_options_reach_the_pooling():
    enc = VGGEncoder("relu4_1")
    x = torch.rand(1, 3, 20, 18)
    with torch.no_grad():
        out = enc(x, ("conv1_1", "relu1_1", "conv1_2", "pool1"), pooling="avg", pool_scale={"pool1": 3.0})
        conv1_1 = F.conv2d(F.pad(enc.preprocess(x), (1, 1, 1, 1), mode="reflect"), enc.conv1_1.weight, enc.conv1_1.bias)
        relu1_2 = F.conv2d(
            F.pad(conv1_1.relu(), (1, 1, 1, 1), mode="reflect"), enc.conv1_2.weight, enc.conv1_2.bias
        ).relu()
    assert (out["conv1_1"] < 0).any()  # not overwritten by the ReLU after it (in place only when not returned)
    torch.testing.assert_close(out["conv1_1"], conv1_1)
    torch.testing.assert_close(out["relu1_1"], conv1_1.relu())
    assert (out["conv1_2"] < 0).any()
    expected_pool = F.avg_pool2d(relu1_2, kernel_size=2, stride=2, ceil_mode=True) * 3.0
    assert out["pool1"].shape == (1, 64, 10, 9)
    torch.testing.assert_close(out["pool1"], expected_pool)


def test_decoder_matches_reference_decoder(reference_models, model):
    _, dec = reference_models
    t = torch.randn(2, 512, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(t), dec(t), rtol=1e-4, atol=1e-5)


def test_from_original_names_first_bad_key_and_expected_shape(tmp_path, legacy_weights):
    vgg_path, dec_path = legacy_weights
    state = torch.load(dec_path, weights_only=True)
    state["5.weight"] = torch.zeros(256, 256, 1, 1)
    bad = tmp_path / "decoder.pth"
    torch.save(state, bad)
    with pytest.raises(CorruptWeightsError, match=r"'5.weight'.*\(256, 256, 3, 3\)"):
        adain.AdaINModel.from_original(vgg_path, bad)
    del state["5.weight"]
    torch.save(state, bad)
    with pytest.raises(CorruptWeightsError, match="missing key '5.weight'"):
        adain.AdaINModel.from_original(vgg_path, bad)


def test_from_original_rejects_swapped_files(legacy_weights):
    vgg_path, dec_path = legacy_weights
    with pytest.raises(CorruptWeightsError, match="unexpected key|missing key"):
        adain.AdaINModel.from_original(dec_path, vgg_path)


def test_save_pretrained_round_trips_bit_exactly(tmp_path, model):
    out = model.save_pretrained(tmp_path / "m")
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    loaded = adain.AdaINModel.from_pretrained(out)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert json.loads((out / "config.json").read_text())["encoder_last_layer"] == "relu5_1"


def test_from_pretrained_rejects_non_finite_and_missing(tmp_path, model):
    from safetensors.torch import load_file, save_file

    out = model.save_pretrained(tmp_path / "m")
    state = load_file(str(out / "model.safetensors"))
    state["decoder.conv1_1.bias"][0] = float("nan")
    save_file(state, str(out / "model.safetensors"))
    with pytest.raises(CorruptWeightsError, match="decoder.conv1_1.bias.*NaN"):
        adain.AdaINModel.from_pretrained(out)
    (out / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="model.safetensors"):
        adain.AdaINModel.from_pretrained(out)


def test_from_pretrained_rejects_garbage_weights_file(tmp_path, model):
    out = model.save_pretrained(tmp_path / "m")
    (out / "model.safetensors").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(CorruptWeightsError, match="model.safetensors"):
        adain.AdaINModel.from_pretrained(out)


def test_different_seeds_give_different_reference_weights():
    # Guards the fixture itself: parity tests are meaningless if the random weights were degenerate.
    a, _ = random_reference_models(0)
    b, _ = random_reference_models(1)
    assert not torch.equal(a[2].weight, b[2].weight)
