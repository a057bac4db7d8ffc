"""The AdaIN decoder: the encoder's mirror image from relu4_1 back to RGB."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (name, in_channels, out_channels); names mirror the encoder conv each one inverts. An "up" entry is a
# nearest-neighbour x2 upsampling. The last conv has no activation: its output is roughly in [0, 1] and
# is clamped only when converted to an image.
DECODER_CONVS: tuple[tuple[str, int, int] | str, ...] = (
    ("conv4_1", 512, 256), "up",
    ("conv3_4", 256, 256), ("conv3_3", 256, 256), ("conv3_2", 256, 256), ("conv3_1", 256, 128), "up",
    ("conv2_2", 128, 128), ("conv2_1", 128, 64), "up",
    ("conv1_2", 64, 64), ("conv1_1", 64, 3),
)  # fmt: skip


class Decoder(nn.Module):
    """Maps ``(N, 512, H/8, W/8)`` relu4_1-space features to ``(N, 3, H, W)`` RGB (unclamped, about [0, 1])."""

    def __init__(self) -> None:
        super().__init__()
        self._plan = []
        for step in DECODER_CONVS:
            if step == "up":
                self._plan.append(step)
                continue
            name, cin, cout = step
            self.add_module(name, nn.Conv2d(cin, cout, kernel_size=3, padding=1, padding_mode="reflect"))
            self._plan.append(name)

    def forward(self, t: Tensor) -> Tensor:
        h = t
        last = self._plan[-1]
        for step in self._plan:
            if step == "up":
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            else:
                h = getattr(self, step)(h)
                if step != last:
                    h = torch.relu_(h)  # in place: the conv output is not used elsewhere
        return h
