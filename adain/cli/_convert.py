"""``adain convert``: legacy weight files -> the package format (config.json + model.safetensors).

adain convert reference-port vgg_normalised.pth decoder.pth OUT_DIR
adain convert torch7 vgg_normalised.t7 decoder.t7 OUT_DIR
adain convert torchvision OUT_DIR [--state-dict vgg19.pth]
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from ..model import AdaINModel
from ..weights._legacy import read_legacy_state_dict


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert legacy weights (.pth, .t7, torchvision) to the package format",
        description="Convert legacy weight files to a folder that adain.load_pretrained(folder) reads.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True

    port = kinds.add_parser("reference-port", help="the PyTorch port's vgg_normalised.pth + decoder.pth")
    port.add_argument("vgg", help="vgg_normalised.pth")
    port.add_argument("decoder", help="decoder.pth")
    port.add_argument("out", help="output folder")
    port.set_defaults(func=_run_pair)

    t7 = kinds.add_parser("torch7", help="the original Torch7 release: vgg_normalised.t7 + decoder.t7")
    t7.add_argument("vgg", help="vgg_normalised.t7")
    t7.add_argument("decoder", help="decoder.t7 or decoder-content-similar.t7")
    t7.add_argument("out", help="output folder")
    t7.set_defaults(func=_run_pair)

    tv = kinds.add_parser(
        "torchvision", help="torchvision's ImageNet VGG-19 as encoder, with an UNTRAINED decoder (for training only)"
    )
    tv.add_argument("out", help="output folder")
    tv.add_argument(
        "--state-dict",
        help="a torchvision vgg19 state dict file, e.g. vgg19-dcbb9e9d.pth fetched "
        "elsewhere when offline (default: download IMAGENET1K_V1 into torchvision's cache)",
    )
    tv.add_argument("--seed", type=int, default=0, help="seed of the untrained decoder's initialisation")
    tv.set_defaults(func=_run_torchvision)


def _describe(kind: str, vgg: str, decoder: str) -> str:
    return f"Converted by `adain convert {kind}` from {Path(vgg).name} + {Path(decoder).name}."


def _run_pair(args) -> int:
    loader = AdaINModel.from_original if args.kind == "reference-port" else AdaINModel.from_torch7
    model = loader(args.vgg, args.decoder)
    model.config = replace(model.config, description=_describe(args.kind, args.vgg, args.decoder))
    out = model.save_pretrained(args.out)
    print(
        f"wrote {out} (encoder to {model.config.encoder_last_layer}); load it with adain.load_pretrained({str(out)!r})",
        file=sys.stderr,
    )
    return 0


def _run_torchvision(args) -> int:
    state = read_legacy_state_dict(args.state_dict, "torchvision VGG-19") if args.state_dict else None
    model = AdaINModel.from_torchvision(state, seed=args.seed)
    out = model.save_pretrained(args.out)
    print(f"wrote {out}: torchvision VGG-19 encoder, decoder untrained (train it before stylizing)", file=sys.stderr)
    return 0
