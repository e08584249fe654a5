"""The paper's methods as study options: bootstrapping chains and epoch selection on weak
labels (or, marked as such, on ground truth). Jobs run in-process, without Ray: the stage
runners are the same code a Tune trial calls."""

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
from w2s_ray.study.selection import BestEpoch, held_out
from w2s_ray.study.stages import weak_labels
from w2s_ray.study.store import StudyStore, results_frame
from w2s_ray.train.inputs import FeatureInputs
from w2s_ray.train.model import ProbeClassifier

METHODS = [
    "xent",
    {"name": "boot", "loss": "xent", "bootstrap": True},
    {"name": "xent_weakval", "loss": "xent", "select": "weak_val", "val_fraction": 0.25},
    {"name": "xent_oracle", "loss": "xent", "select": "oracle", "val_fraction": 0.25},
]


def _spec(ladder: dict[str, Path], toy_dataset: Path, **overrides) -> dict:
    return {
        "name": "methods",
        "datasets": [{"name": "toy", "path": str(toy_dataset)}],
        "models": [{"name": n, "path": str(p), "pretrain_tokens": 1e6} for n, p in ladder.items()],
        "seeds": [0],
        "mode": "probe",
        "methods": METHODS,
        "data": {"n_train": 180, "n_test": 60},
        "train": {"epochs": 30, "lr": 5e-2, "batch_size": 16, "max_length": 16},
        **overrides,
    }


def test_bootstrap_plans_a_chain_through_every_rung_between(tiny_ladder, toy_dataset):
    study = resolve(parse_spec(_spec(tiny_ladder, toy_dataset)))
    assert study.between("tiny-s", "tiny-l") == ["tiny-m"]
    stages = plan_jobs(study)
    (rung,) = stages["bootstrap"]  # only tiny-s -> tiny-l has a rung between
    assert (rung.model, rung.weak_model, rung.chain) == ("tiny-m", "tiny-s", ("tiny-s", "tiny-m"))
    (label_s,) = [j for j in stages["label"] if j.model == "tiny-s"]
    assert rung.deps[0] == label_s.job_id
    boot = [j for j in stages["student"] if j.method == "boot"]
    assert [(j.weak_model, j.model, j.chain) for j in boot] == [
        ("tiny-s", "tiny-l", ("tiny-s", "tiny-m", "tiny-l"))
    ]
    assert boot[0].deps[0] == rung.job_id
    assert "tiny-s→tiny-m→tiny-l" in boot[0].title
    # the plain methods keep every pair, and their ids do not depend on the new options
    plain = parse_spec(_spec(tiny_ladder, toy_dataset, methods=["xent"]))
    plain_ids = {j.job_id for j in plan_jobs(resolve(plain))["student"]}
    assert plain_ids == {j.job_id for j in stages["student"] if j.method == "xent"}
    assert len(plain_ids) == 3


def test_a_rungs_identity_holds_its_number_of_folds(tiny_ladder, toy_dataset, monkeypatch):
    study = resolve(parse_spec(_spec(tiny_ladder, toy_dataset)))
    (rung,) = plan_jobs(study)["bootstrap"]
    assert rung.key["folds"] == weak_labels.BOOTSTRAP_FOLDS >= 4
    monkeypatch.setattr(weak_labels, "BOOTSTRAP_FOLDS", 3)
    stages = plan_jobs(study)
    (other,) = stages["bootstrap"]
    assert other.key["folds"] == 3 and other.job_id != rung.job_id
    (boot,) = [j for j in stages["student"] if j.method == "boot"]
    assert boot.deps[0] == other.job_id  # the student on its labels moves with it


def test_a_rung_shared_by_two_pairs_is_planned_once(tiny_ladder, toy_dataset):
    spec = _spec(tiny_ladder, toy_dataset, methods=[METHODS[1]])
    # the largest folder again, declared with more pretraining: a fourth, larger rung
    xl = {"name": "tiny-xl", "path": str(tiny_ladder["tiny-l"]), "pretrain_tokens": 1e9}
    spec["models"].append(xl)
    stages = plan_jobs(resolve(parse_spec(spec)))
    chains = sorted(j.chain for j in stages["bootstrap"])
    # s->m is shared by s->l and s->xl; s->m->l by s->xl only; m->l by m->xl
    assert chains == [
        ("tiny-m", "tiny-l"),
        ("tiny-s", "tiny-m"),
        ("tiny-s", "tiny-m", "tiny-l"),
    ]
    assert len({j.job_id for j in stages["bootstrap"]}) == len(stages["bootstrap"])


def test_unknown_selection_is_named_with_its_choices(tiny_ladder, toy_dataset):
    spec = _spec(tiny_ladder, toy_dataset, methods=[{"name": "x", "select": "best"}])
    with pytest.raises(UserError, match=r"methods\[0\]\.select.*weak_val"):
        parse_spec(spec)


def test_held_out_split_is_disjoint_seeded_and_order_free():
    ids = [f"ex{i}" for i in range(50)]
    fit_pos, val_pos = held_out(ids, ids, 0.2, seed=3)
    assert len(val_pos) == 10 and set(fit_pos).isdisjoint(val_pos)
    assert sorted(fit_pos + val_pos) == list(range(50))
    reversed_ids = ids[::-1]
    _, val_rev = held_out(reversed_ids, reversed_ids, 0.2, seed=3)
    assert {reversed_ids[i] for i in val_rev} == {ids[i] for i in val_pos}
    assert held_out(ids, ids, 0.2, seed=4)[1] != val_pos


