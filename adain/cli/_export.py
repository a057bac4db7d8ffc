"""``adain export``: a model as ONNX graphs for onnxruntime and other runtimes.

    adain export WEIGHTS out.onnx [--overwrite]

writes ``out.onnx`` (content -> image, style statistics as inputs), ``out.style.onnx`` (style ->
statistics) and ``out.json`` (the sidecar). Outputs are checked before the weights are loaded: an
existing file is kept unless ``--overwrite``, and an output that is one of the inputs is always refused.
"""

from __future__ import annotations

import sys

from .._atomic import check_writable
from ..errors import install_hint
from ..export import export_onnx
from ..export._onnx import check_outputs, output_paths, require_export_extra
from ._common import load_model


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help=f"export a model to ONNX (needs {install_hint('export')})",
        description="Write OUT (.onnx, the content graph), OUT's stem + .style.onnx (the style graph) and "
        "+ .json (the sidecar: inputs, outputs, padding rule, versions).",
    )
    parser.add_argument(
        "weights", metavar="WEIGHTS", help="a registered name, a folder written by save_pretrained, or a Hub repo"
    )
    parser.add_argument("output", metavar="OUT", help="the content graph's file name, ending in .onnx")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    files = output_paths(args.output)
    check_outputs(files, overwrite=args.overwrite, inputs=[args.weights])
    check_writable(files.content.absolute().parent, "output")
    require_export_extra()  # before loading (perhaps downloading) the weights
    model = load_model(args.weights)
    export_onnx(model, files.content, overwrite=args.overwrite, inputs=[args.weights])
    print(
        f"wrote {files.content}, {files.style.name} and {files.sidecar.name} (checked in onnxruntime)", file=sys.stderr
    )
    return 0
