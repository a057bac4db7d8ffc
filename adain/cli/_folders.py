"""Folder mode of ``adain stylize`` and ``adain gatys``: the content x style pairs, then writing them.

CONTENT is a file or a folder, STYLE one or more files or folders; one content file with one style (or
one blend) and ``-o file.ext`` writes that file, otherwise ``-o`` is a folder of
``<content>_stylized_<style>.<ext>`` mirroring the content folder's sub-folders (names and output
safety: ``outputs``). Everything that can be checked is checked before any work, so before the weights
are loaded: the arguments, that every input exists, the output names. Then, pair by pair:

- an output that exists is skipped with a one-line notice; ``--overwrite`` replaces it (atomically);
- a pair that fails (an unreadable image, a folder that cannot be written, ...) is one line on stderr
  and the others go on; a style that cannot be read fails each of its pairs once;
- an entry of an input folder that cannot be read is one line and counts as a failure.

Exit status: ``EXIT_ERROR`` (1) if anything failed, else ``EXIT_SKIPPED`` (3) if an output was skipped
because it exists, else 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from .. import _io as io
from .._arguments import normalize_style_weights
from .._atomic import NAME_MAX, check_writable
from .._runtime import resolve_device
from ..errors import AdaINError, ImageReadError, InputError, OutputExistsError
from . import EXIT_ERROR, EXIT_SKIPPED
from ._flags import in_flags
from ._outputs import (
    case_insensitive,
    check_names,
    content_names,
    existing_outputs,
    output_is_file,
    refuse_inside_inputs,
    style_labels,
    too_long,
)

_FAILURES = (AdaINError, OSError, ValueError, RuntimeError)
"""What one pair may fail with without stopping the others (what ``adain.cli.main`` reports in one line)."""

Pair = tuple[int, int]  # (content index, style index)


@dataclass
class StyleSet:
    label: str  # goes into output names
    sources: list[Path]  # one file, or several blended (or placed by a mask)

    @property
    def argument(self) -> str | list[str]:
        """What the library's ``style`` argument gets: one path, or a list of them."""
        return str(self.sources[0]) if len(self.sources) == 1 else [str(s) for s in self.sources]


@dataclass
class Plan:
    contents: list[Path]
    styles: list[StyleSet]
    targets: dict[Pair, Path]  # where each pair is written
    single: bool  # one content file with one style (set): errors are raised, not counted
    overwrite: bool = False
    quality: int = 95
    existing: set[Pair] = field(default_factory=set)  # outputs that exist: skipped (unless overwrite)
    refused: dict[Pair, str] = field(default_factory=dict)  # pairs known to fail before any work: why
    unreadable: int = 0  # entries of the input folders that could not be read (reported)
    metadata: str = io.DEFAULT_METADATA  # what of each content's ICC profile and EXIF its outputs keep
    flags: dict[str, str] = field(default_factory=dict)  # library argument -> flag, for failure lines

    @property
    def total(self) -> int:
        return len(self.contents) * len(self.styles)

    @property
    def pending(self) -> int:
        """Pairs that will be computed (a run with none needs no model)."""
        return self.total - len(self.existing) - len(self.refused)


