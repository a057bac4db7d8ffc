"""What is finished, and the manifest that says so.

An output is finished when its file exists under its real name: every file is written atomically
(``adain._atomic``), so a name only ever holds a complete file, and a killed run leaves at most hidden
temporaries. Each shard also keeps records (JSONL segments, each written atomically: a record is never half
there) of what it did, for the skipped images' reasons. The manifest (``manifest.jsonl``, one JSON object per
content image, in key order) and, for WebDataset, the tar files and their index are made from both once every
image is accounted for; they are written by whichever shard finishes last, with the same bytes whoever does.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from .._atomic import atomic_path
from ._config import DatasetConfig
from ._plan import Item, tar_index, tar_name

STATE_DIR = ".adain-dataset"
"""Hidden folder in the output folder: ``records/`` (per-shard JSONL segments) and ``staging/`` (the finished
samples of a WebDataset tar not yet written)."""

MANIFEST = "manifest.jsonl"
"""The manifest's file name in the output folder."""

INDEX = "shards.json"
"""The WebDataset index's file name (the ``wids`` shard-index format: each tar's name and sample count)."""

FLUSH_EVERY = 256
"""Records kept in memory before a segment is written (and always at the end of a run)."""


def dumps(row: dict) -> str:
    """One manifest or record line (sorted keys, no spaces: the same bytes wherever it is made)."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Records:
    """The records of one shard: rows added from any thread, written as new segments of at most
    ``FLUSH_EVERY`` rows, each atomically under a new name (``<shard>-of-<shards>-<uuid>.jsonl``)."""

    def __init__(self, output: Path, shard_index: int, num_shards: int) -> None:
        self.folder = output / STATE_DIR / "records"
        self.prefix = f"{shard_index:05d}-of-{num_shards:05d}"
        self.rows: list[dict] = []
        self.lock = threading.Lock()

    def add(self, row: dict) -> None:
        """Keep ``row``; write a segment when ``FLUSH_EVERY`` are kept."""
        with self.lock:
            self.rows.append(row)
            if len(self.rows) >= FLUSH_EVERY:
                self._flush()

    def flush(self) -> None:
        """Write the rows kept so far as one segment (nothing when there are none)."""
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{self.prefix}-{uuid.uuid4().hex}.jsonl", replace=False) as tmp:
            tmp.write_text("".join(dumps(r) + "\n" for r in self.rows), encoding="utf-8")
        self.rows = []


def read_skips(output: Path) -> dict[str, str]:
    """``{content key: reason}`` of every image a shard recorded as skipped (a later record of the same
    image, in any segment, counts too: an image done since has its file, which wins over a skip)."""
    skips: dict[str, str] = {}
    folder = output / STATE_DIR / "records"
    for segment in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
        for line in segment.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("status") == "skipped":
                skips[row["content"]] = row.get("reason") or "skipped"
    return skips


def staging(output: Path, tar: int) -> Path:
    """The folder of tar number ``tar``'s finished samples while the tar is not written."""
    return output / STATE_DIR / "staging" / tar_name(tar)


def sample_file(item: Item, config: DatasetConfig) -> str:
    """The image's member name in its tar (also its name in the staging folder)."""
    return item.output + config.extension


def finished(items: Sequence[Item], output: Path, config: DatasetConfig) -> set[str]:
    """The keys of ``items`` whose output is finished: its file (``"tree"``), its staged sample, or a member of
    its written tar (``"webdataset"``)."""
    if config.layout == "tree":
        return {it.key for it in items if (output / it.output).is_file()}
    done: set[str] = set()
    tars: dict[int, set[str] | None] = {}
    for it in items:
        k = tar_index(it, config)
        if k not in tars:
            tars[k] = _members(output / tar_name(k))
        names = tars[k]
        if (it.output + config.extension in names) if names is not None else _staged(output, k, it, config):
            done.add(it.key)
    return done


def _staged(output: Path, tar: int, item: Item, config: DatasetConfig) -> bool:
    return (staging(output, tar) / sample_file(item, config)).is_file()


def _members(path: Path) -> set[str] | None:
    """The member names of a written tar, or ``None`` when it does not exist yet."""
    if not path.is_file():
        return None
    with tarfile.open(path) as tar:
        return set(tar.getnames())


def _row(item: Item, style: str, config: DatasetConfig, skips: dict[str, str], done: set[str]) -> dict:
    out = item.output if config.layout == "tree" else f"{tar_name(tar_index(item, config))}:{sample_file(item, config)}"
    ok = item.key in done
    return {
        "content": item.key,
        "style": style,
        "alpha": config.alpha,
        "output": out if ok else None,
        "status": "done" if ok else "skipped",
        "reason": None if ok else skips[item.key],
    }


def pack_tar(output: Path, tar: int, items: Sequence[Item], style_keys: Sequence[str], config: DatasetConfig) -> None:
    """Write tar number ``tar`` from its staged samples (sorted by name: each sample's image and a ``.json``
    with its content key, style key and alpha; fixed owner, mode and time, so the bytes depend on the
    samples only), then remove the staging folder. A tar already written is left as it is."""
    path = output / tar_name(tar)
    folder = staging(output, tar)
    if not path.exists():
        members: list[tuple[str, bytes]] = []
        for it in items:
            image = folder / sample_file(it, config)
            if image.is_file():
                meta = {"content": it.key, "style": style_keys[it.style], "alpha": config.alpha}
                members += [(sample_file(it, config), image.read_bytes()), (it.output + ".json", dumps(meta).encode())]
        with atomic_path(path, replace=False) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as out:
            for name, data in sorted(members):
                _add(out, name, data)
    shutil.rmtree(folder, ignore_errors=True)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
    tar.addfile(info, io.BytesIO(data))


def write_manifest(
    output: Path, items: Sequence[Item], style_keys: Sequence[str], config: DatasetConfig
) -> Path | None:
    """Write ``manifest.jsonl`` (and, for WebDataset, the tars still to pack and ``shards.json``) when every
    image is finished or recorded as skipped; ``None`` (nothing written) while another shard is not done."""
    skips = read_skips(output)
    done = finished(items, output, config)
    if any(it.key not in done and it.key not in skips for it in items):
        return None
    if config.layout == "webdataset":
        _write_tars(output, items, style_keys, config)
    rows = [_row(it, style_keys[it.style], config, skips, done) for it in items]
    path = output / MANIFEST
    with atomic_path(path) as tmp:
        tmp.write_text("".join(dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_tars(output: Path, items: Sequence[Item], style_keys: Sequence[str], config: DatasetConfig) -> None:
    shards = []
    for k, members in sorted(tars_of(items, config).items()):
        pack_tar(output, k, members, style_keys, config)
        shards.append({"url": tar_name(k), "nsamples": len(_members(output / tar_name(k)) or ()) // 2})
    index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": output.name, "shardlist": shards}
    with atomic_path(output / INDEX) as tmp:
        tmp.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")


def tars_of(items: Iterable[Item], config: DatasetConfig) -> dict[int, list[Item]]:
    """``items`` grouped by the tar they go into."""
    groups: dict[int, list[Item]] = {}
    for it in items:
        groups.setdefault(tar_index(it, config), []).append(it)
    return groups
