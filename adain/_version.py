"""The package version, in a module of its own so that any module can read it without importing the package."""

__version__ = "0.1.0"
"""The version of the package, a PEP 440 string such as ``"0.1.0"`` (also recorded in the ONNX sidecar)."""
