"""The fast paths (issue 11): each gives the exact path's picture within its tolerance, the prepared model is
reused but never stale, compilation is bounded by shape buckets, and the default dtype follows the CPU."""

from __future__ import annotations

import copy
import gc
import math
import weakref

import pytest
import torch

import adain
from adain import _runtime as runtime
from adain.cli import build_parser
from adain.errors import InputError
from adain.inference import _prepared as prepared
from adain.modeling._fused import fusable


def _smooth(h, w, seed=0):
    """A smooth random picture (3, h, w) in [0, 1]."""
    small = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@pytest.fixture
def own_model(model):
    """A private copy of the session's calibrated model, so that caches and in-place changes stay in one test."""
    return copy.deepcopy(model)


def _count_preparations(monkeypatch) -> list:
    calls = []
    real = prepared._prepared_copy
    monkeypatch.setattr(prepared, "_prepared_copy", lambda m, s: calls.append(s) or real(m, s))
    return calls


# ---- the prepared-model cache ------------------------------------------------------------------------


def test_a_second_stylize_call_with_the_same_model_does_not_copy_it(own_model, monkeypatch):
    calls = _count_preparations(monkeypatch)
    args = dict(model=own_model, content_size=None, style_size=None, device="cpu", dtype="float32")
    first = adain.stylize(_smooth(24, 32, 1), _smooth(32, 32, 2), **args)
    copied, real = [], copy.deepcopy
    monkeypatch.setattr(
        copy, "deepcopy", lambda x, *a: copied.append(type(x)) if isinstance(x, torch.nn.Module) else real(x, *a)
    )
    second = adain.stylize(_smooth(24, 32, 1), _smooth(32, 32, 2), **args)
    assert len(calls) == 1 and copied == []
    assert first.tobytes() == second.tobytes()


def test_a_model_changed_in_place_is_prepared_again_and_gives_the_new_result(own_model, monkeypatch):
    calls = _count_preparations(monkeypatch)
    content, style = _smooth(32, 32, 3), _smooth(32, 32, 4)
    before = adain.Stylizer(own_model, "cpu", "float32").set_style(style, style_size=None)(content)
    with torch.no_grad():
        own_model.decoder.conv1_1.bias.add_(0.2)  # in place: the version counter moves, the storage stays
    after = adain.Stylizer(own_model, "cpu", "float32").set_style(style, style_size=None)(content)
    fresh = copy.deepcopy(own_model)
    expected = adain.Stylizer(fresh, "cpu", "float32").set_style(style, style_size=None)(content)
    assert len(calls) == 3  # before, after the change, and the fresh copy
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-6)
    assert (after - before).abs().max() > 0.05


def test_load_state_dict_and_to_are_noticed(own_model, model, monkeypatch):
    calls = _count_preparations(monkeypatch)
    adain.Stylizer(own_model, "cpu", "float32")
    state = {k: v + 0.01 if k.endswith("bias") else v for k, v in model.state_dict().items()}
    own_model.load_state_dict(state)
    adain.Stylizer(own_model, "cpu", "float32")
    own_model.to(torch.float64).to(torch.float32)  # new storage for every parameter
    adain.Stylizer(own_model, "cpu", "float32")
    adain.Stylizer(own_model, "cpu", "float32")  # unchanged since: served from the cache
    assert len(calls) == 3


def test_the_cache_does_not_keep_a_model_alive(model):
    doomed = copy.deepcopy(model)
    adain.Stylizer(doomed, "cpu", "float32").set_style(_smooth(16, 16, 5), style_size=None)(_smooth(16, 16, 6))
    before = prepared.cached_models()
    ref = weakref.ref(doomed)
    del doomed
    gc.collect()
    assert ref() is None
    assert prepared.cached_models() == before - 1


def test_the_callers_model_is_never_converted(own_model):
    adain.Stylizer(own_model, "cpu", "bfloat16")
    assert {p.dtype for p in own_model.parameters()} == {torch.float32}
    assert all(p.is_contiguous() for p in own_model.parameters())


