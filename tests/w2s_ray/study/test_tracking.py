"""Experiment tracking through real Ray, a real MLflow file store and real TensorBoard event
files, read back with MLflow's client and TensorBoard's record format."""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from w2s_ray.errors import UserError
from w2s_ray.spec import StudySpec, parse_spec
from w2s_ray.study.epochs import EpochLog, read_epochs
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.runner import check_study_dir, run_study
from w2s_ray.study.store import StudyStore
from w2s_ray.study.tracking import LEDGER, job_results, require, tracked
from w2s_ray.train.loop import NullReporter

mlflow = pytest.importorskip("mlflow")
event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")


def _spec(tiny_models: dict[str, Path], toy_dataset: Path, **tracking: object) -> dict:
    return {
        "name": "tracked",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in tiny_models.items()
        ],
        "seeds": [0],
        "mode": "probe",
        "methods": ["xent"],
        "data": {"n_train": 120, "n_test": 60},
        "train": {"epochs": 3, "lr": 1e-2, "batch_size": 16, "max_length": 16},
        **({"tracking": tracking} if tracking else {}),
    }


def _run(spec: StudySpec, study_dir: Path) -> str:
    """Runs the study; returns what it printed."""
    out = io.StringIO()
    outcome = run_study(spec, study_dir, console=Console(file=out, width=200))
    assert outcome.failures == {}
    return out.getvalue()


def _tracked_jobs(spec: StudySpec) -> list:
    return [j for jobs in plan_jobs(resolve(spec)).values() for j in jobs if tracked(j)]


def _mlflow_runs(uri: str, experiment: str) -> dict[str, object]:
    """Each run of the experiment by the job id it was logged with."""
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    runs = client.search_runs([found.experiment_id], max_results=1000)
    by_job = {run.data.params["job_id"]: run for run in runs}
    assert len(by_job) == len(runs), "a job was sent twice"
    return by_job


def _scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar in a folder's TensorBoard event files, read from the TFRecord framing
    (length, crc, event proto, crc) with tensorboardX's own protobufs."""
    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def _ledger(study_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (study_dir / LEDGER).read_text().splitlines()]


