"""Job ids follow the content of what jobs read: hub revisions (pinned, or resolved from a local
HF cache) and local model folders (their files, not their path). Offline throughout."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from fake_hf_cache import COMMIT_A, COMMIT_B, write_ref

from w2s_ray.spec import parse_spec
from w2s_ray.study import inputs
from w2s_ray.study.plan import Job, Study, plan_jobs, resolve
from w2s_ray.study.runner import plan_record
from w2s_ray.study.scheduling import schedule

HUB_STUDY: dict[str, Any] = {
    "name": "hub",
    "datasets": ["boolq", "dream"],
    "models": ["pythia-70m", "pythia-160m"],
    "baselines": {"k": [0]},
}


@pytest.fixture
def hf_cache(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared offline cache, with the once-per-process warning armed again."""
    monkeypatch.setattr(inputs, "_WARNED", set())
    return hf_cache


def _jobs(data: dict[str, Any]) -> list[Job]:
    return [job for jobs in plan_jobs(resolve(parse_spec(data))).values() for job in jobs]


def _ids_by_role(jobs: list[Job]) -> dict[tuple[Any, ...], str]:
    return {(j.stage, j.dataset, j.model, j.weak_model, j.method, j.seed): j.job_id for j in jobs}


def _follows(before: dict, after: dict, model: str) -> None:
    """Exactly the jobs that ran `model` (or learned from its labels) got new ids."""
    assert before.keys() == after.keys()
    for role in before:
        reads = model in (role[2], role[3])  # the job's model, or the weak one it learns from
        assert (after[role] != before[role]) == reads, role


def _plan_record(study: Study) -> dict[str, Any]:
    stages = plan_jobs(study)
    jobs = [job for staged in stages.values() for job in staged]
    return plan_record(study, stages, schedule(study, jobs, {}))


def test_a_cached_commit_enters_the_ids_of_the_jobs_that_read_that_model(hf_cache: Path) -> None:
    unresolved = _ids_by_role(_jobs(HUB_STUDY))
    write_ref(hf_cache, "model", "EleutherAI/pythia-70m", "main", COMMIT_A)
    resolved = _ids_by_role(_jobs(HUB_STUDY))
    _follows(unresolved, resolved, "pythia-70m")
    write_ref(hf_cache, "model", "EleutherAI/pythia-70m", "main", COMMIT_B)  # the repo moved
    _follows(resolved, _ids_by_role(_jobs(HUB_STUDY)), "pythia-70m")


def test_pinning_the_resolved_commit_keeps_the_ids_and_another_changes_them(
    hf_cache: Path,
) -> None:
    write_ref(hf_cache, "model", "EleutherAI/pythia-70m", "main", COMMIT_A)
    resolved = _ids_by_role(_jobs(HUB_STUDY))
    same = {**HUB_STUDY, "models": [{"name": "pythia-70m", "revision": COMMIT_A}, "pythia-160m"]}
    assert _ids_by_role(_jobs(same)) == resolved
    other = {**HUB_STUDY, "models": [{"name": "pythia-70m", "revision": COMMIT_B}, "pythia-160m"]}
    _follows(resolved, _ids_by_role(_jobs(other)), "pythia-70m")


def test_dataset_revisions_enter_the_ids_and_the_parquet_branch_is_its_own(
    hf_cache: Path,
) -> None:
    before = _ids_by_role(_jobs(HUB_STUDY))
    # dream is read from the hub's parquet conversion: a new commit on main changes nothing
    write_ref(hf_cache, "dataset", "dataset-org/dream", "main", COMMIT_A)
    assert _ids_by_role(_jobs(HUB_STUDY)) == before
    write_ref(hf_cache, "dataset", "dataset-org/dream", "refs/convert/parquet", COMMIT_B)
    write_ref(hf_cache, "dataset", "google/boolq", "main", COMMIT_A)
    after = _ids_by_role(_jobs(HUB_STUDY))
    assert all(after[role] != before[role] for role in before)  # every job reads a dataset
    study = resolve(parse_spec(HUB_STUDY))
    assert study.dataset_revisions == {"boolq": COMMIT_A, "dream": COMMIT_B}
    pinned = {**HUB_STUDY, "datasets": [{"name": "boolq", "revision": COMMIT_B}, "dream"]}
    moved = _ids_by_role(_jobs(pinned))
    assert {r[1] for r in moved if moved[r] != after[r]} == {"boolq"}


def test_unresolved_hub_inputs_give_one_warning_and_are_recorded_so(
    hf_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="w2s_ray.study.inputs"):
        study = resolve(parse_spec(HUB_STUDY))
        resolve(parse_spec(HUB_STUDY))  # the CLI resolves twice: check, then run
    warnings = [r.getMessage() for r in caplog.records if r.name == "w2s_ray.study.inputs"]
    assert len(warnings) == 1, warnings
    for name in ("pythia-70m", "pythia-160m", "boolq", "dream"):
        assert name in warnings[0]
    assert "pin `revision:`" in warnings[0]
    record = _plan_record(study)["inputs"]
    assert record["models"]["pythia-70m"]["revision"] == "main (unresolved)"
    assert record["datasets"]["dream"]["revision"] == "refs/convert/parquet (unresolved)"


