"""Publish a converted folder to the Hugging Face Hub and print the registry line that makes it the default.

    hf auth login                                   # a token with write access to the org
    python weights/publish.py build/reference-port --repo-id <org>/<name>

The folder is loaded first (strict checks), uploaded with ``adain.weights.push_to_hub`` (``config.json``,
``model.safetensors``, ``README.md``), then loaded back from the Hub at the new commit and compared
bit for bit. The printed ``HubSource(...)`` line, pinned to that commit, goes first in the entry's
``sources`` in ``adain/registry.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adain.weights import push_to_hub


def publish(folder: Path, repo_id: str, *, private: bool = False, verify: bool = True) -> str:
    """Upload ``folder`` (checked by loading it first); with ``verify``, the files are downloaded back from
    the new commit and compared byte for byte. Returns the commit sha."""
    url = push_to_hub(folder, repo_id, private=private, commit_message=f"Upload {folder.name} (adain)", verify=verify)
    return url.rstrip("/").rsplit("/", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder written by weights/convert.py or save_pretrained")
    parser.add_argument("--repo-id", required=True, help="<org>/<name> on the Hub")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--no-verify", action="store_true", help="skip loading it back from the Hub")
    args = parser.parse_args(argv)
    commit = publish(args.folder, args.repo_id, private=args.private, verify=not args.no_verify)
    print(f"published {args.repo_id}@{commit}. Make it the default source with this line, first in sources:")
    print(f'        HubSource("{args.repo_id}", revision="{commit}"),')
    return 0


if __name__ == "__main__":
    sys.exit(main())
