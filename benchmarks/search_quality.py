"""Search quality of NSGA-II against the exact Pareto front of an exhaustive grid sweep (issue 4
target: hypervolume ratio >= 0.95 with at most 1 % of the evaluations, averaged over 5 seeds).

1. Sweeps every point of spaces/benchmark.toml (1,008,000 designs; --pareto-only, two
   processes) for the exact front.
2. Runs pymoo NSGA-II (the ``dse search --engine pymoo`` engine) with at most 1 % of that many
   evaluations for each of 5 seeds and takes the front of all the designs it evaluated.
3. Prints each run's hypervolume over the exact front's (moocore), with the reference point
   10 % beyond the worst value of each objective on the exact front (the nadir × 1.1), which
   is stricter than ``dse pareto``'s default (the worst over all feasible rows × 1.1), and
   the multiplicative epsilon indicator (moocore) of the found front w.r.t. the exact one.

Run: python benchmarks/search_quality.py [--space benchmark] [--workload llama3.1-70b]
     [--budget 0.01] [--pop-size 80] [--seeds 5] [--algorithm nsga2] [--exact FILE.parquet]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import moocore
import numpy as np

from dse.catalog.workloads import load_workload
from dse.export import provenance, read_results
from dse.pareto import hypervolume, nondominated
from dse.search import Evaluation, Problem, create_engine, run_sweep
from dse.space import load_space, objective_matrix


def exact_front(problem: Problem, jobs: int, cached: Path | None) -> np.ndarray:
    """Objectives (to minimize) of the exact Pareto front, by an exhaustive grid sweep."""
    if cached is not None and cached.is_file():
        frame, _ = read_results(cached)
        return objective_matrix(frame, problem.space.objectives)
    with tempfile.TemporaryDirectory() as folder:
        out = cached or Path(folder) / "exact.parquet"
        start = time.perf_counter()
        summary = run_sweep(
            problem,
            out,
            provenance(**problem.describe()),
            method="grid",
            pareto_only=True,
            jobs=jobs,
        )
        print(
            f"exhaustive grid sweep: {summary.evaluated:,} designs in "
            f"{time.perf_counter() - start:.1f} s, {summary.feasible:,} feasible, "
            f"exact front {summary.pareto} designs"
        )
        frame, _ = read_results(out)
    return objective_matrix(frame, problem.space.objectives)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", default="benchmark")
    parser.add_argument("--workload", default="llama3.1-70b")
    parser.add_argument("--budget", type=float, default=0.01, help="evaluations / grid size")
    parser.add_argument("--pop-size", type=int, default=80)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--algorithm", default="nsga2")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--exact", type=Path, default=None, help="cache of the exact front")
    args = parser.parse_args()

    problem = Problem(load_space(args.space), load_workload(args.workload))
    exact = exact_front(problem, args.jobs, args.exact)
    reference = np.max(exact, axis=0) * 1.1
    exact_hv = hypervolume(exact, reference)
    # pymoo finishes the generation in which the budget runs out: stay within whole ones.
    evals = int(args.budget * problem.space.size) // args.pop_size * args.pop_size
    print(
        f"{args.algorithm}, population {args.pop_size}, {evals:,} evaluations "
        f"({evals / problem.space.size:.2%} of {problem.space.size:,} grid points)"
    )
    ratios = []
    for seed in range(args.seeds):
        batches: list[Evaluation] = []
        engine = create_engine("pymoo", algorithm=args.algorithm, pop_size=args.pop_size)
        start = time.perf_counter()
        engine.run(problem, evals, seed, batches.append)
        seconds = time.perf_counter() - start
        F = np.concatenate([b.F for b in batches])
        feasible = np.concatenate([b.feasible for b in batches])
        found = F[nondominated(F, feasible)]
        ratio = hypervolume(found, reference) / exact_hv
        ratios.append(ratio)
        # Multiplicative epsilon: the factor by which the found front must improve in every
        # objective to cover the exact front (1.0 = it holds the exact front).
        epsilon = moocore.epsilon_mult(found, exact) if np.all(found > 0) else np.nan
        print(
            f"  seed {seed}: {len(F):,} evaluations ({len(F) / problem.space.size:.2%}), "
            f"front {len(found)}, hypervolume ratio {ratio:.4f}, "
            f"multiplicative epsilon {epsilon:.3f}, {seconds:.1f} s"
        )
    print(
        f"mean hypervolume ratio over {args.seeds} seeds: {np.mean(ratios):.4f} "
        f"(min {np.min(ratios):.4f}; target >= 0.95)"
    )


if __name__ == "__main__":
    main()
