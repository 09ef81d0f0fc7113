"""Fuzz plans against the simulator's truth at length: how many mutated pick-and-place plans erarm
accepted, and in how many of those an object moved that the plan did not carry (the target: 0).

Each case is a seeded pick and place mutated as a careless or hostile model would write it
(`erarm.sim.fuzz`); erarm validates it as it does any plan and runs it when it passes; the
referee compares every object's true position before and after.

Usage:

    python scripts/fuzz_plans.py --cases 400 [--workers 2] [--out docs/reports/fuzz.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from reporting import provenance, save

from erarm.sim.fuzz import FuzzCase, run_case


def _one(seed: int) -> FuzzCase:
    return run_case(seed)


def _refused_by(reason: str) -> str:
    """A refusal's kind: its words after the step, up to the first number or parenthesis."""
    words = reason.split(") ", 1)[-1]
    return " ".join(w for w in words.split()[:6] if not any(c.isdigit() for c in w))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("docs/reports/fuzz.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.cases)
    with ProcessPoolExecutor(args.workers) as pool:
        cases = list(pool.map(_one, seeds))
    accepted = [c for c in cases if c.accepted]
    failed = [c for c in accepted if not c.ok]
    report = {
        **provenance(started),
        "cases": len(cases),
        "accepted": len(accepted),
        "refused": len(cases) - len(accepted),
        "accepted_that_moved_what_they_did_not_carry": len(failed),
        "refusals": dict(Counter(_refused_by(c.refusal or "") for c in cases
                                 if not c.accepted).most_common(12)),
        "failures": [c.model_dump() for c in failed],
    }
    save(report, args.out)
    print(f"{len(cases)} plans, {len(accepted)} accepted and run, {len(failed)} of those moved "
          f"an object they did not carry ({report['seconds']} s) -> {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
