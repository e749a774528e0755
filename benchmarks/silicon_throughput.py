"""Throughput of the silicon model on 1,000,000 random design points (issue 2; target ≥ 2M/s).

Run: python benchmarks/silicon_throughput.py [--points N] [--repeat R]
Prints the first (cold: page-faulting fresh memory) and the best of R warm runs, on one core.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from _random_designs import random_designs

from dse.model.silicon import evaluate_silicon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    designs = random_designs(args.points, seed=0)
    times = []
    for _ in range(args.repeat + 1):
        start = time.perf_counter()
        evaluate_silicon(designs)
        times.append(time.perf_counter() - start)
    cold, warm = times[0], min(times[1:])
    print(f"silicon model, {args.points:,} design points, one core")
    print(f"  cold run: {cold:.3f} s  ({args.points / cold / 1e6:.2f} M points/s)")
    print(
        f"  warm run: {warm:.3f} s  ({args.points / warm / 1e6:.2f} M points/s)  target >= 2 M points/s"
    )


if __name__ == "__main__":
    main()
