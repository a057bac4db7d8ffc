"""The AdaIN decoder: the encoder's mirror image from relu4_1 back to RGB."""

from __future__ import annotations

from torch import Tensor, nn

from ._walk import Ops, Step, walk

# (name, in_channels, out_channels); names mirror the encoder conv each one inverts. An "up" entry is a
# nearest-neighbour x2 upsampling. The last conv has no activation: its output is roughly in [0, 1] and
# is clamped only when converted to an image.
DECODER_CONVS: tuple[tuple[str, int, int] | str, ...] = (
    ("conv4_1", 512, 256), "up",
    ("conv3_4", 256, 256), ("conv3_3", 256, 256), ("conv3_2", 256, 256), ("conv3_1", 256, 128), "up",
    ("conv2_2", 128, 128), ("conv2_1", 128, 64), "up",
    ("conv1_2", 64, 64), ("conv1_1", 64, 3),
)  # fmt: skip


def _decoder_plan(convs: tuple[tuple[str, int, int] | str, ...]) -> tuple[Step, ...]:
    steps, ups = [], sum(entry == "up" for entry in convs)
    for entry in convs:
        if not isinstance(entry, tuple):  # "up", named after the pool it undoes: up3 (relu4_1 grid -> block 3), ...
            steps.append(Step("up", f"up{ups}"))
            ups -= 1
            continue
        name = entry[0]
        steps.append(Step("conv", name))
        if entry is not convs[-1]:
            steps.append(Step("relu", "relu" + name[len("conv") :]))
    return tuple(steps)


DECODER_PLAN: tuple[Step, ...] = _decoder_plan(DECODER_CONVS)
"""The decoder's walk (``_walk``): ``conv4_1, relu4_1, up3, conv3_4, relu3_4, ..., conv1_2, relu1_2, conv1_1``."""

DECODER_OUTPUT = DECODER_PLAN[-1].name
"""The last step, whose output is the image (``conv1_1``, no activation)."""


class Decoder(nn.Module):
    """Maps ``(N, 512, H/8, W/8)`` relu4_1-space features to ``(N, 3, H, W)`` RGB (unclamped, about [0, 1])."""

    def __init__(self) -> None:
        super().__init__()
        for step in DECODER_CONVS:
            if isinstance(step, tuple):  # not "up"
                name, cin, cout = step
                self.add_module(name, nn.Conv2d(cin, cout, kernel_size=3, padding=1, padding_mode="reflect"))

    def forward(self, t: Tensor) -> Tensor:
        """``(N, 512, h, w)`` features -> ``(N, 3, 8h, 8w)`` image, unclamped (ReLUs in place: the convolutions'
        outputs are used nowhere else)."""
        return walk(DECODER_PLAN, t, Ops(self), (DECODER_OUTPUT,))[DECODER_OUTPUT]
