"""Style augmentation (``adain.augment``): the batch module, the single-image transform in DataLoader workers,
the three style sources, and ``Engine.render`` with one alpha per image (which they are built on)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import adain
from adain.augment import RandomStyle, StyleAugment, StyleGaussian
from adain.errors import InputError
from adain.inference import Engine, Style, StyleBank

CPU = torch.device("cpu")

pytestmark = pytest.mark.filterwarnings("ignore:adain.augment. stylizing at a shorter side:UserWarning")


def _picture(c, h, w, seed):
    """A smooth random picture ``(c, h, w)`` float32 in [0, 1]."""
    small = torch.rand(1, c, max(2, h // 8), max(2, w // 8), generator=torch.Generator().manual_seed(seed))
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]


def _bank(model, *pictures) -> StyleBank:
    engine = Engine(model, CPU, torch.float32)
    return StyleBank.build(engine, [(f"s{i}", p[None]) for i, p in enumerate(pictures)])


def _stylize(model, content, style, alpha):
    """What ``adain.stylize`` gives for tensors kept at their size, float32 on the CPU: ``(3, H, W)``."""
    return adain.stylize(
        content, style, alpha, model=model, content_size=None, style_size=None, output_type="pt", dtype="float32"
    )


@pytest.fixture(scope="module")
def style(model):
    return _picture(3, 48, 40, seed=10)


@pytest.fixture(scope="module")
def bank(model, style):
    return _bank(model, style)


@pytest.fixture(scope="module")
def weights_folder(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("weights") / "model")


# ---- equality with stylize -------------------------------------------------------------------------------


def test_module_with_p1_and_a_one_image_bank_equals_stylize(model, bank, style):
    # 37 x 53: not multiples of 8, so the padding and the crop back are exercised.
    contents = torch.stack([_picture(3, 37, 53, seed=s) for s in (1, 2)])
    out = StyleAugment(model, bank, p=1, alpha=0.7, dtype="float32")(contents)
    for content, ours in zip(contents, out):
        assert (ours - _stylize(model, content, style, 0.7)).abs().max() <= 1e-5


def test_transform_with_p1_and_a_one_image_bank_equals_stylize(model, bank, style, weights_folder):
    content = _picture(3, 41, 36, seed=3)
    out = RandomStyle(bank, weights=weights_folder, p=1, alpha=1.0)(content)
    assert (out - _stylize(model, content, style, 1.0)).abs().max() <= 1e-5


def test_engine_render_takes_one_alpha_per_image(model, style):
    engine = Engine(model, CPU, torch.float32)
    frames = torch.stack([_picture(3, 32, 40, seed=s) for s in (4, 5)])
    stats = engine.feature_stats(style[None])
    one_style = Style(weights=(1.0,), stats=(stats,))
    together = engine.render(frames, one_style, torch.tensor([0.3, 1.0]))
    for frame, alpha, got in zip(frames, (0.3, 1.0), together):
        assert (got - engine.render(frame[None], one_style, alpha)[0]).abs().max() <= 1e-5


# ---- randomness ------------------------------------------------------------------------------------------


def test_a_seeded_generator_gives_the_same_batch_and_another_seed_another(model):
    bank = _bank(model, *(_picture(3, 32, 32, seed=20 + i) for i in range(5)))
    batch = torch.stack([_picture(3, 32, 32, seed=s) for s in range(6)])

    def run(seed):
        return StyleAugment(model, bank, p=0.5, generator=torch.Generator().manual_seed(seed), dtype="float32")(batch)

    first, again, other = run(0), run(0), run(1)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # p = 0.5: some samples stylized, the others returned exactly as they were.
    kept = [torch.equal(a, b) for a, b in zip(first, batch)]
    assert any(kept) and not all(kept)


def test_p0_is_the_identity_and_eval_mode_too(model, bank, weights_folder):
    batch = torch.stack([_picture(3, 24, 24, seed=s) for s in range(3)])
    assert StyleAugment(model, bank, p=0)(batch) is batch
    assert StyleAugment(model, bank, p=1).eval()(batch) is batch
    image = batch[0]
    assert RandomStyle(bank, weights=weights_folder, p=0)(image) is image


def test_the_model_is_not_a_submodule(model, bank):
    augment = StyleAugment(model, bank)
    assert list(augment.parameters()) == [] and augment.state_dict() == {}


# ---- shapes, dtypes, channels, sizes ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.uint8])
def test_dtype_and_shape_are_kept(model, bank, dtype):
    batch = torch.stack([_picture(3, 30, 26, seed=s) for s in range(2)])
    given = (batch * 255).round().to(torch.uint8) if dtype == torch.uint8 else batch.to(dtype)
    out = StyleAugment(model, bank, p=1, alpha=1.0, dtype="float32")(given)
    assert out.shape == given.shape and out.dtype == dtype and out.device == given.device
    reference = torch.stack([_stylize(model, x, _picture(3, 48, 40, seed=10), 1.0) for x in given])
    if dtype == torch.uint8:  # rounded to nearest
        assert (out.int() - (reference * 255 + 0.5).floor().int()).abs().max() <= 1
    else:
        assert (out.double() - reference.double()).abs().max() <= 2 * torch.finfo(dtype).eps


def test_grey_images_come_back_grey_with_the_luma_of_the_stylized_grey(model, bank, style):
    grey = _picture(1, 33, 40, seed=7)
    out = StyleAugment(model, bank, p=1, alpha=0.8, dtype="float32")(grey[None])[0]
    rgb = _stylize(model, grey.expand(3, -1, -1), style, 0.8)
    expected = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert out.shape == (1, 33, 40) and (out[0] - expected).abs().max() <= 1e-5


def test_a_working_size_stylizes_there_and_resizes_back(model, bank, style):
    content = _picture(3, 30, 45, seed=8)
    out = StyleAugment(model, bank, p=1, alpha=1.0, size=64, dtype="float32")(content[None])[0]
    up = F.interpolate(content[None], size=(64, 96), mode="bilinear", antialias=True).clamp(0, 1)[0]
    stylized = _stylize(model, up, style, 1.0)
    expected = F.interpolate(stylized[None], size=(30, 45), mode="bilinear", antialias=True).clamp(0, 1)[0]
    assert out.shape == content.shape and (out - expected).abs().max() <= 1e-5


def test_a_working_size_below_224_warns(model, bank):
    batch = _picture(3, 24, 24, seed=9)[None]
    with pytest.warns(UserWarning, match="size=224"):
        StyleAugment(model, bank, p=1)(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        StyleAugment(model, bank, p=1, size=224)(batch)


# ---- style sources ---------------------------------------------------------------------------------------


def test_in_batch_styles_take_another_samples_style(model):
    a, b = _picture(3, 32, 40, seed=11), _picture(3, 32, 40, seed=12)
    out = StyleAugment(model, "batch", p=1, alpha=1.0, dtype="float32")(torch.stack([a, b]))
    # Two samples: the only cyclic permutation swaps them.
    assert (out[0] - _stylize(model, a, b, 1.0)).abs().max() <= 1e-5
    assert (out[1] - _stylize(model, b, a, 1.0)).abs().max() <= 1e-5


def _correlated_bank(n: int, seed: int = 0) -> tuple[StyleBank, torch.Tensor, torch.Tensor, float]:
    """A bank of ``n`` styles whose ``[mean, log std]`` follow a known Gaussian with strongly correlated channels:
    ``centre + loading @ f + noise`` (two latent factors ``f``); returns the bank, ``centre``, ``loading`` and the
    noise's standard deviation."""
    gen = torch.Generator().manual_seed(seed)
    loading = torch.randn(1024, 2, generator=gen, dtype=torch.float64)
    centre = torch.cat([torch.rand(512, generator=gen, dtype=torch.float64), torch.zeros(512, dtype=torch.float64)])
    noise = 0.05
    z = centre + torch.randn(n, 2, generator=gen, dtype=torch.float64) @ loading.T
    z = z + noise * torch.randn(n, 1024, generator=gen, dtype=torch.float64)
    bank = StyleBank(tuple(f"s{i}" for i in range(n)), z[:, :512].float(), z[:, 512:].exp().float(), "m", {})
    return bank, centre, loading, noise


