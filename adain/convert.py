"""Converters from foreign weight files to ``AdaINModel``, and the fingerprint that vouches for them.

- The reference PyTorch port's ``vgg_normalised.pth`` + ``decoder.pth`` (``load_reference_port``).
- The original Torch7 release: ``vgg_normalised.t7`` + ``decoder.t7`` or ``decoder-content-similar.t7``
  (``load_torch7``), read by ``adain.torch7`` without Lua. Their module lists are mapped to our named
  layers by module type and order, checking every padding, stride, kernel and pooling on the way.
- torchvision's ImageNet VGG-19 (``encoder_from_torchvision``): a *different* encoder, for training new
  decoders only (the released decoders were trained against the normalised VGG and do not fit it).

Every VGG from a legacy file must carry the normalised VGG's fingerprint: a first 1x1 conv that maps
RGB in [0, 1] to Caffe's BGR in [0, 255] minus the ImageNet mean. The Torch7 release has the same first
conv as the PyTorch port (the port was converted from it), and ``adain.stylize`` feeds RGB in [0, 1].
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .decoder import DECODER_CONVS
from .encoder import LAYER_NAMES, VGG_CONVS, VGGEncoder
from .errors import CorruptWeightsError
from .model import AdaINModel, ModelConfig, check_state_dict

__all__ = [
    "CAFFE_MEAN_BGR",
    "IMAGENET_MEAN_RGB",
    "IMAGENET_STD_RGB",
    "check_vgg_fingerprint",
    "load_reference_port",
    "load_torch7",
    "torchvision_vgg19_to_named",
    "encoder_from_torchvision",
    "model_from_torchvision",
]

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
"""The Caffe ImageNet mean in BGR order, 0-255 scale; minus it is the preprocessing conv's bias."""
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
"""torchvision's input normalisation for its ImageNet models (RGB in [0, 1])."""

_FINGERPRINT_ATOL = 1e-2  # the released values are exact (0, 255, -103.939, ...) up to float32 rounding


def check_vgg_fingerprint(weight: Tensor, bias: Tensor, source: str) -> None:
    """Raise ``CorruptWeightsError`` unless the 1x1 conv is the normalised VGG's preprocessing.

    Expected: ``weight[i, 2 - i] = 255`` and every other entry 0 (RGB -> BGR, x255), ``bias = -(103.939,
    116.779, 123.68)``, each within 0.01. ``weight`` is ``(3, 3, 1, 1)``, ``bias`` ``(3,)``.
    """
    expected_w = torch.zeros(3, 3, 1, 1)
    for i in range(3):
        expected_w[i, 2 - i] = 255.0
    expected_b = -torch.tensor(CAFFE_MEAN_BGR)
    w, b = weight.detach().float().cpu(), bias.detach().float().cpu()
    if tuple(w.shape) != (3, 3, 1, 1) or tuple(b.shape) != (3,):
        raise CorruptWeightsError(f"{source}: first conv has shape {tuple(w.shape)}, expected (3, 3, 1, 1)")
    if not (torch.allclose(w, expected_w, atol=_FINGERPRINT_ATOL) and torch.allclose(b, expected_b, atol=_FINGERPRINT_ATOL)):
        raise CorruptWeightsError(
            f"{source}: the first 1x1 conv is not the normalised VGG's RGB->BGR x255 minus the Caffe mean "
            f"(weight {w.flatten().tolist()}, bias {b.tolist()}); not the vgg_normalised weights"
        )


def load_reference_port(vgg_path: str | os.PathLike, decoder_path: str | os.PathLike) -> AdaINModel:
    """``AdaINModel`` from the reference port's ``vgg_normalised.pth`` + ``decoder.pth``, fingerprint checked.

    Read with ``torch.load(weights_only=True)`` only; keys, shapes and finiteness are checked strictly.
    The encoder is kept to relu5_1.
    """
    from .legacy import load_original

    model = load_original(vgg_path, decoder_path)
    check_vgg_fingerprint(model.encoder.preprocess.weight, model.encoder.preprocess.bias, str(vgg_path))
    return model


# ---- Torch7 ---------------------------------------------------------------------------------------

_KINDS = {
    "nn.SpatialConvolution": "conv", "nn.SpatialConvolutionMM": "conv", "cudnn.SpatialConvolution": "conv",
    "nn.SpatialReflectionPadding": "pad",
    "nn.ReLU": "relu", "cudnn.ReLU": "relu",
    "nn.SpatialMaxPooling": "pool", "cudnn.SpatialMaxPooling": "pool",
    "nn.SpatialUpSamplingNearest": "up",
}  # fmt: skip


