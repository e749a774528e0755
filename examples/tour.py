"""A tour of dse from Python: evaluate a chip, compare two, sweep a space, plot its front.

Run it with the path of the figure to draw::

    python examples/tour.py front.png [--samples 3000]

Everything here is the public API (``import dse``); the command line is a thin shell over it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw to a file, no window
import matplotlib.pyplot as plt

import dse

WORKLOAD = "llama3.1-70b"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", type=Path, help="where to draw the front (.png, .svg, .pdf)")
    parser.add_argument("--samples", type=int, default=3000, help="designs in the sweep")
    args = parser.parse_args()

    # 1. One chip on one cluster: the fastest parallelism plan that fits, and every metric.
    h100 = dse.evaluate("h100-sxm", WORKLOAD, num_chips=4096)
    print(
        f"H100 x 4,096 trains {WORKLOAD} in {h100.training_days:.1f} days "
        f"for ${h100.cost_usd / 1e6:.1f} M and {h100.energy_mwh:,.0f} MWh "
        f"(MFU {h100.mfu:.0%}, plan tp={h100.plan['tp']} pp={h100.plan['pp']})"
    )

    # 2. Two chips side by side: a sequence of chips gives a pandas DataFrame.
    pair = dse.evaluate(["h100-sxm", "b200"], WORKLOAD, num_chips=4096)
    columns = ["chip", "training_days", "cost_usd", "energy_mwh", "mfu", "tp", "pp"]
    print(pair[columns].to_string(index=False))

    # 3. Sweep the shipped design space: every design with its metrics and Pareto mark.
    frame = dse.sweep("accelerator", WORKLOAD, method="random", samples=args.samples, seed=1)
    front = dse.pareto(frame)
    print(
        f"{len(frame):,} designs, {int(frame['feasible'].sum()):,} feasible, {len(front)} on the front"
    )

    # 4. The front with pandas and matplotlib: cost against training time, energy as colour.
    feasible = frame[frame["feasible"]]
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.scatter(
        feasible["training_days"], feasible["cost_usd"] / 1e6, s=4, c="0.8", label="feasible"
    )
    points = ax.scatter(
        front["training_days"], front["cost_usd"] / 1e6, c=front["energy_mwh"], s=24, label="front"
    )
    fig.colorbar(points, label="energy (MWh)")
    ax.set_xlabel("training time (days)")
    ax.set_ylabel("cost (million USD)")
    ax.set_title(f"{WORKLOAD}: Pareto front of the 'accelerator' space")
    ax.legend()
    fig.savefig(args.figure, dpi=120)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
