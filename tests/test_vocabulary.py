"""One vocabulary for both backends: the same keyword, values and meaning in ``stylize`` and ``gatys``."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

import adain
from adain._runtime import memory_budget, resolve_dtype
from adain.errors import InputError

_FAST = {"iterations": 2, "pyramid": False, "pooling": "max", "content_size": None, "style_size": 36, "device": "cpu"}
SHARED = ("content_size", "style_size", "preserve_color", "style_weights", "mask", "device", "dtype", "max_memory")


def _images():
    g = torch.Generator().manual_seed(3)
    return torch.rand(3, 32, 40, generator=g), torch.rand(3, 36, 36, generator=g), torch.rand(3, 36, 36, generator=g)


def test_both_signatures_name_the_shared_concepts_alike():
    stylize, gatys = inspect.signature(adain.stylize).parameters, inspect.signature(adain.gatys).parameters
    for name in SHARED:
        assert name in stylize and name in gatys, name
    for old in ("weights", "style_blend", "memory_limit"):
        assert old not in stylize and old not in gatys


def test_preserve_color_coral_works_in_both_backends_and_true_is_its_alias(model):
    c, s, _ = _images()
    styled = [
        adain.stylize(c, s, model=model, preserve_color=value, content_size=None, style_size=None, device="cpu")
        for value in ("coral", True)
    ]
    assert np.array_equal(np.asarray(styled[0]), np.asarray(styled[1]))
    optimised = [adain.gatys(c, s, model=model, preserve_color=value, **_FAST) for value in ("coral", True)]
    assert np.array_equal(np.asarray(optimised[0]), np.asarray(optimised[1]))
    plain = adain.gatys(c, s, model=model, **_FAST)
    assert not np.array_equal(np.asarray(plain), np.asarray(optimised[0]))


def test_gatys_match_is_a_deprecated_alias_of_coral(model):
    c, s, _ = _images()
    with pytest.warns(DeprecationWarning, match="coral"):
        old = adain.gatys(c, s, model=model, preserve_color="match", **_FAST)
    new = adain.gatys(c, s, model=model, preserve_color="coral", **_FAST)
    assert np.array_equal(np.asarray(old), np.asarray(new))


@pytest.mark.parametrize(
    "old, new, value", [("style_blend", "style_weights", (1.0, 3.0)), ("memory_limit", "max_memory", 10**12)]
)
def test_old_gatys_keywords_warn_and_mean_the_new_ones(model, old, new, value):
    c, s1, s2 = _images()
    with pytest.warns(DeprecationWarning, match=new):
        before = adain.gatys(c, [s1, s2], model=model, **{old: value}, **_FAST)
    after = adain.gatys(c, [s1, s2], model=model, **{new: value}, **_FAST)
    assert np.array_equal(np.asarray(before), np.asarray(after))


@pytest.mark.slow
def test_stylize_weights_is_a_deprecated_alias_of_style_weights(model):
    c, s1, s2 = _images()
    with pytest.warns(DeprecationWarning, match="style_weights"):
        before = adain.stylize(c, [s1, s2], model=model, weights=[1, 3], content_size=None, device="cpu")
    after = adain.stylize(c, [s1, s2], model=model, style_weights=[1, 3], content_size=None, device="cpu")
    assert np.array_equal(np.asarray(before), np.asarray(after))


def test_giving_both_spellings_is_refused(model):
    c, s1, s2 = _images()
    with pytest.raises(InputError, match="style_weights"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        adain.stylize(c, [s1, s2], model=model, weights=[1, 3], style_weights=[1, 3], device="cpu")


def test_style_weights_mean_the_same_blend_in_both_backends(model):
    c, s1, s2 = _images()
    only_first = adain.gatys(c, [s1, s2], model=model, style_weights=[1, 0], **_FAST)
    first_alone = adain.gatys(c, s1, model=model, **_FAST)
    assert np.array_equal(np.asarray(only_first), np.asarray(first_alone))
    only_first = adain.stylize(
        c, [s1, s2], model=model, style_weights=[1, 0], content_size=None, style_size=None, device="cpu"
    )
    first_alone = adain.stylize(c, s1, model=model, content_size=None, style_size=None, device="cpu")
    assert np.abs(np.asarray(only_first, dtype=int) - np.asarray(first_alone, dtype=int)).max() <= 1


def test_a_two_style_mask_means_the_same_in_both_backends(model):
    c, s1, s2 = _images()
    mask = np.zeros((32, 40), dtype=bool)
    mask[:, :20] = True
    via_mask = adain.gatys(c, [s1, s2], model=model, mask=mask, **_FAST)
    via_masks = adain.gatys(c, [s1, s2], model=model, masks=[mask, ~mask], **_FAST)
    assert np.array_equal(np.asarray(via_mask), np.asarray(via_masks))
    with pytest.raises(InputError, match="mask"):
        adain.gatys(c, [s1], model=model, mask=mask, **_FAST)


def test_the_memory_cap_is_refused_alike_when_too_small(model):
    c, s, _ = _images()
    with pytest.raises(InputError, match="max_memory|content_size"):
        adain.stylize(c, s, model=model, content_size=None, device="cpu", max_memory=1000)
    with pytest.raises(InputError, match="content_size"):
        adain.gatys(c, s, model=model, max_memory=1000, **_FAST)


def test_dtype_none_has_one_meaning():
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(InputError, match="dtype"):
        resolve_dtype("float16", cpu, allowed=("float32", "bfloat16"))


def test_the_memory_budget_is_one_policy():
    cpu = torch.device("cpu")
    assert memory_budget(cpu, 12345) == 12345
    budget = memory_budget(cpu)
    assert budget is None or budget > 0
