"""Every training option and its default, in one place: ``TrainConfig``; and the recipes that set them.

A recipe is a TOML file of ``TrainConfig`` fields. The ones shipped with the package (``paper``,
``reference_port``, ``torch_original``) live in ``adain/training/recipes/`` and are found by name from
any working directory; a path to any other TOML file works too. Values are type-checked against the
fields' types (an integer is accepted where a number is expected, ``true``/``false`` only where a switch
is), and each error is one line naming the file and the key.
"""

from __future__ import annotations

import difflib
import json
import typing
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError


@dataclass(frozen=True)
class TrainConfig:
    """Every training option. Defaults follow the paper/reference-port recipe (DESIGN.md)."""

    content_dir: str = field(default="", metadata={"help": 'folder of content images (searched recursively), e.g. MS-COCO train2014'})
    style_dir: str = field(default="", metadata={"help": 'folder of style images, e.g. WikiArt'})
    vgg: str = field(default="default", metadata={"help": 'encoder weights: a named weight, a package-format directory, or vgg_normalised.pth'})
    out: str = field(default="runs/adain", metadata={"help": 'RUN_DIR: checkpoints, logs, samples, final/'})
    max_iter: int = field(default=160_000, metadata={"help": 'optimisation steps'})
    batch_size: int = field(default=8, metadata={"help": 'image pairs per step (per process in data-parallel runs)'})
    lr: float = field(default=1e-4, metadata={"help": 'Adam learning rate at step 0'})
    lr_decay: float = field(default=5e-5, metadata={"help": 'inverse-time decay: lr / (1 + lr_decay * step)'})
    content_weight: float = field(default=1.0, metadata={"help": "weight of the content loss"})
    style_weight: float = field(default=10.0, metadata={"help": 'weight of the style loss (mean reduction, like the reference port)'})
    style_layer_weights: tuple[float, ...] = field(default=(1.0, 1.0, 1.0, 1.0), metadata={"help": 'factors for relu1_1..relu4_1'})
    image_size: int = field(default=512, metadata={"help": 'shorter side after resizing (aspect kept), pixels'})
    crop_size: int = field(default=256, metadata={"help": 'random square crop, pixels'})
    min_image_side: int = field(default=64, metadata={"help": 'images with a shorter side below this are skipped as too small'})
    max_bad_fraction: float = field(default=0.05, metadata={"help": 'stop if more than this fraction of either folder is unreadable (at least 3 bad files are always tolerated, more than half a folder never)'})
    max_nonfinite: int = field(default=20, metadata={"help": 'stop after this many non-finite losses in a row'})
    save_every: int = field(default=1000, metadata={"help": 'steps between checkpoints (a SIGKILL loses at most this many)'})
    keep_checkpoints: int = field(default=3, metadata={"help": 'newest checkpoints kept'})
    sample_every: int = field(default=1000, metadata={"help": 'steps between sample grids (0: none)'})
    log_every: int = field(default=10, metadata={"help": 'steps averaged per log row'})
    seed: int = field(default=0, metadata={"help": 'fixes initialisation, data order and crops'})
    device: str = field(default="auto", metadata={"help": '"auto" (CUDA if available), "cpu", "cuda", "cuda:1", ...'})
    workers: int = field(default=4, metadata={"help": 'data-loading processes (0: load in the training process)'})
    resume: bool = field(default=False, metadata={"help": 'continue from the newest valid checkpoint in RUN_DIR'})
    init_decoder: str = field(default="", metadata={"help": 'start from these decoder weights (directory, decoder.pth or name) to fine-tune'})
    push_to_hub: str = field(default="", metadata={"help": 'upload RUN_DIR/final to this Hugging Face Hub repo at the end'})
    compile: bool = field(default=False, metadata={"help": 'torch.compile the decoder and encoder'})
    dtype: str = field(default="auto", metadata={"help": '"auto" (bfloat16 autocast on CUDA, float32 elsewhere), "float32", "bfloat16"'})

    def validate(self) -> TrainConfig:
        for name in ("content_dir", "style_dir"):
            if not getattr(self, name):
                raise InputError(f"--{name.replace('_', '-')} is required (a folder of images)")
        for name in ("max_iter", "batch_size", "image_size", "crop_size", "save_every", "log_every", "max_nonfinite"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.crop_size > self.image_size or self.crop_size % 8:
            raise InputError(f"--crop-size must be a multiple of 8 and at most --image-size, got {self.crop_size}")
        if len(self.style_layer_weights) != 4:
            raise InputError("--style-layer-weights needs 4 numbers (relu1_1, relu2_1, relu3_1, relu4_1)")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise InputError(f"--dtype must be auto, float32 or bfloat16, got {self.dtype!r}")
        if not 0 <= self.max_bad_fraction <= 1:
            raise InputError(f"--max-bad-fraction must be in [0, 1], got {self.max_bad_fraction}")
        return self


def config_from(base: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``base`` with ``overrides`` (keys are field names; unknown keys raise ``InputError``)."""
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InputError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
    values = dict(overrides)
    if "style_layer_weights" in values:
        values["style_layer_weights"] = tuple(float(v) for v in values["style_layer_weights"])
    return replace(base, **values)


def recipe_names() -> list[str]:
    """The recipes shipped with the package, e.g. ``["paper", "reference_port", "torch_original"]``."""
    folder = resources.files(__package__) / "recipes"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def recipe_path(name_or_path: str) -> Path:
    """A recipe name (``"paper"``) or a path to a TOML file -> the file's path."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".toml" or path.exists():
        return path
    name = name_or_path.replace("-", "_")
    if name in recipe_names():
        return Path(str(resources.files(__package__) / "recipes" / f"{name}.toml"))
    raise InputError(f"--config {name_or_path}: not a file, nor a recipe name ({', '.join(recipe_names())})")


def read_toml(name_or_path: str) -> dict[str, Any]:
    """Options from a recipe name or TOML file (keys may use - or _); unknown keys are an ``InputError``."""
    path = recipe_path(name_or_path)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the `train` extra installs tomli
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise InputError("reading --config on Python 3.10 needs tomli: pip install 'adain[train]'") from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise InputError(f"--config {path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"--config {path}: not valid TOML ({exc})") from None
    return {key.replace("-", "_"): _typed(value, key, path) for key, value in data.items()}


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string in quotes"}


def _typed(value: Any, key: str, path: Path) -> Any:
    """``value`` of TOML key ``key`` checked against its ``TrainConfig`` field (ints become floats where
    numbers are expected, lists tuples); a wrong type is an ``InputError`` naming the file and the key."""
    hints = typing.get_type_hints(TrainConfig)
    name = key.replace("-", "_")
    if name not in hints:
        close = difflib.get_close_matches(name, list(hints), n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(hints)}"
        raise InputError(f"--config {path}: unknown key {key!r} ({hint})")
    kind = hints[name]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if typing.get_origin(kind) is tuple:
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     for v in value):
            return tuple(float(v) for v in value)
        expected = "a list of numbers, e.g. [1.0, 1.0, 1.0, 1.0]"
    elif kind is float and number:
        return float(value)
    elif (kind is int and number and isinstance(value, int)) or (kind in (bool, str) and isinstance(value, kind)):
        return value
    else:
        expected = _EXPECTED.get(kind, str(kind))
    raise InputError(f"--config {path}: {key} = {json.dumps(value, default=str)} must be {expected}")


