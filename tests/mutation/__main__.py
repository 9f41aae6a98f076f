"""scripts/mutate: run the curated mutations (all, the CI subset, or some by id) and report the kill rate.

Exit status: 0 if every mutation run was killed, 1 if any survived or errored, 2 if the baseline (the
pristine copy's tests) failed or an argument was wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .mutations import BY_ID, MUTATIONS, Mutation
from .runner import ERROR, KILLED, SURVIVED, Result, run_mutations


def _selected(args: argparse.Namespace) -> list[Mutation]:
    chosen = [m for m in MUTATIONS if m.ci] if args.ci else list(MUTATIONS)
    if args.only:
        ids = [i for i in args.only.split(",") if i]
        unknown = [i for i in ids if i not in BY_ID]
        if unknown:
            raise SystemExit(f"unknown mutation id(s): {', '.join(unknown)} (see --list)")
        chosen = [m for m in chosen if m.id in ids]
    return chosen


def _line(r: Result) -> None:
    print(f"{r.name:40} {r.verdict:9} {r.seconds:7.1f} s  {r.detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the mutations (id, ci, file, why) and exit")
    parser.add_argument("--ci", action="store_true", help="only the CI subset")
    parser.add_argument("--only", metavar="ID[,ID]", help="only these mutations")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="copies run in parallel (each builds once)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per build and per test run")
    parser.add_argument("--workdir", type=Path, help="build the copies here and keep them (default: a temporary folder)")
    args = parser.parse_args(argv)
    mutations = _selected(args)
    if args.list:
        for m in mutations:
            print(f"{m.id:40} {'ci' if m.ci else '  '} {m.file:40} {m.why}")
        return 0
    if not mutations:
        print("no mutation selected", file=sys.stderr)
        return 2
    print(f"{len(mutations)} mutation(s); building a copy and running the baseline first", flush=True)
    base, results = run_mutations(mutations, jobs=args.jobs, timeout=args.timeout, workdir=args.workdir,
                                  report=_line)
    if base.verdict != "passed":
        print("the pristine copy's tests fail: no verdict means anything", file=sys.stderr)
        return 2
    killed = [r for r in results if r.verdict == KILLED]
    survived = [r.name for r in results if r.verdict == SURVIVED]
    errors = [r.name for r in results if r.verdict == ERROR]
    print(f"\nkilled {len(killed)}/{len(results)} ({100 * len(killed) / len(results):.0f}%)")
    print(f"survived: {', '.join(survived) or 'none'}")
    print(f"errors: {', '.join(errors) or 'none'}")
    return 0 if len(killed) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
