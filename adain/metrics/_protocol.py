"""Named evaluation protocols: which pairs, at which size, scored with which metrics, and what a paper reports.

A number without its protocol means little (AdaIN's ArtFID spans 27.96-31.71 across papers' protocols), so
every report carries the protocol's name and fields, and the exact list of pairs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

METRIC_NAMES = ("content", "style", "gram", "ssim", "lpips", "fid", "artfid", "cfsd", "fid_imagenet")
"""Every metric ``adain evaluate`` can compute, in table order (``adain.metrics.Scorer``'s keys)."""

NEEDS_DOWNLOAD = {"lpips": ("alexnet", "lpips-alex"), "fid": ("art-inception",),
                  "artfid": ("alexnet", "lpips-alex", "art-inception"), "cfsd": ("vgg19",),
                  "fid_imagenet": ("fid-inception",)}  # fmt: skip
"""The ``METRIC_WEIGHTS`` each metric needs besides the model's own VGG encoder."""


@dataclass(frozen=True)
class Protocol:
    """How a method is scored.

    Attributes:
        name: ``"styleid"`` or ``"adain-paper"``.
        contents: how many content images (the first, in sorted file-name order).
        styles: how many style images (likewise); every content is paired with every style.
        size: contents and styles are resized to this shorter side, then cropped to a centre square if ``crop``.
        crop: see ``size``.
        eval_size: LPIPS and the Inception features see outputs, contents and styles resized to this shorter side
            (art-fid's ``Resize(512)``); CFSD and the VGG losses see them at ``size``.
        metrics: the metrics computed by default.
        reference: where the protocol and the published numbers come from.
        expected: published numbers for AdaIN under this protocol (metric -> value), for the report.
    """

    name: str
    contents: int
    styles: int
    size: int
    crop: bool
    eval_size: int
    metrics: tuple[str, ...]
    reference: str
    expected: tuple[tuple[str, float], ...] = ()


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "styleid",
            contents=20,
            styles=40,
            size=512,
            crop=True,
            eval_size=512,
            metrics=("content", "style", "ssim", "lpips", "fid", "artfid", "cfsd"),
            reference="Chung et al., StyleID, CVPR 2024, Table 1: 20 MS-COCO contents x 40 WikiArt styles at 512x512; "
            "ArtFID = (1 + LPIPS) * (1 + FID) with art-fid's Inception; CFSD on VGG-19 relu3_1",
            expected=(("artfid", 30.933), ("fid", 18.242), ("lpips", 0.608), ("cfsd", 0.315)),
        ),
        Protocol(
            "adain-paper",
            contents=10,
            styles=10,
            size=512,
            crop=True,
            eval_size=512,
            metrics=("content", "style"),
            reference="Huang & Belongie, ICCV 2017, sec. 6: content loss (relu4_1 to the AdaIN target) and style "
            "loss (mean/std, relu1_1-relu4_1) on 10 contents x 10 styles unseen in training (plotted in its "
            "Figure 3, no table)",
        ),
    )
}
"""The named protocols."""


@dataclass(frozen=True)
class Pair:
    """One (content, style) pair of an evaluation; ``name`` is the stem of its output file.

    Attributes:
        content: the content image's file.
        style: the style image's file.
    """

    content: Path
    style: Path

    @property
    def name(self) -> str:
        """``<content stem>_stylized_<style stem>``, the name ``adain stylize`` gives a folder run's output."""
        return f"{self.content.stem}_stylized_{self.style.stem}"


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; ``InputError`` listing the names otherwise."""
    if name not in PROTOCOLS:
        raise InputError(f"protocol={name!r}: unknown; use one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocol_pairs(
    protocol: Protocol, contents: Sequence[str | os.PathLike], styles: Sequence[str | os.PathLike]
) -> list[Pair]:
    """Every pair of the protocol's first ``contents`` x first ``styles`` images (sorted by path), content-major.

    Fewer images than the protocol asks for give fewer pairs (the report says how many; its numbers are then
    not comparable with the paper's).

    Raises:
        InputError: no content or no style image, or two images share a file stem (outputs are matched by it).
    """
    chosen_c = sorted(Path(p) for p in contents)[: protocol.contents]
    chosen_s = sorted(Path(p) for p in styles)[: protocol.styles]
    for what, chosen in (("contents", chosen_c), ("styles", chosen_s)):
        if not chosen:
            raise InputError(f"{what}: no images found")
        stems = [p.stem for p in chosen]
        twice = sorted({s for s in stems if stems.count(s) > 1})
        if twice:
            raise InputError(f"{what}: several images are named {twice[0]!r} (outputs are matched by file name)")
    return [Pair(c, s) for c in chosen_c for s in chosen_s]
