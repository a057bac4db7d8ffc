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
import os
import sys
import typing
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError, install_hint
from ._checkpoint import load_latest_checkpoint
from ._errors import ConfigError, Setting


@dataclass(frozen=True)
class TrainConfig:
    """Every training option, with the paper's recipe (reference-port numerics) as defaults.

    ``train(TrainConfig(content_dir=..., style_dir=...))`` trains; ``TrainConfig.from_run(out)`` is the
    configuration of an earlier run, to continue it. Recipes (``recipe_names()``) are TOML files of these
    fields.

    Attributes:
        content_dir: folder of content images (searched recursively), e.g. MS-COCO train2014.
        style_dir: folder of style images, e.g. WikiArt.
        vgg: encoder weights: a named weight, a package-format directory, or vgg_normalised.pth.
        out: the run directory: checkpoints, logs, samples, final/.
        max_iter: optimisation steps.
        batch_size: image pairs per step (per process in data-parallel runs).
        lr: Adam learning rate at step 0.
        lr_decay: inverse-time decay: lr / (1 + lr_decay * step).
        content_weight: weight of the content loss.
        style_weight: weight of the style loss (mean reduction, like the reference port).
        style_layer_weights: factors for relu1_1..relu4_1.
        image_size: shorter side after resizing (aspect kept), pixels.
        crop_size: random square crop, pixels; a multiple of 8, at most ``image_size``.
        min_image_side: images with a shorter side below this are skipped as too small.
        max_bad_fraction: stop if more than this fraction of either folder is unreadable (at least 3 bad
            files are always tolerated, more than half a folder never).
        max_nonfinite: stop after this many non-finite losses in a row.
        save_every: steps between checkpoints (a SIGKILL loses at most this many).
        keep_checkpoints: newest checkpoints kept.
        sample_every: steps between sample grids (0: none).
        eval_pairs: image pairs scored at each checkpoint (content and style losses, a grid); 0: none.
        eval_content_dir: held-out content images for those pairs (a style folder is needed too); empty: the first
            training pairs are scored instead.
        eval_style_dir: held-out style images for those pairs (a content folder is needed too).
        log_every: steps averaged per log row.
        seed: fixes initialisation, data order and crops.
        device: "auto" (CUDA if available), "cpu", "cuda", "cuda:1", ...
        workers: data-loading processes (0: load in the training process).
        resume: continue the run in ``out`` from its newest valid checkpoint; without it, a directory that
            holds a run is refused.
        init_decoder: start from these decoder weights (directory, decoder.pth or name) to fine-tune.
        push_to_hub: upload the run's final/ to this Hugging Face Hub repo at the end.
        compile: torch.compile the decoder and encoder.
        dtype: "auto" (bfloat16 autocast on CUDA, float32 elsewhere), "float32", "bfloat16".
    """

    content_dir: str = ""
    style_dir: str = ""
    vgg: str = "default"
    out: str = "runs/adain"
    max_iter: int = 160_000
    batch_size: int = 8
    lr: float = 1e-4
    lr_decay: float = 5e-5
    content_weight: float = 1.0
    style_weight: float = 10.0
    style_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    image_size: int = 512
    crop_size: int = 256
    min_image_side: int = 64
    max_bad_fraction: float = 0.05
    max_nonfinite: int = 20
    save_every: int = 1000
    keep_checkpoints: int = 3
    sample_every: int = 1000
    eval_pairs: int = 4
    eval_content_dir: str = ""
    eval_style_dir: str = ""
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    workers: int = 4
    resume: bool = False
    init_decoder: str = ""
    push_to_hub: str = ""
    compile: bool = False
    dtype: str = "auto"

    def validate(self) -> TrainConfig:
        """This configuration, checked, with paths as strings (``os.PathLike`` accepted; a checkpoint stores
        plain values). Raises ``ConfigError`` naming the first field that cannot be used."""
        paths = {
            name: os.fspath(getattr(self, name)) for name in _PATHS if isinstance(getattr(self, name), os.PathLike)
        }
        config = replace(self, **paths)
        for name in ("content_dir", "style_dir"):
            if not getattr(config, name):
                raise ConfigError(name, "required (a folder of images)")
        for name in ("max_iter", "batch_size", "image_size", "crop_size", "save_every", "log_every", "max_nonfinite"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f"must be an integer, at least 1, got {value!r}")
        if config.crop_size > config.image_size or config.crop_size % 8:
            raise ConfigError(
                "crop_size",
                "must be a multiple of 8 and at most ",
                Setting("image_size"),
                f" ({config.image_size}), got {config.crop_size}",
            )
        if len(config.style_layer_weights) != 4:
            raise ConfigError(
                "style_layer_weights",
                f"needs 4 numbers (relu1_1, relu2_1, relu3_1, relu4_1), got {config.style_layer_weights!r}",
            )
        if config.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError("dtype", f"must be auto, float32 or bfloat16, got {config.dtype!r}")
        if isinstance(config.eval_pairs, bool) or not isinstance(config.eval_pairs, int) or config.eval_pairs < 0:
            raise ConfigError("eval_pairs", f"must be an integer, at least 0, got {config.eval_pairs!r}")
        if bool(config.eval_content_dir) != bool(config.eval_style_dir):
            raise ConfigError(
                "eval_style_dir" if config.eval_content_dir else "eval_content_dir",
                "needed too: held-out pairs take both a content and a style folder",
            )
        if not 0 <= config.max_bad_fraction <= 1:
            raise ConfigError("max_bad_fraction", f"must be in [0, 1], got {config.max_bad_fraction}")
        return config

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike) -> TrainConfig | None:
        """The configuration that continues the run in ``run_dir``: the one its newest valid checkpoint was
        written with, with ``out=run_dir`` and ``resume=True``; ``None`` when it holds no valid checkpoint.

        Change what may change before training, e.g. ``replace(config, max_iter=200_000)``.
        """
        found = load_latest_checkpoint(run_dir)
        if found is None:
            return None
        saved = {k: v for k, v in found[1]["config"].items() if k not in ("out", "resume")}
        return config_from(cls(), {**saved, "out": os.fspath(run_dir), "resume": True})


_PATHS = ("content_dir", "style_dir", "vgg", "out", "init_decoder", "eval_content_dir", "eval_style_dir")


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
    raise InputError(f"{name_or_path}: not a file, nor a recipe name ({', '.join(recipe_names())})")


def read_toml(name_or_path: str) -> dict[str, Any]:
    """Options from a recipe name or TOML file (keys may use - or _) as ``{field: value}``.

    Each value is checked against its field's type; an unreadable file, an unknown key or a wrong type is an
    ``InputError`` whose message starts with the file's path.
    """
    path = recipe_path(name_or_path)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the `train` extra installs tomli
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise InputError(f"{path}: reading TOML on Python 3.10 needs tomli: {install_hint('train')}") from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
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
        raise InputError(f"{path}: unknown key {key!r} ({hint})")
    kind = hints[name]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if typing.get_origin(kind) is tuple:
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            return tuple(float(v) for v in value)
        expected = "a list of numbers, e.g. [1.0, 1.0, 1.0, 1.0]"
    elif kind is float and number:
        return float(value)
    elif (kind is int and number and isinstance(value, int)) or (kind in (bool, str) and isinstance(value, kind)):
        return value
    else:
        expected = _EXPECTED.get(kind, str(kind))
    raise InputError(f"{path}: {key} = {json.dumps(value, default=str)} must be {expected}")