class _Unreadable:
    """``on_error`` of ``io.list_images``: one line per entry of an input folder that cannot be read."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, path: Path, reason: str) -> None:
        self.count += 1
        print(f"adain: error: {path}: cannot be read ({reason}); left out", file=sys.stderr)


def plan_pairs(args: argparse.Namespace, *, combine: bool, inputs: Sequence[str | None] = ()) -> Plan:
    """The content x style pairs of ``args`` and where each goes, every check done; ``combine``: all STYLE
    files are one style (a blend or a masked pair); ``inputs``: the command's other input files (e.g.
    gatys' ``--masks``), checked to exist and never written."""
    resolve_device(args.device)
    out, to_file = Path(args.output), output_is_file(args.output)
    insensitive = case_insensitive(out if not to_file else out.parent)
    unreadable, exclude = _Unreadable(), () if to_file else (out,)
    content_root = Path(args.content)
    contents = io.list_images(content_root, exclude=exclude, on_error=unreadable)
    styles, style_folders = _style_sets(args.style, combine, exclude, unreadable, insensitive)
    others = _files([args.mask, *inputs])
    if not contents or not styles:
        raise InputError(f"no images found in {content_root if not contents else ' '.join(args.style)}")
    if combine:
        _check_combination(args, len(styles[0].sources))
    single = len(contents) == 1 and len(styles) == 1 and content_root.is_file()
    _check_output(out, to_file, single, len(contents) * len(styles))
    targets = {(0, 0): out} if to_file else _targets(out, content_root, contents, styles, args.ext, insensitive)
    all_inputs = [*contents, *(s for style in styles for s in style.sources), *others]
    existing = existing_outputs(targets, all_inputs, overwrite=args.overwrite)
    folders = ([content_root] if content_root.is_dir() else []) + style_folders
    refuse_inside_inputs(None if to_file else out, folders, targets.values())
    plan = Plan(contents, styles, targets, single, args.overwrite, args.quality, unreadable=unreadable.count)
    plan.metadata, plan.flags = getattr(args, "metadata", io.DEFAULT_METADATA), getattr(args, "flags", {})
    plan.existing = existing
    plan.refused = {
        k: f"{t}: the file name is {len(os.fsencode(t.name))} bytes, over the {NAME_MAX} a name may have"
        for k, t in targets.items()
        if too_long(t) and k not in plan.existing
    }
    if single and plan.refused:
        raise InputError(plan.refused[(0, 0)])
    if plan.pending:  # before the weights load: a read-only -o is found now, not after the work
        check_writable(out.parent if to_file else out, "-o")
    return plan


def _files(paths: Sequence[str | None]) -> list[Path]:
    """The given input files, each checked to exist (``ImageReadError`` naming the first that does not)."""
    found = [Path(p) for p in paths if p is not None]
    for path in found:
        io.check_regular_file(path)
    return found


def _style_sets(
    entries: Sequence[str], combine: bool, exclude, on_error, insensitive: bool
) -> tuple[list[StyleSet], list[Path]]:
    """The styles and the style folders searched."""
    if combine:
        files = _files(entries)
        return [StyleSet("+".join(f.stem for f in files), files)], []
    found, folders = [], []
    for entry in map(Path, entries):
        root = entry if entry.is_dir() else entry.parent
        folders += [entry] if entry.is_dir() else []
        found += [(f, root) for f in io.list_images(entry, exclude=exclude, on_error=on_error)]
    return [StyleSet(label, [f]) for (f, _), label in zip(found, style_labels(found, insensitive))], folders


def _check_combination(args: argparse.Namespace, n_styles: int) -> None:
    if args.style_weights is not None:
        normalize_style_weights(args.style_weights, n_styles)
    if args.mask is not None and n_styles != 2:
        raise InputError(f"mask: needs exactly two styles (foreground, background), got {n_styles}")


def _check_output(out: Path, to_file: bool, single: bool, pairs: int) -> None:
    if to_file and not single:
        raise InputError(f"{out}: {pairs} content x style pairs need an output directory, not a file")
    if to_file and out.is_dir():
        raise InputError(f"{out}: is a folder, but a name with an image extension is an output file; choose another -o")
    if not to_file and out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; -o without an image extension is an output folder")


def _targets(
    out: Path, content_root: Path, contents: list[Path], styles: list[StyleSet], ext: str | None, insensitive: bool
) -> dict[Pair, Path]:
    """``out/<sub-folders>/<content>_stylized_<style>.<ext>`` of every pair, all different."""
    places = content_names(contents, content_root if content_root.is_dir() else None, ext, insensitive)
    pairs, paths = [], []
    for j, style in enumerate(styles):
        for i, (folder, name, suffix) in enumerate(places):
            pairs.append((i, j))
            paths.append(out / folder / f"{name}_stylized_{style.label}{suffix}")
    return dict(zip(pairs, check_names(paths, insensitive)))


