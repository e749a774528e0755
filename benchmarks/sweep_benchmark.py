"""Time and peak memory of a streamed sweep of about a million designs (issue 4 targets: at most
60 s and 2 GB on two cores; issue 13: at most 20 s in one process, ``--jobs 1``).

Runs ``dse sweep spaces/benchmark.toml --method grid --pareto-only --jobs 2`` in-process (the
1,008,000-point grid of the benchmark space) and prints the wall time, the rate and the peak
resident memory of this process and of the largest worker process.

Run: python benchmarks/sweep_benchmark.py [--space benchmark] [--workload llama3.1-70b]
     [--jobs 2] [--chunk-size 16384] [--all-rows]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from dse.catalog.workloads import load_workload
from dse.export import provenance
from dse.search import Problem, run_sweep
from dse.space import load_space

KIB_PER_GIB = 1024.0**2  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", default="benchmark")
    parser.add_argument("--workload", default="llama3.1-70b")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=16_384)
    parser.add_argument(
        "--all-rows", action="store_true", help="write every row, not only the Pareto set"
    )
    args = parser.parse_args()

    problem = Problem(load_space(args.space), load_workload(args.workload))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "sweep.parquet"
        start = time.perf_counter()
        summary = run_sweep(
            problem,
            out,
            provenance(**problem.describe()),
            method="grid",
            chunk_size=args.chunk_size,
            pareto_only=not args.all_rows,
            jobs=args.jobs,
        )
        seconds = time.perf_counter() - start
        size_mb = out.stat().st_size / 1e6
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_GIB
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / KIB_PER_GIB
    mode = "every row" if args.all_rows else "--pareto-only"
    print(f"sweep of {args.space} ({problem.space.size:,} grid points), {args.workload}, {mode}")
    print(f"  {args.jobs} process(es), chunks of {args.chunk_size:,}, cores here: {os.cpu_count()}")
    print(
        f"  {summary.evaluated:,} designs in {seconds:.1f} s -> {summary.evaluated / seconds:,.0f}"
        f" designs/s (target: <= {20 if args.jobs == 1 else 60} s)"
    )
    print(
        f"  feasible {summary.feasible:,}, Pareto set {summary.pareto:,} rows, file {size_mb:.1f} MB"
    )
    print(
        f"  peak resident memory: main process {own:.2f} GiB, largest worker {workers:.2f} GiB,"
        f" together at most {own + args.jobs * workers:.2f} GiB (target: <= 2 GB)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
