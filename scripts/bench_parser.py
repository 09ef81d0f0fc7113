"""Time the parser on hostile replies of 1 and 4 MB (tests/test_fuzz.py's adversarial_replies).

    python scripts/bench_parser.py [--sizes 1 4] [--repeat 3] [--json]

Linear time means the 4 MB figure of each shape is at most about four times its 1 MB figure.
Times are the process's CPU time (best of --repeat), so other work on the machine does not
inflate them; the parser is single-threaded, so on an idle machine wall time is the same.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for the corpus in tests/

from erarm.agent.errors import ReplyError
from erarm.agent.parse import MAX_REPLY_CHARS, parse_plan, parse_points
from tests.test_fuzz import MEGABYTE, adversarial_replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4], help="megabytes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for megabytes in args.sizes:
        size = min(megabytes * MEGABYTE, MAX_REPLY_CHARS)  # 4 MB is the most erarm reads
        for name, text in adversarial_replies(size).items():
            for parse in (parse_plan, parse_points):
                best = float("inf")
                for _ in range(args.repeat):
                    started = time.process_time()
                    try:
                        parse(text)
                        outcome = "parsed"
                    except ReplyError as err:
                        outcome = f"refused: {str(err)[:60]}"
                    best = min(best, time.process_time() - started)
                rows.append({"input": name, "megabytes": megabytes, "chars": len(text),
                             "parser": parse.__name__, "seconds": best, "outcome": outcome})
                if not args.json:
                    print(f"{name:20s} {len(text):>10,} chars  {parse.__name__:12s} "
                          f"{best * 1000:8.1f} ms CPU  {outcome}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for megabytes in args.sizes:
        sized = [r for r in rows if r["megabytes"] == megabytes]
        slowest = max(sized, key=lambda r: r["seconds"])
        print(f"{megabytes} MB: slowest {slowest['seconds'] * 1000:.0f} ms CPU "
              f"({slowest['input']}, {slowest['parser']})")


if __name__ == "__main__":
    main()
