"""Pieces of the trainer: the loss against the reference port's, the data order, configs, checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from reference_port import ref_adain, ref_calc_mean_std

from adain.cli._train import _overrides, add_arguments
from adain.errors import InputError
from adain.training import TrainingError
from adain.training._checkpoint import capture_rng_state, load_latest_checkpoint, restore_rng_state, save_checkpoint
from adain.training._config import TrainConfig, config_from
from adain.training._data import ImageStream, positions_for_step
from adain.training._setup import load_encoder
from adain.training._step import LossWeights, adain_losses, frozen, learning_rate


def test_loss_matches_the_reference_ports_formula(legacy_weights, reference_models):
    vgg, ref_dec = reference_models
    encoder = frozen(load_encoder(str(legacy_weights[0])))
    from adain.modeling._decoder import Decoder
    from adain.weights._legacy import legacy_decoder_to_named

    decoder = Decoder()
    decoder.load_state_dict(legacy_decoder_to_named(ref_dec.state_dict()))
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)

    # The port: encoder slices ending at relu1_1, relu2_1, relu3_1, relu4_1 (module indices 3, 10, 17, 30).
    slices = [vgg[:4], vgg[4:11], vgg[11:18], vgg[18:31]]

    def feats(x):
        out = []
        for s in slices:
            x = s(x)
            out.append(x)
        return out

    style_f, content_f = feats(style), feats(content)[-1]
    t = ref_adain(content_f, style_f[-1])
    g_f = feats(ref_dec(t))
    ref_content = F.mse_loss(g_f[-1], t)
    ref_style = sum(
        F.mse_loss(ref_calc_mean_std(g)[0], ref_calc_mean_std(s)[0])
        + F.mse_loss(ref_calc_mean_std(g)[1], ref_calc_mean_std(s)[1])
        for g, s in zip(g_f, style_f)
    )

    total, loss_c, loss_s = adain_losses(encoder, decoder, content, style, LossWeights())
    assert loss_c.item() == pytest.approx(ref_content.item(), rel=1e-4)
    assert loss_s.item() == pytest.approx(ref_style.item(), rel=1e-4)
    assert total.item() == pytest.approx(ref_content.item() + 10 * ref_style.item(), rel=1e-4)


def test_learning_rate_decays_inverse_time_from_step_zero():
    assert learning_rate(1e-4, 5e-5, 0) == 1e-4
    assert learning_rate(1e-4, 5e-5, 20_000) == pytest.approx(5e-5)


def _folder(root: Path, sizes) -> Path:
    root.mkdir()
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(np.full((h, w, 3), i * 20, dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_data_order_is_a_function_of_seed_and_position(tmp_path):
    root = _folder(tmp_path / "imgs", [(40, 60)] * 5)
    a = ImageStream(root, image_size=48, crop_size=32, seed=7, stream=0)
    b = ImageStream(root, image_size=48, crop_size=32, seed=7, stream=0)
    for k in (12, 0, 3):  # any order of access gives the same answers
        assert a.path_at(k) == b.path_at(k)
        assert torch.equal(a.sample(k)[0], b.sample(k)[0])
    first_epoch = sorted(a.path_at(k).name for k in range(5))
    assert first_epoch == sorted(p.name for p in root.iterdir())  # each image once per epoch
    other = ImageStream(root, image_size=48, crop_size=32, seed=8, stream=0)
    assert [a.path_at(k) for k in range(5)] != [other.path_at(k) for k in range(5)]


def test_crops_keep_the_aspect_ratio_and_have_the_crop_size(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    arr = np.zeros((40, 160, 3), dtype=np.uint8)
    arr[:, 80:] = 255  # left half black, right half white
    Image.fromarray(arr).save(root / "wide.png")
    stream = ImageStream(root, image_size=32, crop_size=32, seed=0, stream=0)
    crops = [stream.sample(k)[0] for k in range(8)]
    assert all(c.shape == (3, 32, 32) for c in crops)
    # 160x40 -> 128x32, so a 32-wide crop often lies inside one half; squashed to 32x32 it would always
    # hold both halves (mean 0.5).
    assert any(float(c.mean()) < 0.05 or float(c.mean()) > 0.95 for c in crops)


def test_ranks_read_disjoint_positions_covering_the_single_process_order():
    single = [positions_for_step(s, 4) for s in range(3)]
    ranks = [[positions_for_step(s, 2, rank, 2) for rank in range(2)] for s in range(3)]
    assert [r0 + r1 for r0, r1 in ranks] == single


def test_toml_sets_options_and_flags_override_it(tmp_path):
    (tmp_path / "run.toml").write_text("style-weight = 2.5\nmax_iter = 7\nstyle_layer_weights = [1, 2, 3, 4]\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", str(tmp_path / "run.toml"), "--max-iter", "9", "--no-compile"])
    config = config_from(TrainConfig(), _overrides(args))
    assert (config.style_weight, config.max_iter, config.style_layer_weights) == (2.5, 9, (1.0, 2.0, 3.0, 4.0))
    assert config.batch_size == TrainConfig().batch_size and config.compile is False


def test_unknown_toml_keys_are_refused_by_name(tmp_path):
    (tmp_path / "bad.toml").write_text("styel_weight = 3\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(InputError, match="styel_weight"):
        config_from(TrainConfig(), _overrides(parser.parse_args(["--config", str(tmp_path / "bad.toml")])))


@pytest.mark.parametrize("recipe", ["paper", "reference_port", "torch_original"])
def test_shipped_recipes_are_valid_configs(recipe):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", recipe])
    config = config_from(TrainConfig(content_dir="c", style_dir="s"), _overrides(args)).validate()
    assert config.max_iter == 160_000 and config.crop_size == 256


def test_torch_original_recipe_is_the_summed_weighting_in_mean_form():
    channels = (64, 128, 256, 512)  # relu1_1..relu4_1
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", "torch_original"])
    config = config_from(TrainConfig(), _overrides(args))
    effective = [config.style_weight * w for w in config.style_layer_weights]
    assert effective == pytest.approx([1e-2 * c for c in channels])


def test_checkpoints_keep_the_last_k_and_restore_rng_states(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    rng = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3))
    for step in (1, 2, 3, 4):
        save_checkpoint(
            tmp_path,
            {"step": step, "decoder": {"w": torch.ones(2)}, "optimizer": {}, "rng": rng, "data": {}, "config": {}},
            keep=2,
        )
    path, state = load_latest_checkpoint(tmp_path)
    assert path.name == "step-00000004.pt" and sorted(p.name for p in path.parent.iterdir()) == [
        "step-00000003.pt",
        "step-00000004.pt",
    ]
    restore_rng_state(state["rng"])
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])


def test_a_replaced_numpy_generator_is_refused_with_a_training_error():
    legacy = np.random.get_bit_generator()
    np.random.set_bit_generator(np.random.PCG64(3))
    try:
        with pytest.warns(RuntimeWarning), pytest.raises(TrainingError, match="PCG64, not MT19937"):
            capture_rng_state()
    finally:
        np.random.set_bit_generator(legacy)


def test_a_checkpoint_with_non_finite_weights_is_not_used(tmp_path):
    good = {"step": 1, "decoder": {"w": torch.ones(2)}, "optimizer": {}, "rng": {}, "data": {}, "config": {}}
    save_checkpoint(tmp_path, good)
    save_checkpoint(tmp_path, {**good, "step": 2, "decoder": {"w": torch.tensor([1.0, float("nan")])}})
    reasons = []
    path, _ = load_latest_checkpoint(tmp_path, lambda p, why: reasons.append(why))
    assert path.name == "step-00000001.pt" and "not finite" in reasons[0]


def test_crop_larger_than_image_size_is_refused():
    with pytest.raises(
        InputError, match=r"^crop_size: must be a multiple of 8 and at most image_size \(128\), got 256$"
    ):
        TrainConfig(content_dir="c", style_dir="s", image_size=128, crop_size=256).validate()


def test_trainer_publishes_with_the_one_verified_push_to_hub():
    import adain.training._finish
    import adain.weights._hub

    assert adain.training._finish.push_to_hub is adain.weights._hub.push_to_hub
    # The message of a failed push tells the user to call it by its public name (test_training_safety).
    assert adain.weights.push_to_hub is adain.weights._hub.push_to_hub
