"""The networks' forward walk, written once: a layer plan per network and the one function that walks it.

A plan (``ENCODER_PLAN`` in ``_encoder``, ``DECODER_PLAN`` in ``_decoder``) lists a network's steps in forward
order, each a ``Step(kind, name)``:

- ``preprocess``: the encoder's 1x1 input convolution (RGB in [0, 1] -> BGR x255 minus the Caffe mean);
- ``conv``: the reflection-padded 3x3 convolution held by the network under ``name``;
- ``relu``: the ReLU after a convolution; ``relu<k>`` follows ``conv<k>`` in both plans;
- ``pool``: 2x2 pooling, stride 2, ``ceil_mode`` (halves the map, rounding up);
- ``up``: nearest-neighbour x2 upsampling.

``walk`` runs a plan with the operations of one path: ``Ops`` (the plain modules, what ``VGGEncoder`` and
``Decoder`` run, for training too), the fused CPU kernels (``_fused``) or the compile canvas (``_canvas``),
each a subclass that changes how a step is computed. The order of the steps, which outputs are returned
and where the walk stops are decided here alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Step(NamedTuple):
    """One step of a plan: ``kind`` (``preprocess``, ``conv``, ``relu``, ``pool`` or ``up``) and ``name``."""

    kind: str
    name: str


def walk(plan: Sequence[Step], x: Tensor, ops: Ops, taps: Collection[str]) -> dict[str, Tensor]:
    """Run ``plan`` on ``x`` with ``ops`` as far as the last step named in ``taps``.

    Arguments:
        plan: the network's steps in forward order.
        x: the network's input, ``(N, C, H, W)``.
        ops: how each kind of step is computed (``ops.<kind>(name, h) -> h``).
        taps: names of the steps whose outputs are returned; steps after the last of them are not run.
    Returns:
        ``{name: (N, C', H', W') output of that step}`` for each name of ``taps`` found in ``plan``.
    """
    wanted = set(taps)
    out: dict[str, Tensor] = {}
    h = x
    for kind, name in plan:
        if not wanted.difference(out):
            break
        h = getattr(ops, kind)(name, h)
        if name in wanted:
            out[name] = h
    return out


class Ops:
    """The plain modules' operations: the network as trained (autograd-safe); the fast paths subclass it.

    Arguments:
        network: the module holding the plan's convolutions as attributes named like their steps.
        keep: names of steps whose outputs the caller receives: the ReLU after such a convolution must
            not overwrite its output in place.
        pooling: ``"max"`` (the network as trained) or ``"avg"`` (used by the optimisation backend).
        pool_scale: optional ``{pool name: factor}`` multiplying a pooling step's output.
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        keep: Collection[str] = (),
        pooling: str = "max",
        pool_scale: Mapping[str, float] | None = None,
    ) -> None:
        self.network = network
        self.keep = keep
        self.pool_fn = F.max_pool2d if pooling == "max" else F.avg_pool2d
        self.pool_scale = pool_scale or {}

    def preprocess(self, name: str, h: Tensor) -> Tensor:
        return getattr(self.network, name)(h)

    def conv(self, name: str, h: Tensor) -> Tensor:
        return getattr(self.network, name)(h)

    def relu(self, name: str, h: Tensor) -> Tensor:
        # In place (about 7% faster on CPU: no extra full-size tensor) unless the convolution's output is
        # returned; autograd is fine with it, a convolution's backward does not need its output.
        return torch.relu(h) if "conv" + name[len("relu") :] in self.keep else torch.relu_(h)

    def pool(self, name: str, h: Tensor) -> Tensor:
        h = self.pool_fn(h, kernel_size=2, stride=2, ceil_mode=True)
        return h * self.pool_scale[name] if name in self.pool_scale else h

    def up(self, name: str, h: Tensor) -> Tensor:
        return F.interpolate(h, scale_factor=2, mode="nearest")