def test_the_plan_and_each_result_record_the_revisions(hf_cache: Path) -> None:
    write_ref(hf_cache, "model", "EleutherAI/pythia-160m", "main", COMMIT_B)
    write_ref(hf_cache, "dataset", "google/boolq", "main", COMMIT_A)
    data = {**HUB_STUDY, "models": [{"name": "pythia-70m", "revision": COMMIT_A}, "pythia-160m"]}
    study = resolve(parse_spec(data))
    record = _plan_record(study)["inputs"]
    assert record["models"]["pythia-70m"] == {
        "source": "EleutherAI/pythia-70m",
        "revision": COMMIT_A,
        "pinned": COMMIT_A,
    }
    assert record["models"]["pythia-160m"]["revision"] == COMMIT_B
    assert record["datasets"]["boolq"] == {"source": "hub google/boolq", "revision": COMMIT_A}
    student = next(j for j in plan_jobs(study)["student"] if j.dataset == "boolq")
    job = inputs.job_record(study, student)
    assert job["model"]["revision"] == COMMIT_B and job["weak_model"]["revision"] == COMMIT_A
    assert job["dataset"]["revision"] == COMMIT_A


def test_loaders_read_the_revision_in_the_ids(
    hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Models load from that commit's snapshot; datasets are asked for that commit."""
    import datasets

    from w2s_ray.study import data_prep

    snapshot = hf_cache / "models--EleutherAI--pythia-70m" / "snapshots" / COMMIT_A
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "gpt_neox"}')
    write_ref(hf_cache, "dataset", "dataset-org/dream", "refs/convert/parquet", COMMIT_B)
    data = {**HUB_STUDY, "models": [{"name": "pythia-70m", "revision": COMMIT_A}, "pythia-160m"]}
    study = resolve(parse_spec(data))
    assert Path(study.cards["pythia-70m"].resolve_path()) == snapshot
    assert study.cards["pythia-160m"].resolve_path() == "EleutherAI/pythia-160m"  # unresolved

    asked: list[dict[str, Any]] = []

    def hub(path: str, config: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        asked.append({"path": path, **kwargs})
        return []

    monkeypatch.setattr(datasets, "load_dataset", hub)
    data_prep._load_task.cache_clear()
    data_prep.task_data(study, "dream")
    data_prep.task_data(study, "boolq")
    data_prep._load_task.cache_clear()
    revisions = {(a["path"], a.get("revision")) for a in asked}
    assert revisions == {("dataset-org/dream", COMMIT_B), ("google/boolq", None)}


def test_a_revision_on_a_model_or_dataset_not_from_the_hub_is_refused(hf_cache: Path) -> None:
    from w2s_ray.errors import UserError

    local = {**HUB_STUDY, "models": [{"name": "minilm-l3", "revision": "v1"}, "pythia-160m"]}
    with pytest.raises(UserError, match=r"models\[0\].*not a hub model.*drop the key"):
        resolve(parse_spec(local))
    offline = {**HUB_STUDY, "datasets": [{"name": "rotten_tomatoes", "revision": "v1"}]}
    with pytest.raises(UserError, match=r"datasets\[0\].*not read from the hub"):
        resolve(parse_spec(offline))


# --- local model folders ----------------------------------------------------------------


def _local_study(folder: Path, toy_dataset: Path, weak: Path) -> dict[str, Any]:
    return {
        "name": "local",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": "weak", "path": str(weak), "pretrain_tokens": 1e6},
            {"name": "mine", "path": str(folder), "pretrain_tokens": 1e9},
        ],
        "mode": "finetune",
        "methods": ["xent"],
    }


@pytest.mark.parametrize("mode", ["probe", "finetune"])
def test_a_model_retrained_in_place_gets_new_ids_and_a_moved_one_keeps_them(
    mode: str, tiny_models: dict[str, Path], toy_dataset: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "mine"
    shutil.copytree(tiny_models["tiny-l"], folder)
    data = {**_local_study(folder, toy_dataset, tiny_models["tiny-s"]), "mode": mode}
    first = _ids_by_role(_jobs(data))

    weights = folder / "model.safetensors"  # retrained in place: same path, other weights
    save_file({k: v + 0.01 for k, v in load_file(weights).items()}, weights, {"format": "pt"})
    retrained = _ids_by_role(_jobs(data))
    _follows(first, retrained, "mine")

    moved = tmp_path / "moved" / "mine-copy"
    shutil.move(folder, moved)  # moved elsewhere, unchanged: same content, same ids
    moved_data = {**_local_study(moved, toy_dataset, tiny_models["tiny-s"]), "mode": mode}
    assert _ids_by_role(_jobs(moved_data)) == retrained


def test_a_finished_job_records_the_digests_of_what_it_read(
    tiny_models: dict[str, Path], toy_dataset: Path, tmp_path: Path, w2s_cache: Path
) -> None:
    from w2s_ray.assets import sha256_file
    from w2s_ray.identity import folder_digest
    from w2s_ray.study.execute import run_job
    from w2s_ray.study.store import StudyStore

    data = {
        **_local_study(tiny_models["tiny-l"], toy_dataset, tiny_models["tiny-s"]),
        "mode": "probe",
    }
    study = resolve(parse_spec(data))
    features = next(j for j in plan_jobs(study)["features"] if j.model == "mine")
    store = StudyStore(str(tmp_path / "study"))
    run_job(features, study, store)
    recorded = store.read_result(features.job_id)["inputs"]
    assert recorded["model"] == {
        "source": str(tiny_models["tiny-l"].resolve()),
        "sha256": folder_digest(tiny_models["tiny-l"]),
    }
    assert recorded["dataset"] == {"source": str(toy_dataset), "sha256": sha256_file(toy_dataset)}