# ---- every fast path draws the exact path's picture ------------------------------------------------------


def _exact(model, style, content):
    """The plain modules, unfused, uncompiled, float32."""
    stylizer = adain.Stylizer(model, "cpu", "float32")
    stylizer.model = prepared.prepare(model, torch.device("cpu"), torch.float32, fuse=False)
    return stylizer.set_style(style, style_size=None)(content)


@pytest.mark.slow
@pytest.mark.skipif(not fusable(torch.device("cpu"), torch.float32), reason="no oneDNN fused convolution here")
@pytest.mark.parametrize("size", [(40, 56), (264, 272)])  # the second crosses BORDER_FIX_PIXELS at full size
def test_fused_cpu_kernels_give_the_plain_result(own_model, size):
    content, style = _smooth(*size, seed=7), _smooth(32, 40, seed=8)
    stylizer = adain.Stylizer(own_model, "cpu", "float32").set_style(style, style_size=None)
    assert type(stylizer.model.decoder).__name__ == "FusedDecoder"
    fused = stylizer(content)
    assert fused.shape == content.shape
    torch.testing.assert_close(fused, _exact(own_model, style, content), rtol=0, atol=2e-5)


def test_bfloat16_is_within_40_db_of_float32_with_the_same_size(own_model):
    content, style = _smooth(48, 40, seed=9), _smooth(32, 32, seed=10)
    bf16 = adain.Stylizer(own_model, "cpu", "bfloat16").set_style(style, style_size=None)(content)
    assert bf16.shape == content.shape and bf16.dtype == torch.float32
    assert _psnr(bf16, _exact(own_model, style, content)) >= 40  # measured: about 53 dB


class _CountingBackend:
    """A ``torch.compile`` backend that runs the traced graph as it is and counts compilations."""

    def __init__(self) -> None:
        self.shapes = []

    def __call__(self, graph, example_inputs):
        self.shapes.append(tuple(example_inputs[0].shape) if example_inputs else ())
        return graph.forward


@pytest.mark.slow
def test_compilations_are_bounded_by_shape_buckets_and_results_are_exact(own_model):
    backend = _CountingBackend()
    stylizer = adain.Stylizer(own_model, "cpu", "float32", compile={"backend": backend})
    stylizer.set_style(_smooth(40, 36, seed=11), style_size=None)  # a 64x64 canvas
    sizes = [(40, 56), (48, 64), (64, 64), (30, 50), (100, 70), (72, 120), (64, 64)]
    for k, size in enumerate(sizes):
        content = _smooth(*size, seed=12 + k)
        out = stylizer(content)
        assert out.shape == content.shape
        torch.testing.assert_close(out, _exact(own_model, _smooth(40, 36, seed=11), content), rtol=0, atol=2e-5)
    # Buckets 64x64 and 128x128, each an encoder and a decoder graph: four compilations for eight calls.
    assert stylizer.compile_stats.count == len(backend.shapes) == 4
    assert {shape for _, shape, _ in stylizer.compile_stats.compiles} == {
        (1, 3, 64, 64),
        (1, 512, 8, 8),
        (1, 3, 128, 128),
        (1, 512, 16, 16),
    }
    assert stylizer.compile_stats.seconds > 0
    # Another Stylizer of the same, unchanged model reuses the compiled graphs.
    again = adain.Stylizer(own_model, "cpu", "float32", compile={"backend": backend})
    again.set_style(_smooth(40, 36, seed=11), style_size=None)(_smooth(50, 60, seed=30))
    assert len(backend.shapes) == 4 and again.compile_stats is stylizer.compile_stats


@pytest.mark.parametrize(
    "side, bucket",
    [(16, 64), (64, 64), (65, 128), (500, 512), (1024, 1024), (1080, 1152), (1920, 1920), (2160, 2304), (3840, 3840)],
)
def test_bucket_sides(side, bucket):
    assert prepared.bucket_side(side) == bucket
    assert prepared.bucket_side(bucket) == bucket


