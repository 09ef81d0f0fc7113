"""Time the parser on megabyte-sized adversarial replies (tests/test_fuzz.py's ADVERSARIAL).

    python scripts/bench_parser.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for the corpus in tests/

from agent.errors import ReplyError
from agent.parse import parse_plan, parse_points
from tests.test_fuzz import ADVERSARIAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for name, text in ADVERSARIAL.items():
        for parse in (parse_plan, parse_points):
            best = float("inf")
            for _ in range(args.repeat):
                started = time.perf_counter()
                try:
                    parse(text)
                    outcome = "parsed"
                except ReplyError as err:
                    outcome = f"refused: {str(err)[:60]}"
                best = min(best, time.perf_counter() - started)
            rows.append({"input": name, "chars": len(text), "parser": parse.__name__,
                         "seconds": best, "outcome": outcome})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['input']:22s} {row['chars']:>10,} chars  {row['parser']:12s} "
              f"{row['seconds'] * 1000:7.1f} ms  {row['outcome']}")
    print(f"slowest: {max(r['seconds'] for r in rows) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
