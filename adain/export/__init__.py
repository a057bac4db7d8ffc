"""Export to ONNX: two graphs (style -> statistics, content + statistics -> image) and a JSON sidecar."""

from ._onnx import ONNXFiles as ONNXFiles
from ._onnx import export_onnx as export_onnx

__all__ = ["ONNXFiles", "export_onnx"]