def test_held_out_keeps_each_group_on_one_side():
    ids = [f"ex{i}" for i in range(60)]
    groups = [f"passage{i // 4}" for i in range(60)]  # four questions per passage
    for seed in range(5):
        fit_pos, val_pos = held_out(ids, groups, 0.2, seed)
        assert {groups[i] for i in fit_pos}.isdisjoint({groups[i] for i in val_pos})
        assert len(val_pos) == 12 and sorted(fit_pos + val_pos) == list(range(60))
    # one group cannot be held out whole and leave anything to train on: split by example
    assert held_out(ids, ["same"] * 60, 0.2, 0) == held_out(ids, ids, 0.2, 0)


def test_best_epoch_keeps_the_best_and_a_redone_epoch_replaces_itself(tmp_path):
    store = StudyStore(tmp_path)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 0, 1])
    best = BestEpoch(store, "student-x", "", FeatureInputs(features), labels)

    def probe(right: bool) -> ProbeClassifier:
        model = ProbeClassifier(2)
        sign = 1.0 if right else -1.0
        model.head.weight.data = sign * torch.eye(2)
        return model

    best(probe(False), 1)  # accuracy 0
    best(probe(True), 2)  # accuracy 1
    best(probe(False), 3)  # worse: not kept
    epoch, score, weights = best.chosen()
    assert (epoch, score) == (2, 1.0)
    torch.testing.assert_close(weights["head.weight"], torch.eye(2))
    best(probe(False), 2)  # a resumed run redid epoch 2 and (here) got another model
    assert best.chosen()[:2] == (2, 0.0)
    best.reset()
    with pytest.raises(RuntimeError, match="no epoch was scored"):
        best.chosen()


@pytest.fixture(scope="module")
def ran_study(tiny_ladder, toy_dataset, tmp_path_factory, w2s_cache):
    """Every job of the study, stage by stage, in this process."""
    study = resolve(parse_spec(_spec(tiny_ladder, toy_dataset)))
    store = StudyStore(tmp_path_factory.mktemp("methods-study"))
    stages = plan_jobs(study)
    results = {}
    for jobs in stages.values():  # stage order; a rung's deps are earlier rungs' stages
        for job in jobs:
            results[job.job_id] = run_job(job, study, store)
    return study, store, stages, results


def test_bootstrap_rung_labels_out_of_fold_and_the_student_learns_them(ran_study):
    study, _, stages, results = ran_study
    (rung,) = stages["bootstrap"]
    rung_result = results[rung.job_id]
    assert rung_result["stage"] == "bootstrap" and rung_result["chain"] == "tiny-s>tiny-m"
    # each fold model learned from all folds but its own: about 3/4 of the student half
    pool = len(splits_for(study, "toy", 0).student_train)
    assert rung_result["n_folds"] == weak_labels.BOOTSTRAP_FOLDS and rung_result["n_pool"] == pool
    assert 0.7 * pool <= rung_result["n_train"] < pool
    assert 0.5 < rung_result["test_accuracy"] <= 1.0
    labels = artifacts.load_labels(rung.job_id)
    splits = splits_for(study, "toy", 0)
    assert labels is not None
    assert set(labels) == {ex.id for ex in splits.student_train + splits.test}
    previous = artifacts.load_labels(rung.deps[0])
    assert previous is not None
    # relabeled, not copied: the rung's labels are its own predictions
    assert any(abs(labels[i] - previous[i]) > 1e-3 for i in labels)
    (boot,) = [j for j in stages["student"] if j.method == "boot"]
    row = results[boot.job_id]
    assert row["chain"] == "tiny-s>tiny-m>tiny-l" and row["weak_model"] == "tiny-s"
    assert row["agreement_with_weak"] > 0.6  # against the rung's labels it trained on
    frame = results_frame(results.values())
    assert set(frame["stage"]) == {"ground_truth", "label", "bootstrap", "student"}


def test_selection_is_recorded_and_the_chosen_epoch_is_what_was_saved(ran_study):
    _, store, stages, results = ran_study
    by_method = {}
    for job in stages["student"]:
        if job.weak_model == "tiny-s" and job.model == "tiny-l":
            by_method[job.method] = (job, results[job.job_id])
    assert by_method["xent"][1]["selection"] == "last"
    assert "selected_epoch" not in by_method["xent"][1]
    for method in ("xent_weakval", "xent_oracle"):
        job, row = by_method[method]
        assert row["selection"] == method.split("_")[1].replace("weakval", "weak_val")
        assert 1 <= row["selected_epoch"] <= 30
        assert 0 <= row["selection_accuracy"] <= 1
        assert store.exists(store.job_file(job.job_id, "best.json"))
        assert not store.exists(store.job_file(job.job_id, "best.safetensors"))
    frame = results_frame(results.values())
    assert set(frame["selection"].drop_nulls()) == {"last", "weak_val", "oracle"}


def test_a_finished_training_is_not_redone_when_only_its_result_was_lost(ran_study):
    study, store, stages, results = ran_study
    job = next(j for j in stages["student"] if j.method == "xent_weakval")
    weights = store.job_file(job.job_id, "model.safetensors")
    before = store.mtime(weights)
    store.delete(store.job_file(job.job_id, "result.json"))
    again = run_job(job, study, store)
    assert store.mtime(weights) == before  # read back, not trained again
    assert again["test_accuracy"] == results[job.job_id]["test_accuracy"]
    assert again["selected_epoch"] == results[job.job_id]["selected_epoch"]
