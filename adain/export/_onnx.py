"""Export to ONNX: two graphs, a JSON sidecar, checked in onnxruntime before they are written.

``export_onnx(model, "out.onnx")`` writes

- ``out.onnx``: the content graph (``adain.export._graphs.StylizeGraph``): ``content`` (N, 3, H, W)
  in [0, 1] with H and W multiples of 8, at least 16; ``style_mean``, ``style_std`` (N or 1, 512, 1, 1);
  ``alpha`` (1,) -> ``image`` (N, 3, H, W) clamped to [0, 1];
- ``out.style.onnx``: the style graph (``StyleStatsGraph``): ``style`` (S, 3, h, w), sides at least 9
  -> ``style_mean``, ``style_std`` (S, 512, 1, 1);
- ``out.json``: the sidecar: inputs and outputs, the padding rule, the opset, the package version and
  each graph's sha256.

Both go through ``torch.onnx.export(..., dynamo=True)`` with dynamic batch, height and width, at opset
``OPSET``. The exporter handles everything in the graphs as written (reflection padding with dynamic
sizes, ``var_mean``, ceil-mode pooling, nearest upsampling), so the wrappers need no workaround. The one
fix-up is a name: broadcasting the style statistics against the content makes ``torch.export`` assume
their batch equals the content's, so their batch axis is renamed ``style_batch`` in the graph (ONNX
broadcasts, and a batch of 1 is tested). onnx, onnxscript and onnxruntime are the ``export`` extra.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.export import Dim

from .._atomic import InputFiles, atomic_path, check_output, disk_full_error, is_disk_full
from .._version import __version__
from ..errors import InputError, MissingDependencyError, install_hint
from ..model import AdaINModel
from ..modeling._padding import MIN_SIDE, MIN_STYLE_SIDE, MULTIPLE
from ._graphs import StyleStatsGraph, StylizeGraph

OPSET = 18
"""ONNX opset of both graphs: the dynamo exporter's native opset, run by onnxruntime >= 1.14."""

MIN_TORCH = (2, 6)
"""torch.onnx.export(dynamo=True, dynamic_shapes=...) as used here (the export extra asks for it too)."""

TOLERANCE = 1e-3
"""Largest difference between onnxruntime and PyTorch accepted by the check before writing (image in [0, 1];
statistics relative to their largest magnitude)."""

CONTENT_INPUTS = ("content", "style_mean", "style_std", "alpha")
CONTENT_OUTPUTS = ("image",)
STYLE_INPUTS = ("style",)
STYLE_OUTPUTS = ("style_mean", "style_std")


@dataclass(frozen=True)
class ONNXFiles:
    """What [``export_onnx``][adain.export.export_onnx] writes; iterating gives the three paths in this order.

    Attributes:
        content: the content graph, ``<stem>.onnx``: content image, style statistics and alpha -> image.
        style: the style graph, ``<stem>.style.onnx``: style images -> their statistics.
        sidecar: the JSON sidecar, ``<stem>.json``: inputs, outputs, padding rule, opset, version, sha256s.
    """

    content: Path
    style: Path
    sidecar: Path

    def __iter__(self):
        return iter((self.content, self.style, self.sidecar))


