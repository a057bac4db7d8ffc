"""Training speed: our step and data pipeline against a plain re-implementation of the reference port's.

The reference side is written here, independently, in the reference's own style: positional
``nn.Sequential`` VGG (sliced at relu1_1/2_1/3_1/4_1) and decoder, fp32 eager, images squashed to
``image_size`` x ``image_size`` then randomly cropped, one Adam step with inverse-time decay. Ours is
``adain.train_step.train_step`` fed by ``adain.data`` (shorter side resized, crop-first resizing),
channels_last, and bf16 autocast on CUDA. Both use the same random weights.

Two measurements, interleaved repetition by repetition (the machine is noisy; medians reported):
  * ``step``: the training step alone on a fixed batch already on the device;
  * ``e2e``: steps fed by each side's DataLoader from generated JPEG folders (decode, resize, crop, copy).

    python benchmarks/bench_train.py --quick                  # CPU smoke figures
    python benchmarks/bench_train.py --device cuda --compile  # batch 8 at 256^2, like the paper

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_port import ref_decoder, ref_mean_std, ref_vgg  # noqa: E402

from adain.modeling._decoder import Decoder  # noqa: E402
from adain.modeling._encoder import VGGEncoder  # noqa: E402
from adain.training._data import ImageStream, PairDataset, StepBatchSampler, collate_pairs  # noqa: E402
from adain.training._step import LossWeights, frozen, make_optimizer, train_step  # noqa: E402
from adain.weights._legacy import legacy_decoder_to_named, legacy_vgg_to_named  # noqa: E402

# ---- the reference, written independently -----------------------------------------------------------


class RefNet(nn.Module):
    def __init__(self, vgg: nn.Sequential, decoder: nn.Sequential):
        super().__init__()
        self.enc = nn.ModuleList([vgg[:4], vgg[4:11], vgg[11:18], vgg[18:31]])
        for p in self.enc.parameters():
            p.requires_grad = False
        self.decoder = decoder

    def encode_with_intermediate(self, x):
        feats = [x]
        for e in self.enc:
            feats.append(e(feats[-1]))
        return feats[1:]

    def encode(self, x):
        for e in self.enc:
            x = e(x)
        return x

    def forward(self, content, style):
        style_feats = self.encode_with_intermediate(style)
        content_feat = self.encode(content)
        s_mean, s_std = ref_mean_std(style_feats[-1])
        c_mean, c_std = ref_mean_std(content_feat)
        t = (content_feat - c_mean) / c_std * s_std + s_mean
        g_feats = self.encode_with_intermediate(self.decoder(t))
        loss_c = F.mse_loss(g_feats[-1], t)
        loss_s = 0
        for g, s in zip(g_feats, style_feats):
            gm, gs = ref_mean_std(g)
            sm, ss = ref_mean_std(s)
            loss_s = loss_s + F.mse_loss(gm, sm) + F.mse_loss(gs, ss)
        return loss_c, loss_s


def ref_step(net, optimizer, content, style, step):
    for group in optimizer.param_groups:
        group["lr"] = 1e-4 / (1.0 + 5e-5 * step)
    loss_c, loss_s = net(content, style)
    loss = loss_c + 10.0 * loss_s
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


class RefFolder(torch.utils.data.Dataset):
    """The port's dataset: every image squashed to size x size, random crop, ToTensor."""

    def __init__(self, root: Path, image_size: int, crop_size: int):
        from torchvision import transforms

        self.paths = sorted(root.iterdir())
        self.tf = transforms.Compose(
            [transforms.Resize((image_size, image_size)), transforms.RandomCrop(crop_size), transforms.ToTensor()]
        )

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.tf(Image.open(self.paths[i]).convert("RGB"))


def ref_loader(root, args):
    return torch.utils.data.DataLoader(
        RefFolder(root, args.image_size, args.crop_size),
        batch_size=args.batch_size,
        sampler=_Endless(args.images),
        num_workers=args.workers,
    )


class _Endless(torch.utils.data.Sampler):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        while True:
            yield from torch.randperm(self.n).tolist()


# ---- set-up -----------------------------------------------------------------------------------------


def write_folder(root: Path, count: int, seed: int, size=(640, 480)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).save(root / f"{i:05d}.jpg", quality=90)
    return root


