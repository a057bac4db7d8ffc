"""``adain stylize``: placeholder, built in the core-package issue."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("stylize", help="stylize images with AdaIN")
    parser.set_defaults(func=lambda args: 0)
