"""int8 graphs for ``backend="onnxruntime-int8"``: static QDQ quantisation, offered only where it pays.

``int8_networks(model)`` quantises the float32 encoder and decoder of ``adain.export._networks`` with
``onnxruntime.quantization.quantize_static`` (QDQ format, per-channel int8 weights, uint8 activations with
``reduce_range``: 7-bit weights, so that AVX2 CPUs without VNNI, whose ``vpmaddubsw`` sums pairs of u8 x s8
products into int16, cannot saturate; measured as fast as S8S8 here and 41.8 dB from float32). Activation
ranges are calibrated (min/max) on content pictures for the encoder and, for the decoder, on the AdaIN
features of every content x every style of a bank: the decoder's input moves with the style. Feature
statistics (mean, std, AdaIN) stay float32: only the convolutions run in int8.

Then it measures, on a content and style kept out of the calibration, ``TIMING_SIDE`` px square:

- quality: mean absolute pixel difference (on [0, 1]) and PSNR of the int8 picture against float32;
- speed: encode + decode with both pairs of sessions, repetitions interleaved, medians.

It is **offered only when** the int8 path is at least ``REQUIRED_SPEEDUP`` times as fast as the float32
onnxruntime path and within ``MAX_MEAN_ABS_DIFF`` / ``MIN_PSNR_DB``; otherwise it refuses, saying what was
measured, rather than ship a slower or worse path. The decision and the figures are kept in ``int8.json``
beside the graphs (the int8 graphs are written only when accepted), so the measurement runs once per set
of weights; delete ``int8.json`` to measure again (e.g. on another CPU sharing the cache).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .._atomic import atomic_path, temporary_name
from ..errors import InputError
from ..model import AdaINModel
from ..modeling._ops import adain
from ._networks import DECODER_INPUT, ENCODER_INPUT, NetworkFiles, float32_networks, session
from ._onnx import require_export_extra

REQUIRED_SPEEDUP = 1.5
"""int8 must run encode + decode at least this many times as fast as float32 onnxruntime to be offered."""

MAX_MEAN_ABS_DIFF = 0.02
"""Largest mean absolute pixel difference (pictures in [0, 1]) from float32 accepted."""

MIN_PSNR_DB = 30.0
"""Lowest PSNR against float32 accepted, in dB (peak 1)."""

TIMING_SIDE = 512
"""Side of the square content the speed and quality are measured on."""

REPEATS = 3
"""Timed repetitions of each path (interleaved; medians compared)."""

REPORT_NAME = "int8.json"


@dataclass(frozen=True)
class Int8Report:
    """What the int8 export measured: seconds of encode + decode at ``side`` px (medians), the speed-up,
    the quality against float32, and whether it was accepted (``reason`` says why not)."""

    side: int
    float32_s: float
    int8_s: float
    speedup: float
    mean_abs_diff: float
    psnr_db: float
    accepted: bool
    reason: str


def quality(picture: Tensor, reference: Tensor) -> tuple[float, float]:
    """``(mean absolute difference, PSNR in dB)`` of ``picture`` against ``reference``, both clamped to
    [0, 1] first (as saved pictures are); PSNR with peak 1, ``inf`` when identical."""
    diff = picture.double().clamp(0, 1) - reference.double().clamp(0, 1)
    mse = float((diff**2).mean())
    return float(diff.abs().mean()), (math.inf if mse == 0 else -10 * math.log10(mse))


def decide(speedup: float, mean_abs_diff: float, psnr_db: float) -> tuple[bool, str]:
    """Whether measurements allow offering int8, and if not, the reason in words."""
    if not speedup >= REQUIRED_SPEEDUP:
        return (
            False,
            f"int8 is {speedup:.2f}x the float32 onnxruntime path here (at least {REQUIRED_SPEEDUP}x required)",
        )
    if not (mean_abs_diff <= MAX_MEAN_ABS_DIFF and psnr_db >= MIN_PSNR_DB):
        return False, (
            f"int8 pictures are {mean_abs_diff:.4f} mean abs / {psnr_db:.1f} dB from float32 (at most "
            f"{MAX_MEAN_ABS_DIFF} / at least {MIN_PSNR_DB} dB required)"
        )
    return True, "faster and close enough"


def pictures(count: int, side: int, seed: int) -> list[Tensor]:
    """``count`` synthetic ``(1, 3, side, side)`` pictures in [0, 1]: noise smoothed at several scales (flat
    areas, edges and texture, like photographs and paintings rather than white noise), deterministic."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        picture = torch.zeros(1, 3, side, side)
        for cells in (2, 4 + i, 16, side // 4):
            noise = torch.rand(1, 3, cells, cells, generator=gen)
            picture += F.interpolate(noise, size=(side, side), mode="bilinear", align_corners=False)
        out.append((picture / 4).clamp(0, 1))
    return out


def int8_networks(
    model: AdaINModel,
    cache_dir: str | os.PathLike | None = None,
    *,
    contents: Sequence[Tensor] | None = None,
    styles: Sequence[Tensor] | None = None,
) -> NetworkFiles:
    """The int8 graphs of ``model``, from the cache, or quantised, measured and cached now (a minute or two).

    Arguments:
        model: the ``AdaINModel``.
        cache_dir: the cache root (default ``adain.weights._cache.cache_root()``).
        contents: calibration contents, ``(1, 3, h, w)`` float32 in [0, 1]; default 4 synthetic 256 px pictures.
        styles: the calibration style bank, the same kind; default 4 synthetic pictures.

    Returns:
        The int8 ``NetworkFiles``.

    Raises:
        InputError: int8 was measured (now, or before: ``int8.json``) as not fast enough or not close
            enough to float32 on this machine; the message gives the figures and the file to delete to
            measure again.
    """
    fp32 = float32_networks(model, cache_dir)
    files, record = NetworkFiles(fp32.folder, int8=True), fp32.folder / REPORT_NAME
    if record.is_file():
        report = Int8Report(**json.loads(record.read_text(encoding="utf-8")))
        if report.accepted and files.exist():
            return files
        if not report.accepted:
            raise _refusal(report, record)
    contents = list(contents) if contents is not None else pictures(4, 256, seed=10)
    styles = list(styles) if styles is not None else pictures(4, 256, seed=20)
    tmp = (temporary_name(files.encoder, "int8"), temporary_name(files.decoder, "int8"))
    try:
        quantize(fp32.encoder, tmp[0], ENCODER_INPUT, [*contents, *styles])
        quantize(fp32.decoder, tmp[1], DECODER_INPUT, _decoder_inputs(model, contents, styles))
        report = measure(fp32, tmp, model.config.eps)
        with atomic_path(record) as tmp_record:
            tmp_record.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
        if not report.accepted:
            raise _refusal(report, record)
        with atomic_path(files.encoder) as a, atomic_path(files.decoder) as b:
            os.replace(tmp[0], a)
            os.replace(tmp[1], b)
    finally:
        for path in tmp:
            path.unlink(missing_ok=True)
    return files


def _refusal(report: Int8Report, record: Path) -> InputError:
    return InputError(
        f"backend='onnxruntime-int8': not offered for this model on this machine: {report.reason} "
        f"(measured at {report.side}x{report.side}, kept in {record}; delete it to measure again); "
        "use backend='onnxruntime'"
    )


@torch.no_grad()
def _decoder_inputs(model: AdaINModel, contents: Sequence[Tensor], styles: Sequence[Tensor]) -> list[Tensor]:
    """AdaIN features of every content with every style (float32, the model's own encoder on the CPU)."""
    feats_c = [_encode(model, c) for c in contents]
    feats_s = [_encode(model, s) for s in styles]
    return [adain(f_c, f_s, model.config.eps) for f_c in feats_c for f_s in feats_s]


def _encode(model: AdaINModel, x: Tensor) -> Tensor:
    first = next(model.parameters())
    return model.encode(x.to(first.device, first.dtype)).float().cpu()


def quantize(source: Path, target: Path, input_name: str, inputs: Sequence[Tensor]) -> None:
    """QDQ int8 of the graph ``source`` into ``target``, activation ranges from ``inputs`` (min/max)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{input_name: x.numpy()} for x in inputs])

        def get_next(self):
            return next(self.feeds, None)

    prepared = temporary_name(target, "pre")
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
        )
    finally:
        prepared.unlink(missing_ok=True)


def measure(fp32: NetworkFiles, int8: tuple[Path, Path], eps: float, side: int | None = None) -> Int8Report:
    """Quality and speed of the int8 graphs ``int8`` (encoder, decoder) against ``fp32`` on a ``side`` px
    square content and style (default ``TIMING_SIDE``), and the decision."""
    side = TIMING_SIDE if side is None else side
    _, ort = require_export_extra()
    paths = {"float32": (fp32.encoder, fp32.decoder), "int8": int8}
    runs = {name: (session(ort, e), session(ort, d)) for name, (e, d) in paths.items()}
    content, style = pictures(2, side, seed=30)
    outs = {}
    for name, (enc, dec) in runs.items():
        (f_c,) = enc.run(None, {ENCODER_INPUT: content.numpy()})
        (f_s,) = enc.run(None, {ENCODER_INPUT: style.numpy()})
        t = adain(torch.from_numpy(f_c), torch.from_numpy(f_s), eps)
        outs[name] = torch.from_numpy(dec.run(None, {DECODER_INPUT: t.numpy()})[0])
    mean_abs, psnr = quality(outs["int8"], outs["float32"])
    seconds = timings(runs, content)
    speedup = seconds["float32"] / seconds["int8"]
    accepted, reason = decide(speedup, mean_abs, psnr)
    return Int8Report(side, seconds["float32"], seconds["int8"], speedup, mean_abs, psnr, accepted, reason)


def timings(runs: dict, content: Tensor, repeats: int = REPEATS) -> dict[str, float]:
    """Median seconds of encode + decode of ``content`` per entry of ``runs`` (``name: (encoder session,
    decoder session)``), repetitions interleaved so that other load on the machine hits each alike."""
    x = content.numpy()
    for enc, dec in runs.values():  # warm-up: memory planning for this shape
        dec.run(None, {DECODER_INPUT: enc.run(None, {ENCODER_INPUT: x})[0]})
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (enc, dec) in runs.items():
            start = time.perf_counter()
            dec.run(None, {DECODER_INPUT: enc.run(None, {ENCODER_INPUT: x})[0]})
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
