"""``AdaINModel``: encoder + AdaIN + decoder, and the ways to get one.

The modules come from ``adain.modeling``; saving, loading and converting delegate to ``adain.weights``,
which works on ``(ModelConfig, state dict)`` pairs and never imports this module back. Export to ONNX is
``adain.export``, which builds on this module (``AdaINModel.export_onnx`` is its deprecated spelling).
``load_pretrained`` turns any weight name (registered, folder, Hub repo) into a model.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .modeling._config import ModelConfig
from .modeling._decoder import Decoder
from .modeling._encoder import CONTENT_LAYER, VGGEncoder
from .modeling._ops import adain
from .weights import _format as weights_format
from .weights._download import DownloadProgress
from .weights._legacy import load_reference_port
from .weights._resolve import load_pretrained_state
from .weights._torch7 import load_torch7
from .weights._torchvision import model_from_torchvision

__all__ = ["AdaINModel", "ModelConfig", "load_pretrained"]

# ``adain.export`` builds on this module (it imports the model side), so this module may not import it back,
# not even inside a function: that would be an import cycle, only hidden. The deprecated
# ``AdaINModel.export_onnx`` reaches the exporter through this slot instead, which ``adain.export`` fills when it
# is imported; ``adain/__init__.py`` imports ``adain.export``, and Python runs it before any module of the
# package, so the slot is filled wherever a model exists. The slot goes with the deprecated method.
onnx_exporter: Callable[..., Any] | None = None


class AdaINModel(nn.Module):
    """A VGG-19 encoder, the AdaIN layer and a decoder.

    Tensor in, tensor out: inputs are ``(N, 3, H, W)`` RGB in [0, 1] with ``H`` and ``W`` multiples of 8
    (``adain.Stylizer`` pads arbitrary sizes); outputs are unclamped, about [0, 1]. ``AdaINModel()`` has random
    weights: get a trained one from [``load_pretrained``][adain.load_pretrained], ``from_pretrained`` or a
    legacy converter (``from_original``, ``from_torch7``). Guide: [weights and the Hub](../guides/weights.md).

    Arguments:
        config: the architecture's free parameters; ``None``: ``ModelConfig()`` (the encoder to relu5_1).

    Attributes:
        config: the [``ModelConfig``][adain.ModelConfig], saved as ``config.json`` beside the weights.
        encoder: the [``VGGEncoder``][adain.modeling.VGGEncoder], up to ``config.encoder_last_layer``.
        decoder: the [``Decoder``][adain.modeling.Decoder].
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        self.encoder = VGGEncoder(self.config.encoder_last_layer)
        self.decoder = Decoder()

    def encode(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` image in [0, 1] -> ``(N, 512, ceil(H/8), ceil(W/8))`` relu4_1 features."""
        return self.encoder(x, (CONTENT_LAYER,))[CONTENT_LAYER]

    def decode(self, t: Tensor) -> Tensor:
        """``(N, 512, h, w)`` features -> ``(N, 3, 8h, 8w)`` image, unclamped."""
        return self.decoder(t)

    def forward(self, content: Tensor, style: Tensor, alpha: float = 1.0) -> Tensor:
        """The reference pipeline: ``decode(alpha * AdaIN(f(c), f(s)) + (1 - alpha) * f(c))``."""
        f_c = self.encode(content)
        t = adain(f_c, self.encode(style), self.config.eps)
        return self.decode(alpha * t + (1 - alpha) * f_c)

    def export_onnx(self, path: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """Deprecated: ``adain.export.export_onnx(model, path)``, which this calls (with a ``DeprecationWarning``).

        Arguments:
            path: the content graph's file name, ending in ``.onnx``, as in ``export_onnx``.
            overwrite: replace existing files, as in ``export_onnx``.

        Returns:
            The ``adain.export.ONNXFiles`` written.
        """
        warnings.warn(
            "AdaINModel.export_onnx(path) is deprecated; use adain.export.export_onnx(model, path)",
            DeprecationWarning,
            stacklevel=2,
        )
        if onnx_exporter is None:  # only if adain/__init__.py stopped importing adain.export
            raise RuntimeError("adain.export is not imported; use adain.export.export_onnx(model, path)")
        return onnx_exporter(self, path, overwrite=overwrite)

    # ---- building from (config, state) pairs ---------------------------------------------------------

    @classmethod
    def from_state(cls, config: ModelConfig, state: Mapping[str, Tensor], source: str = "state dict") -> AdaINModel:
        """A model (eval mode) with ``state``, checked strictly against ``config``'s keys and shapes.

        Arguments:
            config: the architecture.
            state: a state dict with exactly the keys and shapes ``AdaINModel(config)`` has.
            source: how ``state`` is named in error messages (e.g. its file).

        Raises:
            CorruptWeightsError: a missing, unexpected or misshapen key, or a non-finite value.
        """
        weights_format.check_state_dict(dict(state), weights_format.expected_state(config), source)
        model = cls(config)
        model.load_state_dict(state, strict=True)
        return model.eval()

    # ---- the package's own format ----------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike, *, model_card: str | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``README.md`` (a model card) to ``directory``.

        Each file is written to a temporary name and renamed, so an interrupted save never leaves a
        half-written file under a real name. ``load_pretrained(directory)`` loads it back, and
        [``push_to_hub``][adain.weights.push_to_hub] publishes it.

        Arguments:
            directory: the folder to write (created if needed).
            model_card: the ``README.md`` text; ``None``: a card generated from the config.

        Returns:
            The directory.
        """
        return weights_format.save_model_dir(self.config, self.state_dict(), directory, card=model_card)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> AdaINModel:
        """Load a model saved by ``save_pretrained`` from a local directory (strict, safetensors only)."""
        config, state = weights_format.load_model_dir(directory)
        return cls.from_state(config, state, str(Path(directory) / weights_format.WEIGHTS_NAME))

    # ---- legacy files ----------------------------------------------------------------------------------

    @classmethod
    def from_original(cls, vgg_path: str | os.PathLike, decoder_path: str | os.PathLike) -> AdaINModel:
        """Build a model from the reference PyTorch port's ``vgg_normalised.pth`` and ``decoder.pth``.

        Read with ``torch.load(weights_only=True)`` (no code can run), keys, shapes and the VGG
        fingerprint checked strictly; the encoder is kept up to relu5_1.

        Arguments:
            vgg_path: the normalised VGG-19 file, ``vgg_normalised.pth``.
            decoder_path: the decoder file, e.g. ``decoder.pth``.
        """
        return cls.from_state(*load_reference_port(vgg_path, decoder_path), f"{vgg_path} + {decoder_path}")

    @classmethod
    def from_torch7(
        cls, vgg_path: str | os.PathLike, decoder_path: str | os.PathLike, *, description: str = ""
    ) -> AdaINModel:
        """Build a model from the original Torch7 release (``vgg_normalised.t7`` + a decoder ``.t7``).

        The files are parsed, never executed; the encoder is kept to relu5_1 when the file reaches it, else to
        relu4_1 (enough for AdaIN alone), and the VGG fingerprint is checked.

        Arguments:
            vgg_path: the normalised VGG-19 file, ``vgg_normalised.t7``.
            decoder_path: the decoder file, e.g. ``decoder.t7``.
            description: free text for ``ModelConfig.description`` (carried into the model card).
        """
        config, state = load_torch7(vgg_path, decoder_path, description=description)
        return cls.from_state(config, state, f"{vgg_path} + {decoder_path}")

    @classmethod
    def from_torchvision(cls, state: Mapping[str, Tensor] | None = None, *, seed: int = 0) -> AdaINModel:
        """torchvision's ImageNet VGG-19 encoder with an *untrained* decoder (seeded): for training only.

        Arguments:
            state: a torchvision ``vgg19`` state dict; ``None`` downloads ``IMAGENET1K_V1`` through
                torchvision's cache (needs the ``torchvision`` extra).
            seed: seeds the decoder's random initialisation (the same seed, the same decoder).
        """
        return cls.from_state(*model_from_torchvision(state, seed=seed), "torchvision VGG-19")


def load_pretrained(
    name: str | os.PathLike = "default",
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    progress: Callable[[DownloadProgress], None] | None = None,
) -> AdaINModel:
    """Load an ``AdaINModel`` (eval mode, CPU, float32).

    Named weights are downloaded once, checked (sha256 and fingerprint), converted and cached; see
    [weights and the Hub](../guides/weights.md).

    Arguments:
        name: one of ``adain.list_pretrained()`` (or ``"default"``); a local directory written by
            ``save_pretrained``; or a Hub repo id ``"user/name"``, optionally ``"hf-hub:user/name@rev"``.
            An existing directory wins over a repo id of the same spelling.
        revision: Hub branch, tag or commit (also overrides the revision of a named entry's Hub sources).
        cache_dir: cache root for named weights, and Hub files go to ``cache_dir/hub``; ``None``: named
            weights in ``$ADAIN_CACHE``, else ``$XDG_CACHE_HOME/adain``, else ``~/.cache/adain``, and Hub files
            in the Hugging Face cache.
        local_files_only: never touch the network (as does ``HF_HUB_OFFLINE=1``).
        progress: ``None``, or a function called with a [``DownloadProgress``][adain.weights.DownloadProgress]
            as the bytes of each file arrive (the library draws no bar).

    Returns:
        The model, in eval mode, on the CPU, in float32.

    Raises:
        WeightsOfflineError: offline (``local_files_only`` or ``HF_HUB_OFFLINE=1``) and not cached.
        WeightsNotFoundError: no source worked; the message lists each one and where to put the files by hand.
        CorruptWeightsError: files failed a check (checksum, keys, shapes, fingerprint).
        InputError: ``name`` is a file or a training run, not a model folder (the message says what to pass).
    """
    config, state = load_pretrained_state(
        name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, progress=progress
    )
    return AdaINModel.from_state(config, state, str(name))
