"""The web demo: a Gradio page around one model, for ``adain demo`` and the Hugging Face Space.

``build_app(model)`` returns a ``gr.Blocks`` (nothing runs, nothing is loaded at import; Gradio is an
optional dependency, ``pip install 'adain[demo]'``, imported when an app is built). The page takes a
content picture (upload or webcam), one or more style pictures with blend weights, alpha, colour
preservation and the backend (AdaIN, or Gatys with an iteration budget and live progress), and shows
the result with a PNG download. ``DemoRunner`` is what the Run button does, without Gradio: it reads
the uploads with the package's own reader, stylizes, and writes the PNG. Every error the package
raises reaches the page as its one-line message (``gr.Error``), never as a traceback.
"""

# parse_style_weights and require_gradio were names of the former adain/demo.py, used by the tests and the
# command line; they stay reachable here but are not part of the documented API (__all__).
from ._page import build_app as build_app
from ._page import require_gradio as require_gradio
from ._runner import DemoResult as DemoResult
from ._runner import DemoRunner as DemoRunner
from ._runner import parse_style_weights as parse_style_weights

__all__ = ["DemoResult", "DemoRunner", "build_app"]
