"""Hugging Face Space: the adain web demo (``adain.demo``) serving the default weights, or ``ADAIN_WEIGHTS``.

``ADAIN_WEIGHTS`` takes what ``adain.load_pretrained`` takes: a registered name, a Hub repo id
(``user/my-decoder``, ``@revision`` to pin) or a folder. The weights are loaded at start; if that fails
(no network, a typo), the page still starts and shows the error when Stylize is pressed, retrying the load.
Run locally from a clone with ``python spaces/adain-demo/app.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if not (HERE / "adain").is_dir() and len(HERE.parents) > 1:  # run from a clone: use the repository's package
    sys.path.insert(0, str(HERE.parents[1]))

import adain  # noqa: E402
from adain.demo import build_app  # noqa: E402

WEIGHTS = os.environ.get("ADAIN_WEIGHTS") or None


def load_model() -> adain.AdaINModel:
    return adain.load_pretrained(WEIGHTS) if WEIGHTS else adain.load_pretrained()


try:
    model = load_model()
except adain.AdaINError:
    model = load_model  # loaded again on the first run; the page shows the error if it still fails

demo = build_app(model)

if __name__ == "__main__":
    demo.launch()
