"""The one model-card writer: the ``README.md`` (Hugging Face front matter + Markdown) saved beside weights.

Used for folders written by ``save_pretrained``, for named weights converted into the cache (with their
provenance, license, source files and mirrors), and for trained decoders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from ..modeling._config import ModelConfig

_NUMERICS = """## Numerics
- Input: RGB in [0, 1], no mean/std normalisation (the encoder's first 1x1 conv maps it to BGR x255 minus the Caffe
  mean).
- Encoder: VGG-19 (the normalised one unless the notes above say otherwise), reflection padding, max pooling
  with `ceil_mode=True`, taps `relu1_1`...`relu4_1`.
- AdaIN: per-channel mean and unbiased standard deviation (+eps) over H*W.
- Decoder output: unclamped, about [0, 1]; clamp when converting to an image.
"""


def model_card(
    config: ModelConfig,
    *,
    title: str = "AdaIN model",
    license: str | None = None,
    provenance: str | None = None,
    files: Sequence[tuple[str, str | None]] = (),
    sources: Sequence[str] = (),
    notes: str = "",
) -> str:
    """A model card for weights with ``config``.

    Arguments:
        title: the heading (the registered name for named weights).
        license: SPDX-like license name, written to the front matter.
        provenance: where the weights come from (free text).
        files: ``(filename, sha256 or None)`` of the legacy source files.
        sources: where the files are fetched from, in the order tried.
        notes: Markdown a user must read before using the weights (a "Notes" section), or ``""``.
    """
    front = "---\nlibrary_name: adain\n" + (f"license: {license.lower()}\n" if license else "")
    front += "tags:\n- style-transfer\n- adain\n---\n"
    description = config.description or "An AdaIN style-transfer model (VGG-19 encoder + decoder)."
    parts = [f"{front}# {title}\n\n{description}\n"]
    if notes:
        parts.append(f"## Notes\n{notes}")
    if provenance:
        parts.append(f"## Provenance\n{provenance}\n" + (f"\nLicense: {license}.\n" if license else ""))
    if files:
        rows = "\n".join(f"| `{name}` | `{digest or 'not established'}` |" for name, digest in files)
        parts.append(f"## Source files\n| file | sha256 |\n|---|---|\n{rows}\n")
    if sources:
        parts.append(
            "## Sources, in the order tried\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(sources, 1)) + "\n"
        )
    parts.append(
        '## Usage\n```python\nimport adain\nmodel = adain.load_pretrained("<this directory or repo id>")\n'
        'image = adain.stylize("content.jpg", "style.jpg", alpha=1.0, model=model)\n```\n'
    )
    parts.append(_NUMERICS)
    rows = "\n".join(f"| `{k}` | `{v!r}` |" for k, v in asdict(config).items())
    parts.append(f"## Config\n| key | value |\n|---|---|\n{rows}\n")
    return "\n".join(parts)
