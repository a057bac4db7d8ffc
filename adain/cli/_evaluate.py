"""``adain evaluate``: score a method under a named protocol, as the papers do.

    adain evaluate CONTENTS STYLES [--method adain|gatys|FOLDER] [--protocol styleid|adain-paper]
                   [--metrics content,style,...] [--weights W] [--report evaluation.json] [--overwrite]

pairs the protocol's first contents and styles (sorted by name), makes each output with ``adain`` or
``gatys`` (or reads ``FOLDER/<content>_stylized_<style>.<ext>``, the names ``adain stylize`` writes, from any
tool), scores it (``adain.metrics``), writes one JSON report (protocol, pairs, every pair's metrics, the
summary, the sha256 of each downloaded network) and prints a table on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .._atomic import atomic_path, check_output, check_writable
from .._images import to_tensor
from .._io import list_images
from .._version import __version__
from ..errors import InputError
from ..inference import Stylizer
from ..metrics._fetch import METRIC_WEIGHTS, metrics_cache
from ..metrics._protocol import NEEDS_DOWNLOAD, PROTOCOLS, Pair, Protocol, get_protocol, protocol_pairs
from ..metrics._score import Scorer, check_metrics, load_networks
from ..optimization import gatys_tensor
from ..weights._download import sha256_of
from ._common import load_model

_METHODS = ("adain", "gatys")
_LINE_EVERY_S = 30.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a method under a paper's protocol (ArtFID, FID, LPIPS, CFSD, content/style losses)",
        description="Pair the protocol's first contents and styles, make or read each output, score them and write "
        "a JSON report; a table goes to stdout. LPIPS, FID, ArtFID and CFSD download their published networks "
        "once (checked by sha256) into the weights cache.",
    )
    parser.add_argument("contents", metavar="CONTENTS", help="a folder of content images")
    parser.add_argument("styles", metavar="STYLES", help="a folder of style images")
    parser.add_argument(
        "--method",
        default="adain",
        metavar="adain|gatys|FOLDER",
        help="make outputs with adain (default) or gatys, or read them from FOLDER, named "
        "<content>_stylized_<style>.<ext> as adain stylize names them",
    )
    parser.add_argument("--protocol", default="styleid", choices=sorted(PROTOCOLS), help="default: styleid")
    parser.add_argument(
        "--metrics", default=None, help="comma-separated subset (default: the protocol's); e.g. content,style,ssim"
    )
    parser.add_argument(
        "--weights", default=None, help="the model (its VGG encoder scores the losses; adain/gatys use it)"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="override the protocol's image size (for a quick look; the report then says it is not the protocol's)",
    )
    parser.add_argument("--report", default="evaluation.json", help="the JSON report (default: evaluation.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best available)")
    parser.add_argument(
        "--cache-dir", default=None, help="the weights cache root (default: ADAIN_CACHE or ~/.cache/adain)"
    )
    parser.add_argument("--offline", action="store_true", help="never download (as HF_HUB_OFFLINE=1)")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    protocol = get_protocol(args.protocol)
    standard = args.size is None or args.size == protocol.size
    if args.size is not None:
        if args.size < 16:
            raise InputError(f"--size {args.size}: must be at least 16 pixels")
        protocol = replace(protocol, size=args.size, eval_size=args.size)
    metrics = check_metrics(args.metrics.split(",") if args.metrics else protocol.metrics)
    pairs = protocol_pairs(protocol, list_images(args.contents), list_images(args.styles))
    outputs = _output_files(Path(args.method), pairs) if args.method not in _METHODS else None
    check_output(args.report, overwrite=args.overwrite, inputs=[args.contents, args.styles])
    check_writable(Path(args.report).absolute().parent, "--report")  # before any weights load
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = load_model(args.weights)
    networks = load_networks(metrics, device=device, cache_dir=args.cache_dir, local_files_only=args.offline)
    scorer = Scorer(model.encoder.to(device).eval(), protocol, metrics, networks)
    # float32, as the papers' numbers were made (the Stylizer's default is bf16 where the device has it)
    stylizer = Stylizer(model, device=device, dtype="float32") if args.method == "adain" else None
    started = last_line = time.perf_counter()
    for i, pair in enumerate(pairs):
        content, style = (
            _load(p, protocol, device, what) for p, what in ((pair.content, "content"), (pair.style, "style"))
        )
        if outputs is not None:
            output = to_tensor(outputs[pair.name], what=str(outputs[pair.name]))[None].to(device)
        elif stylizer is not None:
            output = stylizer.set_style(style, style_size=None).stylize_tensor(content)
        else:
            output = gatys_tensor(content, style, model=model, content_size=None, device=device)[None].to(device)
        scorer.add(pair.name, output, content, style)
        now = time.perf_counter()
        if i in (0, len(pairs) - 1) or now - last_line >= _LINE_EVERY_S:  # a line at least every 30 s, not per pair
            print(f"evaluate: {i + 1}/{len(pairs)} pairs ({now - started:.0f} s)", file=sys.stderr)
            last_line = now
    summary = scorer.summary()
    report = _report(args, protocol, pairs, scorer, summary)
    report["standard"] = standard and report["complete"]
    with atomic_path(args.report, replace=True) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(protocol, summary, len(pairs)))
    print(f"wrote {args.report}", file=sys.stderr)
    return 0


def _load(path: Path, protocol: Protocol, device: torch.device, what: str) -> torch.Tensor:
    return to_tensor(path, size=protocol.size, crop=protocol.crop, what=f"{what} {path}")[None].to(device)


def _output_files(folder: Path, pairs: list[Pair]) -> dict[str, Path]:
    """The output of each pair in ``folder`` (by file stem); ``InputError`` naming the first missing one."""
    if not folder.is_dir():
        raise InputError(f"--method {folder}: neither {' nor '.join(_METHODS)} nor a folder of outputs")
    found = {p.stem: p for p in list_images(folder)}
    missing = [pair.name for pair in pairs if pair.name not in found]
    if missing:
        raise InputError(
            f"--method {folder}: no output for {len(missing)} of {len(pairs)} pairs, e.g. {missing[0]}.<png|jpg> "
            "(outputs are named <content>_stylized_<style>)"
        )
    return {pair.name: found[pair.name] for pair in pairs}


def _report(args, protocol: Protocol, pairs: list[Pair], scorer: Scorer, summary: dict[str, float]) -> dict:
    used = sorted({w for m in scorer.metrics for w in NEEDS_DOWNLOAD.get(m, ())})
    files = {}
    for name in used:
        spec = METRIC_WEIGHTS[name]
        path = metrics_cache(args.cache_dir) / spec.filename
        files[name] = {"url": spec.url, "pin": spec.pin, "sha256": sha256_of(path)}
    complete = len(pairs) == protocol.contents * protocol.styles
    return {
        "adain_version": __version__,
        "protocol": asdict(protocol),
        "complete": complete,
        "method": args.method,
        "weights": args.weights or "default",
        "metric_networks": files,
        "pairs": [{"content": str(p.content), "style": str(p.style), "name": p.name} for p in pairs],
        "summary": summary,
        "expected": dict(protocol.expected),
        "per_pair": scorer.rows,
    }


def _table(protocol: Protocol, summary: dict[str, float], n_pairs: int) -> str:
    expected = dict(protocol.expected)
    lines = [f"protocol {protocol.name}: {n_pairs} pairs", f"{'metric':<14}{'value':>12}{'paper (AdaIN)':>16}"]
    for name, value in summary.items():
        paper = f"{expected[name]:.3f}" if name in expected else "-"
        lines.append(f"{name:<14}{value:>12.4f}{paper:>16}")
    return "\n".join(lines)