def test_the_gaussian_recovers_the_mean_and_correlations_of_the_bank():
    bank, centre, loading, noise = _correlated_bank(2000)
    mean, std = StyleGaussian.fit(bank, shrinkage=0.0).sample(4000, generator=torch.Generator().manual_seed(1))
    assert mean.shape == std.shape == (4000, 512, 1, 1) and bool((std > 0).all())
    z = torch.cat([mean.flatten(1), std.flatten(1).log()], dim=1).double()
    fitted_to = torch.cat([bank.mean, bank.std.log()], dim=1).double().mean(0)
    assert (z.mean(0) - fitted_to).abs().max() < 0.3 and (fitted_to - centre).abs().max() < 0.3
    # Along the strongest direction of the true covariance the drawn styles vary as much as the truth says;
    # a diagonal Gaussian would vary far less there (every channel independent).
    u, sv, _ = torch.linalg.svd(loading, full_matrices=False)
    top, truth = u[:, 0], float(sv[0] ** 2 + noise**2)
    assert abs(float(((z - z.mean(0)) @ top).var()) / truth - 1) < 0.15
    diagonal = float((top**2 * ((loading**2).sum(1) + noise**2)).sum())
    assert diagonal < 0.5 * truth  # the check above tells the two apart


def test_the_gaussian_with_full_shrinkage_is_diagonal_and_needs_two_styles(model, bank):
    many = _correlated_bank(50)[0]
    tril = StyleGaussian.fit(many, shrinkage=1.0).scale_tril
    assert torch.equal(tril, torch.diag(torch.diagonal(tril)))
    with pytest.raises(InputError, match="at least 2 styles"):
        StyleGaussian.fit(bank)
    with pytest.raises(InputError, match="shrinkage"):
        StyleGaussian.fit(many, shrinkage=2)


