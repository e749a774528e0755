"""Start-up and single-design latency (issue 13 target: ``dse evaluate`` of one design
≤ 0.5 s end to end): wall time of ``dse --help`` and of ``dse evaluate --chip h100-sxm
--workload llama3.1-405b --num-chips 16384`` as subprocesses, and of bare ``python`` and
``import numpy`` for scale.

Run: python benchmarks/startup_benchmark.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
    "dse --help": [sys.executable, "-m", "dse", "--help"],
    "dse evaluate (llama3.1-405b, 16,384 h100-sxm)": [
        sys.executable, "-m", "dse", "evaluate", "--chip", "h100-sxm",
        "--workload", "llama3.1-405b", "--num-chips", "16384",
    ],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for label, command in COMMANDS.items():
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
        print(
            f"  {label:48s} best {min(seconds):.3f} s, median {statistics.median(seconds):.3f} s"
            f" over {args.repeat}",
            flush=True,
        )


if __name__ == "__main__":
    main()
