"""Every benchmark in one go, each printing its table; numbers go to docs/benchmarks.md.

python bench/run_all.py                  # quick settings (a few minutes on 2 CPU cores)
python bench/run_all.py --full           # the scripts' own defaults, plus a cold quickstart
python bench/run_all.py --only determinism finetune_throughput

Each script runs in its own process (as a user would run it), so one that fails is reported
and the rest still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).parent

# script -> (quick arguments, full arguments); None: skipped unless --full
SUITE: dict[str, tuple[list[str] | None, list[str]]] = {
    "finetune_throughput": (["--steps", "2"], []),
    "determinism": (["--steps", "4"], []),
    "inference_backends": (["--texts", "64"], []),
    "fault_injection": (["--quick", "--kills", "2"], []),
    "scheduler_scale": (["--quick"], []),
    "quickstart_time": (None, []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the scripts' default sizes")
    parser.add_argument("--only", nargs="+", choices=sorted(SUITE), default=None)
    args = parser.parse_args()
    failed = []
    for name in args.only or list(SUITE):
        quick, full = SUITE[name]
        chosen = full if args.full else quick
        if chosen is None:
            print(f"## {name}: skipped (runs with --full)\n", flush=True)
            continue
        print(f"## {name} {' '.join(chosen)}".rstrip(), flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *chosen])
        status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        print(f"\n({name}: {status}, {time.monotonic() - started:.0f} s)\n", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
