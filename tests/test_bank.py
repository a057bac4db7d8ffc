"""The style bank: statistics measured once (checked against an independent formula), saved and loaded back
exactly, refused for another encoder, and equivalent to stylizing with the style image itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import adain
from adain.errors import InputError, OutputExistsError
from adain.inference import Engine, StyleBank, Stylizer, encoder_id
from adain.modeling._config import ModelConfig

CPU = torch.device("cpu")


def _picture(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def _independent_stats(model, image, eps):
    """relu4_1 channel mean and std (unbiased variance + eps, square root) of an image whose sides are multiples
    of 8, computed here without the package's statistics helpers."""
    feat = model.encode(image)[0].flatten(1).double()
    n = feat.shape[1]
    mean = feat.sum(1) / n
    var = ((feat - mean[:, None]) ** 2).sum(1) / (n - 1)
    return mean.float(), (var + eps).sqrt().float()


def test_a_bank_holds_each_styles_relu4_1_statistics(model):
    images = [_picture(32, 40, 1), _picture(48, 32, 2)]
    bank = StyleBank.build(Engine(model, CPU, torch.float32), [("a", images[0]), ("b", images[1])])
    assert bank.keys == ("a", "b") and len(bank) == 2 and bank.mean.shape == (2, 512)
    with torch.no_grad():
        for i, image in enumerate(images):
            mean, std = _independent_stats(model, image, model.config.eps)
            torch.testing.assert_close(bank.mean[i], mean, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(bank.std[i], std, rtol=1e-4, atol=1e-5)
    mean, std = bank.stats([1, 0, 1])
    assert mean.shape == std.shape == (3, 512, 1, 1)
    assert torch.equal(mean[0, :, 0, 0], bank.mean[1]) and torch.equal(std[2, :, 0, 0], bank.std[1])


def test_stylizing_with_a_bank_entry_equals_stylizing_with_the_style_image(model, tmp_path):
    style_file = tmp_path / "s.png"
    Image.fromarray((_picture(64, 48, 3)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(style_file)
    content = _picture(40, 56, 4)
    stylizer = Stylizer(model, "cpu", "float32")
    bank = StyleBank.from_files(stylizer, [style_file], keys=["s"], size=32)
    assert bank.recipe == {"size": "32", "crop": "false"}
    expected = adain.stylize(
        content[0], style_file, alpha=0.6, model=model, content_size=None, style_size=32, device="cpu", dtype="float32"
    )
    got = stylizer.engine.run(content, bank.style(0), 0.6)
    np.testing.assert_array_equal(
        np.asarray(expected), (got[0].permute(1, 2, 0) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    )


def test_a_saved_bank_loads_back_exactly_and_is_never_overwritten(model, tmp_path):
    bank = StyleBank.build(
        Engine(model, CPU, torch.float32),
        [("x/1.jpg", _picture(16, 16, 5)), ("y/2.jpg", _picture(24, 16, 6))],
        recipe={"size": "224"},
    )
    path = bank.save(tmp_path / "bank.safetensors")
    back = StyleBank.load(path, model=model)
    assert back.keys == bank.keys and back.model_id == bank.model_id == encoder_id(model)
    assert back.recipe == {"size": "224"}
    assert torch.equal(back.mean, bank.mean) and torch.equal(back.std, bank.std)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        bank.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["bank.safetensors"]  # no temporary left


def test_a_bank_of_another_encoder_is_refused_in_one_line(model, tmp_path):
    path = StyleBank.build(Engine(model, CPU, torch.float32), [("s", _picture(16, 16, 7))]).save(tmp_path / "b.st")
    other = adain.AdaINModel()
    with pytest.raises(InputError, match="measured by encoder .* rebuild the bank") as info:
        StyleBank.load(path, model=other)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all", None])
def test_a_file_that_is_not_a_bank_is_refused_naming_it(tmp_path, content, model):
    path = tmp_path / "bank.safetensors"
    if content is None:  # a valid safetensors file, but a model's, not a bank
        from safetensors.torch import save_file

        save_file({"mean": torch.zeros(1, 4)}, str(path), metadata={"format": "pt"})
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match="style bank") as info:
        StyleBank.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_encoder_id_follows_the_weights_up_to_relu4_1_only(model):
    truncated = adain.AdaINModel(ModelConfig(encoder_last_layer="relu4_1"))
    truncated.encoder.load_state_dict(
        {k: v for k, v in model.encoder.state_dict().items() if k in truncated.encoder.state_dict()}
    )
    assert encoder_id(truncated) == encoder_id(model)  # relu5_1's weights change nothing at relu4_1
    with torch.no_grad():
        truncated.encoder.conv4_1.bias[0] += 1e-3
    assert encoder_id(truncated) != encoder_id(model)


def test_a_bank_refuses_statistics_that_do_not_match_its_keys():
    with pytest.raises(InputError, match="keys"):
        StyleBank(("a", "b"), torch.zeros(1, 512), torch.ones(1, 512), "0" * 16)
    with pytest.raises(InputError, match="unique"):
        StyleBank(("a", "a"), torch.zeros(2, 512), torch.ones(2, 512), "0" * 16)
