"""``adain demo``: serve the web demo (``adain.demo``, a Gradio page) on this machine.

Gradio is optional (the ``demo`` extra, ``adain.errors.install_hint``); without it the command says so in one
line. ``--host`` and ``--port`` are checked, then the model is loaded, before the server starts, so a wrong
address or ``--weights`` fails here in one line, not in the page.
"""

from __future__ import annotations

import argparse

from ..demo import build_app, require_gradio
from ..demo._address import check_address
from ..errors import install_hint
from ._common import HelpFormatter, load_model


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 1..65535, got {text!r}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=f"serve the web demo in a browser (Gradio; {install_hint('demo')})",
        description="Start the web demo: upload a photo and style pictures, stylize with AdaIN or Gatys, "
        "download the PNG.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="NAME_OR_PATH",
        help="a named weight, a save_pretrained folder or a Hub repo (default: the default weights)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 serves other machines of the network"
    )
    parser.add_argument("--port", type=_port, default=None, help="port (default: 7860, or the next free one)")
    parser.add_argument("--share", action="store_true", help="also serve through a temporary public gradio.live link")
    parser.set_defaults(func=run)


def run(args) -> int:
    check_address(args.host, args.port)  # a bad --host or a busy --port: one line now, not retries forever
    require_gradio()  # before loading (maybe downloading) the weights
    app = build_app(load_model(args.weights))
    app.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0