def test_each_finished_job_is_one_mlflow_run_and_one_tensorboard_folder_and_resume_adds_none(
    ray_session, tiny_models, toy_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps it on request
    uri = (tmp_path / "mlruns").as_uri()
    spec = parse_spec(_spec(tiny_models, toy_dataset, mlflow=uri, tensorboard=True))
    study_dir = tmp_path / "study"
    _run(spec, study_dir)

    jobs = _tracked_jobs(spec)
    assert {j.stage for j in jobs} == {"ground_truth", "label", "student"}
    runs = _mlflow_runs(uri, "tracked")  # the experiment defaults to the study's name
    assert set(runs) == {j.job_id for j in jobs}
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    trained = 0
    for job in jobs:
        run, result = (
            runs[job.job_id],
            json.loads((study_dir / "jobs" / job.job_id / "result.json").read_text()),
        )
        params = run.data.params
        assert (params["stage"], params["model"], params["seed"]) == (job.stage, job.model, "0")
        assert params.get("method") == job.method and params["title"] == job.title
        assert run.info.status == "FINISHED" and run.info.run_name == job.title
        assert run.data.metrics["test_accuracy"] == pytest.approx(result["test_accuracy"])
        events = _scalars(study_dir / "tensorboard" / job.job_id)
        assert events["ray/tune/test_accuracy"][max(events["ray/tune/test_accuracy"])] == (
            pytest.approx(result["test_accuracy"])
        )
        epochs = read_epochs(StudyStore(study_dir), job.job_id)
        if not epochs:
            assert job.stage == "label"  # a probe's labels come from its ground-truth model
            continue
        trained += 1
        losses = {e: m["train_loss"] for e, m in epochs[""].items()}
        assert sorted(losses) == [1, 2, 3]
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert {m.step: m.value for m in history} == pytest.approx(losses)
        assert events["ray/tune/train_loss"] == pytest.approx(losses, rel=1e-6)
    assert trained == 3  # two ceilings and a student
    sent = _ledger(study_dir)
    assert len(sent) == 2 * len(jobs)
    assert {r["to"].split()[0] for r in sent} == {"mlflow", "tensorboard"}

    # resuming sends nothing again
    _run(spec, study_dir)
    assert set(_mlflow_runs(uri, "tracked")) == {j.job_id for j in jobs}
    assert _ledger(study_dir) == sent
    for job in jobs:
        assert len(list((study_dir / "tensorboard" / job.job_id).glob("events.*"))) == 1


def test_untracked_jobs_are_caught_up_and_a_failing_tracker_stops_nothing(
    ray_session, tiny_models, toy_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    study_dir = tmp_path / "study"
    plain = parse_spec(_spec(tiny_models, toy_dataset))
    _run(plain, study_dir)  # finished with no tracker listening (as if the driver were dead)
    results = {p: p.read_bytes() for p in study_dir.glob("jobs/*/result.json")}

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where MLflow wants its store")
    tracking = {"mlflow": blocked.as_uri(), "tensorboard": str(tmp_path / "tb")}
    spec = parse_spec(_spec(tiny_models, toy_dataset, **tracking))
    printed = _run(spec, study_dir)  # the same study: tracking changes no job
    jobs = {j.job_id for j in _tracked_jobs(spec)}
    assert "tracking: mlflow failed" in printed and "not sent to mlflow" in printed
    assert {p.name for p in (tmp_path / "tb").iterdir()} == jobs  # caught up
    assert {r["to"].split()[0] for r in _ledger(study_dir)} == {"tensorboard"}

    blocked.unlink()  # the store is fixed: the next resume sends what MLflow missed
    _run(spec, study_dir)
    assert set(_mlflow_runs(blocked.as_uri(), "tracked")) == jobs
    assert len(_ledger(study_dir)) == 2 * len(jobs)
    assert {p: p.read_bytes() for p in study_dir.glob("jobs/*/result.json")} == results


def test_tracking_changes_no_job_id_and_a_study_may_start_tracking(
    tiny_models, toy_dataset, tmp_path
):
    plain = parse_spec(_spec(tiny_models, toy_dataset))
    spec = parse_spec(_spec(tiny_models, toy_dataset, mlflow="file:./mlruns", tensorboard=True))
    ids = [j.job_id for jobs in plan_jobs(resolve(plain)).values() for j in jobs]
    assert ids == [j.job_id for jobs in plan_jobs(resolve(spec)).values() for j in jobs]
    store = StudyStore(tmp_path)
    store.write_bytes("study.yaml", plain.to_yaml().encode())
    check_study_dir(store, spec)  # not "a different study"
    assert spec.tracking.mlflow == (Path.cwd() / "mlruns").as_uri()  # from where it started


@pytest.mark.parametrize(
    ("tracking", "message"),
    [
        ({"mlfow": "file:./x"}, "unknown key 'tracking.mlfow' — did you mean 'mlflow'?"),
        (
            {"wandb": {"project": "p", "entity": "e", "mode": "offline", "grup": "g"}},
            "unknown key 'tracking.wandb.grup'",
        ),
        ({"wandb": {"project": "p", "mode": "on"}}, "'online' or 'offline'"),
        ({"tensorboard": 3}, "true, false or a directory"),
        ({"mlflow": "http://me:secret@host:5000"}, "MLFLOW_TRACKING_PASSWORD"),
    ],
)
def test_a_malformed_tracking_section_is_one_line_naming_the_key(tracking, message):
    data = {"name": "x", "datasets": ["sst2"], "models": ["a", "b"], "tracking": tracking}
    with pytest.raises(UserError) as caught:
        parse_spec(data)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_a_missing_tracker_package_is_a_user_error_naming_the_fix():
    with pytest.raises(UserError, match=r"key 'tracking.mlflow'.*pip install mlflow-skinny"):
        require("w2s_ray_no_such_tracker", "tracking.mlflow", "pip install mlflow-skinny")
    require("json", "tracking.mlflow", "nothing")  # an importable module passes


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_wandb_without_its_package_exits_2_before_ray_starts(tiny_models, toy_dataset, tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(_spec(tiny_models, toy_dataset, wandb={"project": "w2s"})))
    proc = subprocess.run(
        [sys.executable, "-m", "w2s_ray.cli", "run", str(study)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "tracking.wandb" in line and "pip install 'w2s-ray[wandb]'" in line
    assert not (tmp_path / "runs").exists()


def test_wandb_offline_sets_up_without_an_api_key(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from w2s_ray.study.tracking_backends import open_backends

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    spec = parse_spec(
        {
            "name": "x",
            "datasets": ["sst2"],
            "models": ["a", "b"],
            "tracking": {"wandb": {"project": "w2s", "mode": "offline"}},
        }
    )
    (backend,) = open_backends(spec.tracking, "x", StudyStore(tmp_path))
    backend.setup()
    assert backend.callback.project == "w2s" and backend.callback.kwargs["mode"] == "offline"


def test_epochs_of_several_models_stay_apart_and_a_rerun_epoch_keeps_its_last_record(tmp_path):
    store = StudyStore(tmp_path)
    for tag, losses in (("-fold0", [0.9, 0.8]), ("-fold1", [0.7, 0.6])):
        log = EpochLog(store, "bootstrap-x", tag, NullReporter())
        for epoch, loss in enumerate(losses, 1):
            log.report({"epoch": epoch, "train_loss": loss})
    # a training resumed from its epoch-1 checkpoint reports epoch 2 again
    EpochLog(store, "bootstrap-x", "-fold1", NullReporter()).report({"epoch": 2, "train_loss": 0.5})
    store.append_text(store.job_file("bootstrap-x", "epochs.jsonl"), '{"tag": "-fo')  # cut
    epochs = read_epochs(store, "bootstrap-x")
    assert epochs == {
        "-fold0": {1: {"train_loss": 0.9}, 2: {"train_loss": 0.8}},
        "-fold1": {1: {"train_loss": 0.7}, 2: {"train_loss": 0.5}},
    }
    results = job_results(epochs, {"test_accuracy": 0.75, "seed": 0, "ok": True}, {"seed": 0})
    assert results[1] == {
        "training_iteration": 2,
        "fold0": {"train_loss": 0.8},
        "fold1": {"train_loss": 0.5},
    }
    assert results[-1] == {"training_iteration": 2, "test_accuracy": 0.75}


def test_wandb_offline_records_every_job_without_network(
    ray_session, tiny_models, toy_dataset, tmp_path, monkeypatch
):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec = parse_spec(_spec(tiny_models, toy_dataset, wandb={"project": "w2s", "mode": "offline"}))
    study_dir = tmp_path / "study"
    _run(spec, study_dir)
    runs = sorted(study_dir.rglob("offline-run-*"))
    assert len(runs) == len(_tracked_jobs(spec))  # one offline run per job, kept for `wandb sync`
    for run in runs:
        assert list(run.glob("*.wandb")), f"{run} holds no run record"
