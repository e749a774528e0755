"""Which part of the step the model's misses go with: the error of every published-plan figure
against the shares of its step.

``dse validate --run ID`` splits one run's step into exposed communication (``breakdown_s``)
and one micro-batch's compute into the terms of docs/model.md §2.6
(``compute_per_microbatch_s``). This script does that for the first figure of every
steady-state run that publishes its plan, then prints, for each share, its correlation with
the log error (> 0: the model runs faster than published where the share is large) and the
mean log error of the fifth of the figures where the share is largest against the rest;
then the same correlations per chip family with at least eight figures. A share that goes
with the error points at a mechanism the model lacks or overstates (docs/model.md §4, "Where
the model is weakest"); it is a pointer, not a fit. About two minutes on one core.

Run: python benchmarks/error_by_share.py
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from dse.settings import load_settings
from dse.validation import explain_run, load_runs, validate

COMPUTE_TERMS = ("linear_layers", "attention", "memory_bound", "moe_kernels")
STEP_TERMS = (
    "tensor_parallel",
    "expert_all_to_all",
    "context_parallel",
    "pipeline_p2p",
    "data_parallel_exposed",
)
MIN_FAMILY_FIGURES = 8
BOOTSTRAP_DRAWS = 200


def share_rows() -> list[dict[str, float | str]]:
    """Per run: its family, the log error of its first published-plan steady-state figure,
    each compute term's share of one micro-batch's compute and each exposed communication's
    share of the step (and the pipeline bubble's fraction)."""
    settings = load_settings()
    first: dict[str, tuple[str, float]] = {}
    for row in validate(settings):
        if row.plan_published and row.run_type != "full_run":
            first.setdefault(row.run, (row.family, math.log1p(row.error)))
    runs = {run["id"] for run in load_runs()}
    rows: list[dict[str, float | str]] = []
    for run_id, (family, log_error) in first.items():
        if run_id not in runs:
            continue
        traced = explain_run(run_id, settings)
        compute = traced["compute_per_microbatch_s"]
        step = traced["breakdown_s"]
        row: dict[str, float | str] = {"run": run_id, "family": family, "log_error": log_error}
        row.update({k: compute[k] / compute["total"] for k in COMPUTE_TERMS})
        row.update({k: step[k] / traced["step_time_s"] for k in STEP_TERMS})
        row["bubble_fraction"] = step["bubble_fraction"]
        rows.append(row)
    return rows


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, NaN where ``x`` does not vary."""
    return float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 else float("nan")


def main() -> None:
    rows = share_rows()
    terms = (*COMPUTE_TERMS, *STEP_TERMS, "bubble_fraction")
    error = np.array([float(r["log_error"]) for r in rows])
    print(
        f"{len(rows)} steady-state figures with a published plan; mean log error {error.mean():+.3f}"
    )
    print(f"{'share':22} {'r':>6} {'top fifth':>10} {'rest':>7}")
    for term in terms:
        share = np.array([float(r[term]) for r in rows])
        top = share > np.quantile(share, 0.8)
        rest = error[~top].mean() if (~top).any() else float("nan")
        top_mean = error[top].mean() if top.any() else float("nan")
        print(f"{term:22} {correlation(share, error):+6.2f} {top_mean:+10.3f} {rest:+7.3f}")
    by_family: dict[str, list[dict[str, float | str]]] = defaultdict(list)
    for row in rows:
        by_family[str(row["family"])].append(row)
    print(f"\nr per family ({MIN_FAMILY_FIGURES} figures or more)")
    print(f"{'family':18} {'n':>4} " + " ".join(f"{t[:10]:>10}" for t in terms))
    for family, members in sorted(by_family.items()):
        if len(members) < MIN_FAMILY_FIGURES:
            continue
        y = np.array([float(r["log_error"]) for r in members])
        cells = [correlation(np.array([float(r[t]) for r in members]), y) for t in terms]
        print(f"{family:18} {len(members):4d} " + " ".join(_cell(c) for c in cells))
    print(
        "\nwithin-family robust regression of the time's log error on the shares (90 % bootstrap)"
    )
    families = np.array([str(r["family"]) for r in rows])
    regressors = terms[1:]  # the compute shares sum to 1: relative to the linear layers'
    shares = np.array([[float(r[t]) for t in regressors] for r in rows])
    time_error = np.clip(-error, -0.4, 0.4)  # rates: a positive error is a step too short
    fitted = within_family_fit(shares, time_error, families)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(BOOTSTRAP_DRAWS):
        pick = rng.integers(0, len(rows), len(rows))
        draws.append(within_family_fit(shares[pick], time_error[pick], families[pick]))
    low, high = np.percentile(np.array(draws), [5, 95], axis=0)
    for term, c, lo, hi in zip(regressors, fitted, low, high, strict=True):
        print(f"{term:22} {c:+6.2f} [{lo:+6.2f}, {hi:+6.2f}]")


def within_family_fit(shares: np.ndarray, error: np.ndarray, families: np.ndarray) -> np.ndarray:
    """Huber regression (iteratively reweighted least squares, k = 1.345 robust σ) of ``error``
    ``(n,)`` on ``shares`` ``(n, k)`` after removing each family's means: ``(k,)``
    coefficients."""
    x, y = shares.copy(), error.copy()
    for family in np.unique(families):
        members = families == family
        x[members] -= x[members].mean(axis=0)
        y[members] -= y[members].mean()
    weights = np.ones_like(y)
    coefficients = np.zeros(x.shape[1])
    for _ in range(30):
        root = np.sqrt(weights)
        coefficients = np.linalg.lstsq(x * root[:, None], y * root, rcond=None)[0]
        residual = np.abs(y - x @ coefficients)
        bound = 1.345 * max(float(np.median(residual)) / 0.6745, 1e-12)
        weights = np.where(residual <= bound, 1.0, bound / np.maximum(residual, 1e-12))
    return coefficients


def _cell(r: float) -> str:
    """A correlation in a 10-wide column; a dash where the share never varies."""
    return f"{'-':>10}" if math.isnan(r) else f"{r:+10.2f}"


if __name__ == "__main__":
    main()
