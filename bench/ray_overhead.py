"""Ray's cost per trial, and a finished study's makespan against ideal packing; prints tables.

python bench/ray_overhead.py                           # sleep trials on a local 2-CPU Ray
python bench/ray_overhead.py --study-dir runs/quickstart   # plus that study's packing

Overhead per trial: N trials that each sleep S seconds on one CPU take ideally N·S/CPUs;
the rest, spread over the trials, is what Tune, placement groups and worker start-up cost.
Ideal packing of a study: per stage (stages run one after another), the larger of its
CPU-seconds over the cluster's CPUs and its longest job — a lower bound no scheduler beats.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def trial_overhead(trials: int, sleep_s: float, cpus: int) -> dict[str, float]:
    from ray import tune

    from w2s_ray.study.ray_session import start_ray

    start_ray(num_cpus=cpus)

    def sleeper(config: dict[str, float]) -> None:
        time.sleep(config["sleep"])
        tune.report({"done": 1.0})

    tuner = tune.Tuner(
        tune.with_resources(sleeper, {"CPU": 1}),
        param_space={"sleep": sleep_s, "i": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(storage_path=f"/tmp/w2s-bench-tune-{time.time_ns()}", verbose=0),
    )
    started = time.monotonic()
    tuner.fit()
    wall = time.monotonic() - started
    ideal = trials * sleep_s / cpus
    return {
        "trials": trials,
        "wall_s": wall,
        "ideal_s": ideal,
        "per_trial_s": (wall - ideal) * cpus / trials,
    }


def study_packing(study_dir: Path) -> list[tuple[str, int, float, float, float]]:
    """(stage, jobs, CPU-seconds, ideal seconds, longest job) from the study's files."""
    plan = json.loads((study_dir / "plan.json").read_text())
    driver = json.loads((study_dir / "driver.json").read_text())
    cpus = float(driver["cluster"].get("CPU", 1))
    rows = []
    for stage, jobs in plan["stages"].items():
        walls, cpu_seconds = [], 0.0
        for job in jobs:
            path = study_dir / "jobs" / job["job_id"] / "result.json"
            if path.exists():
                wall = float(json.loads(path.read_text())["wall_seconds"])
                walls.append(wall)
                cpu_seconds += wall * float(job["resources"].get("CPU", 1))
        if walls:
            rows.append(
                (stage, len(walls), cpu_seconds, max(cpu_seconds / cpus, max(walls)), max(walls))
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--study-dir", type=Path, help="a finished study to measure packing of")
    args = parser.parse_args()
    o = trial_overhead(args.trials, args.sleep, args.cpus)
    print("| trials | sleep s | CPUs | wall s | ideal s | Ray overhead per trial s |")
    print("|---|---|---|---|---|---|")
    cells = [o["trials"], args.sleep, args.cpus, o["wall_s"], o["ideal_s"], o["per_trial_s"]]
    print("| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    if args.study_dir:
        rows = study_packing(args.study_dir)
        driver = json.loads((args.study_dir / "driver.json").read_text())
        actual = float(driver.get("finished_at") or driver["heartbeat_at"]) - float(
            driver["started_at"]
        )
        ideal = sum(r[3] for r in rows)
        print()
        print("| stage | jobs | CPU-s | ideal makespan s | longest job s |")
        print("|---|---|---|---|---|")
        for stage, n, cpu_s, ideal_s, longest in rows:
            print(f"| {stage} | {n} | {cpu_s:.1f} | {ideal_s:.1f} | {longest:.1f} |")
        print(
            f"\nstudy makespan (last driver run) {actual:.1f} s; ideal packing {ideal:.1f} s; "
            f"ratio {actual / ideal:.2f} (includes Ray start-up, driver prep and figures)"
        )


if __name__ == "__main__":
    main()
