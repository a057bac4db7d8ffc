"""The Torch7 reader on files written by the tests' own writer, and the original-release converter."""

from __future__ import annotations

import time

import numpy as np
import pytest
import t7_writer as t7
import torch
from reference_port import CAFFE_MEAN_BGR

import adain
from adain.weights._torch7 import TorchObject, loads_t7, read_t7


def test_reads_numbers_strings_booleans_and_nil():
    data = {1: 3.5, 2: -7, "name": "vgg", "train": True, "off": False}
    assert loads_t7(t7.dumps(data)) == data
    assert loads_t7(t7.dumps(None)) is None


def test_repeated_table_is_one_object():
    shared = {"x": 1}
    out = loads_t7(t7.dumps({"a": shared, "b": shared}))
    assert out["a"] is out["b"] and out["a"] == {"x": 1}


def test_tensor_views_with_strides_and_offset_share_storage_values():
    base = np.arange(12, dtype=np.float64)
    storage = t7.Storage(base)
    row = t7.Tensor7(storage, (3,), (1,), offset=4)  # base[4:7]
    column = t7.Tensor7(storage, (3,), (4,), offset=1)  # base[1::4]
    out = loads_t7(t7.dumps({"row": row, "col": column}))
    assert out["row"].dtype == torch.float64
    assert out["row"].tolist() == [4.0, 5.0, 6.0]
    assert out["col"].tolist() == [1.0, 5.0, 9.0]


def test_module_becomes_torch_object_with_fields():
    weight = torch.randn(2, 3, 1, 1)
    mod = t7.Lua("nn.SpatialConvolution", {"kW": 1, "weight": t7.tensor(weight)})
    out = loads_t7(t7.dumps(mod))
    assert isinstance(out, TorchObject) and out.class_name == "nn.SpatialConvolution"
    assert out["kW"] == 1 and torch.equal(out["weight"], weight)


def test_serialized_function_is_refused():
    with pytest.raises(adain.CorruptWeightsError, match="Lua function"):
        loads_t7(t7.dumps({"forward": t7.Function()}))


def test_truncated_file_is_a_clear_error(tmp_path):
    data = t7.dumps(t7.tensor(torch.randn(4, 4)))
    path = tmp_path / "cut.t7"
    path.write_bytes(data[:-10])
    with pytest.raises(adain.CorruptWeightsError, match="truncated"):
        read_t7(path)


def test_huge_declared_storage_fails_before_allocating():
    data = bytearray(t7.dumps(t7.Storage(np.zeros(2, dtype=np.float32))))
    data[-16:-8] = (1 << 40).to_bytes(8, "little")  # claim 2**40 floats
    with pytest.raises(adain.CorruptWeightsError, match="only 8 are left"):
        loads_t7(bytes(data))


# ---- the release files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def t7_release(tmp_path_factory, reference_models):
    """vgg_normalised.t7 (all 53 modules) and decoder.t7 holding the reference test weights."""
    vgg, dec = reference_models
    folder = tmp_path_factory.mktemp("t7")
    return t7.write(folder / "vgg_normalised.t7", t7.nn_from_reference(vgg)), t7.write(
        folder / "decoder.t7", t7.nn_from_reference(dec)
    )


@pytest.fixture(scope="module")
def t7_model(t7_release):
    return adain.AdaINModel.from_torch7(*t7_release)


def test_t7_first_conv_maps_rgb_to_caffe_bgr(t7_model):
    rgb = torch.rand(1, 3, 4, 4)
    expected = rgb.flip(1) * 255 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    torch.testing.assert_close(t7_model.encoder.preprocess(rgb), expected, rtol=0, atol=1e-3)


