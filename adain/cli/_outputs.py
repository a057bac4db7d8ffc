"""Where folder mode writes: one file per pair, no two pairs in one file, never onto an input.

``-o`` with an image extension (``.png``, ``.jpg``, ...) is a file; without one (or ending in ``/``) it is
a folder, and an unknown extension is refused rather than taken for a folder name. In a folder every
pair is ``<sub-folders>/<content>_stylized_<style>.<ext>``. Inputs that would give one name (``pic.jpg``
and ``pic.png`` with ``--ext png``, ``a.jpg`` and ``a.JPG``, styles ``x.jpg`` and ``x.png``) keep their
extension in it (``pic_jpg_stylized_x.png``); names still shared after that (a style ``sub/x.png`` and
``sub_x.png``) get ``_2``, ``_3``... in sorted order. Names are compared case-insensitively where the
output folder's file system is. All of this is decided before any work.

An output that is an input (the same file, through any link or letter case) is refused
(``OutputIsInputError``, the library's output policy ``adain._atomic.check_output``), and so are outputs
inside an input folder that the next run would read back as inputs (an output folder inside an input
folder is left out of its walk instead, see ``adain._io.list_images``).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .. import _io as io
from .._atomic import NAME_MAX, InputFiles, check_output
from ..errors import InputError, OutputExistsError, OutputIsInputError

_EXTENSIONS = ", ".join(sorted(io.IMAGE_EXTENSIONS))


def _writable(suffix: str) -> bool:
    try:
        io.image_format(f"x{suffix}")
    except InputError:
        return False
    return suffix.lower() in io.IMAGE_EXTENSIONS


def parse_ext(text: str) -> str:
    """``--ext``: ``png`` or ``.PNG`` -> ``.png``; an extension no image can be written with is refused."""
    suffix = "." + text.lower().lstrip(".")
    if not _writable(suffix):
        raise argparse.ArgumentTypeError(f"unknown image extension {text!r}; use one of {_EXTENSIONS}")
    return suffix


def output_is_file(text: str) -> bool:
    """``-o``: a name with an image extension is a file; a name ending in ``/`` is always a folder."""
    return not text.endswith(("/", os.sep)) and Path(text).suffix.lower() in io.IMAGE_EXTENSIONS


def parse_output(text: str) -> str:
    """``-o``: refuses ``out.xyz`` (neither an image extension nor an existing folder) before any work."""
    path = Path(text)
    if output_is_file(text):
        if not _writable(path.suffix):
            raise argparse.ArgumentTypeError(f"{text}: Pillow here cannot write {path.suffix!r} images")
        return text
    if text.endswith(("/", os.sep)) or not path.suffix or path.is_dir():
        return text
    raise argparse.ArgumentTypeError(
        f"{text}: unknown image extension {path.suffix!r}; use one of {_EXTENSIONS}, or end a folder name with '/'"
    )


# ---- names ---------------------------------------------------------------------------------------


def case_insensitive(folder: Path) -> bool:
    """Whether the file system holding ``folder`` (or its nearest existing parent) ignores letter case:
    one ``stat`` of a name with its case swapped."""
    path = Path(os.path.abspath(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    for candidate in (path, *path.parents):
        swapped = candidate.name.swapcase()
        if swapped != candidate.name:
            other = candidate.with_name(swapped)
            try:
                return os.path.samefile(candidate, other)
            except OSError:
                return False
    return os.name == "nt"


def _fold(name: str, insensitive: bool) -> str:
    return name.casefold() if insensitive else name


def unique_names(entries: Sequence[tuple[Hashable, str, str]], insensitive: bool) -> list[str]:
    """For each ``(scope, name, name_with_extension)``: ``name``; where entries of one scope share it,
    ``name_with_extension``; where still shared, ``_2``, ``_3``... after all but the first."""
    keys = [(scope, _fold(name, insensitive)) for scope, name, _ in entries]
    shared = Counter(keys)
    names = [longer if shared[key] > 1 else name for (_, name, longer), key in zip(entries, keys)]
    return _numbered([(scope, name) for (scope, _, _), name in zip(entries, names)], insensitive)


def _numbered(entries: Sequence[tuple[Hashable, str]], insensitive: bool) -> list[str]:
    taken = {(scope, _fold(name, insensitive)) for scope, name in entries}
    used: set = set()
    result = []
    for scope, name in entries:
        candidate, n = name, 1
        while (scope, _fold(candidate, insensitive)) in used or (
            candidate != name and (scope, _fold(candidate, insensitive)) in taken
        ):
            n += 1
            candidate = f"{name}_{n}"
        used.add((scope, _fold(candidate, insensitive)))
        result.append(candidate)
    return result


def style_labels(files: Sequence[tuple[Path, Path]], insensitive: bool) -> list[str]:
    """The name of each style ``(file, root)`` in outputs: its path below ``root``, ``_``-joined."""
    entries = []
    for file, root in files:
        label = "_".join(file.relative_to(root).with_suffix("").parts)
        entries.append((None, label, f"{label}_{file.suffix[1:]}"))
    return unique_names(entries, insensitive)


def content_names(
    contents: Sequence[Path], root: Path | None, ext: str | None, insensitive: bool
) -> list[tuple[Path, str, str]]:
    """``(sub-folder, name, extension)`` of each content's outputs; ``root`` is the content folder (or None)."""
    entries, places = [], []
    for content in contents:
        folder = content.relative_to(root).parent if root is not None else Path()
        suffix = ext or content.suffix.lower()
        places.append((folder, suffix))
        scope = (_fold(folder.as_posix(), insensitive), _fold(suffix, insensitive))
        entries.append((scope, content.stem, f"{content.stem}_{content.suffix[1:]}"))
    names = unique_names(entries, insensitive)
    return [(folder, name, suffix) for (folder, suffix), name in zip(places, names)]


