"""``stylize_dataset``: one shard of a dataset, from listing the files to the manifest.

The main thread runs the model; DataLoader workers decode the content images (pinned memory when the device
is a GPU); a thread pool encodes and writes the outputs, so the model does not wait on files.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader

from .._arguments import check_int
from .._atomic import check_writable
from .._io import DEFAULT_MAX_PIXELS, list_images, read_metadata, save_image
from .._runtime import check_max_memory, resolve_device, resolve_dtype
from ..errors import ImageReadError, InputError, OutputExistsError
from ..inference import Engine, StyleBank
from ..model import AdaINModel, load_pretrained
from . import _records as records
from ._compute import ContentImages, keep_list, stylize_frames
from ._config import DatasetConfig, bind_folder, model_id, settings
from ._launch import launch_shard
from ._plan import Item, check_shard, list_contents, plan, relative_key, shard_of, tar_index
from ._styles import dataset_bank


@dataclass(frozen=True)
class DatasetProgress:
    """Where a shard stands, given to ``stylize_dataset``'s ``callback`` after each batch.

    Attributes:
        done: images of this shard finished so far, this run and earlier ones.
        skipped: images of this shard skipped so far in this run (unreadable).
        total: images of this shard.
    """

    done: int
    skipped: int
    total: int


@dataclass(frozen=True)
class DatasetResult:
    """What ``stylize_dataset`` did.

    Attributes:
        output: the output folder.
        shard_index: the shard this process computed.
        num_shards: how many shards the dataset is split into.
        total: content images of the whole dataset.
        computed: images of this shard stylized by this call.
        reused: images of this shard already finished by an earlier run (not computed again).
        skipped: ``{content key: reason}`` of this shard's images that could not be stylized (in the manifest).
        styles_skipped: ``{style key: reason}`` of style images that could not be read (left out of the bank).
        manifest: the manifest's path once every shard is finished, else ``None`` (another shard is not done;
            the last shard to finish writes it).
    """

    output: Path
    shard_index: int
    num_shards: int
    total: int
    computed: int
    reused: int
    skipped: dict[str, str]
    styles_skipped: dict[str, str]
    manifest: Path | None


def stylize_dataset(
    content_root: str | os.PathLike,
    style_root: str | os.PathLike,
    output: str | os.PathLike,
    *,
    config: DatasetConfig | None = None,
    model: AdaINModel | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    max_memory: int | None = None,
    batch_size: int = 16,
    workers: int = 0,
    writer_threads: int = 4,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    callback: Callable[[DatasetProgress], None] | None = None,
) -> DatasetResult:
    """Stylize every image below ``content_root`` with one style from ``style_root``, resumably.

    Each image's style is chosen from (``config.seed``, its path relative to ``content_root``) only, so the
    outputs are byte-identical whatever the shard count, ``workers`` and ``batch_size`` (on one device type, in
    one dtype). Outputs are written atomically; a rerun of the same call computes only what is not finished. The
    output folder is bound to the configuration (``dataset.json``): another one is refused. Every image ends in
    ``manifest.jsonl`` as done or skipped with its reason. Guide: [datasets](../guides/datasets.md).

    Arguments:
        content_root: a folder of images (searched recursively; sub-folders such as classes are mirrored).
        style_root: a folder of style images (or one image).
        output: the output folder (new, empty, or this dataset's).
        config: sizes, seed, alpha, format, layout (``DatasetConfig``; ``DatasetConfig.from_preset(...)``); default
            ``DatasetConfig()``.
        model: the ``AdaINModel``; default ``load_pretrained()``.
        shard_index: the shard this call computes, ``0 <= shard_index < num_shards`` (a Slurm array task id).
        num_shards: how many shards the dataset is split into. Under ``torchrun`` each shard is split again
            over the ranks (``RANK``, ``WORLD_SIZE``; one GPU per rank, ``cuda:LOCAL_RANK``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None``: CUDA when available.
        dtype: compute dtype; ``None``: bfloat16 on CUDA with bf16, float32 elsewhere.
        max_memory: bytes one forward pass may use; ``None``: 80% of the free memory. Larger images are tiled.
        batch_size: images decoded per DataLoader batch (the outputs do not depend on it).
        workers: DataLoader worker processes decoding images (0: in this process).
        writer_threads: threads encoding and writing outputs.
        max_pixels: content and style files with more pixels are refused as decompression bombs.
        callback: receives a ``DatasetProgress`` after each batch.

    Returns:
        The ``DatasetResult``.

    Raises:
        InputError: a bad argument, no images, two images with one output name, or an output folder that holds
            another configuration's dataset or files that are not a dataset.
        DiskFullError: the disk is full (finished outputs stay; rerun to resume).
    """
    config = _check_options(config, shard_index, num_shards, batch_size, workers, writer_threads)
    shard_index, num_shards, device = launch_shard(shard_index, num_shards, device)
    check_writable(output, "output")  # before the weights load: a read-only folder is found in a second
    dev = resolve_device(device)
    model = model if model is not None else load_pretrained()
    engine = Engine(model, dev, resolve_dtype(dtype, dev), max_memory=check_max_memory(max_memory))
    content_root, output = Path(content_root), Path(output)
    styles = [(relative_key(p, Path(style_root)), p) for p in list_images(style_root, exclude=[output])]
    contents = list_contents(content_root, output)
    if not styles or not contents:
        raise InputError(f"{style_root if not styles else content_root}: no images found")
    wanted = settings(config, model_id(model), dev, engine.dtype, [k for k, _ in sorted(styles)])
    bind_folder(output, wanted)
    bank, styles_skipped = dataset_bank(engine, model, sorted(styles), config, output, max_pixels)
    items = plan(contents, config, len(bank))
    mine = [it for it in items if shard_of(it, config, num_shards) == shard_index]
    done = records.finished(mine, output, config)
    todo = [it for it in mine if it.key not in done]
    shard = _Shard(engine, bank, config, output, records.Records(output, shard_index, num_shards), writer_threads)
    skipped = shard.run(todo, len(done), len(mine), batch_size, workers, max_pixels, callback)
    if config.layout == "webdataset":
        for k, group in records.tars_of(mine, config).items():  # each tar is wholly this shard's
            records.pack_tar(output, k, group, bank.keys, config)
    return DatasetResult(
        output,
        shard_index,
        num_shards,
        len(items),
        len(todo) - len(skipped),
        len(done),
        skipped,
        styles_skipped,
        records.write_manifest(output, items, bank.keys, config),
    )


def _check_options(
    config: DatasetConfig | None, shard_index: int, num_shards: int, batch_size: int, workers: int, threads: int
) -> DatasetConfig:
    """The config (default ``DatasetConfig()``), after checking the run's options (``InputError`` naming one)."""
    config = DatasetConfig() if config is None else config
    if not isinstance(config, DatasetConfig):
        raise InputError(f"config: expected a DatasetConfig, got {type(config).__name__}")
    check_shard(shard_index, num_shards)
    for value, name, least in ((batch_size, "batch_size", 1), (workers, "workers", 0), (threads, "writer_threads", 1)):
        check_int(value, name, minimum=least)
    return config


class _Shard:
    """One run's computation: decode, stylize, write, record."""

    def __init__(
        self, engine: Engine, bank: StyleBank, config: DatasetConfig, output: Path, recs: records.Records, threads: int
    ) -> None:
        self.engine, self.bank, self.config, self.output, self.records = engine, bank, config, output, recs
        self.threads = threads

    def run(
        self,
        todo: list[Item],
        done: int,
        total: int,
        batch_size: int,
        workers: int,
        max_pixels: int,
        callback: Callable[[DatasetProgress], None] | None,
    ) -> dict[str, str]:
        """Stylize ``todo``; returns ``{key: reason}`` of the images skipped."""
        loader = DataLoader(
            ContentImages(todo, self.config, max_pixels),
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=keep_list,
            pin_memory=self.engine.device.type == "cuda",
            prefetch_factor=4 if workers else None,
        )
        skipped: dict[str, str] = {}
        pending: deque[Future] = deque()
        try:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="adain-writer") as pool:
                for batch in loader:
                    good = [(todo[i], frame) for i, frame, reason in batch if not reason]
                    for i, _, reason in batch:
                        if reason:
                            skipped[todo[i].key] = reason
                            self.records.add(self._row(todo[i], None, reason))
                    for item, out in zip(
                        (it for it, _ in good), self._stylize([f for _, f in good], [it for it, _ in good])
                    ):
                        pending.append(pool.submit(self._write, item, out))
                    while len(pending) > 4 * self.threads:
                        pending.popleft().result()
                        done += 1
                    if callback is not None:
                        callback(DatasetProgress(done, len(skipped), total))
                while pending:
                    pending.popleft().result()
                    done += 1
        finally:
            self.records.flush()
        if callback is not None:
            callback(DatasetProgress(done, len(skipped), total))
        return skipped

    def _stylize(self, frames: list[Tensor], items: list[Item]) -> list[Tensor]:
        if not frames:
            return []
        mean, std = self.bank.stats([it.style for it in items])
        return stylize_frames(self.engine, frames, mean, std, self.config.alpha)

    def _write(self, item: Item, image: Tensor) -> None:
        """Encode and write one output atomically (never replacing a file), then record it."""
        if self.config.layout == "tree":
            path = self.output / item.output
        else:
            path = records.staging(self.output, tar_index(item, self.config)) / records.sample_file(item, self.config)
        picture = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
        try:
            kept = read_metadata(item.path, metadata=self.config.metadata)  # the package's one rule: no GPS
        except ImageReadError:
            kept = {}  # its pixels were read: a header that cannot be read again only loses the metadata
        try:
            save_image(picture, path, quality=self.config.quality, overwrite=False, **kept)
        except OutputExistsError:
            pass  # written meanwhile by another process computing the same shard: the same bytes
        self.records.add(self._row(item, item.output, None))

    def _row(self, item: Item, out: str | None, reason: str | None) -> dict:
        return {
            "content": item.key,
            "style": self.bank.keys[item.style],
            "alpha": self.config.alpha,
            "output": out,
            "status": "skipped" if reason else "done",
            "reason": reason,
        }
