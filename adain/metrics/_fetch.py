"""The published weights of the metric networks: where they are, how each is pinned, and fetching them once.

Each file is downloaded with the package's download machinery (``adain.weights._download``: size bounds,
timeouts, a temporary renamed into place) into ``<cache root>/metrics/`` (the weights cache: ``ADAIN_CACHE``,
``XDG_CACHE_HOME``/adain, ``~/.cache/adain``) and checked before it is used:

- a full sha256, where one is established, must match exactly;
- torchvision's and pytorch-fid's files carry the first 8 hex digits of their sha256 in their names (the
  ``torch.hub`` convention, which torch itself checks): that prefix must match;
- the LPIPS heads and the ArtFID Inception are published without any digest; they are trusted on first use:
  their sha256 is recorded beside them (``<file>.sha256``) and every later use must match it, and every report
  of ``adain evaluate`` lists the sha256 of each file it used, so that numbers stay traceable.

A file that fails its check never takes the real name (it is downloaded as ``<file>.unverified`` first); a
cached file that fails is moved to ``rejected/``. Offline (``local_files_only=True`` or ``HF_HUB_OFFLINE=1``)
nothing is downloaded: a missing file is a ``WeightsOfflineError`` naming it and its URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .._atomic import atomic_path
from ..errors import CorruptWeightsError, WeightsOfflineError
from ..weights._cache import cache_root, entry_lock, move_aside
from ..weights._download import ProgressCallback, download_url, sha256_of
from ..weights._hub import hub_offline

METRICS_DIR = "metrics"


@dataclass(frozen=True)
class MetricWeights:
    """One published weights file of a metric network.

    Attributes:
        name: the key in ``METRIC_WEIGHTS`` (e.g. ``"alexnet"``).
        filename: the file's name in the cache.
        url: where it is published (``http(s)://`` or ``file://``).
        sha256: its full hex sha256 where established, else ``None``.
        sha256_prefix: the leading hex digits of its sha256 carried by its published name (``torch.hub``'s
            convention), or ``""``.
        source: who publishes it, for messages and reports.
    """

    name: str
    filename: str
    url: str
    sha256: str | None = None
    sha256_prefix: str = ""
    source: str = ""

    @property
    def pin(self) -> str:
        """How the file is checked: ``"sha256"``, ``"sha256-prefix"`` or ``"first-use"``."""
        return "sha256" if self.sha256 else ("sha256-prefix" if self.sha256_prefix else "first-use")


METRIC_WEIGHTS: Mapping[str, MetricWeights] = {
    w.name: w
    for w in (
        MetricWeights(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            sha256_prefix="7be5be79",
            source="torchvision (AlexNet, ImageNet), the LPIPS backbone",
        ),
        MetricWeights(
            "lpips-alex",
            "lpips-v0.1-alex.pth",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
            source="richzhang/PerceptualSimilarity (LPIPS v0.1 linear heads for AlexNet)",
        ),
        MetricWeights(
            "fid-inception",
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            sha256_prefix="6726825d",
            source="mseitzer/pytorch-fid (TensorFlow's 2015-12-05 Inception-v3, the FID network)",
        ),
        MetricWeights(
            "art-inception",
            "art_inception.pth",
            "https://huggingface.co/matthias-wright/art_inception/resolve/main/art_inception.pth",
            source="matthias-wright/art-fid (Inception-v3 fine-tuned on art, the ArtFID network)",
        ),
        MetricWeights(
            "vgg19",
            "vgg19-dcbb9e9d.pth",
            "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            sha256_prefix="dcbb9e9d",
            source="torchvision (VGG-19, ImageNet), the CFSD network",
        ),
    )
}
"""The weights files the metric networks load, by name."""


def metrics_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder the metric weights are cached in: ``<cache root>/metrics``."""
    return cache_root(cache_dir) / METRICS_DIR


def fetch_weights(
    weights: MetricWeights,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """The checked local copy of ``weights``, downloaded first if needed (see the module's notes).

    Arguments:
        weights: the file (an entry of ``METRIC_WEIGHTS``, or one of your own mirror).
        cache_dir: the cache root; ``None`` means the weights cache's default.
        local_files_only: never download (also when ``HF_HUB_OFFLINE`` is set).
        progress: called as bytes arrive.

    Returns:
        The path of the cached file.

    Raises:
        WeightsOfflineError: offline and not cached.
        WeightsNotFoundError: the download failed (the URL is named).
        CorruptWeightsError: the file does not match its pin (a download is discarded, a cached copy moved to
            ``rejected/``).
    """
    folder = metrics_cache(cache_dir)
    path = folder / weights.filename
    with entry_lock(folder):
        if path.is_file():
            _check(weights, path, cached=True)
            return path
        if local_files_only or hub_offline():
            raise WeightsOfflineError(
                f"{path}: the {weights.name} weights are not cached and downloads are off (offline mode); fetch "
                f"{weights.url} there when online"
            )
        unverified = folder / (weights.filename + ".unverified")
        download_url(weights.url, unverified, sha256=weights.sha256, progress=progress)
        try:
            _check(weights, unverified, cached=False)
        except CorruptWeightsError:
            unverified.unlink(missing_ok=True)
            raise
        record = _record(folder, weights)
        if weights.pin == "first-use" and not record.is_file():
            with atomic_path(record) as tmp:
                tmp.write_text(sha256_of(unverified) + "\n")
        os.replace(unverified, path)
    return path


def _check(weights: MetricWeights, path: Path, *, cached: bool) -> None:
    digest = sha256_of(path)
    expected, how = _expected(weights, path)
    if expected is None or digest.startswith(expected.lower()):
        return
    where = path
    if cached:
        where = move_aside(path)
    raise CorruptWeightsError(
        f"{weights.url}: sha256 {digest} does not match the {how} {expected}; "
        + (f"the cached copy was moved to {where}" if cached else "the download was discarded")
    )


def _expected(weights: MetricWeights, path: Path) -> tuple[str | None, str]:
    if weights.sha256:
        return weights.sha256, "pinned sha256"
    if weights.sha256_prefix:
        return weights.sha256_prefix, "sha256 prefix in its published name"
    record = _record(path.parent, weights)
    if record.is_file():  # held to by re-downloads too: a changed upstream file is refused, not re-recorded
        return record.read_text().strip(), f"sha256 recorded at first use ({record}; delete it to accept a new file)"
    return None, ""


def _record(folder: Path, weights: MetricWeights) -> Path:
    return folder / (weights.filename + ".sha256")


def load_state(path: Path) -> dict[str, Tensor]:
    """A ``.pth`` state dict read without executing code (``weights_only=True``), on the CPU.

    Raises:
        CorruptWeightsError: not a readable state dict of tensors (the path is named).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- pickle, zip and torch errors alike: one message naming the file
        raise CorruptWeightsError(f"{path}: not a readable weights file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CorruptWeightsError(f"{path}: not a state dict of tensors")
    return state


def copy_param(param: Tensor, state: Mapping[str, Tensor], key: str) -> None:
    """Copy ``state[key]`` into the parameter or buffer ``param``.

    Raises:
        CorruptWeightsError: ``key`` is missing or has another shape (the file is not the expected network).
    """
    if key not in state:
        raise CorruptWeightsError(f"weights file has no {key!r} (not the expected network)")
    value = state[key]
    if tuple(value.shape) != tuple(param.shape):
        raise CorruptWeightsError(
            f"weights file: {key!r} has shape {tuple(value.shape)}, expected {tuple(param.shape)}"
        )
    with torch.no_grad():
        param.copy_(value.to(param.dtype))
