"""Speed-up of a Dask local cluster over in-process evaluation, and the overhead per task.

1. A random ``--pareto-only`` sweep of ``--samples`` designs (issue 5 target: 10 million; on a
   two-core machine 2 million keeps it to a few minutes) in-process and on ``--workers 2``
   (a ``LocalCluster`` of two one-thread worker processes): wall time, designs/s, speed-up.
2. Overhead per task: the same small sweep in tiny chunks and in one chunk, on each
   executor; (tiny - large) / (number of tiny chunks) is the cost of one task (model call
   overhead, transfer, the manifest and part file of the chunk).

Run: python benchmarks/distributed_benchmark.py [--samples 2000000] [--workers 2]
     [--chunk-size 65536] [--space benchmark] [--workload llama3.1-70b]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from dse.catalog.workloads import load_workload
from dse.export import provenance
from dse.search import Problem, run_sweep
from dse.search.executors import Executor, executor_for
from dse.settings import load_settings
from dse.space import load_space


def timed(problem: Problem, executor: Executor, samples: int, chunk: int, out: Path) -> float:
    started = time.perf_counter()
    run_sweep(problem, out, provenance(**problem.describe()), method="random", samples=samples,
              seed=0, chunk_size=chunk, pareto_only=True, executor=executor)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="benchmark")
    parser.add_argument("--workload", default="llama3.1-70b")
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=65_536)
    parser.add_argument("--tiny-samples", type=int, default=20_000)
    parser.add_argument("--tiny-chunk", type=int, default=100)
    args = parser.parse_args()
    problem = Problem(load_space(args.space), load_workload(args.workload), load_settings())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "front.parquet"
        rows = []
        for label, options in (("in-process", {}), (f"--workers {args.workers}",
                               {"workers": args.workers})):  # fmt: skip
            with executor_for(**options) as executor:  # type: ignore[arg-type]
                seconds = timed(problem, executor, args.samples, args.chunk_size, out)
                tiny = timed(problem, executor, args.tiny_samples, args.tiny_chunk, out)
                large = timed(problem, executor, args.tiny_samples, args.tiny_samples, out)
            tasks = -(-args.tiny_samples // args.tiny_chunk)
            rows.append((label, seconds, (tiny - large) / tasks))
            print(f"{label:>12}: {args.samples:,} designs in {seconds:.1f} s = "
                  f"{args.samples / seconds:,.0f} designs/s; overhead per task "
                  f"{1000 * (tiny - large) / tasks:.1f} ms ({tasks} tasks of "
                  f"{args.tiny_chunk} vs 1 of {args.tiny_samples})", flush=True)  # fmt: skip
        print(f"speed-up of {rows[1][0]} over in-process: {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
