"""What every figure's report file says about itself, so the docs can quote it: the command that
made it, the date, the machine, and how long it took."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def provenance(started: float) -> dict:
    """The command, date, machine and seconds since `started` (a perf_counter reading)."""
    return {"command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}",
            "seconds": round(time.perf_counter() - started, 1)}


def save(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")


def save_verdict_report(started: float, rows: list[dict], out: Path, **about: object) -> None:
    """Save bench rows that each count the failed runs erarm called verified, with `about` the
    setup; print the total and exit 1 when there is any (the target is 0)."""
    report = {**provenance(started), **about,
              "failed_but_verified": sum(r["failed_but_verified"] for r in rows), "rows": rows}
    save(report, out)
    print(f"failed runs erarm called verified: {report['failed_but_verified']} "
          f"({report['seconds']} s) -> {out}")
    sys.exit(1 if report["failed_but_verified"] else 0)
