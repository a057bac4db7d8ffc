"""What a stylized dataset is made with (``DatasetConfig``), its presets, and the settings file that binds an
output folder to one configuration, so that a rerun resumes the same dataset and a changed one is refused
instead of mixing two datasets in one folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._arguments import check_alpha, check_int
from .._atomic import atomic_path
from .._io import DEFAULT_METADATA, check_metadata
from ..errors import InputError
from ..model import AdaINModel

FORMATS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
"""Output formats and the extension each writes."""

LAYOUTS = ("tree", "webdataset")
"""``"tree"``: a mirrored folder tree (class folders kept); ``"webdataset"``: tar shards plus an index."""

SETTINGS_FILE = "dataset.json"
"""The file in the output folder that records the configuration the dataset was made with."""

_SETTINGS_VERSION = 1


@dataclass(frozen=True)
class DatasetConfig:
    """How a dataset is stylized: everything that changes the output bytes (with the model, device type and
    dtype, which ``stylize_dataset`` adds), recorded in the output folder's ``dataset.json``.

    Attributes:
        seed: chooses each content image's style, from (seed, the image's path relative to the content root)
            only; any integer.
        alpha: style strength in [0, 1] (1: the style's statistics entirely).
        content_size: the content's shorter side is resized to this many pixels (bilinear, as
            ``torchvision.transforms.Resize``); ``None`` keeps the original size.
        content_crop: then the centre ``content_crop x content_crop`` square is kept (as ``CenterCrop``);
            ``None`` keeps the whole image, so detection and segmentation annotations stay valid to the pixel
            (with ``content_size=None`` too).
        style_size: each style's shorter side is resized to this many pixels before its statistics are taken;
            ``None`` keeps its size.
        style_crop: take the style's centre square (after resizing).
        format: ``"png"``, ``"jpeg"`` or ``"webp"`` (``FORMATS``): every output is written in it.
        quality: JPEG and WebP quality, 1 to 100 (PNG is lossless and ignores it).
        layout: ``"tree"`` (mirrored folders, ``a/b.JPEG`` -> ``a/b.png``) or ``"webdataset"`` (tar shards).
        samples_per_shard: content images per tar shard with ``layout="webdataset"``.
        preset: the preset's name when made with ``DatasetConfig.from_preset``, else ``None``.
        metadata: what each output keeps of its content file's colour profile and EXIF, as everywhere in the
            package: ``"no-gps"`` (default: both, without the GPS position), ``"keep"``, ``"strip"``.
    """

    seed: int = 0
    alpha: float = 1.0
    content_size: int | None = None
    content_crop: int | None = None
    style_size: int | None = 512
    style_crop: bool = False
    format: str = "png"
    quality: int = 95
    layout: str = "tree"
    samples_per_shard: int = 10_000
    preset: str | None = None
    metadata: str = DEFAULT_METADATA

    def __post_init__(self) -> None:
        # Normalised (numpy scalars, 224.0) so that dataset.json holds plain JSON numbers.
        object.__setattr__(self, "seed", check_int(self.seed, "seed", minimum=None))
        object.__setattr__(self, "alpha", check_alpha(self.alpha))
        for name in ("content_size", "content_crop", "style_size"):
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum=1, allow_none=True))
        if self.format not in FORMATS:
            raise InputError(f"format: expected one of {', '.join(FORMATS)}, got {self.format!r}")
        object.__setattr__(self, "quality", check_int(self.quality, "quality", minimum=1))
        if self.quality > 100:
            raise InputError(f"quality: expected an integer from 1 to 100, got {self.quality!r}")
        if self.layout not in LAYOUTS:
            raise InputError(f"layout: expected one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        object.__setattr__(self, "samples_per_shard", check_int(self.samples_per_shard, "samples_per_shard"))
        object.__setattr__(self, "style_crop", bool(self.style_crop))
        check_metadata(self.metadata)

    @classmethod
    def from_preset(cls, name: str, **changes: Any) -> DatasetConfig:
        """The configuration of a named recipe (``PRESETS``), with ``changes`` to its fields (e.g. ``seed``).

        Arguments:
            name: ``"stylized-imagenet"``: Geirhos et al. (ICLR 2019): content resized to 256 then centre-cropped
                to 224; style: its centre square at 224; alpha 1; PNG in the mirrored class folders.
            changes: fields to set differently (the ``preset`` field keeps the name).

        Returns:
            The ``DatasetConfig``.

        Raises:
            InputError: an unknown name.
        """
        if name not in PRESETS:
            raise InputError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}")
        return dataclasses.replace(PRESETS[name], **changes)

    @property
    def extension(self) -> str:
        """The output files' extension, with its dot (``".png"``)."""
        return FORMATS[self.format]


PRESETS: dict[str, DatasetConfig] = {
    "stylized-imagenet": DatasetConfig(
        alpha=1.0,
        content_size=256,
        content_crop=224,
        style_size=224,
        style_crop=True,
        format="png",
        preset="stylized-imagenet",
    ),
}
"""Named configurations (``DatasetConfig.from_preset``)."""


def model_id(model: AdaINModel) -> str:
    """16 hex digits of the sha256 of every weight of ``model`` (encoder and decoder, names, dtypes, values)
    and its eps: the outputs' dependence on the model, recorded in ``dataset.json``."""
    digest = hashlib.sha256(repr(model.config.eps).encode())
    for name, t in sorted(model.state_dict().items()):
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def settings(
    config: DatasetConfig, model: str, device: torch.device, dtype: torch.dtype, styles: Sequence[str]
) -> dict:
    """The JSON object ``dataset.json`` holds: the config's fields, the model id, the device type and dtype
    (outputs are byte-identical only within one of each) and a digest of the style keys (which decide the
    assignment of styles)."""
    keys = hashlib.sha256("\n".join(styles).encode()).hexdigest()[:16]
    return {
        "settings_version": _SETTINGS_VERSION,
        **dataclasses.asdict(config),
        "model": model,
        "device_type": device.type,
        "dtype": str(dtype).replace("torch.", ""),
        "styles": f"{len(styles)} files, keys sha256 {keys}",
    }


def bind_folder(output: Path, wanted: dict) -> None:
    """Make ``output`` the folder of the dataset ``wanted`` describes, or check that it is.

    A new or empty folder gets ``dataset.json`` (created atomically, never replaced: when ranks start
    together, one writes it and the others compare). Raises ``InputError`` (one line, naming the folder and
    the first differing settings) when the folder holds another configuration's dataset, or files that are not
    a dataset (no ``dataset.json``): a user's files are never mixed with, or replaced by, outputs.
    """
    path = output / SETTINGS_FILE
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder; choose a folder for the dataset")
    if not path.exists():
        if output.is_dir() and any(not name.startswith(".") for name in os.listdir(output)):
            raise InputError(
                f"{output}: holds files but no {SETTINGS_FILE}, so it is not a stylized dataset; "
                "choose a new or empty folder"
            )
        output.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(path, replace=False) as tmp:
                tmp.write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        except FileExistsError:
            pass  # another rank wrote it first: compared below
    _compare(path, wanted)


def _compare(path: Path, wanted: dict) -> None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the dataset's settings ({exc}); choose another output folder") from None
    if not isinstance(found, dict):
        raise InputError(f"{path}: not a settings file (a JSON object); choose another output folder")
    differ = [f"{k}={found.get(k)!r} (asked: {v!r})" for k, v in wanted.items() if found.get(k) != v]
    if differ:
        raise InputError(
            f"{path.parent}: made with other settings: {', '.join(differ)}; rerun with the same settings to "
            "resume it, or choose another output folder"
        )