def _modules(obj: Any, source: str) -> list[Any]:
    from .torch7 import TorchObject

    if not isinstance(obj, TorchObject) or obj.class_name != "nn.Sequential" or not isinstance(obj.get("modules"), dict):
        found = obj.class_name if isinstance(obj, TorchObject) else type(obj).__name__
        raise CorruptWeightsError(f"{source}: expected an nn.Sequential with a modules list, found {found}")
    table = obj["modules"]
    return [table[i] for i in sorted(k for k in table if isinstance(k, int))]


class _Walker:
    """Consumes a Torch7 module list in order, checking each module against what the layout expects."""

    def __init__(self, modules: list[Any], source: str) -> None:
        self.modules, self.source, self.pos = modules, source, 0

    def fail(self, what: str) -> CorruptWeightsError:
        return CorruptWeightsError(f"{self.source}: module {self.pos + 1} (1-based, as in Lua): {what}")

    def done(self) -> bool:
        return self.pos >= len(self.modules)

    def take(self, kind: str) -> Any:
        if self.done():
            raise self.fail(f"the model ends where a {kind} module was expected")
        module = self.modules[self.pos]
        found = _KINDS.get(getattr(module, "class_name", ""), getattr(module, "class_name", type(module).__name__))
        if found != kind:
            raise self.fail(f"expected a {kind} module, found {found}")
        self.pos += 1
        return module

    def field(self, module: Any, name: str, expected: Any) -> None:
        if module.get(name) != expected:
            raise CorruptWeightsError(
                f"{self.source}: module {self.pos} ({module.class_name}) has {name}={module.get(name)!r}, expected {expected!r}"
            )

    def conv(self, cin: int, cout: int, k: int) -> dict[str, Tensor]:
        module = self.take("conv")
        for name, value in (("kW", k), ("kH", k), ("dW", 1), ("dH", 1), ("nInputPlane", cin), ("nOutputPlane", cout)):
            self.field(module, name, value)
        for name in ("padW", "padH"):  # padding is a separate reflection module
            if module.get(name, 0) != 0:
                self.field(module, name, 0)
        weight, bias = module.get("weight"), module.get("bias")
        if not isinstance(weight, Tensor) or not isinstance(bias, Tensor):
            raise CorruptWeightsError(f"{self.source}: module {self.pos} ({module.class_name}) lacks weight or bias")
        if weight.numel() != cout * cin * k * k or bias.numel() != cout:
            raise CorruptWeightsError(
                f"{self.source}: module {self.pos} ({module.class_name}) has weight {tuple(weight.shape)} and bias "
                f"{tuple(bias.shape)}, expected ({cout}, {cin}, {k}, {k}) and ({cout},)"
            )
        # SpatialConvolutionMM stores a 2-D (out, in*k*k) weight; both layouts hold the same cross-correlation.
        return {"weight": weight.reshape(cout, cin, k, k).float(), "bias": bias.reshape(cout).float()}

    def padded_conv(self, cin: int, cout: int) -> dict[str, Tensor]:
        pad = self.take("pad")
        for name in ("pad_l", "pad_r", "pad_t", "pad_b"):
            self.field(pad, name, 1)
        return self.conv(cin, cout, 3)

    def pool(self) -> None:
        module = self.take("pool")
        for name, value in (("kW", 2), ("kH", 2), ("dW", 2), ("dH", 2)):
            self.field(module, name, value)

    def up(self) -> None:
        self.field(self.take("up"), "scale_factor", 2)


def _torch7_vgg(obj: Any, source: str) -> tuple[dict[str, Tensor], str]:
    """Named encoder state and the deepest relu present (relu4_1 at least, relu5_1 at most)."""
    walker = _Walker(_modules(obj, source), source)
    shapes = {name: (cin, cout) for name, cin, cout in VGG_CONVS}
    state = {f"preprocess.{k}": v for k, v in walker.conv(3, 3, 1).items()}
    last = None
    for layer in LAYER_NAMES:
        if walker.done() and last is not None and LAYER_NAMES.index(last) >= LAYER_NAMES.index("relu4_1"):
            break  # a file cut after relu4_1 is enough for AdaIN
        if layer.startswith("conv"):
            state |= {f"{layer}.{k}": v for k, v in walker.padded_conv(*shapes[layer]).items()}
        elif layer.startswith("relu"):
            walker.take("relu")
            last = layer
        else:
            walker.pool()
    # Later modules (conv5_2 ... relu5_4, pool5) are not used by this package and are not read.
    if last is None or LAYER_NAMES.index(last) < LAYER_NAMES.index("relu4_1"):
        raise CorruptWeightsError(f"{source}: the VGG ends before relu4_1")
    keep = set(LAYER_NAMES[: LAYER_NAMES.index(last) + 1]) | {"preprocess"}
    return {k: v for k, v in state.items() if k.split(".")[0] in keep}, last