class _Spec(NamedTuple):
    """How one graph is exported: example inputs, their dynamic axes, the names, axis renames."""

    example: tuple[Tensor, ...]
    shapes: tuple[Any, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    renames: dict[str, str]


# ---- checks before any work ------------------------------------------------------------------------


def require_export_extra():
    """``(onnx, onnxruntime)``; ``InputError`` naming ``pip install 'adain[export]'`` if any of the extra is missing."""
    missing = []
    try:
        import onnx  # optional: the export extra, as are the two below
    except ImportError:
        missing.append("onnx")
    try:
        import onnxscript  # noqa: F401  (torch.onnx.export's dynamo path needs it)
    except ImportError:
        missing.append("onnxscript")
    try:
        import onnxruntime
    except ImportError:
        missing.append("onnxruntime")
    if missing:
        raise MissingDependencyError(f"ONNX export needs {', '.join(missing)}: {install_hint('export')}")
    if tuple(int(part) for part in torch.__version__.split(".")[:2]) < MIN_TORCH:
        raise MissingDependencyError(
            f"ONNX export needs torch >= {'.'.join(map(str, MIN_TORCH))} (its dynamo exporter), "
            f"this is {torch.__version__}: {install_hint('export')}"
        )
    return onnx, onnxruntime


def output_paths(path: str | os.PathLike) -> ONNXFiles:
    """``out.onnx`` -> ``(out.onnx, out.style.onnx, out.json)``; ``InputError`` unless ``path`` ends in ``.onnx``."""
    path = Path(path)
    if path.suffix.lower() != ".onnx" or path.name.lower() == ".onnx":
        raise InputError(
            f"{path}: the output must be a file name ending in .onnx (the style graph "
            "and the .json sidecar are written beside it)"
        )
    return ONNXFiles(path, path.with_suffix(".style" + path.suffix), path.with_suffix(".json"))


def check_outputs(files: Iterable[Path], *, overwrite: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse taken output names before any work, each in one line naming the file: ``InputError`` for a
    folder; ``OutputIsInputError`` for one of ``inputs`` (files, or folders and the files directly inside
    them), even with ``overwrite``; ``OutputExistsError`` for one that exists without ``overwrite``."""
    known = InputFiles(inputs)
    for path in files:
        if path.is_dir():
            raise InputError(f"{path}: is a folder; the output must be a file name ending in .onnx")
        check_output(path, overwrite=overwrite, inputs=known)


# ---- export ----------------------------------------------------------------------------------------


def export_onnx(
    model: AdaINModel, path: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[str | os.PathLike] = ()
) -> ONNXFiles:
    """Write ``model`` as two ONNX graphs and a JSON sidecar (float32, CPU copies; the model itself is untouched).

    For ``path="out/adain.onnx"``:

    - ``out/adain.onnx``, the content graph: ``content`` ``(N, 3, H, W)`` float32 in [0, 1], ``H`` and ``W``
      multiples of 8, at least 16; ``style_mean``, ``style_std`` ``(N or 1, 512, 1, 1)``; ``alpha`` ``(1,)``
      -> ``image`` ``(N, 3, H, W)`` clamped to [0, 1];
    - ``out/adain.style.onnx``, the style graph: ``style`` ``(S, 3, h, w)``, sides at least 9 ->
      ``style_mean``, ``style_std`` ``(S, 512, 1, 1)``;
    - ``out/adain.json``, the sidecar: the inputs and outputs, the padding rule, the opset (18), the package
      version and each graph's sha256.

    Batch, height and width are dynamic. Nothing is written under a real name until both graphs have been
    exported, loaded in onnxruntime and found to match PyTorch on a test input (within 1e-3). Needs the
    ``export`` extra: ``pip install 'adain[export]'``. Guide: [export](../guides/export-and-demo.md).

    Arguments:
        model: the [``AdaINModel``][adain.AdaINModel] to export.
        path: the content graph's file name, ending in ``.onnx``; the style graph (``<stem>.style.onnx``)
            and the sidecar (``<stem>.json``) are written beside it.
        overwrite: replace existing files (else ``OutputExistsError`` before any work).
        inputs: files or folders the outputs may never be, even with ``overwrite`` (e.g. the folder the
            weights were read from; ``OutputIsInputError``).

    Returns:
        The [``ONNXFiles``][adain.export.ONNXFiles] written.

    Raises:
        OutputExistsError: an output exists and ``overwrite`` is ``False``; raised before any work.
        OutputIsInputError: an output is one of ``inputs``; raised before any work.
        InputError: a bad output name, or the ``export`` extra is missing (the message says what to install).
        RuntimeError: export or the onnxruntime check failed (naming the file).
    """
    files = output_paths(path)
    check_outputs(files, overwrite=overwrite, inputs=inputs)
    onnx, ort = require_export_extra()
    style_graph, content_graph = _graphs(model)
    files.content.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_path(files.style) as tmp_style,
        atomic_path(files.content) as tmp_content,
        atomic_path(files.sidecar) as tmp_sidecar,
    ):
        doc = f"adain {__version__}; inputs, outputs and the padding rule: {files.sidecar.name}"
        _export(onnx, style_graph, _style_spec(), tmp_style, files.style, doc)
        _export(onnx, content_graph, _content_spec(), tmp_content, files.content, doc)
        _verify(ort, (style_graph, tmp_style), (content_graph, tmp_content), files)
        digests = {"content": _sha256(tmp_content), "style": _sha256(tmp_style)}
        tmp_sidecar.write_text(json.dumps(_sidecar(files, model.config, digests), indent=2) + "\n", encoding="utf-8")
    return files


def _graphs(model: AdaINModel) -> tuple[StyleStatsGraph, StylizeGraph]:
    """The two wrappers around float32 CPU copies of the model's encoder and decoder (the model is untouched)."""
    encoder = copy.deepcopy(model.encoder).float().cpu().eval().requires_grad_(False)
    decoder = copy.deepcopy(model.decoder).float().cpu().eval().requires_grad_(False)
    eps = model.config.eps
    return StyleStatsGraph(encoder, eps).eval(), StylizeGraph(encoder, decoder, eps).eval()


def _style_spec() -> _Spec:
    gen = torch.Generator().manual_seed(0)
    example = (torch.rand(2, 3, 37, 45, generator=gen),)
    shapes = (
        {
            0: Dim("style_batch", min=1),
            2: Dim("style_height", min=MIN_STYLE_SIDE),
            3: Dim("style_width", min=MIN_STYLE_SIDE),
        },
    )
    return _Spec(example, shapes, STYLE_INPUTS, STYLE_OUTPUTS, {})


def _content_spec() -> _Spec:
    gen = torch.Generator().manual_seed(0)
    example = (
        torch.rand(2, 3, 40, 48, generator=gen),
        torch.rand(2, 512, 1, 1, generator=gen),
        torch.rand(2, 512, 1, 1, generator=gen) + 1,
        torch.tensor([0.5]),
    )
    batch = Dim("batch", min=1)
    # Sides are 8 * k: the exporter then knows that pooling and upsampling give back the input size.
    height, width = MULTIPLE * Dim("h8", min=MIN_SIDE // MULTIPLE), MULTIPLE * Dim("w8", min=MIN_SIDE // MULTIPLE)
    stats = {0: Dim("style_batch", min=1)}
    shapes = ({0: batch, 2: height, 3: width}, stats, stats, None)
    return _Spec(example, shapes, CONTENT_INPUTS, CONTENT_OUTPUTS, {"8*h8": "height", "8*w8": "width"})


def _export(onnx, graph: nn.Module, spec: _Spec, tmp: Path, target: Path, doc: str) -> None:
    """Export ``graph`` to ``tmp`` (one file, weights inside) with its axes named; errors name ``target``."""
    try:
        with warnings.catch_warnings():
            # torch.export unifies style_batch with batch (broadcasting); _name_axes gives it back its name.
            warnings.filterwarnings("ignore", message=".*The axis name: style_batch", category=UserWarning)
            program = torch.onnx.export(
                graph,
                spec.example,
                dynamo=True,
                verbose=False,
                opset_version=OPSET,
                external_data=False,
                input_names=list(spec.inputs),
                output_names=list(spec.outputs),
                dynamic_shapes=spec.shapes,
            )
    except Exception as exc:  # the exporter raises many types; the user needs the file and the first line
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(f"{target}: torch.onnx.export failed: {detail}") from exc
    assert program is not None, "torch.onnx.export returns the program when dynamo=True"
    proto = program.model_proto
    _name_axes(proto, spec.renames, style_stats="style_mean" in spec.inputs)
    proto.doc_string = doc
    try:
        onnx.save_model(proto, str(tmp))
    except Exception as exc:  # named here: the atomic writes nested around this one would name their own file
        if is_disk_full(exc):
            raise disk_full_error(target, exc, proto.ByteSize()) from None
        raise


def _name_axes(proto, names: dict[str, str], *, style_stats: bool) -> None:
    """Rename symbolic axes (``names``: old -> new) everywhere; the style statistics' batch is ``style_batch``."""
    values = [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]
    for value in values:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]
    if style_stats:
        for value in proto.graph.input:
            if value.name in ("style_mean", "style_std"):
                value.type.tensor_type.shape.dim[0].dim_param = "style_batch"


# ---- the check in onnxruntime ----------------------------------------------------------------------


def _verify(ort, style: tuple[nn.Module, Path], content: tuple[nn.Module, Path], files: ONNXFiles) -> None:
    """Run both graphs in onnxruntime and PyTorch on a small odd-sized input; ``RuntimeError`` if they differ."""
    gen = torch.Generator().manual_seed(1)
    style_image = torch.rand(1, 3, 20, 27, generator=gen)
    content_image = torch.rand(2, 3, 24, 32, generator=gen)
    alpha = torch.tensor([0.75])
    with torch.no_grad():
        mean, std = style[0](style_image)
        image = content[0](content_image, mean, std, alpha)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    run = {}
    for name, (_, tmp) in (("style", style), ("content", content)):
        run[name] = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"]).run
    o_mean, o_std = run["style"](None, {"style": style_image.numpy()})
    (o_image,) = run["content"](
        None,
        {
            "content": content_image.numpy(),
            "style_mean": mean.numpy(),
            "style_std": std.numpy(),
            "alpha": alpha.numpy(),
        },
    )
    scale = max(1.0, float(mean.abs().max()), float(std.abs().max()))
    checks = (
        (files.style, "style_mean", o_mean, mean, scale),
        (files.style, "style_std", o_std, std, scale),
        (files.content, "image", o_image, image, 1.0),
    )
    for target, name, got, want, unit in checks:
        diff = float((torch.from_numpy(got) - want).abs().max()) / unit
        if not diff <= TOLERANCE:
            raise RuntimeError(
                f"{target}: onnxruntime's {name} differs from PyTorch's by {diff:.2g} "
                f"(tolerance {TOLERANCE:g}); nothing was written"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- the sidecar -----------------------------------------------------------------------------------


def _tensor(shape: list, note: str) -> dict:
    return {"dtype": "float32", "shape": shape, "note": note}


def _sidecar(files: ONNXFiles, config, digests: dict[str, str]) -> dict:
    """The JSON sidecar: what each graph takes and returns, the padding rule, versions and checksums."""
    stats = "relu4_1 per-channel mean / sqrt(unbiased variance + eps), as adain.modeling._ops.calc_mean_std"
    return {
        "format": "adain-onnx",
        "adain_version": __version__,
        "opset": OPSET,
        "model": {"architecture": config.architecture, "eps": config.eps, "description": config.description},
        "content_graph": {
            "file": files.content.name,
            "sha256": digests["content"],
            "inputs": {
                "content": _tensor(["batch", 3, "height", "width"], "RGB in [0, 1], padded as 'padding' says"),
                "style_mean": _tensor(["style_batch", 512, 1, 1], "from the style graph; style_batch is batch or 1"),
                "style_std": _tensor(["style_batch", 512, 1, 1], "from the style graph; style_batch is batch or 1"),
                "alpha": _tensor([1], "style strength in [0, 1]; 0 gives the content through the decoder"),
            },
            "outputs": {
                "image": _tensor(
                    ["batch", 3, "height", "width"],
                    "RGB clamped to [0, 1] (as adain.Stylizer); crop to the unpadded size",
                )
            },
        },
        "style_graph": {
            "file": files.style.name,
            "sha256": digests["style"],
            "inputs": {
                "style": _tensor(
                    ["style_batch", 3, "style_height", "style_width"],
                    f"RGB in [0, 1], any size with both sides at least {MIN_STYLE_SIDE}; "
                    "adain.stylize resizes the shorter side to 512 first",
                )
            },
            "outputs": {
                "style_mean": _tensor(["style_batch", 512, 1, 1], stats),
                "style_std": _tensor(["style_batch", 512, 1, 1], stats),
            },
        },
        "padding": {
            "applies_to": "content",
            "mode": "reflect",
            "sides": ["bottom", "right"],
            "multiple": MULTIPLE,
            "min_side": MIN_SIDE,
            "crop": "image[..., :H, :W] with H, W the size before padding",
            "rule": f"pad H to max({MIN_SIDE}, {MULTIPLE} * ceil(H / {MULTIPLE})) and W likewise by reflection at the "
            "bottom and right (numpy.pad mode='reflect'), run, crop back (adain.modeling._padding)",
        },
    }
