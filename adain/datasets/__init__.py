"""Stylizing whole datasets: one style per image, chosen deterministically from the seed and the image's
path; resumable, sharded over processes, GPUs and nodes (``--shard-index``/``--num-shards``, ``torchrun``);
a mirrored folder tree or WebDataset tar shards; the ``stylized-imagenet`` preset; a manifest of every image.
Guide: [datasets and augmentation](../guides/datasets.md)."""

from ._config import PRESETS as PRESETS
from ._config import DatasetConfig as DatasetConfig
from ._plan import style_index as style_index
from ._run import DatasetProgress as DatasetProgress
from ._run import DatasetResult as DatasetResult
from ._run import stylize_dataset as stylize_dataset

__all__ = ["PRESETS", "DatasetConfig", "DatasetProgress", "DatasetResult", "style_index", "stylize_dataset"]
