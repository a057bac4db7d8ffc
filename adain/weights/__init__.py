"""Weights on disk and on the network: the package format, named weights and their sources, the Hub,
downloads, and the legacy formats (the reference port's ``.pth``, Torch7, torchvision). Works on
``(ModelConfig, state dict)`` pairs; ``adain.AdaINModel`` builds on it. Guide:
[weights and the Hub](../guides/weights.md)."""

from .._arguments import moved_modules
from . import _hf_environment  # noqa: F401 -- first: huggingface_hub imported with unusable timeouts hidden
from ._caffe import encoder_from_caffe as encoder_from_caffe
from ._download import DownloadProgress as DownloadProgress
from ._hub import push_to_hub as push_to_hub
from ._resolve import list_pretrained as list_pretrained

__all__ = ["DownloadProgress", "encoder_from_caffe", "list_pretrained", "push_to_hub"]

# The modules of the first layout, internal now: reachable for a while, with a DeprecationWarning.
__getattr__ = moved_modules(
    __name__,
    {
        name: f"adain.weights._{name}"
        for name in (
            "cache",
            "card",
            "download",
            "format",
            "hub",
            "legacy",
            "registry",
            "resolve",
            "torch7",
            "torchvision",
        )
    },
)
