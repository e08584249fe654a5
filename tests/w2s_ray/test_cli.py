"""The command line as a user meets it: exit codes and one-line errors naming file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def _w2s_ray(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "w2s_ray.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_typo_in_a_study_exits_2_with_file_key_and_fix_before_any_compute(tmp_path):
    study = tmp_path / "typo.yaml"
    study.write_text(
        yaml.safe_dump(
            {"name": "typo", "datasets": ["roten_tomatoes"], "models": ["minilm-l3", "minilm-l6"]}
        )
    )
    proc = _w2s_ray("run", str(study), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(study) in lines[0] and "datasets[0]" in lines[0]
    assert "did you mean 'rotten_tomatoes'" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing written, nothing started


def test_an_unreadable_study_file_exits_2(tmp_path):
    proc = _w2s_ray("run", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot read study file" in proc.stderr and "missing.yaml" in proc.stderr


def test_list_prints_one_entry_a_line(tmp_path):
    proc = _w2s_ray("list", "losses", cwd=tmp_path)
    assert proc.returncode == 0
    names = [line.split("\t")[0] for line in proc.stdout.strip().splitlines()]
    assert names == ["entropy", "gce", "kl", "logconf", "product", "window", "xent"]
    bad = _w2s_ray("list", "modls", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'models'" in bad.stderr


def test_list_shows_each_task_prompt_and_max_length(tmp_path):
    prompts = _w2s_ray("list", "prompts", cwd=tmp_path)
    assert prompts.returncode == 0, prompts.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in prompts.stdout.splitlines()}
    assert "chess_puzzles" not in rows  # generative: answers are generated, not chosen
    instruction, answers = rows["sst2"]
    assert "positive or negative" in instruction
    assert answers == "Sentiment: 0:' negative' | 1:' positive'"
    assert rows["quail"][1] == "Correct: 0:' No' | 1:' Yes'"
    cards = _w2s_ray("list", "datasets", cwd=tmp_path)
    lengths = {line.split("\t")[0]: line.split("\t")[2] for line in cards.stdout.splitlines()}
    assert lengths["anthropic_hh"] == "max_length 1024" and lengths["sst2"] == "max_length 96"


def test_an_unreachable_cluster_address_exits_2_in_seconds_and_writes_nothing(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {"name": "far", "datasets": ["rotten_tomatoes"], "models": ["minilm-l3", "minilm-l6"]}
        )
    )
    proc = _w2s_ray("run", str(study), "--address", "127.0.0.1:1", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "no Ray cluster answers at '127.0.0.1:1'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
    malformed = _w2s_ray("run", str(study), "--address", "10.0.0.5:port", cwd=tmp_path)
    assert malformed.returncode == 2 and "is not a Ray address" in malformed.stderr


def test_plan_prints_jobs_requests_and_device_hours_without_running(tmp_path):
    study = tmp_path / "pythia.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "pythia",
                "datasets": ["sciq"],
                "models": ["pythia-70m", "pythia-12b"],
                "mode": "finetune",
                "data": {"n_train": 1000, "n_test": 100},
            }
        )
    )
    proc = _w2s_ray("plan", str(study), "--devices", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {
        line.split("│")[1].strip() + "/" + line.split("│")[2].strip(): line
        for line in proc.stdout.splitlines()
        if line.startswith("│")
    }
    # the 12B student cannot fit one device: its card asks for several Ray Train workers
    assert "workers" in rows["student/pythia-12b"] and "GPU" in rows["student/pythia-12b"]
    assert "workers" not in rows["ground_truth/pythia-70m"]
    # the 12B decoder is prompted too: zero-shot, 8-shot with true and with weak labels
    assert "1 GPU" in rows["baseline/pythia-12b"] and "workers" not in rows["baseline/pythia-12b"]
    # the 70M model's fine-tunes share a GPU; its estimated memory is shown
    small = rows["ground_truth/pythia-70m"].split("│")
    assert "0.25 GPU" in small[5] and 0 < float(small[6]) < 80
    total = rows["total/"].split("│")
    assert int(total[4]) == 4 + 3 and float(total[7]) > 0 and float(total[9]) > 0
    out = " ".join(proc.stdout.split())  # rich wraps long lines
    assert "on 2 GPUs, planned: makespan" in out and "lower bound" in out
    assert "on 2 GPUs, whole GPUs (resources.jobs_per_gpu: 1): makespan" in out
    assert not (tmp_path / "runs").exists()


def test_resume_without_a_study_or_with_a_damaged_one_exits_2(tmp_path):
    proc = _w2s_ray("resume", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "nothing to resume" in proc.stderr
    (tmp_path / "study.yaml").write_text("name: [unclosed\n")
    proc = _w2s_ray("resume", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "is damaged" in proc.stderr
    assert "Traceback" not in proc.stderr
