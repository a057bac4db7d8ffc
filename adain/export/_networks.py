"""The encoder and decoder as ONNX graphs for the onnxruntime backend, exported once per set of weights.

``Stylizer(model, backend="onnxruntime")`` runs ``AdaINModel.encode`` and ``decode`` as two onnxruntime
sessions (``adain.inference._prepared.OnnxModel``), so everything built on them (blends, masks, colour
modes, alpha, tiling, video) works unchanged. The graphs:

- ``encoder.onnx``: ``image`` ``(N, 3, H, W)`` float32 in [0, 1], sides at least 9 -> ``features``
  ``(N, 512, ceil(H/8), ceil(W/8))`` (relu4_1);
- ``decoder.onnx``: ``features`` ``(N, 512, h, w)``, sides at least 2 -> ``image`` ``(N, 3, 8h, 8w)``,
  unclamped;

batch, height and width dynamic. Exporting costs seconds (about 10 s on a 2-core CPU), so the graphs are
kept in the package cache (``adain.weights._cache.cache_root()/onnx/<id>/``), ``<id>`` being
``networks_id``: the sha256 of the weights, the epsilon and ``GRAPH_FORMAT``. A model with the same weights
finds them there in any later process; changed weights get a new folder. Files are written atomically (a
half-written graph is never seen under its name) and checked in onnxruntime against PyTorch before that.
The int8 graphs of ``adain.export._int8`` live in the same folder.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim

from .._atomic import atomic_path
from ..model import AdaINModel
from ..modeling._encoder import VGGEncoder
from ..modeling._padding import MIN_STYLE_SIDE
from ..weights._cache import cache_root
from ._graphs import EncoderGraph
from ._onnx import OPSET, TOLERANCE, require_export_extra

GRAPH_FORMAT = 1
"""Bumped whenever the exported graphs change for the same weights (part of ``networks_id``)."""

ENCODER_INPUT, ENCODER_OUTPUT = "image", "features"
DECODER_INPUT, DECODER_OUTPUT = "features", "image"


@dataclass(frozen=True)
class NetworkFiles:
    """The graphs of one set of weights: ``folder/encoder.onnx`` and ``folder/decoder.onnx`` (float32), and
    with ``int8`` the quantised ``encoder.int8.onnx``/``decoder.int8.onnx``."""

    folder: Path
    int8: bool = False

    @property
    def encoder(self) -> Path:
        return self.folder / ("encoder.int8.onnx" if self.int8 else "encoder.onnx")

    @property
    def decoder(self) -> Path:
        return self.folder / ("decoder.int8.onnx" if self.int8 else "decoder.onnx")

    def exist(self) -> bool:
        return self.encoder.is_file() and self.decoder.is_file()


def networks_id(model: AdaINModel) -> str:
    """16 hex digits of the sha256 of ``model``'s weights (names, shapes, float32 values), its epsilon and
    ``GRAPH_FORMAT``: equal for equal weights on any device or dtype, different after any change."""
    digest = hashlib.sha256(f"adain-networks/{GRAPH_FORMAT}/eps={model.config.eps!r}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def networks_folder(model: AdaINModel, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache root>/onnx/<networks_id(model)>``, where the graphs of ``model`` are kept (not created here)."""
    return cache_root(cache_dir) / "onnx" / networks_id(model)


def float32_networks(model: AdaINModel, cache_dir: str | os.PathLike | None = None) -> NetworkFiles:
    """The float32 graphs of ``model``, from the cache, or exported, checked and cached now.

    Raises:
        InputError: the ``export`` extra is missing (naming the ``pip install``).
        RuntimeError: the export or the check failed (naming the file).
    """
    files = NetworkFiles(networks_folder(model, cache_dir))
    if files.exist():
        return files
    onnx, ort = require_export_extra()
    files.folder.mkdir(parents=True, exist_ok=True)
    encoder, decoder = _float32_copies(model)
    gen = torch.Generator().manual_seed(0)
    with atomic_path(files.encoder) as tmp_encoder, atomic_path(files.decoder) as tmp_decoder:
        shape = {0: Dim("batch", min=1), 2: Dim("height", min=MIN_STYLE_SIDE), 3: Dim("width", min=MIN_STYLE_SIDE)}
        _export(onnx, EncoderGraph(encoder), torch.rand(1, 3, 40, 48, generator=gen), shape, "encoder", tmp_encoder)
        shape = {0: Dim("batch", min=1), 2: Dim("height", min=2), 3: Dim("width", min=2)}
        _export(onnx, decoder, torch.rand(1, 512, 5, 6, generator=gen), shape, "decoder", tmp_decoder)
        _verify(ort, EncoderGraph(encoder), decoder, tmp_encoder, tmp_decoder, files)
    return files


def _float32_copies(model: AdaINModel) -> tuple[VGGEncoder, nn.Module]:
    encoder = copy.deepcopy(model.encoder).float().cpu().eval().requires_grad_(False)
    decoder = copy.deepcopy(model.decoder).float().cpu().eval().requires_grad_(False)
    return encoder, decoder


def _export(onnx, graph: nn.Module, example: torch.Tensor, shape: dict, kind: str, tmp: Path) -> None:
    names = (ENCODER_INPUT, ENCODER_OUTPUT) if kind == "encoder" else (DECODER_INPUT, DECODER_OUTPUT)
    try:
        # The exporter reports its steps on stdout; a library prints nothing.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                verbose=False,
                opset_version=OPSET,
                external_data=False,
                input_names=[names[0]],
                output_names=[names[1]],
                dynamic_shapes=(shape,),
            )
    except Exception as exc:  # the exporter raises many types; the user needs the file and the first line
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(f"{tmp.parent / (kind + '.onnx')}: torch.onnx.export failed: {detail}") from exc
    assert program is not None, "torch.onnx.export returns the program when dynamo=True"
    onnx.save_model(program.model_proto, str(tmp))


def session(ort, path: Path, threads: int | None = None):
    """An onnxruntime CPU session of ``path`` with ``threads`` intra-op threads (default torch's count)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _verify(ort, encoder: nn.Module, decoder: nn.Module, tmp_encoder: Path, tmp_decoder: Path, files) -> None:
    """Both graphs against PyTorch on an odd-sized input; ``RuntimeError`` naming the file if they differ."""
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 21, 30, generator=gen)
    with torch.no_grad():
        features = encoder(image)
        out = decoder(features)
    (o_features,) = session(ort, tmp_encoder).run(None, {ENCODER_INPUT: image.numpy()})
    (o_out,) = session(ort, tmp_decoder).run(None, {DECODER_INPUT: features.numpy()})
    scale = max(1.0, float(features.abs().max()))
    for target, got, want, unit in ((files.encoder, o_features, features, scale), (files.decoder, o_out, out, 1.0)):
        diff = float((torch.from_numpy(got) - want).abs().max()) / unit
        if not diff <= TOLERANCE:
            raise RuntimeError(
                f"{target}: onnxruntime differs from PyTorch by {diff:.2g} (tolerance {TOLERANCE:g}); not cached"
            )
