"""Big inference jobs split into shards: what is planned (and what is not), how the slices
cover the rows, how a merge checks them, and that shards are never results."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from w2s_ray.spec import load_spec, parse_spec
from w2s_ray.study import artifacts, sharding
from w2s_ray.study.cost import study_sizes
from w2s_ray.study.graph import Job
from w2s_ray.study.integrity import send_back_broken_jobs
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.status import read_status
from w2s_ray.study.store import StudyStore, results_frame

STUDIES = sorted((Path(__file__).parents[3] / "studies").glob("*.yaml"))
DEFAULT_SHARD_ROWS = 8192


def _jobs(stages: dict[str, list[Job]]) -> list[Job]:
    return [job for jobs in stages.values() for job in jobs]


def _tiny(tiny_models, toy_dataset, mode: str, shard_rows: int | None = None) -> dict:
    spec = {
        "name": f"tiny-{mode}",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [
            {"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in tiny_models.items()
        ],
        "mode": mode,
        "data": {"n_train": 40, "n_test": 20},
    }
    if shard_rows is not None:
        spec["resources"] = {"shard_rows": shard_rows}
    return spec


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_the_shipped_studies_keep_every_job_id_and_shard_only_above_the_threshold(path):
    spec = load_spec(path)
    study = resolve(spec)
    # a threshold nothing reaches plans exactly what was planned before shards existed
    whole = spec.resources.model_copy(update={"shard_rows": 10**9})
    unsharded = resolve(spec.model_copy(update={"resources": whole}))
    before = plan_jobs(unsharded)
    after = plan_jobs(study)
    assert spec.resources.shard_rows == DEFAULT_SHARD_ROWS
    sizes = study_sizes(study)
    rows = {
        "features": sizes.weak_train + sizes.student_train + sizes.test,
        "label": sizes.student_train + sizes.test,
    }
    for stage, jobs in after.items():
        kept = [job for job in jobs if job.shard is None]
        assert [j.job_id for j in kept] == [j.job_id for j in before[stage]], stage
        old_deps = {j.job_id: j.deps for j in before[stage]}
        # only inference over a pool bigger than shard_rows is split: never probe heads
        inference = stage == "features" or (stage == "label" and spec.mode == "finetune")
        big = inference and rows[stage] > DEFAULT_SHARD_ROWS
        for job in kept:
            assert job.deps == old_deps[job.job_id] + job.shards
            count = math.ceil(rows[stage] / DEFAULT_SHARD_ROWS) if big else 0
            assert len(job.shards) == count, (stage, job.title)
        shards = [job for job in jobs if job.shard is not None]
        assert {s.job_id for s in shards} == {s for job in kept for s in job.shards}
    sharded = {job.stage for job in _jobs(after) if job.shards}
    # the two whose capped pools pass 8192 rows: 10k+2k and 10k+10k labeled in finetune mode
    assert sharded == ({"label"} if path.stem in ("repro-chess", "repro-gpt2") else set())


def test_shards_are_planned_above_the_threshold_with_ids_of_their_own(tiny_models, toy_dataset):
    probe = plan_jobs(resolve(parse_spec(_tiny(tiny_models, toy_dataset, "probe", 15))))
    features = [job for job in probe["features"] if job.shard is None]
    assert len(features) == 2  # a parent per model, after its shards
    for parent in features:
        shards = [job for job in probe["features"] if job.job_id in parent.shards]
        assert [s.shard for s in shards] == [(i, 4) for i in range(4)]  # 60 rows / 15
        assert set(parent.shards) <= set(parent.deps)
        assert all(sharding.parent_id(s) == parent.job_id for s in shards)
        assert shards[1].title == f"{parent.title} shard 2/4"
        assert all(s.model == parent.model and s.key["shard"] == [s.shard[0], 4] for s in shards)
    # probe heads on cached features stay whole; their ids are what they were unsharded
    unsharded = plan_jobs(resolve(parse_spec(_tiny(tiny_models, toy_dataset, "probe"))))
    assert not any(job.shard or job.shards for job in probe["label"] + probe["ground_truth"])
    assert [j.job_id for j in probe["label"]] == [j.job_id for j in unsharded["label"]]
    assert [j.job_id for j in features] == [j.job_id for j in unsharded["features"]]

    # another count is another slice: every shard id differs by index and by count
    other = plan_jobs(resolve(parse_spec(_tiny(tiny_models, toy_dataset, "probe", 25))))
    ids_4 = {job.job_id for job in probe["features"] if job.shard}
    ids_3 = {job.job_id for job in other["features"] if job.shard}
    assert len(ids_4) == 8 and len(ids_3) == 6 and not ids_4 & ids_3

    finetune = plan_jobs(resolve(parse_spec(_tiny(tiny_models, toy_dataset, "finetune", 15))))
    assert finetune["features"] == []
    assert not any(job.shards for job in finetune["ground_truth"] + finetune["student"])
    (label,) = [job for job in finetune["label"] if job.shard is None]
    assert len(label.shards) == 3  # 20 student-train + 20 test rows / 15
    shard_jobs = [job for job in finetune["label"] if job.shard]
    assert all(s.supervisor == label.supervisor for s in shard_jobs)


def test_the_slices_cover_every_row_once_in_order():
    for n in (0, 1, 2, 7, 60, 8193):
        for count in (1, 2, 3, 4, 9):
            rows = list(range(n))
            pieces = [sharding.rows_of(_shard((i, count)), rows) for i in range(count)]
            assert [r for piece in pieces for r in piece] == rows
            assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
            assert [sharding.planned_rows(_shard((i, count)), n) for i in range(count)] == [
                len(p) for p in pieces
            ]


def _shard(shard: tuple[int, int]) -> Job:
    return Job("label-x", "label", "toy", "m", key={"shard": list(shard)}, shard=shard)


def _parent(count: int) -> Job:
    parent = Job("label-p", "label", "toy", "m", key={"supervisor": "s"})
    *_, parent = sharding.split(parent, rows=count * 10, shard_rows=10)
    return parent


def test_a_merge_checks_every_shard_and_removes_one_that_holds_other_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    parent = _parent(2)
    ids = [f"ex{i}" for i in range(5)]
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.25, 0.75], [0.5, 0.5], [0.1, 0.9]])
    first, second = parent.shards
    artifacts.save_labels(first, ids[:2], probs[:2], "vllm")
    with pytest.raises(RuntimeError, match=r"shard 2/2 .*missing.*rerun"):
        sharding.merged_labels(parent, ids)
    artifacts.save_labels(second, ["ex3", "ex2", "ex4"], probs[2:], "vllm")  # out of order
    with pytest.raises(RuntimeError, match=rf"shard 2/2 \({second}\) holds other.*rerun"):
        sharding.merged_labels(parent, ids)
    assert not artifacts.labels_path(second).exists()  # the rerun computes it again
    artifacts.save_labels(second, ids[2:], probs[2:], "transformers")
    merged = sharding.merged_labels(parent, ids)
    assert merged[:, 1].tolist() == probs[:, 1].double().tolist()  # bit for bit
    assert merged.sum(1).tolist() == [1.0] * 5
    # shards that ran where different backends were usable: the merge names both
    assert sharding.merged_backend(parent, artifacts.labels_path) == "transformers+vllm"


def test_a_shard_is_neither_a_result_row_nor_counted_with_its_stage(tmp_path):
    rows = [
        {"job_id": "label-p", "stage": "label", "test_accuracy": 0.7},
        {"job_id": "label-s", "stage": "label", "shard": [0, 2], "parent": "label-p"},
    ]
    assert results_frame(rows)["job_id"].to_list() == ["label-p"]

    store = StudyStore(tmp_path)
    shards = [
        {
            "job_id": f"label-s{i}",
            "title": f"label shard {i + 1}/2",
            "deps": [],
            "shard": [i, 2],
            "parent": f"label-p{i}",
        }
        for i in range(2)
    ]
    parents = [
        {"job_id": f"label-p{i}", "title": f"label {i}", "deps": [f"label-s{i}"]} for i in range(2)
    ]
    store.write_plan({"study": "s", "stages": {"label": [*shards, *parents]}})
    store.write_result("label-p0", {"stage": "label"})  # finished (before it had shards)
    state = read_status(tmp_path)
    counts = {s.stage: s.counts for s in state.stages}
    assert list(counts) == ["label shards", "label"]
    assert counts["label"] == {"done": 1, "running": 0, "failed": 0, "pending": 1}
    # a done parent's shard never runs: it counts as done; the other is still to run
    assert counts["label shards"] == {"done": 1, "running": 0, "failed": 0, "pending": 1}


def test_a_shards_outputs_are_checked_only_while_its_parent_has_to_merge(
    tiny_models, toy_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("W2S_CACHE", str(tmp_path / "cache"))
    study = resolve(parse_spec(_tiny(tiny_models, toy_dataset, "finetune", 15)))
    jobs = _jobs(plan_jobs(study))
    store = StudyStore(tmp_path / "study")
    for job in jobs:  # a finished study, written by hand; no shard left its labels
        store.write_result(job.job_id, {"stage": job.stage})
        if job.stage == "ground_truth":
            weights = store.job_file(job.job_id, "model.safetensors")
            artifacts.save_weights(store, weights, {"w": torch.ones(2)})
            artifacts.save_test_predictions(store, job.job_id, ["x"], torch.tensor([[0.5, 0.5]]))
    (parent,) = [job for job in jobs if job.shards]
    artifacts.save_labels(parent.job_id, ["x"], torch.tensor([[0.4, 0.6]]), "transformers")
    assert send_back_broken_jobs(jobs, study, store) == []  # a done parent needs no shard

    # the parent to merge again while its merged labels are cached: the shards are done
    store.delete(store.job_file(parent.job_id, "result.json"))
    assert send_back_broken_jobs(jobs, study, store) == []
    # without them, each shard must label its slice again
    artifacts.labels_path(parent.job_id).unlink()
    notes = send_back_broken_jobs(jobs, study, store)
    assert len(notes) == 3 and all("shard" in note and "running it again" in note for note in notes)
    assert not any(store.is_done(shard) for shard in parent.shards)