def check_names(targets: Sequence[Path], insensitive: bool) -> list[Path]:
    """``targets`` with any two still equal (as the file system compares names) numbered apart, after
    checking each has a known image extension (``InputError`` before any work otherwise)."""
    for target in targets:
        if not _writable(target.suffix):
            raise InputError(f"{target}: no known image extension to write; give --ext (one of {_EXTENSIONS})")
    scopes = [(_fold(str(t.parent), insensitive), _fold(t.suffix, insensitive)) for t in targets]
    stems = _numbered([(scope, t.stem) for scope, t in zip(scopes, targets)], insensitive)
    return [t.with_name(stem + t.suffix) for t, stem in zip(targets, stems)]


def too_long(target: Path) -> bool:
    """Whether ``target``'s name is longer than a file name may be (it cannot be written)."""
    return len(os.fsencode(target.name)) > NAME_MAX


# ---- outputs that are inputs ---------------------------------------------------------------------


_Key = TypeVar("_Key", bound=Hashable)


def existing_outputs(targets: Mapping[_Key, Path], inputs: Iterable[Path], *, overwrite: bool) -> set[_Key]:
    """The keys of ``targets`` whose output exists (none with ``overwrite``), after refusing
    (``OutputIsInputError``) any output that is one of the ``inputs``, ``--overwrite`` or not: the output
    policy of ``adain._atomic.check_output``, one target at a time."""
    known, existing = InputFiles(inputs), set[_Key]()
    for key, target in targets.items():
        try:
            check_output(target, overwrite=overwrite, inputs=known)
        except OutputExistsError:
            existing.add(key)
    return existing


def refuse_inside_inputs(out: Path | None, folders: Iterable[Path], targets: Iterable[Path]) -> None:
    """``OutputIsInputError`` if an output would land inside an input folder (where the next run would read
    it as an input), unless the output folder ``out`` (``None``: ``-o`` is a file) is a sub-folder of it,
    which that folder's walk leaves out."""
    places = {t.parent.resolve() for t in targets}
    out = out.resolve() if out is not None else None
    for folder in folders:
        root = folder.resolve()
        if out is not None and out != root and out.is_relative_to(root):
            continue
        inside = sorted(p for p in places if p.is_relative_to(root))
        if inside:
            error = OutputIsInputError(
                f"-o: outputs would be written inside the input folder {folder} and read "
                f"back as inputs next time; choose a folder outside it, or a sub-folder "
                f"such as {folder / 'stylized'}"
            )
            error.filename, error.input = str(inside[0]), str(folder)
            raise error
