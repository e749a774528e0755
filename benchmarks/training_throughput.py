"""Throughput of the full evaluation including the plan search (issues 3 and 13): designs/s on
one core and on several processes, per workload (dense MHA, dense GQA, MoE, fine-grained MoE),
with the bounded plan search and, with ``--exhaustive``, the exhaustive reference; and the time
to find the best plan for GPT-3 175B on 4,096 A100s over the whole plan space.

Run: python benchmarks/training_throughput.py [--points N] [--workloads W,W] [--jobs J]
     [--exhaustive]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from _random_designs import random_designs

from dse.catalog.chips import load_chip
from dse.catalog.workloads import load_workload
from dse.designs import from_chips
from dse.model.evaluate import evaluate
from dse.model.plans import candidate_plans

WORKLOADS = "gpt3-175b,llama3.1-70b,mixtral-8x7b,qwen3-30b-a3b"
"""Dense with multi-head attention, dense with grouped-query attention, Mixture of Experts with
eight large experts, and fine-grained MoE (128 small experts, host-bound layers, the largest
plan space of the four)."""


def _run(args: tuple[str, int, int, bool]) -> float:
    """Seconds to evaluate ``points`` designs (seeded by ``seed``) in this process."""
    workload_id, points, seed, exhaustive = args
    workload = load_workload(workload_id)
    designs = random_designs(points, seed=seed)
    plans = candidate_plans(workload, max_tp=8)
    start = time.perf_counter()
    evaluate(designs, workload, plans=plans, exhaustive=exhaustive)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--workloads", default=WORKLOADS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--exhaustive", action="store_true", help="the reference search")
    args = parser.parse_args()

    search = "exhaustive" if args.exhaustive else "bounded"
    print(f"full evaluation (silicon + {search} plan search + economics), random designs")
    for workload_id in args.workloads.split(","):
        plans = len(candidate_plans(load_workload(workload_id), max_tp=8))
        _run((workload_id, 1024, 0, args.exhaustive))  # warm up: caches, numba's compilation
        one = min(_run((workload_id, args.points, 1, args.exhaustive)) for _ in range(args.repeat))
        line = (
            f"  {workload_id:14s} {plans:5d} plans: one core {args.points / one:10,.0f} designs/s"
        )
        if args.jobs > 1:
            share = args.points // args.jobs
            with ProcessPoolExecutor(args.jobs) as pool:
                list(pool.map(_run, [(workload_id, 1024, 0, args.exhaustive)] * args.jobs))
                start = time.perf_counter()
                list(
                    pool.map(
                        _run,
                        [(workload_id, share, 1 + j, args.exhaustive) for j in range(args.jobs)],
                    )
                )
                wall = time.perf_counter() - start
            line += f", {args.jobs} processes {share * args.jobs / wall:10,.0f} designs/s"
        print(line + f" ({args.points:,} designs)", flush=True)

    gpt3 = load_workload("gpt3-175b")
    a100 = from_chips([load_chip("a100-80gb")], 4096)
    plans = candidate_plans(gpt3, max_tp=8)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        result = evaluate(a100, gpt3, plans=plans, exhaustive=args.exhaustive)
        times.append(time.perf_counter() - start)
    record = result.record(0)
    print(
        f"best plan for GPT-3 175B on 4,096 A100 over {len(plans)} plans: {min(times) * 1e3:.1f} ms"
        f" -> {record['plan']}, {record['training_days']:.1f} days, MFU {record['mfu']:.3f}"
    )


if __name__ == "__main__":
    main()
