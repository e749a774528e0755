"""The examples run as a new user would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tour_draws_the_front(tmp_path: Path) -> None:
    figure = tmp_path / "front.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tour.py"), str(figure), "--samples", "600"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "on the front" in done.stdout and "b200" in done.stdout
    assert figure.read_bytes().startswith(b"\x89PNG")
