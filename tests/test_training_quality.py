"""The trainer's quality record: at each checkpoint, the AdaIN paper's content and style losses on fixed pairs
(a ``quality.csv`` row, a ``QualityEvent``) and a grid PNG of them."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from test_training import write_images
from test_training_api import tiny

import adain
from adain.training import ConfigError, QualityEvent, train
from adain.training._quality import quality_set, read_quality
from adain.training._report import ScalarLog


def _stats(f):
    n, c = f.shape[:2]
    flat = f.reshape(n, c, -1)
    return flat.mean(2), (flat.var(2, unbiased=True) + 1e-5).sqrt()


def _independent_losses(encoder, decoder, content, style):
    """The paper's two losses written out here, from the encoder's features."""
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    fc, fs = encoder(content, layers), encoder(style, layers)
    mc, sc = _stats(fc["relu4_1"])
    ms, ss = _stats(fs["relu4_1"])
    t = (fc["relu4_1"] - mc[..., None, None]) / sc[..., None, None] * ss[..., None, None] + ms[..., None, None]
    out = decoder(t)
    fo = encoder(out, layers)
    content_loss = F.mse_loss(fo["relu4_1"], t)
    style_loss = sum(
        F.mse_loss(_stats(fo[k])[0], _stats(fs[k])[0]) + F.mse_loss(_stats(fo[k])[1], _stats(fs[k])[1]) for k in layers
    )
    return content_loss.item(), style_loss.item()


@pytest.mark.slow
def test_each_checkpoint_writes_a_quality_row_an_event_and_a_grid_of_the_held_out_pairs(legacy_weights, tmp_path):
    folders = write_images(tmp_path / "content", 3, seed=1), write_images(tmp_path / "style", 3, seed=2)
    held = write_images(tmp_path / "eval_c", 2, seed=3), write_images(tmp_path / "eval_s", 2, seed=4)
    events: list[QualityEvent] = []
    config = tiny(folders, legacy_weights, tmp_path / "run", max_iter=2, save_every=1, sample_every=0,
                  eval_pairs=2, eval_content_dir=held[0], eval_style_dir=held[1])  # fmt: skip
    final = train(config, lambda e: events.append(e) if isinstance(e, QualityEvent) else None)
    rows = read_quality(tmp_path / "run" / "quality.csv")
    assert [int(r["step"]) for r in rows] == [1, 2] and all(r["held_out"] == "1" for r in rows)
    assert [e.step for e in events] == [1, 2] and all(e.held_out for e in events)
    for row, event in zip(rows, events):
        assert float(row["content"]) == pytest.approx(event.content) and event.content > 0 and event.style > 0
        grid = Image.open(event.grid)
        assert grid.size == (3 * 32, 2 * 32)  # two rows of content | style | output crops
    # The last record equals the losses recomputed here on the same held-out crops with the final decoder.
    pairs = quality_set(None, str(held[0]), str(held[1]), 2, image_size=48, crop_size=32, seed=0).pairs  # type: ignore[arg-type]
    model = adain.load_pretrained(final)
    with torch.no_grad():
        want = [_independent_losses(model.encoder, model.decoder, pairs.content[i : i + 1], pairs.style[i : i + 1])
                for i in range(2)]  # fmt: skip
    assert events[-1].content == pytest.approx(sum(w[0] for w in want) / 2, rel=1e-4)
    assert events[-1].style == pytest.approx(sum(w[1] for w in want) / 2, rel=1e-4)


def test_without_eval_folders_the_first_training_pairs_are_scored_and_marked_not_held_out(legacy_weights, tmp_path):
    folders = write_images(tmp_path / "content", 3, seed=1), write_images(tmp_path / "style", 3, seed=2)
    config = tiny(folders, legacy_weights, tmp_path / "run", max_iter=1, save_every=1, sample_every=0, eval_pairs=1)
    train(config)
    assert [r["held_out"] for r in read_quality(tmp_path / "run" / "quality.csv")] == ["0"]
    assert (tmp_path / "run" / "samples" / "quality-00000001.png").is_file()


def test_one_eval_folder_without_the_other_is_refused_naming_the_missing_field(legacy_weights, tmp_path):
    folders = write_images(tmp_path / "content", 1, seed=1), write_images(tmp_path / "style", 1, seed=2)
    with pytest.raises(ConfigError, match="eval_style_dir"):
        tiny(folders, legacy_weights, tmp_path / "run", eval_content_dir=folders[0]).validate()


def test_eval_pairs_zero_writes_no_quality_record(legacy_weights, tmp_path):
    folders = write_images(tmp_path / "content", 2, seed=1), write_images(tmp_path / "style", 2, seed=2)
    train(tiny(folders, legacy_weights, tmp_path / "run", max_iter=1, save_every=1, sample_every=0, eval_pairs=0))
    assert not (tmp_path / "run" / "quality.csv").exists()


def test_the_quality_record_goes_to_tensorboard_when_it_is_installed(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:  # stands in for torch.utils.tensorboard.SummaryWriter, recording what it is given
        def __init__(self, logdir, purge_step=None):
            pass

        def add_scalar(self, tag, value, step):
            calls.append(("scalar", tag, value, step))

        def add_image(self, tag, image, step):
            calls.append(("image", tag, tuple(image.shape), step))

        def close(self):
            pass

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    log = ScalarLog(tmp_path)
    log.write_quality(7, 0.5, 0.25, torch.rand(3, 64, 96))
    log.close()
    assert calls == [
        ("scalar", "quality/content", 0.5, 7),
        ("scalar", "quality/style", 0.25, 7),
        ("image", "quality/samples", (3, 64, 96), 7),
    ]
