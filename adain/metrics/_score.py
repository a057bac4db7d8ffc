"""Scoring (output, content, style) triples one by one and summarising them: the engine of ``adain evaluate``.

Per pair: the AdaIN paper's content and style losses and the Gram loss (with the given VGG encoder), SSIM and
LPIPS to the content, CFSD. Over the set: FID between the outputs and the styles of the pairs (art-fid's
Inception, as ArtFID and StyleID's Table 1 use it; ``fid_imagenet`` with pytorch-fid's network), and
``ArtFID = (1 + mean LPIPS) * (1 + FID)``. Every pair's style is counted once per pair in the style set, as the
StyleID evaluation (outputs and styles matched one to one) does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .._images import decode_batch
from ..errors import InputError
from ._cfsd import CFSD
from ._frechet import fid_from_features
from ._inception import InceptionV3
from ._losses import content_loss, gram_loss, style_loss
from ._lpips import LPIPS
from ._protocol import METRIC_NAMES, Protocol
from ._ssim import ssim

_SET_METRICS = ("fid", "artfid", "fid_imagenet")


@dataclass
class Networks:
    """The downloaded networks the chosen metrics need (``None`` where not needed)."""

    lpips: LPIPS | None = None
    art: InceptionV3 | None = None
    imagenet: InceptionV3 | None = None
    cfsd: CFSD | None = None


def check_metrics(names: Iterable[str]) -> tuple[str, ...]:
    """The metric names in table order; ``InputError`` naming an unknown one."""
    names = tuple(dict.fromkeys(names))
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown or not names:
        raise InputError(
            f"metrics={','.join(names)!r}: unknown {unknown or 'none given'}; use {', '.join(METRIC_NAMES)}"
        )
    return tuple(n for n in METRIC_NAMES if n in names)


def load_networks(
    metrics: Iterable[str],
    *,
    device: torch.device | str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> Networks:
    """Fetch (download once, check) and build the networks ``metrics`` need, on ``device``.

    Raises:
        WeightsError: a file could not be fetched or failed its check (the file and URL are named).
    """
    wanted = set(metrics)
    fetch = dict(cache_dir=cache_dir, local_files_only=local_files_only)
    nets = Networks()
    if wanted & {"lpips", "artfid"}:
        nets.lpips = LPIPS.from_pretrained(**fetch).to(device)  # type: ignore[arg-type]
    if wanted & {"fid", "artfid"}:
        nets.art = InceptionV3.from_pretrained("art", **fetch).to(device)  # type: ignore[arg-type]
    if "fid_imagenet" in wanted:
        nets.imagenet = InceptionV3.from_pretrained("fid", **fetch).to(device)  # type: ignore[arg-type]
    if "cfsd" in wanted:
        nets.cfsd = CFSD.from_pretrained(**fetch).to(device)  # type: ignore[arg-type]
    return nets


@dataclass
class Scorer:
    """Accumulates the scores of pairs under ``protocol`` (``add``), then summarises them (``summary``).

    Attributes:
        encoder: the VGG encoder of the content, style and Gram losses (an ``AdaINModel``'s ``encoder``).
        protocol: sizes of the evaluation (``eval_size`` for LPIPS and the Inception).
        metrics: what to compute (``check_metrics``).
        networks: the networks they need (``load_networks``).
        rows: one dict per pair added: ``{"pair": name, metric: value, ...}``.
    """

    encoder: nn.Module
    protocol: Protocol
    metrics: tuple[str, ...]
    networks: Networks = field(default_factory=Networks)
    rows: list[dict] = field(default_factory=list, init=False)
    _out_feats: dict[str, list[Tensor]] = field(default_factory=dict, init=False, repr=False)
    _style_feats: dict[str, list[Tensor]] = field(default_factory=dict, init=False, repr=False)

    @torch.no_grad()
    def add(self, name: str, output: Tensor, content: Tensor, style: Tensor) -> dict:
        """Score one pair; returns its row.

        Arguments:
            name: the pair's name (its output's file stem).
            output: ``(1, 3, H, W)`` the stylized image, float in [0, 1], on the encoder's device.
            content: ``(1, 3, H, W)`` its content at the protocol's size (the output's size).
            style: ``(1, 3, Hs, Ws)`` its style at the protocol's size.

        Raises:
            InputError: the output's size is not the content's (the file is named by the caller).
        """
        if output.shape != content.shape:
            raise InputError(
                f"{name}: output is {tuple(output.shape[-2:])} (HxW) but its content is {tuple(content.shape[-2:])} "
                f"under protocol {self.protocol.name!r}; make outputs at that size"
            )
        row: dict = {"pair": name}
        m = set(self.metrics)
        if "content" in m:
            row["content"] = float(content_loss(self.encoder, output, content, style)[0])
        if "style" in m:
            row["style"] = float(style_loss(self.encoder, output, style)[0])
        if "gram" in m:
            row["gram"] = float(gram_loss(self.encoder, output, style)[0])
        if "ssim" in m:
            row["ssim"] = float(ssim(output, content)[0])
        if self.networks.cfsd is not None and "cfsd" in m:
            row["cfsd"] = float(self.networks.cfsd(output, content)[0])
        self._add_eval_size(row, output, content, style)
        self.rows.append(row)
        return row

    def _add_eval_size(self, row: dict, output: Tensor, content: Tensor, style: Tensor) -> None:
        """LPIPS and Inception features, on images resized to ``eval_size`` (shorter side)."""
        nets, size = self.networks, self.protocol.eval_size
        if nets.lpips is None and nets.art is None and nets.imagenet is None:
            return
        out_e, content_e, style_e = (decode_batch(t, size=size, crop=False) for t in (output, content, style))
        if nets.lpips is not None:
            row["lpips"] = float(nets.lpips(out_e, content_e)[0])
        for key, net in (("art", nets.art), ("imagenet", nets.imagenet)):
            if net is not None:
                self._out_feats.setdefault(key, []).append(net(out_e).cpu())
                self._style_feats.setdefault(key, []).append(net(style_e).cpu())

    def summary(self) -> dict[str, float]:
        """Means of the per-pair metrics and the set metrics (FID needs at least two pairs: else NaN)."""
        result: dict[str, float] = {}
        for name in self.metrics:
            if name not in _SET_METRICS:
                values = [r[name] for r in self.rows if name in r]
                if values:
                    result[name] = sum(values) / len(values)
        for name, key in (("fid", "art"), ("fid_imagenet", "imagenet")):
            if key in self._out_feats and (name in self.metrics or (name == "fid" and "artfid" in self.metrics)):
                out, sty = torch.cat(self._out_feats[key]), torch.cat(self._style_feats[key])
                result[name] = fid_from_features(out, sty) if len(out) >= 2 else math.nan
        if "artfid" in self.metrics:
            lpips = sum(r["lpips"] for r in self.rows) / len(self.rows)
            result["artfid"] = (1 + lpips) * (1 + result["fid"])
            result.setdefault("lpips", lpips)
        return {name: result[name] for name in METRIC_NAMES if name in result}