# ---- running -------------------------------------------------------------------------------------


@dataclass
class _Tally:
    total: int
    flags: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    skipped: int = 0
    unreadable: int = 0

    def skip(self, target: Path) -> None:
        self.skipped += 1
        tqdm.write(f"adain: skipped {target}: it exists (--overwrite replaces it)", file=sys.stderr)

    def fail(self, error: BaseException | str, count: int = 1) -> None:
        self.failed += count
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        message = in_flags(message, self.flags)
        extra = f" ({count} outputs not written)" if count > 1 else ""
        tqdm.write(f"adain: error: {message}{extra}", file=sys.stderr)

    def finish(self) -> int:
        """The summary line (when several outputs or an unreadable entry) and the exit code."""
        parts = []
        if self.failed or self.unreadable:
            parts.append(f"{self.failed} of {self.total} outputs failed")
        if self.skipped:
            parts.append(
                f"{self.skipped} of {self.total} outputs skipped because they exist (--overwrite replaces them)"
            )
        if self.unreadable:
            parts.append(
                f"{self.unreadable} unreadable input {'entry' if self.unreadable == 1 else 'entries'} left out"
            )
        if parts and (self.total > 1 or self.unreadable):
            print("adain: " + "; ".join(parts), file=sys.stderr)
        if self.failed or self.unreadable:
            return EXIT_ERROR
        return EXIT_SKIPPED if self.skipped else 0


Render = Callable[[Path, StyleSet, Any], Image.Image]


def run_pairs(plan: Plan, prepare: Callable[[StyleSet], Any] | None, render: Render | None, *, bar: bool = True) -> int:
    """Write every pair: ``prepare(style)`` once per style with work to do, ``render(content, style,
    prepared)`` per pair whose output is missing (or ``--overwrite``).

    With one pair, errors propagate (``main`` prints them); otherwise each failure is one line on stderr
    and the run goes on. Returns the exit code (see the module's docstring).
    """
    tally = _Tally(plan.total, plan.flags, unreadable=plan.unreadable)
    progress = tqdm(total=plan.total, unit="image", disable=None if bar and plan.total > 1 else True, file=sys.stderr)
    try:
        for j in range(len(plan.styles)):
            todo = []
            for i in range(len(plan.contents)):
                if (i, j) in plan.existing:
                    tally.skip(plan.targets[i, j])
                elif (i, j) in plan.refused:
                    tally.fail(plan.refused[i, j])
                else:
                    todo.append(i)
            progress.update(len(plan.contents) - len(todo))
            if todo:
                assert prepare is not None and render is not None, "None only when nothing is pending"
                _run_style(plan, j, todo, prepare, render, tally, progress)
    finally:
        progress.close()
    return tally.finish()


def _run_style(plan: Plan, j: int, todo: list[int], prepare, render: Render, tally: _Tally, progress) -> None:
    style = plan.styles[j]
    try:
        prepared = prepare(style)
    except _FAILURES as exc:
        if plan.single:
            raise
        tally.fail(exc, len(todo))
        progress.update(len(todo))
        return
    for i in todo:
        content, target = plan.contents[i], plan.targets[i, j]
        try:
            image = render(content, style, prepared)
            metadata = _metadata(content, plan.metadata)
            io.save_image(image, target, quality=plan.quality, overwrite=plan.overwrite, **metadata)
        except OutputExistsError:  # appeared since the plan was made
            tally.skip(target)
        except _FAILURES as exc:
            if plan.single:
                raise
            tally.fail(exc)
        progress.update(1)


def _metadata(content: Path, keep: str) -> io.ImageMetadata:
    """The content's colour profile and EXIF as ``--metadata`` keeps them, for its outputs (none when its
    header cannot be read)."""
    try:
        return io.read_metadata(content, metadata=keep)
    except ImageReadError:
        return {}
