"""Output that is not a terminal (a pipe, a file, CI): tables and help are not squeezed to 80
columns or cut, flags show no value type, and OpenCV's own log lines stay off stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ERARM = str(Path(sys.executable).with_name("erarm"))


def erarm(*args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "ERARM_DEBUG", "COLUMNS",
                                "TERMINAL_WIDTH")}
    return subprocess.run([ERARM, *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=120, check=False)


def test_the_dry_run_table_is_whole_in_a_pipe(tmp_path):
    done = erarm("run", "pick the blue block into the orange bowl", "--dry-run",
                 "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    steps = [row for row in rows if row and row[0].isdigit()]
    assert len(steps) >= 8
    assert any("setGripperState(true)" in row for row in steps)
    assert any("setGripperState(false)" in row for row in steps)
    assert not any("…" in line for line in done.stdout.splitlines())
    grasp = next(line for line in done.stdout.splitlines() if "grasp:" in line)
    assert grasp.rstrip().endswith("joint limits (IK)")  # the last column, on the same line


def test_help_shows_no_value_type_on_flags_and_is_not_cut():
    done = erarm("point", "--help")
    assert done.returncode == 0, done.stderr
    assert "<bool>" not in done.stdout
    assert "--json" in done.stdout and "<path>" in done.stdout  # options with values keep theirs
    assert "gemini-robotics-er-2-preview" in done.stdout
    assert "…" not in done.stdout