def test_t7_encoder_keeps_relu5_1_and_matches_reference(t7_model, reference_models):
    vgg, _ = reference_models
    assert t7_model.config.encoder_last_layer == "relu5_1"
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = t7_model.encoder(x, ("relu4_1", "relu5_1"))
        torch.testing.assert_close(ours["relu4_1"], vgg[:31](x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours["relu5_1"], vgg[:44](x), rtol=1e-4, atol=1e-4)


def test_t7_decoder_matches_reference(t7_model, reference_models):
    _, dec = reference_models
    t = torch.rand(1, 512, 4, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(t7_model.decode(t), dec(t), rtol=1e-5, atol=1e-5)


def test_t7_equals_pth_conversion(t7_model, model):
    a, b = t7_model.state_dict(), model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_vgg_cut_after_relu4_1_gives_relu4_1_encoder(tmp_path, reference_models, t7_release):
    vgg, _ = reference_models
    path = t7.write(tmp_path / "vgg41.t7", t7.nn_from_reference(vgg[:31]))
    model = adain.AdaINModel.from_torch7(path, t7_release[1])
    assert model.config.encoder_last_layer == "relu4_1"


def test_convolution_mm_two_dimensional_weights_are_reshaped(tmp_path, reference_models, t7_release):
    _, dec = reference_models
    path = t7.write(tmp_path / "decoder_mm.t7", t7.nn_from_reference(dec, conv_2d_weight=True))
    model = adain.AdaINModel.from_torch7(t7_release[0], path)
    t = torch.rand(1, 512, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(t), dec(t), rtol=1e-5, atol=1e-5)


def test_wrong_module_order_names_the_module(tmp_path, reference_models, t7_release):
    _, dec = reference_models
    lua = t7.nn_from_reference(dec)
    modules = lua.fields["modules"]
    modules[3], modules[4] = modules[4], modules[3]  # ReLU and upsampling swapped
    path = t7.write(tmp_path / "bad.t7", lua)
    with pytest.raises(adain.CorruptWeightsError, match=r"module 3 .*expected a relu module, found up"):
        adain.AdaINModel.from_torch7(t7_release[0], path)


def test_decoder_given_as_vgg_is_refused(t7_release):
    with pytest.raises(adain.CorruptWeightsError, match="decoder.t7"):
        adain.AdaINModel.from_torch7(t7_release[1], t7_release[1])


def test_cli_converts_torch7_pair(tmp_path, t7_release, t7_model):
    from adain.cli import main

    out = tmp_path / "converted"
    assert main(["convert", "torch7", *map(str, t7_release), str(out)]) == 0
    loaded = adain.load_pretrained(out)
    assert all(torch.equal(v, t7_model.state_dict()[k]) for k, v in loaded.state_dict().items())


# ---- hostile files: bounded allocation and depth ----------------------------------------------------


@pytest.mark.parametrize("elements", [1 << 26, 1 << 62], ids=["256MiB", "overflow"])
def test_stride_zero_tensor_cannot_make_a_tiny_file_allocate_gigabytes(elements):
    data = t7.dumps(t7.Tensor7(t7.Storage(np.zeros(1, dtype=np.float32)), (elements,), (0,)))
    assert len(data) == 113
    start = time.perf_counter()
    with pytest.raises(adain.CorruptWeightsError, match=rf"\({elements} elements\) addressing a storage of 1 elements"):
        loads_t7(data)
    assert time.perf_counter() - start < 1.0


def test_stride_zero_view_is_read_within_its_storage_size_and_refused_beyond():
    stored = t7.Storage(np.arange(3, dtype=np.float32))
    assert loads_t7(t7.dumps(t7.Tensor7(stored, (3,), (0,)))).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(adain.CorruptWeightsError, match="addressing a storage of 3 elements"):
        loads_t7(t7.dumps(t7.Tensor7(stored, (2, 3), (0, 1))))  # 6 elements out of 3


def test_many_tensors_sharing_one_storage_are_capped_in_all(monkeypatch):
    monkeypatch.setattr("adain.weights._torch7.MAX_ELEMENTS", 1000)
    storage = t7.Storage(np.zeros(100, dtype=np.float32))
    views = {i: t7.Tensor7(storage, (100,), (1,)) for i in range(20)}  # 2000 elements from 100 stored
    with pytest.raises(adain.CorruptWeightsError, match="more than 1000 elements in all"):
        loads_t7(t7.dumps(views))
    assert len(loads_t7(t7.dumps({i: views[i] for i in range(10)}))) == 10


def test_deep_nesting_is_corrupt_not_a_recursion_error():
    with pytest.raises(adain.CorruptWeightsError, match="nested more than 100 deep"):
        loads_t7(t7.nested_tables(100_000))
    assert loads_t7(t7.nested_tables(50))[1][1][1] is not None
