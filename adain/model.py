"""``AdaINModel``: encoder + AdaIN + decoder, and its on-disk format.

The package's own format is a directory with ``config.json`` (a ``ModelConfig``), ``model.safetensors``
(named keys: ``encoder.conv1_1.weight``, ``decoder.conv4_1.weight``, ...) and a ``README.md`` model
card. Loading is strict: every expected key with its exact shape, nothing extra, every value finite.
Only safetensors is read, so loading weights can never run code.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from .decoder import Decoder
from .encoder import CONTENT_LAYER, VGGEncoder
from .errors import CorruptWeightsError, WeightsNotFoundError
from .ops import EPS, adain

__all__ = ["AdaINModel", "ModelConfig", "CONFIG_NAME", "WEIGHTS_NAME", "check_state_dict"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelConfig:
    """What is needed, beside the tensors, to rebuild a model.

    Attributes:
        encoder_last_layer: deepest encoder layer stored (``"relu5_1"`` serves both backends;
            ``"relu4_1"`` is enough for AdaIN alone).
        eps: added to variances in AdaIN.
        description: free text carried into the model card.
    """

    architecture: str = "adain-vgg19"
    encoder_last_layer: str = "relu5_1"
    eps: float = EPS
    format_version: int = FORMAT_VERSION
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CorruptWeightsError(f"{source}: unknown config keys {unknown}; known keys are {sorted(known)}")
        config = cls(**data)
        if config.architecture != "adain-vgg19":
            raise CorruptWeightsError(f"{source}: architecture {config.architecture!r} is not 'adain-vgg19'")
        if config.format_version > FORMAT_VERSION:
            raise CorruptWeightsError(
                f"{source}: format_version {config.format_version} is newer than this package understands "
                f"({FORMAT_VERSION}); upgrade adain"
            )
        return config


def check_state_dict(state: dict[str, Tensor], expected: dict[str, Tensor], source: str) -> None:
    """Raise ``CorruptWeightsError`` unless ``state`` has exactly ``expected``'s keys and shapes, all finite.

    The message names the first offending key and the shape it should have.
    """
    for key, ref in expected.items():
        if key not in state:
            raise CorruptWeightsError(f"{source}: missing key {key!r} (expected shape {tuple(ref.shape)})")
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CorruptWeightsError(
                f"{source}: key {key!r} has shape {tuple(state[key].shape)}, expected {tuple(ref.shape)}"
            )
    extra = [k for k in state if k not in expected]
    if extra:
        raise CorruptWeightsError(f"{source}: unexpected key {extra[0]!r} ({len(extra)} unexpected in all)")
    for key, value in state.items():
        if not value.is_floating_point():
            raise CorruptWeightsError(f"{source}: key {key!r} has dtype {value.dtype}, expected a float tensor")
        if not bool(torch.isfinite(value).all()):
            raise CorruptWeightsError(f"{source}: key {key!r} contains NaN or infinite values")


class AdaINModel(nn.Module):
    """A VGG-19 encoder, the AdaIN layer and a decoder.

    Tensor in, tensor out: inputs are ``(N, 3, H, W)`` RGB in [0, 1] with ``H`` and ``W`` multiples of 8
    (``adain.Stylizer`` pads arbitrary sizes); outputs are unclamped, about [0, 1].
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

    # ---- the package's own format -------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike, *, model_card: str | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``README.md`` (a model card) to ``directory``.

        Files are written to temporary names and renamed, so an interrupted save never leaves a
        half-written ``model.safetensors`` under the real name. Returns the directory.
        """
        from safetensors.torch import save_file

        from .card import default_model_card

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.state_dict().items()}
        _atomic_write(out / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
        config_text = json.dumps(asdict(self.config), indent=2) + "\n"
        _atomic_write(out / CONFIG_NAME, lambda p: p.write_text(config_text))
        card = model_card if model_card is not None else default_model_card(self.config)
        _atomic_write(out / "README.md", lambda p: p.write_text(card))
        return out

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> AdaINModel:
        """Load a model saved by ``save_pretrained`` from a local directory (strict, safetensors only)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        root = Path(directory)
        config_path, weights_path = root / CONFIG_NAME, root / WEIGHTS_NAME
        for path in (config_path, weights_path):
            if not path.is_file():
                raise WeightsNotFoundError(
                    f"{path} not found: a model directory needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                    "(written by AdaINModel.save_pretrained)"
                )
        try:
            data = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptWeightsError(f"{config_path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise CorruptWeightsError(f"{config_path}: expected a JSON object")
        try:
            config = ModelConfig.from_dict(data, str(config_path))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, CorruptWeightsError):
                raise
            raise CorruptWeightsError(f"{config_path}: {exc}") from None
        model = cls(config)
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CorruptWeightsError(f"{weights_path}: not a readable safetensors file ({exc})") from None
        check_state_dict(state, model.state_dict(), str(weights_path))
        model.load_state_dict(state, strict=True)
        return model.eval()

    @classmethod
    def from_original(cls, vgg_path: str | os.PathLike, decoder_path: str | os.PathLike) -> AdaINModel:
        """Build a model from the reference PyTorch port's ``vgg_normalised.pth`` and ``decoder.pth``.

        Read with ``torch.load(weights_only=True)`` (no code can run), keys and shapes checked strictly;
        the encoder is kept up to relu5_1.
        """
        from .legacy import load_original

        return load_original(vgg_path, decoder_path)


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