def _torch7_decoder(obj: Any, source: str) -> dict[str, Tensor]:
    walker = _Walker(_modules(obj, source), source)
    state: dict[str, Tensor] = {}
    convs = [step for step in DECODER_CONVS if step != "up"]
    for step in DECODER_CONVS:
        if step == "up":
            walker.up()
            continue
        name, cin, cout = step
        state |= {f"{name}.{k}": v for k, v in walker.padded_conv(cin, cout).items()}
        if step != convs[-1]:
            walker.take("relu")
    if not walker.done():
        raise walker.fail("unexpected module after the decoder's last conv")
    return state


def load_torch7(vgg_path: str | os.PathLike, decoder_path: str | os.PathLike, *, description: str = "") -> AdaINModel:
    """``AdaINModel`` from the original Torch7 release files (``vgg_normalised.t7`` + a decoder ``.t7``).

    The encoder is kept to relu5_1 when the file reaches it, else to relu4_1 (AdaIN only).
    """
    from .torch7 import read_t7

    vgg, last = _torch7_vgg(read_t7(vgg_path), str(vgg_path))
    check_vgg_fingerprint(vgg["preprocess.weight"], vgg["preprocess.bias"], str(vgg_path))
    decoder = _torch7_decoder(read_t7(decoder_path), str(decoder_path))
    model = AdaINModel(ModelConfig(encoder_last_layer=last, description=description))
    state = {f"encoder.{k}": v for k, v in vgg.items()} | {f"decoder.{k}": v for k, v in decoder.items()}
    check_state_dict(state, model.state_dict(), f"{vgg_path} + {decoder_path}")
    model.load_state_dict(state, strict=True)
    return model.eval()


# ---- torchvision ----------------------------------------------------------------------------------


def torchvision_vgg19_to_named(state: Mapping[str, Tensor], last_layer: str = "relu5_1") -> dict[str, Tensor]:
    """torchvision ``vgg19().state_dict()`` (``features.<i>.weight``) -> ``VGGEncoder`` keys, preprocessing included.

    The k-th conv of ``features`` becomes the k-th name of ``VGG_CONVS``; the classifier is dropped.
    The ``preprocess`` 1x1 conv maps RGB in [0, 1] to torchvision's normalisation
    ``(x - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB`` (weight ``diag(1/std)``, bias ``-mean/std``).
    """
    indices = sorted(int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight"))
    wanted = [name for name, _, _ in VGG_CONVS]
    wanted = wanted[: wanted.index("conv" + last_layer.removeprefix("relu")) + 1]
    if len(indices) < len(wanted):
        raise CorruptWeightsError(f"torchvision VGG state dict has {len(indices)} convs, {len(wanted)} needed")
    std, mean = torch.tensor(IMAGENET_STD_RGB), torch.tensor(IMAGENET_MEAN_RGB)
    out = {"preprocess.weight": torch.diag(1.0 / std).reshape(3, 3, 1, 1), "preprocess.bias": -mean / std}
    for name, index in zip(wanted, indices):
        out[f"{name}.weight"] = state[f"features.{index}.weight"].float()
        out[f"{name}.bias"] = state[f"features.{index}.bias"].float()
    return out


def encoder_from_torchvision(
    state: Mapping[str, Tensor] | None = None, *, last_layer: str = "relu5_1"
) -> VGGEncoder:
    """A ``VGGEncoder`` with torchvision's VGG-19 weights, for training new decoders.

    Arguments:
        state: a torchvision ``vgg19`` state dict; None downloads ``VGG19_Weights.IMAGENET1K_V1`` through
            torchvision's cache (``torch.hub``; hash checked, ``weights_only`` load).
        last_layer: deepest layer kept.
    Returns:
        An encoder taking RGB in [0, 1] like every encoder of this package. Departures from torchvision:
        reflection padding (AdaIN's choice; torchvision pads with zeros) and ``ceil_mode`` pooling, so
        taps differ from torchvision's near the borders and, for odd sizes, in shape. The released AdaIN
        decoders do not work with it: its features live on another scale.
    """
    if state is None:
        from torchvision.models import VGG19_Weights

        state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True, weights_only=True)
    encoder = VGGEncoder(last_layer)
    named = torchvision_vgg19_to_named(state, last_layer)
    check_state_dict(named, encoder.state_dict(), "torchvision VGG-19")
    encoder.load_state_dict(named, strict=True)
    return encoder.eval()


def model_from_torchvision(state: Mapping[str, Tensor] | None = None, *, seed: int = 0) -> AdaINModel:
    """An ``AdaINModel`` with torchvision's VGG-19 encoder and an *untrained* decoder (seeded), to train."""
    encoder = encoder_from_torchvision(state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AdaINModel(ModelConfig(description="torchvision ImageNet VGG-19 encoder; decoder NOT trained"))
    model.encoder.load_state_dict(encoder.state_dict(), strict=True)
    return model.eval()
