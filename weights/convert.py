"""Build the package-format folder of a named weight set, with its model card, ready to publish.

    python weights/convert.py reference-port --out build/reference-port
    python weights/convert.py reference-port --out build/reference-port \
        --from-files vgg_normalised.pth decoder.pth          # files you already have (verified too)
    python weights/convert.py torch7 --out build/adain-torch7 \
        --from-files vgg_normalised.t7 decoder.t7 --card weights/cards/reference-port.md

Without ``--from-files`` the files come through ``adain.load_pretrained(NAME)`` (download, sha256 and
fingerprint checks, conversion). With them, the named entry's sha256 values are checked first when the
format matches. The card is ``weights/cards/<NAME>.md`` unless ``--card`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import adain
from adain.errors import CorruptWeightsError
from adain.weights._download import sha256_of
from adain.weights._resolve import pretrained_info

CARDS = Path(__file__).resolve().parent / "cards"


def build(name: str, out: Path, files: list[str] | None = None, card: Path | None = None) -> Path:
    """Write ``out`` (config.json, model.safetensors, README.md) for the named weights; returns ``out``."""
    card_text = (card or CARDS / f"{name}.md").read_text()
    if files is None:
        model = adain.load_pretrained(name)
    elif name == "torch7":
        model = adain.AdaINModel.from_torch7(*files, description="AdaIN original Torch7 release, converted by adain")
    else:
        entry = pretrained_info(name)
        for spec, path in zip(entry.files, files):
            if spec.sha256 and sha256_of(path) != spec.sha256:
                raise CorruptWeightsError(f"{path}: sha256 differs from the registry's {spec.sha256}")
        model = adain.AdaINModel.from_original(*files)
        model.config = replace(model.config, description=entry.config.description)
    return model.save_pretrained(out, model_card=card_text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a registered name (see adain.list_pretrained()) or 'torch7'")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--from-files", nargs=2, metavar=("ENCODER", "DECODER"))
    parser.add_argument("--card", type=Path, help="model card (default weights/cards/<name>.md)")
    args = parser.parse_args(argv)
    out = build(args.name, args.out, args.from_files, args.card)
    print(f"wrote {out}; publish with: python weights/publish.py {out} --repo-id <org>/<name>", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
