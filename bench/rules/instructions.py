"""Rule engine cost in CPU instructions, counted by valgrind (callgrind): deterministic where
wall-clock times on this shared machine vary by up to 40 % from run to run.

Runs the workload of bench/rules/run.py (same fleet, readings and batches) through
`RuleEngine`, counting only the instructions executed while it evaluates the batches (not
the data generation or the engine's construction). With `--baseline DIR` it counts a second
source tree the same way (a git worktree of an earlier commit, say; its own
bench/rules/run.py builds the workload) and reports the ratio.

Usage: .venv/bin/python -m bench.rules.instructions [--devices 100000] [--readings 1000000]
       [--batch 5000] [--baseline DIR]
Needs valgrind (`apt-get install valgrind`); under it the run takes about a minute. Progress
goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_COLLECTED = re.compile(r"Collected : (\d+)")


def _callgrind(on: bool) -> None:
    """Switch instruction counting on or off for this process (no-op outside valgrind)."""
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True,
        capture_output=True,
    )


def inner(args: argparse.Namespace) -> None:
    """Under valgrind: build the workload, then count the batches' evaluation only."""
    import numpy as np

    from bench.rules.run import build_fleet, build_readings
    from rules.engine import RuleEngine

    rng = np.random.default_rng(args.seed)
    specs, is_fire = build_fleet(args.devices, rng)
    work = build_readings(specs, is_fire, args.readings, rng)
    batches = work.batches(slice(None), args.batch)
    engine = RuleEngine(specs)
    _callgrind(True)
    events = 0
    for batch, now in batches:
        events += len(engine.evaluate(batch, now))
    _callgrind(False)
    print(json.dumps({"readings": len(work.device), "events": events}))


def count(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Instructions to evaluate the workload with the rule engine of one source tree."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={tmp}/callgrind.out",
            sys.executable,
            # By path: a baseline tree need not have this file; its own bench/rules/run.py
            # builds the workload and its own rules/ evaluates it.
            str(Path(__file__).resolve()),
            "--inner",
            *("--devices", str(args.devices), "--readings", str(args.readings)),
            *("--batch", str(args.batch), "--seed", str(args.seed)),
        ]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        started = time.perf_counter()
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"valgrind run in {tree} failed:\n{done.stderr[-2000:]}")
        found = _COLLECTED.search(done.stderr)
        if found is None:
            raise SystemExit(f"no instruction count in valgrind's output for {tree}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    instructions = int(found.group(1))
    result |= {
        "tree": str(tree),
        "instructions": instructions,
        "instructions_per_reading": round(instructions / result["readings"], 1),
        "seconds_under_valgrind": round(time.perf_counter() - started, 1),
    }
    print(f"  {tree}: {instructions:,} instructions", file=sys.stderr, flush=True)
    return result


def main() -> None:
    """Count one tree (and a baseline) and print the JSON result."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    # The workload's options and defaults are bench/rules/run.py's, written out again: the
    # --inner run imports a baseline tree's run.py, which may predate any shared helper.
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--baseline", type=Path, help="another source tree to count the same way")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args)
        return
    print(f"counting {ROOT} under valgrind", file=sys.stderr, flush=True)
    result: dict[str, Any] = {"bench": "rules-instructions", "engine": count(ROOT, args)}
    if args.baseline is not None:
        print(f"counting the baseline {args.baseline}", file=sys.stderr, flush=True)
        result["baseline"] = count(args.baseline.resolve(), args)
        result["ratio_to_baseline"] = round(
            result["engine"]["instructions"] / result["baseline"]["instructions"], 3
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