def test_the_module_draws_gaussian_styles_reproducibly(model):
    bank = _bank(model, *(_picture(3, 32, 32, seed=30 + i) for i in range(4)))
    gaussian = StyleGaussian.fit(bank)
    batch = torch.stack([_picture(3, 32, 32, seed=s) for s in range(3)])

    def run():
        augment = StyleAugment(model, gaussian, p=1, alpha=1.0, generator=torch.Generator().manual_seed(5))
        return augment(batch)

    first = run()
    assert torch.equal(first, run()) and not torch.equal(first, batch)


# ---- the transform in a pipeline -------------------------------------------------------------------------


class _Pictures(torch.utils.data.Dataset):
    def __init__(self, transform):
        self.transform = transform

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return self.transform((_picture(3, 32, 32, seed=40 + i) * 255).round().to(torch.uint8), i)


def test_the_transform_in_a_dataloader_with_two_workers(bank, weights_folder):
    transform = RandomStyle(bank, weights=weights_folder, p=0.5)
    assert len(pickle.dumps(transform.load())) < 200_000  # the sources travel, not the loaded model

    def images(seed):
        loader = torch.utils.data.DataLoader(
            _Pictures(transform), batch_size=2, num_workers=2, generator=torch.Generator().manual_seed(seed)
        )
        return torch.cat([x for x, _ in loader])

    first = images(0)
    originals = torch.stack([_Pictures(lambda x, i: x)[i] for i in range(6)])
    assert first.dtype == torch.uint8 and first.shape == (6, 3, 32, 32)
    assert torch.equal(first, images(0))
    assert not all(torch.equal(a, b) for a, b in zip(first, originals))


def test_the_transform_takes_pil_images_tv_tensors_and_samples(bank, weights_folder):
    transform = RandomStyle(bank, weights=weights_folder, p=1)
    picture = Image.fromarray((_picture(3, 30, 34, seed=13).permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    out = transform(picture)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == picture.size
    assert transform(picture.convert("L")).mode == "L"
    tv_tensors = pytest.importorskip("torchvision.tv_tensors", reason="tv_tensors need torchvision")
    image = tv_tensors.Image(_picture(3, 30, 34, seed=14))
    boxes = tv_tensors.BoundingBoxes([[1, 2, 10, 12]], format="XYXY", canvas_size=(30, 34))
    got_image, got_boxes, label = transform(image, boxes, 3)
    assert type(got_image) is tv_tensors.Image and got_image.shape == image.shape
    assert got_boxes is boxes and label == 3
    v2 = pytest.importorskip("torchvision.transforms.v2")
    composed_image, composed_boxes, _ = v2.Compose([transform, v2.ToDtype(torch.float32)])(image, boxes, 3)
    assert type(composed_image) is tv_tensors.Image and composed_boxes is boxes


def test_the_transform_refuses_what_it_cannot_take(bank, weights_folder, tmp_path):
    transform = RandomStyle(bank, weights=weights_folder, p=1)
    with pytest.raises(InputError, match="put RandomStyle before normalisation"):
        transform(torch.full((3, 16, 16), -0.5))
    with pytest.raises(InputError, match="StyleAugment"):
        transform(torch.rand(2, 3, 16, 16))
    with pytest.raises(InputError, match="'batch' needs a batch"):
        RandomStyle("batch", weights=weights_folder)
    with pytest.raises(InputError, match="no style bank file"):
        RandomStyle(tmp_path / "missing.safetensors", weights=weights_folder)
    with pytest.raises(InputError, match="not a model|load_pretrained"):
        RandomStyle(bank, weights=object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"p": 1.5}, "p:"), ({"alpha": (0.9, 0.1)}, "low end"), ({"alpha": 2}, "alpha:"), ({"size": 0}, "size")],
)
def test_bad_options_are_refused_naming_the_argument(model, bank, kwargs, match):
    with pytest.raises(InputError, match=match):
        StyleAugment(model, bank, **kwargs)


def test_a_bank_of_another_encoder_is_refused(model, bank):
    other = StyleBank(bank.keys, bank.mean, bank.std, "0123456789abcdef", {})
    with pytest.raises(InputError, match="rebuild the bank"):
        StyleAugment(model, other)


def test_the_transform_loads_a_bank_file_with_the_model(model, bank, weights_folder, tmp_path):
    content = _picture(3, 28, 30, seed=15)
    path = bank.save(tmp_path / "styles.safetensors")
    from_file = RandomStyle(path, weights=weights_folder, p=1, alpha=1.0)(content)
    assert torch.equal(from_file, RandomStyle(bank, weights=weights_folder, p=1, alpha=1.0)(content))
    StyleBank(bank.keys, bank.mean, bank.std, "0123456789abcdef", {}).save(tmp_path / "other.safetensors")
    with pytest.raises(InputError, match="rebuild the bank"):
        RandomStyle(tmp_path / "other.safetensors", weights=weights_folder).load()
