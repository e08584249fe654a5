from pathlib import Path

import pytest
import yaml

from w2s_ray.errors import UserError
from w2s_ray.spec import load_spec, parse_spec
from w2s_ray.study.plan import plan_jobs, resolve

GOOD = {
    "name": "t",
    "datasets": ["rotten_tomatoes"],
    "models": ["minilm-l3", "minilm-l6", "mpnet-base"],
    "seeds": [0, 1],
    "methods": ["xent", {"name": "logconf", "options": {"aux_max": 0.5}}],
}


def _bad(**changes: object) -> str:
    data = {**GOOD, **changes}
    with pytest.raises(UserError) as info:
        resolve(parse_spec(data, "study.yaml"))
    return str(info.value)


def test_good_spec_plans_every_stage():
    study = resolve(parse_spec(GOOD))
    stages = plan_jobs(study)
    assert len(stages["features"]) == 3
    assert len(stages["ground_truth"]) == 3 * 2
    assert len(stages["label"]) == 2 * 2  # l3 and l6 supervise someone
    assert len(stages["student"]) == 3 * 2 * 2  # 3 pairs x 2 methods x 2 seeds
    ids = [j.job_id for jobs in stages.values() for j in jobs]
    assert len(ids) == len(set(ids))


def _job_ids(data: dict) -> set[str]:
    return {j.job_id for jobs in plan_jobs(resolve(parse_spec(data))).values() for j in jobs}


def test_job_ids_are_stable_and_change_with_what_changes_results():
    base = _job_ids(GOOD)
    assert _job_ids(dict(GOOD)) == base
    shared = base & _job_ids({**GOOD, "train": {"lr": 0.01}})
    # the learning rate changes every trained job, but not the frozen features
    assert shared and all(job_id.startswith("features-") for job_id in shared)


def test_unknown_model_names_the_key_and_suggests():
    message = _bad(models=["minilm-l3", "minilm-l7"])
    assert "models[1]" in message and "did you mean 'minilm-l6'" in message


def test_unknown_dataset():
    assert "did you mean 'rotten_tomatoes'" in _bad(datasets=["roten_tomatoes"])


def test_typo_in_a_key_suggests_the_right_key():
    message = _bad(seed=[0])
    assert "unknown key 'seed'" in message and "did you mean 'seeds'" in message


def test_typo_in_a_nested_key():
    assert "did you mean 'epochs'" in _bad(train={"epoch": 3})


def test_wrong_type():
    assert "train.lr" in _bad(train={"lr": "fast"})


def test_empty_ladder_and_single_model():
    assert "models" in _bad(models=[])
    assert "models" in _bad(models=["minilm-l3"])


def test_strong_not_bigger_than_weak():
    message = _bad(pairs=[["mpnet-base", "minilm-l3"]])
    assert "pairs[0]" in message and "not bigger" in message and "swap" in message


def test_unknown_method_loss_and_option():
    assert "did you mean 'logconf'" in _bad(methods=["logconff"])
    assert "aux_max" in _bad(methods=[{"name": "logconf", "options": {"aux": 1}}])


def test_negative_learning_rate_and_zero_epochs():
    assert "train.lr" in _bad(train={"lr": -1})
    assert "train.epochs" in _bad(train={"epochs": 0})


def test_missing_name():
    data = {k: v for k, v in GOOD.items() if k != "name"}
    with pytest.raises(UserError, match="missing required key 'name'"):
        parse_spec(data)


def test_unreadable_and_malformed_files(tmp_path: Path):
    with pytest.raises(UserError, match="cannot read"):
        load_spec(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_spec(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(UserError, match="mapping"):
        load_spec(scalar)


def test_quickstart_study_file_is_valid():
    spec = load_spec(Path(__file__).parents[2] / "studies" / "quickstart.yaml")
    study = resolve(spec)
    assert len(study.pairs) == 3 and len(spec.seeds) == 3
    assert yaml.safe_load(spec.to_yaml())["name"] == "quickstart"


def test_a_ladder_without_a_stronger_model_is_refused(tmp_path):
    import json

    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        config = {
            "model_type": "bert",
            "hidden_size": 8,
            "num_attention_heads": 2,
            "num_hidden_layers": 1,
            "intermediate_size": 16,
            "vocab_size": 10,
            "max_position_embeddings": 16,
        }
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "model.safetensors").write_bytes(b"")
        folders.append({"name": name, "path": str(folder), "pretrain_tokens": 1e6})
    message = _bad(models=folders)
    assert "key 'models'" in message and "same effective compute" in message


def test_an_empty_pairs_list_is_refused():
    assert "pairs" in _bad(pairs=[])


def test_a_local_model_with_a_broken_config_is_a_user_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"")
    message = _bad(
        models=["minilm-l3", {"name": "broken", "path": str(folder), "pretrain_tokens": 1}]
    )
    assert "models[1]" in message and "config.json" in message and "save_pretrained" in message


def test_a_local_model_without_safetensors_weights_is_refused(tmp_path, tiny_models):
    import shutil

    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_models["tiny-s"], folder)
    (folder / "model.safetensors").unlink()
    message = _bad(models=["minilm-l3", {"name": "nw", "path": str(folder), "pretrain_tokens": 1}])
    assert "models[1]" in message and "safetensors" in message


def test_relative_local_paths_mean_the_directory_the_study_starts_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = parse_spec({**GOOD, "datasets": [{"name": "mine", "path": "data/mine.jsonl"}]})
    assert spec.datasets[0].path == str(tmp_path / "data" / "mine.jsonl")


