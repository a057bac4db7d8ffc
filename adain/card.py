"""Model cards written next to saved weights."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import ModelConfig

__all__ = ["default_model_card"]


def default_model_card(config: ModelConfig) -> str:
    """A Hugging Face model card (YAML front matter + Markdown) describing an AdaIN model directory."""
    rows = "\n".join(f"| `{k}` | `{v!r}` |" for k, v in asdict(config).items())
    description = config.description or "An AdaIN style-transfer model (VGG-19 encoder + decoder)."
    return f"""---
library_name: adain
tags:
- style-transfer
- adain
---
# AdaIN model

{description}

Load it with:

```python
import adain
model = adain.load_pretrained("<this directory or repo id>")
image = adain.stylize("content.jpg", "style.jpg", alpha=1.0, model=model)
```

## Numerics
- Input: RGB in [0, 1], no mean/std normalisation (the encoder's first 1x1 conv does it).
- Encoder: normalised VGG-19, reflection padding, max pooling with `ceil_mode=True`, taps `relu1_1`...`relu4_1`.
- AdaIN: per-channel mean and unbiased standard deviation (+eps) over H*W.
- Decoder output: unclamped, about [0, 1]; clamp when converting to an image.

## Config
| key | value |
|---|---|
{rows}
"""
