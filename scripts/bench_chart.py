"""Draw a saved `erarm bench` report (bench.json) as its bar chart, for the README's pictures,
without running the episodes again. Usage:

    python scripts/bench_chart.py runs/bench/bench.json docs/bench-local.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from erarm.agent.bench import BenchReport, chart
from erarm.agent.overlay import save_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a bench.json")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    save_png(args.out, chart(BenchReport.model_validate_json(args.report.read_text())))


if __name__ == "__main__":
    main()
