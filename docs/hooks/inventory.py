"""MkDocs hook: keep the published object inventory (``objects.inv``) to the documented public paths.

mkdocstrings writes each rendered object under its documented path (priority 1) and adds every other path
that reaches it as a secondary entry (priority 2): the private module that defines it
(``adain.inference._stylizer.Stylizer``) and modules that merely import it. Those secondary paths are not
API, so they are dropped from the inventory; cross-references inside the site are not affected (autorefs
keeps its own table).
"""

from __future__ import annotations

import zlib
from pathlib import Path

HEADER_LINES = 4  # "# Sphinx inventory version 2", project, version, "# The remainder ... zlib."


def on_post_build(config, **kwargs) -> None:
    path = Path(config.site_dir) / "objects.inv"
    if not path.is_file():
        return
    header, _, body = _split(path.read_bytes())
    entries = zlib.decompress(body).decode("utf-8").splitlines()
    kept = [line for line in entries if _priority(line) != "2"]
    path.write_bytes(header + zlib.compress(("\n".join(kept) + "\n").encode("utf-8"), 9))


def _split(data: bytes) -> tuple[bytes, bytes, bytes]:
    lines = data.split(b"\n", HEADER_LINES)
    return b"\n".join(lines[:HEADER_LINES]) + b"\n", b"", lines[HEADER_LINES]


def _priority(line: str) -> str:
    # "name domain:role priority uri dispname"; the name itself has no spaces for Python objects.
    parts = line.split(" ")
    return parts[2] if len(parts) >= 4 else ""
