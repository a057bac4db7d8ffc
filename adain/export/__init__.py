"""Export to ONNX: two graphs (style -> statistics, content + statistics -> image) and a JSON sidecar.

``adain.export.export_onnx(model, "out/adain.onnx")`` writes ``out/adain.onnx``, ``out/adain.style.onnx``
and ``out/adain.json``; it needs the extra: ``pip install 'adain[export]'``. Guide:
[export](../guides/export-and-demo.md).
"""

from .. import model as _model
from ._onnx import ONNXFiles as ONNXFiles
from ._onnx import export_onnx as export_onnx

__all__ = ["ONNXFiles", "export_onnx"]

# The deprecated ``AdaINModel.export_onnx`` forwards to ``export_onnx`` through this slot (``adain.model`` may not
# import this package, which builds on it; see ``adain.model.onnx_exporter``).
_model.onnx_exporter = export_onnx