def test_workers_and_strategy_do_not_change_job_ids_and_unknown_strategies_are_refused():
    ddp = _job_ids({**GOOD, "train": {"workers": 2}})
    assert ddp == _job_ids(GOOD) == _job_ids({**GOOD, "train": {"workers": 2, "strategy": "fsdp"}})
    assert "train.strategy" in _bad(train={"strategy": "zero3"})


DUPLICATES = {
    "top level": ("name: a\nmethods: [xent]\nname: b\n", "'name'", "lines 1 and 3"),
    "nested mapping": ("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n", "'lr'", "lines 2 and 4"),
    "mapping in a list": (
        "methods:\n  - name: xent\n    options: {aux_max: 0.5, aux_max: 0.7}\n",
        "'aux_max'",
        "lines 3 and 3",
    ),
}


@pytest.mark.parametrize("case", DUPLICATES, ids=list(DUPLICATES))
def test_a_key_given_twice_is_refused_at_every_depth(case: str, tmp_path: Path):
    text, key, lines = DUPLICATES[case]
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_spec(path)
    message = str(info.value)
    assert f"key {key} is given twice" in message and lines in message
    assert str(path) in message and "\n" not in message


def test_equal_keys_in_different_mappings_and_yaml_merge_keys_are_fine(tmp_path: Path):
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: t\ndatasets: [rotten_tomatoes]\nmodels: [minilm-l3, minilm-l6]\n"
        "methods:\n  - &plain {name: xent, select: last}\n"
        "  - {<<: *plain, name: picky, select: weak_val}\n"
    )
    spec = load_spec(path)
    assert [(m.name, m.select) for m in spec.methods] == [("xent", "last"), ("picky", "weak_val")]


def test_hub_entries_take_a_revision_and_plain_names_still_work():
    spec = parse_spec(
        {
            **GOOD,
            "models": ["pythia-70m", {"name": "pythia-160m", "revision": "step1000"}],
            "datasets": ["sst2", {"name": "boolq", "revision": "v1.0"}],
        }
    )
    assert spec.model_names() == ["pythia-70m", "pythia-160m"]
    assert spec.dataset_names() == ["sst2", "boolq"]
    assert spec.models[1].revision == "step1000" and spec.datasets[1].revision == "v1.0"
    with pytest.raises(UserError, match=r"models\[1\].revision.*at least 1 character"):
        parse_spec({**GOOD, "models": ["pythia-70m", {"name": "pythia-160m", "revision": ""}]})
    with pytest.raises(UserError, match="listed twice: boolq"):
        parse_spec({**GOOD, "datasets": ["boolq", {"name": "boolq", "revision": "v1"}]})


def test_the_reference_training_recipe_is_the_default_and_each_switch_changes_job_ids():
    study = resolve(parse_spec(GOOD))
    cfg = study.train_config("mpnet-base", 0, study.method("logconf"))
    assert (cfg.dropout, cfg.warmup_frac, cfg.grad_clip) == (False, 0.0, None)
    base = _job_ids(GOOD)
    for switch in ({"dropout": True}, {"warmup_frac": 0.05}, {"grad_clip": 1.0}):
        spec = {**GOOD, "train": switch}
        ((name, value),) = switch.items()
        cfg = resolve(parse_spec(spec)).train_config("mpnet-base", 0, None)
        assert getattr(cfg, name) == value
        shared = base & _job_ids(spec)
        assert shared and all(job_id.startswith("features-") for job_id in shared), switch
    assert "train.warmup_frac" in _bad(train={"warmup_frac": 1.5})
    assert "train.grad_clip" in _bad(train={"grad_clip": 0})


LARGEST_GETS_MORE = {
    "name": "logconf",
    "options": {"aux_max": 0.5},
    "options_by_model": {"mpnet-base": {"aux_max": 0.75}},
}


def test_options_by_model_apply_to_that_student_only_and_enter_its_identity():
    study = resolve(parse_spec({**GOOD, "methods": ["xent", LARGEST_GETS_MORE]}))
    method = study.method("logconf")
    assert study.train_config("mpnet-base", 0, method).loss_options == {"aux_max": 0.75}
    assert study.train_config("minilm-l6", 0, method).loss_options == {"aux_max": 0.5}
    students = plan_jobs(study)["student"]
    mpnet = [j for j in students if j.method == "logconf" and j.model == "mpnet-base"]
    assert mpnet and all(j.key["train"]["loss_options"] == {"aux_max": 0.75} for j in mpnet)
    # only the students of that model move; every other job keeps its id
    changed = _job_ids(GOOD) ^ _job_ids({**GOOD, "methods": ["xent", LARGEST_GETS_MORE]})
    assert changed and {j.job_id for j in mpnet} <= changed
    assert len(changed) == 2 * len(mpnet)


def test_options_by_model_are_checked_before_compute():
    def bad(by_model: dict) -> str:
        return _bad(methods=[{**LARGEST_GETS_MORE, "options_by_model": by_model}])

    message = bad({"mpnet-bas": {"aux_max": 0.75}})
    assert "methods[0].options_by_model" in message and "did you mean 'mpnet-base'" in message
    message = bad({"minilm-l3": {"aux_max": 0.75}})  # the smallest model is never a student
    assert "never trains 'minilm-l3'" in message and "minilm-l6, mpnet-base" in message
    message = bad({"mpnet-base": {"aux_maxx": 0.75}})
    assert "options_by_model.mpnet-base" in message and "aux_max" in message
