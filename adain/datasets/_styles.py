"""The dataset's style bank: every style image's relu4_1 statistics, measured once and kept in the output folder
(``style-bank.safetensors``), so that a rerun, another shard or another rank reuses them instead of reading the
style images again."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from torch import Tensor

from .._atomic import atomic_path
from .._images import to_tensor
from ..errors import ImageReadError, OutputExistsError
from ..inference import Engine, StyleBank
from ..model import AdaINModel
from ._config import DatasetConfig
from ._records import STATE_DIR

BANK_FILE = "style-bank.safetensors"
"""The bank's file name in the output folder."""

SKIPPED_STYLES = "styles-skipped.json"
"""Style images that could not be read, with the reason (in the output folder's hidden state folder)."""


def recipe(config: DatasetConfig) -> dict[str, str]:
    """How the styles were prepared, saved with the bank."""
    return {"size": str(config.style_size), "crop": str(config.style_crop).lower()}


def dataset_bank(
    engine: Engine,
    model: AdaINModel,
    styles: Sequence[tuple[str, Path]],
    config: DatasetConfig,
    output: Path,
    max_pixels: int,
) -> tuple[StyleBank, dict[str, str]]:
    """The bank of the dataset in ``output``: loaded when it is there (checked against ``model``'s encoder),
    else measured from ``styles`` (``(key, path)`` in key order; unreadable ones left out) and saved.

    Returns:
        The bank (its keys in the order of ``styles``) and ``{key: reason}`` of the styles left out.

    Raises:
        InputError: a bank of another encoder, or no style image can be read.
    """
    path = output / BANK_FILE
    skipped_path = output / STATE_DIR / SKIPPED_STYLES
    if path.is_file():
        skipped = json.loads(skipped_path.read_text(encoding="utf-8")) if skipped_path.is_file() else {}
        return StyleBank.load(path, model=model), skipped
    skipped = {}
    bank = StyleBank.build(engine, _decoded(styles, config, max_pixels, skipped), recipe=recipe(config))
    skipped_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(skipped_path) as tmp:
        tmp.write_text(json.dumps(skipped, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    try:
        bank.save(path)
    except OutputExistsError:
        pass  # another rank measured the same styles first: the same values
    return bank, skipped


def _decoded(
    styles: Sequence[tuple[str, Path]], config: DatasetConfig, max_pixels: int, skipped: dict[str, str]
) -> Iterator[tuple[str, Tensor]]:
    for key, file in styles:
        try:
            image = to_tensor(file, size=config.style_size, crop=config.style_crop, what="style", max_pixels=max_pixels)
        except ImageReadError as exc:
            skipped[key] = str(exc)
            continue
        yield key, image