def build(args, device):
    torch.manual_seed(0)
    vgg, dec = ref_vgg(), ref_decoder()
    for m in list(vgg) + list(dec):
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            nn.init.normal_(m.bias, std=0.01)
    with torch.no_grad():
        # The real preprocessing conv (RGB->BGR, x255, minus the Caffe mean): the package's legacy loader
        # refuses a VGG without it, as it should.
        vgg[0].weight.zero_()
        for i in range(3):
            vgg[0].weight[i, 2 - i] = 255.0
        vgg[0].bias.copy_(-torch.tensor((103.939, 116.779, 123.68)))
        vgg[2].weight.div_(100)  # keep random features O(1) behind the x255 preprocessing scale
    ref = RefNet(vgg, dec).to(device)
    ref_opt = torch.optim.Adam(ref.decoder.parameters(), lr=1e-4)

    encoder = VGGEncoder("relu4_1")
    named = legacy_vgg_to_named(vgg.state_dict())
    encoder.load_state_dict({k: v for k, v in named.items() if k in encoder.state_dict()})
    decoder = Decoder()
    decoder.load_state_dict(legacy_decoder_to_named(dec.state_dict()))
    encoder, decoder = frozen(encoder).to(device), decoder.to(device)
    channels_last = args.channels_last if args.channels_last is not None else True
    if channels_last:
        encoder, decoder = encoder.to(memory_format=torch.channels_last), decoder.to(memory_format=torch.channels_last)
    step_encoder = torch.compile(encoder, dynamic=False) if args.compile else encoder  # as adain.training._run
    step_decoder = torch.compile(decoder, dynamic=False) if args.compile else decoder
    ours_opt = make_optimizer(decoder.parameters(), 1e-4)
    dtype = (
        {"float32": None, "bfloat16": torch.bfloat16}[args.dtype]
        if args.dtype != "auto"
        else (torch.bfloat16 if device.type == "cuda" else None)
    )
    return ref, ref_opt, (step_encoder, step_decoder, ours_opt, dtype, channels_last)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--steps", type=int, default=20, help="steps per timed repetition")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions (medians reported)")
    p.add_argument("--images", type=int, default=64, help="generated images per folder")
    p.add_argument("--workers", type=int, default=4, help="loader processes, the same for both sides")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny CPU-friendly sizes: batch 2, crop 64, 2 steps x 3")
    argv = sys.argv[1:] if argv is None else argv
    if "--quick" in argv:  # smaller defaults; flags given explicitly still win
        p.set_defaults(batch_size=2, crop_size=64, image_size=128, steps=2, reps=3, images=16, workers=2)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ref, ref_opt, (encoder, decoder, ours_opt, dtype, channels_last) = build(args, device)
    weights = LossWeights()
    c = torch.rand(args.batch_size, 3, args.crop_size, args.crop_size, device=device)
    s = torch.rand_like(c)
    c_ours, s_ours = (x.contiguous(memory_format=torch.channels_last) if channels_last else x for x in (c, s))

    with tempfile.TemporaryDirectory() as tmp:
        croot, sroot = write_folder(Path(tmp) / "c", args.images, 1), write_folder(Path(tmp) / "s", args.images, 2)
        ref_c, ref_s = iter(ref_loader(croot, args)), iter(ref_loader(sroot, args))
        streams = [
            ImageStream(r, image_size=args.image_size, crop_size=args.crop_size, seed=0, stream=i)
            for i, r in enumerate((croot, sroot))
        ]
        ours_loader = iter(
            torch.utils.data.DataLoader(
                PairDataset(*streams),
                batch_sampler=StepBatchSampler(0, args.batch_size),
                num_workers=args.workers,
                collate_fn=collate_pairs,
                pin_memory=device.type == "cuda",
                prefetch_factor=4 if args.workers else None,
            )
        )

        def ref_fixed(i):
            ref_step(ref, ref_opt, c, s, i)

        def ours_fixed(i):
            train_step(encoder, decoder, ours_opt, c_ours, s_ours, weights, 1e-4, autocast_dtype=dtype)

        def ref_e2e(i):
            ref_step(ref, ref_opt, next(ref_c).to(device), next(ref_s).to(device), i)

        def ours_e2e(i):
            batch = next(ours_loader)
            cc, ss = batch.content.to(device, non_blocking=True), batch.style.to(device, non_blocking=True)
            if channels_last:
                cc, ss = (
                    cc.contiguous(memory_format=torch.channels_last),
                    ss.contiguous(memory_format=torch.channels_last),
                )
            train_step(encoder, decoder, ours_opt, cc, ss, weights, 1e-4, autocast_dtype=dtype)

        cases = {"step": (ref_fixed, ours_fixed), "e2e": (ref_e2e, ours_e2e)}
        for fn in (ref_fixed, ours_fixed, ref_e2e, ours_e2e):  # warm-up: compile, cuDNN autotune, workers
            for i in range(2):
                fn(i)
        sync(device)
        times = {f"{case}/{side}": [] for case in cases for side in ("reference", "ours")}
        for _ in range(args.reps):
            for case, (ref_fn, ours_fn) in cases.items():
                for side, fn in (("reference", ref_fn), ("ours", ours_fn)):
                    sync(device)
                    t0 = time.perf_counter()
                    for i in range(args.steps):
                        fn(i)
                    sync(device)
                    times[f"{case}/{side}"].append((time.perf_counter() - t0) / args.steps)

    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "crop_size": args.crop_size,
        "image_size": args.image_size,
        "steps": args.steps,
        "reps": args.reps,
        "workers": args.workers,
        "ours": {
            "autocast": str(dtype) if dtype else "float32",
            "channels_last": channels_last,
            "compile": args.compile,
        },
    }
    for case in cases:
        med = {side: statistics.median(times[f"{case}/{side}"]) for side in ("reference", "ours")}
        result[case] = {
            side: {
                "ms_per_step": round(1e3 * t, 2),
                "steps_per_s": round(1 / t, 3),
                "images_per_s": round(args.batch_size / t, 2),
            }
            for side, t in med.items()
        }
        result[case]["speedup"] = round(med["reference"] / med["ours"], 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
