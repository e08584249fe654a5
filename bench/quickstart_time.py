"""Time the quickstart study end to end, asset fetch included, and print a table.

python bench/quickstart_time.py                 # fresh cache: fetch + extract + run
python bench/quickstart_time.py --warm-cache    # reuse $W2S_CACHE (features cached)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-cache", action="store_true", help="reuse $W2S_CACHE")
    parser.add_argument("--study", default=str(REPO / "studies" / "quickstart.yaml"))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="w2s-bench-"))
    env = dict(os.environ)
    if not args.warm_cache:
        env["W2S_CACHE"] = str(scratch / "cache")
    study_dir = scratch / "study"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "w2s_ray.cli", "run", args.study, "--study-dir", str(study_dir)],
        env=env,
        check=False,
    )
    total = time.monotonic() - started
    per_stage: dict[str, list[float]] = {}
    for result_file in study_dir.glob("jobs/*/result.json"):
        result = json.loads(result_file.read_text())
        per_stage.setdefault(result["stage"], []).append(result["wall_seconds"])
    print(f"\n{'what':<28}{'jobs':>6}{'sum of job seconds':>20}")
    for stage in ("features", "ground_truth", "label", "student"):
        times = per_stage.get(stage, [])
        print(f"{stage:<28}{len(times):>6}{sum(times):>20.1f}")
    cache = "warm" if args.warm_cache else "cold (fetch + extract included)"
    label = "quickstart wall time"
    print(f"{label:<28}{'':>6}{total:>20.1f}   cache: {cache}, exit {proc.returncode}")
    print(f"study dir: {study_dir}")


if __name__ == "__main__":
    main()
