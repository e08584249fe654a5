"""Methods beyond the paper as study lines: weak labels processed by ensembles, probes and
confidence before the student learns them, and strong-to-strong rounds. Jobs run in-process,
stage by stage, without Ray (the same code a Ray task calls)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from w2s_ray.errors import UserError
from w2s_ray.spec import parse_spec
from w2s_ray.study import artifacts
from w2s_ray.study.data_prep import splits_for
from w2s_ray.study.execute import run_job
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.store import StudyStore, results_frame

METHODS = [
    "xent",
    {"name": "knn", "loss": "xent", "weak_labels": {"probe": "knn", "k": 5}},
    {
        "name": "logreg_filter",
        "loss": "xent",
        "weak_labels": {"probe": "logreg", "probe_use": "filter", "filter_fraction": 0.2},
    },
    {"name": "confident", "loss": "xent", "weak_labels": {"drop_least_confident": 0.25}},
    {"name": "ens_seeds", "loss": "xent", "weak_labels": {"ensemble_seeds": 3}},
    {"name": "ens_models", "loss": "xent", "weak_labels": {"ensemble_models": ["tiny-m"]}},
    {"name": "s2s", "loss": "xent", "rounds": 2},
]


def _spec(ladder: dict[str, Path], toy_dataset: Path, **overrides) -> dict:
    return {
        "name": "zoo",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [{"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in ladder.items()],
        "seeds": [0],
        "mode": "probe",
        "methods": METHODS,
        "data": {"n_train": 180, "n_test": 60},
        "train": {"epochs": 20, "lr": 5e-2, "batch_size": 16, "max_length": 16},
        **overrides,
    }


def _students(stages, method: str, weak: str = "tiny-s", strong: str = "tiny-l"):
    return [
        j
        for j in stages["student"]
        if j.method == method and j.weak_model == weak and j.model == strong
    ]


def test_plan_of_the_zoo(tiny_ladder, toy_dataset):
    study = resolve(parse_spec(_spec(tiny_ladder, toy_dataset)))
    stages = plan_jobs(study)
    # the weak model of each pair trains 3 times on its own half (ens_seeds); tiny-l never
    # supervises, so it trains once
    truth = [(j.model, j.key.get("member", 0)) for j in stages["ground_truth"]]
    assert sorted(truth) == sorted(
        [("tiny-s", m) for m in range(3)] + [("tiny-m", m) for m in range(3)] + [("tiny-l", 0)]
    )
    # an ensemble with tiny-m cannot teach tiny-m (not weak-to-strong): only ... -> tiny-l
    assert {(j.weak_model, j.model) for j in stages["student"] if j.method == "ens_models"} == {
        ("tiny-s", "tiny-l"),
        ("tiny-m", "tiny-l"),
    }
    # processing that reads no strong features is shared by every student of the weak model
    confident = [j for j in stages["student"] if j.method == "confident"]
    by_weak = {j.weak_model: j.labels for j in confident}
    assert len({j.labels for j in confident}) == len(by_weak) == 2
    relabel = {j.job_id: j for j in stages["relabel"]}
    knn_s_l = _students(stages, "knn")[0]
    assert relabel[knn_s_l.labels].features == relabel[knn_s_l.labels].key["features"]
    # rounds: round 2 learns round 1's predictions, a row each with the round in its title
    r1, r2 = sorted(_students(stages, "s2s"), key=lambda j: j.key["round"])
    assert r2.labels == r1.job_id and r1.labels == r2.weak_labels
    assert "round 2" in r2.title
    # adding methods changes no other job
    plain = plan_jobs(resolve(parse_spec(_spec(tiny_ladder, toy_dataset, methods=["xent"]))))
    assert {j.job_id for j in plain["student"]} <= {j.job_id for j in stages["student"]}
    assert {j.job_id for j in plain["label"]} <= {j.job_id for j in stages["label"]}


@pytest.mark.parametrize(
    ("method", "fix"),
    [
        (
            {"name": "e", "loss": "xent", "weak_labels": {"ensemble_models": ["tiny-x"]}},
            "not in `models`",
        ),
        (
            {"name": "b", "loss": "xent", "bootstrap": True, "weak_labels": {"probe": "knn"}},
            "not both",
        ),
        ({"name": "e", "loss": "xent", "weak_labels": {"ensemble_models": ["tiny-l"]}}, "weaker"),
        ({"name": "e", "weak_labels": {"probe": "svm"}}, "knn"),
    ],
)
def test_bad_weak_label_settings_are_refused(tiny_ladder, toy_dataset, method, fix):
    with pytest.raises(UserError, match=fix):
        resolve(parse_spec(_spec(tiny_ladder, toy_dataset, methods=[method])))


@pytest.fixture(scope="module")
def ran_zoo(tiny_ladder, toy_dataset, tmp_path_factory, w2s_cache):
    study = resolve(parse_spec(_spec(tiny_ladder, toy_dataset)))
    store = StudyStore(tmp_path_factory.mktemp("zoo-study"))
    stages = plan_jobs(study)
    results = {}
    for jobs in stages.values():
        for job in jobs:
            results[job.job_id] = run_job(job, study, store)
    return study, store, stages, results


@pytest.mark.slow
def test_filters_and_ensembles_do_what_they_say(ran_zoo):
    study, _, stages, results = ran_zoo
    pool = splits_for(study, "toy", 0).student_train
    (filtered,) = _students(stages, "logreg_filter")
    row = results[filtered.job_id]
    assert row["n_label_dropped"] == int(0.2 * len(pool))
    assert row["n_train"] == len(pool) - row["n_label_dropped"]
    (confident,) = _students(stages, "confident")
    kept = artifacts.load_labels(confident.labels)
    weak = artifacts.load_labels(confident.weak_labels)
    assert kept is not None and weak is not None
    dropped = [ex.id for ex in pool if ex.id not in kept]
    assert len(dropped) == int(0.25 * len(pool))
    # the dropped are the least confident weak labels
    kept_ids = [ex.id for ex in pool if ex.id in kept]
    assert max(abs(weak[i] - 0.5) for i in dropped) <= min(abs(weak[i] - 0.5) for i in kept_ids)
    # an ensemble's labels are its members' mean, members trained apart (different labels)
    (ens,) = _students(stages, "ens_seeds")
    relabel = next(j for j in stages["relabel"] if j.job_id == ens.labels)
    members = [artifacts.load_labels(m) for m in (relabel.labels, *relabel.members)]
    assert len(members) == 3 and all(m is not None for m in members)
    averaged = artifacts.load_labels(relabel.job_id)
    assert averaged is not None
    some = pool[0].id
    assert averaged[some] == pytest.approx(sum(m[some] for m in members) / 3, abs=1e-6)
    assert any(abs(members[0][i] - members[1][i]) > 1e-4 for i in averaged)


@pytest.mark.slow
def test_rows_record_rounds_diagnostics_and_settings(ran_zoo):
    _, _, stages, results = ran_zoo
    frame = results_frame(results.values())
    # ensemble members are not ground truth or label rows: one of each per model and seed
    truth = frame.filter(frame["stage"] == "ground_truth")
    assert truth.height == 3
    students = frame.filter(frame["stage"] == "student")
    assert {"s2s_r1", "s2s_r2"} <= set(students["method"])
    assert "s2s" not in set(students["method"])
    assert set(students.filter(students["method"] == "s2s_r2")["round"]) == {2}
    assert students.filter(students["method"] == "xent")["round"].is_null().all()
    for column in ("misfit", "misfit_sq", "new_error_rate", "test_brier"):
        values = students[column].drop_nulls()
        assert values.len() == students.height and ((values >= 0) & (values <= 1)).all()
    spec = students.filter(students["method"] == "knn")["method_spec"][0]
    assert spec.startswith("loss=xent") and "probe=knn/relabel" in spec
    # round 2 learns round 1's predictions on the student half
    r1, r2 = sorted(_students(stages, "s2s"), key=lambda j: j.key["round"])
    labels_r1 = artifacts.load_labels(r1.job_id)
    assert labels_r1 is not None
    weak = artifacts.load_labels(r1.weak_labels)
    assert weak is not None
    pool = splits_for(ran_zoo[0], "toy", 0).student_train
    flipped = sum((labels_r1[ex.id] > 0.5) != (weak[ex.id] > 0.5) for ex in pool)
    assert results[r2.job_id]["n_label_flipped"] == flipped
    assert results[r1.job_id]["n_label_flipped"] == 0  # round 1 learns the weak labels


@pytest.mark.slow
def test_misfit_is_disagreement_with_the_labels_learned(ran_zoo):
    study, store, stages, results = ran_zoo
    (job,) = _students(stages, "xent")
    row = results[job.job_id]
    labels = artifacts.load_labels(job.labels)
    assert labels is not None
    # a student's misfit equals 1 − its agreement with its labels on the student half: the
    # weights it saved, applied again, give the same count
    from w2s_ray.study.training import classifier_for, inputs_for
    from w2s_ray.train.loop import predict_probs

    pool = splits_for(study, "toy", 0).student_train
    inputs = inputs_for(study, job, pool)
    model = classifier_for(study, job, inputs)
    model.load_state_dict(
        artifacts.load_weights(store, store.job_file(job.job_id, "model.safetensors"))
    )
    p1 = predict_probs(model, inputs)[:, 1]
    target = torch.tensor([labels[ex.id] for ex in pool])
    assert row["misfit"] == pytest.approx(float(((p1 > 0.5) != (target > 0.5)).float().mean()))


def test_finetune_probes_read_features_planned_for_them_alone(tiny_ladder, toy_dataset):
    methods = ["xent", {"name": "knn", "loss": "xent", "weak_labels": {"probe": "knn"}}]
    spec = _spec(tiny_ladder, toy_dataset, mode="finetune", methods=methods)
    stages = plan_jobs(resolve(parse_spec(spec)))
    # the strong models' frozen features, for the probe only: no fine-tune waits on them
    assert sorted(j.model for j in stages["features"]) == ["tiny-l", "tiny-m"]
    features = {j.job_id for j in stages["features"]}
    for stage in ("ground_truth", "label", "student"):
        assert not any(set(j.deps) & features for j in stages[stage]), stage
    assert {j.features for j in stages["relabel"]} == features
    # the same features a probe-mode study computes (one cache entry for both)
    probe = plan_jobs(resolve(parse_spec(_spec(tiny_ladder, toy_dataset, methods=methods))))
    assert features <= {j.job_id for j in probe["features"]}


def test_a_finetune_study_relabels_with_a_probe(tiny_ladder, toy_dataset, tmp_path, w2s_cache):
    methods = [{"name": "knn", "loss": "xent", "weak_labels": {"probe": "knn", "k": 5}}]
    spec = _spec(
        tiny_ladder,
        toy_dataset,
        mode="finetune",
        methods=methods,
        pairs=[["tiny-s", "tiny-l"]],
        train={"epochs": 1, "lr": 1e-3, "batch_size": 16, "max_length": 16},
    )
    study = resolve(parse_spec(spec))
    store = StudyStore(tmp_path / "study")
    stages = plan_jobs(study)
    results = {j.job_id: run_job(j, study, store) for jobs in stages.values() for j in jobs}
    (relabel,) = stages["relabel"]
    (student,) = stages["student"]
    assert student.labels == relabel.job_id
    relabeled, weak = artifacts.load_labels(relabel.job_id), artifacts.load_labels(relabel.labels)
    assert relabeled is not None and weak is not None
    pool = splits_for(study, "toy", 0).student_train
    assert any(abs(relabeled[ex.id] - weak[ex.id]) > 1e-3 for ex in pool)
    row = results[student.job_id]
    assert row["n_train"] == len(pool) and row["n_label_dropped"] == 0
    assert row["n_label_flipped"] == results[relabel.job_id]["n_label_flipped"]
