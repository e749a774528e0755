"""Throughput of the full evaluation including the plan search (issue 3; target ≥ 20,000 design
points/s on one core), and the time to find the best plan for GPT-3 175B on 4,096 A100s over the
whole plan space.

Run: python benchmarks/training_throughput.py [--points N] [--workload W]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from _random_designs import random_designs

from dse.catalog.chips import load_chip
from dse.catalog.workloads import load_workload
from dse.designs import from_chips
from dse.model.evaluate import evaluate
from dse.model.plans import candidate_plans


def best(seconds: list[float]) -> float:
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--workload", default="llama3.1-70b")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    workload = load_workload(args.workload)
    designs = random_designs(args.points, seed=1)
    plans = candidate_plans(workload, max_tp=8)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        metrics = evaluate(designs, workload, plans=plans)
        times.append(time.perf_counter() - start)
    rate = args.points / best(times)
    print(f"full evaluation (silicon + plan search + economics), {args.workload}, one core")
    print(
        f"  {args.points:,} designs x {len(plans)} candidate plans: best {best(times):.2f} s "
        f"-> {rate:,.0f} design points/s (target >= 20,000); feasible {metrics.feasible.mean():.0%}"
    )

    gpt3 = load_workload("gpt3-175b")
    a100 = from_chips([load_chip("a100-80gb")], 4096)
    plans = candidate_plans(gpt3, max_tp=8)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        result = evaluate(a100, gpt3, plans=plans)
        times.append(time.perf_counter() - start)
    record = result.record(0)
    print(
        f"best plan for GPT-3 175B on 4,096 A100 over {len(plans)} plans: {best(times) * 1e3:.1f} ms "
        f"-> {record['plan']}, {record['training_days']:.1f} days, MFU {record['mfu']:.3f}"
    )


if __name__ == "__main__":
    main()
