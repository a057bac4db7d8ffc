"""Resident memory over a long run of ``Stylizer`` calls on images of random sizes: flat, or creeping?

glibc's malloc keeps freed blocks of every size it has seen, so a service that sees every image size
there is grows without bound unless the package's allocator policy (``adain._runtime.host_allocator``,
used by ``Engine.run``) gives memory back. This prints the resident set size (``VmRSS``) every
``--every`` calls of a ``Stylizer`` called ``--calls`` times on random ``H x W`` contents (each side
uniform in ``[--min-side, --max-side]``), and the growth from call ``--warm`` to the end (the target: at
most 64 MB over 1,000 calls of 16-1024 px after the first 100). ``--no-policy`` runs the same calls
without the policy, as the reference measured in the same way (run both for a ratio; each in its own
process, so that neither inherits the other's heap).

Weights are random (``bench_tiling.random_model``): memory does not depend on their values. Linux only
(``/proc/self/status``).

    python benchmarks/bench_memory.py                                   # 200 calls, 16-512 px (about a minute)
    python benchmarks/bench_memory.py --calls 1000 --max-side 1024     # the issue's run (long on 2 cores)
    python benchmarks/bench_memory.py --calls 1000 --max-side 1024 --no-policy --json base.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_tiling import random_model  # noqa: E402

import adain  # noqa: E402
from adain import _runtime  # noqa: E402


def rss_mib() -> float:
    """This process's resident set size now (``VmRSS``), MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def run(args) -> dict:
    """The calls; the RSS curve and the growth after ``args.warm`` calls."""
    if args.no_policy:  # no call is large enough for the policy
        _runtime.LARGE_CALL_BYTES = 2**62
    stylizer = adain.Stylizer(random_model(), device="cpu").set_style(torch.rand(3, 64, 64), style_size=None)
    rng = random.Random(args.seed)
    curve: list[tuple[int, float]] = []
    start, at_warm = time.perf_counter(), None
    for call in range(1, args.calls + 1):
        h, w = rng.randint(args.min_side, args.max_side), rng.randint(args.min_side, args.max_side)
        stylizer(torch.rand(3, h, w))
        if call == args.warm:
            at_warm = rss_mib()
        if call % args.every == 0 or call == args.calls:
            curve.append((call, rss_mib()))
            print(f"{call:>6} calls  RSS {curve[-1][1]:8.1f} MiB  ({time.perf_counter() - start:6.1f} s)", flush=True)
    end = curve[-1][1]
    return {
        "policy": not args.no_policy,
        "calls": args.calls,
        "sides": [args.min_side, args.max_side],
        "warm": args.warm,
        "rss_at_warm_mib": at_warm,
        "rss_end_mib": end,
        "rss_max_mib": max(r for _, r in curve),
        "growth_after_warm_mib": None if at_warm is None else end - at_warm,
        "seconds": time.perf_counter() - start,
        "curve": curve,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--min-side", type=int, default=16)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--warm", type=int, default=100, help="calls after which growth is measured")
    parser.add_argument("--every", type=int, default=25, help="print the RSS every N calls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-policy", action="store_true", help="without the allocator policy (the reference)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    result = run(args)
    growth = result["growth_after_warm_mib"]
    print(
        f"policy {'on' if result['policy'] else 'off'}: RSS {result['rss_at_warm_mib']:.1f} MiB after {args.warm} "
        f"calls, {result['rss_end_mib']:.1f} MiB after {args.calls} (growth {growth:+.1f} MiB; max "
        f"{result['rss_max_mib']:.1f}); {result['seconds']:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
