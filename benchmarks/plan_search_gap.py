"""How far the model's own plan search lands from the plans real runs published.

``dse validate`` pins each run's published plan. A user who asks ``dse evaluate`` about a run
without giving a plan gets the plan the model's search finds fastest instead. This script
evaluates every steady-state figure whose run publishes a plan both ways (the published plan
pinned; every plan key left to the search, the run's other facts kept) and prints the median
|error| of each, the median signed error (> 0: faster than published) and, per chip family,
how often the searched plan beats the published one (docs/model.md §4, "Where the model is
weakest").

Run: python benchmarks/plan_search_gap.py
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from dse.calibration import median_abs
from dse.settings import load_settings
from dse.validation import searched_plan_pairs


def paired_errors() -> list[tuple[str, str, float, float]]:
    """(run id, family, error with the published plan, error with the searched plan) for the
    first figure of every steady-state run that publishes a plan."""
    first: dict[str, tuple[str, str, float, float]] = {}
    for pinned, searched in searched_plan_pairs(load_settings()):
        first.setdefault(pinned.run, (pinned.run, pinned.family, pinned.error, searched.error))
    return list(first.values())


def main() -> None:
    rows = paired_errors()
    pinned = [r[2] for r in rows]
    searched = [r[3] for r in rows]
    faster = sum(s > p + 0.01 for _, _, p, s in rows)
    print(f"{len(rows)} steady-state figures with a published plan")
    print(
        f"median |error|: published plan {median_abs(pinned):.1%}, searched plan "
        f"{median_abs(searched):.1%}; median signed error {statistics.median(pinned):+.1%} and "
        f"{statistics.median(searched):+.1%}; the search beats the published plan by > 1 % on "
        f"{faster} of {len(rows)}"
    )
    by_family: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _, family, p, s in rows:
        by_family[family].append((p, s))
    print(f"{'family':18} {'n':>4} {'published':>10} {'searched':>9} {'signed':>8}")
    for family, pairs in sorted(by_family.items()):
        print(
            f"{family:18} {len(pairs):4d} {median_abs([p for p, _ in pairs]):10.1%} "
            f"{median_abs([s for _, s in pairs]):9.1%} "
            f"{statistics.median(s for _, s in pairs):+8.1%}"
        )
    worst = sorted(rows, key=lambda r: r[3] - r[2], reverse=True)[:5]
    print("largest gains of the search over the published plan:")
    for run_id, _, p, s in worst:
        print(f"  {run_id:44} published {p:+.1%}  searched {s:+.1%}")


if __name__ == "__main__":
    main()