def test_a_failing_compiler_warns_once_and_falls_back_to_the_exact_path(own_model):
    def broken(graph, example_inputs):
        raise RuntimeError("no compiler today")

    stylizer = adain.Stylizer(own_model, "cpu", "float32", compile={"backend": broken})
    with pytest.warns(RuntimeWarning, match="running uncompiled"):
        stylizer.set_style(_smooth(32, 32, seed=20), style_size=None)
    content = _smooth(24, 40, seed=21)
    torch.testing.assert_close(
        stylizer(content), _exact(own_model, _smooth(32, 32, seed=20), content), rtol=0, atol=2e-5
    )


def test_compile_on_the_cpu_without_a_cxx_compiler_is_refused_in_one_line(model, monkeypatch):
    monkeypatch.setattr(prepared, "_cxx_compiler", lambda: None)
    with pytest.raises(InputError, match=r"compile: .*C\+\+ compiler"):
        adain.Stylizer(model, "cpu", compile=True)
    adain.Stylizer(model, "cpu", compile={"backend": "eager"})  # no C++ needed: accepted


def test_bad_compile_values_are_refused(model):
    with pytest.raises(InputError, match="compile"):
        adain.Stylizer(model, "cpu", compile=1)


# ---- the default dtype -------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, expected", [
    ({"fpu", "avx2", "fma"}, torch.float32),  # e.g. the AVX2 EPYC the benchmarks ran on: bf16 is emulated, slow
    ({"avx2", "avx512f", "avx512_bf16"}, torch.bfloat16),  # Cooper Lake / Zen 4 and later
    ({"avx2", "avx512f", "amx_bf16", "amx_tile"}, torch.bfloat16),  # Sapphire Rapids
    ({"avx2", "avx512f", "avx512bw"}, torch.float32),  # AVX512 alone converts bf16 in software
])  # fmt: skip
def test_cpu_default_dtype_is_bfloat16_only_with_native_bf16(monkeypatch, flags, expected):
    monkeypatch.delenv("ADAIN_CPU_BF16", raising=False)
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: frozenset(flags))
    assert runtime.resolve_dtype(None, torch.device("cpu")) == expected
    assert runtime.resolve_dtype("auto", torch.device("cpu"), allowed=("float32", "bfloat16")) == expected
    assert runtime.resolve_dtype("float32", torch.device("cpu")) == torch.float32  # asked for: always kept
    assert runtime.resolve_dtype(None, torch.device("cpu"), allowed=("float32",)) == torch.float32


def test_the_environment_overrides_the_cpu_detection(monkeypatch):
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: frozenset({"amx_bf16"}))
    monkeypatch.setenv("ADAIN_CPU_BF16", "0")
    assert runtime.resolve_dtype(None, torch.device("cpu")) == torch.float32
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: frozenset())
    monkeypatch.setenv("ADAIN_CPU_BF16", "1")
    assert runtime.cpu_native_bf16()


def test_float32_asked_for_is_the_exact_path_whatever_the_cpu(own_model, monkeypatch):
    monkeypatch.delenv("ADAIN_CPU_BF16", raising=False)
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert adain.Stylizer(own_model, "cpu").dtype == torch.bfloat16
    content, style = _smooth(24, 24, seed=30), _smooth(24, 24, seed=31)
    exact = adain.Stylizer(own_model, "cpu", "float32").set_style(style, style_size=None)
    assert exact.dtype == torch.float32
    torch.testing.assert_close(exact(content), _exact(own_model, style, content), rtol=0, atol=2e-5)


def test_host_copies_are_plain_on_the_cpu():
    x = torch.rand(2, 3)
    assert runtime.to_device(x, torch.device("cpu")) is x
    assert runtime.to_host(x, torch.device("cpu")) is x


@pytest.mark.parametrize("command", ["stylize", "video"])
def test_compile_is_an_opt_in_flag_of_stylize_and_video(command):
    argv = [command, "in.png", "style.png", "-o", "out.png"]
    assert vars(build_parser().parse_args(argv))["compile"] is False
    assert vars(build_parser().parse_args(argv + ["--compile"]))["compile"] is True
