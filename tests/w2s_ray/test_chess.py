"""Generative tasks (chess puzzles): the converter on rows in the Lichess hub schema, the
checks a study gets before compute, and a whole study on tiny decoders, in-process."""

from __future__ import annotations

import math

import pytest
from answer_task import ANSWERS, answer_file, answer_spec

from analysis.pgr import compute_pgr
from w2s_ray.datasets import DATASETS, is_answer_file, load_local_file
from w2s_ray.errors import UserError
from w2s_ray.hub_tasks.chess import convert_chess
from w2s_ray.spec import parse_spec
from w2s_ray.study import artifacts
from w2s_ray.study.answers import exact_match
from w2s_ray.study.execute import run_job
from w2s_ray.study.plan import plan_jobs, resolve
from w2s_ray.study.store import StudyStore, results_frame

# Rows as the hub serves Lichess/chess-puzzles (a subset of its columns).
HUB_ROWS = [
    {
        "PuzzleId": "00008",
        "FEN": "r6k/pp2r2p/4Rp1Q/3p4/8/1N1P2R1/PqP2bPP/7K b - - 0 24",
        "Moves": "f2g3 e6e7 b2b1 b3c1 b1c1 h6c1",
        "Rating": 1913,
        "Themes": "crushing hangingPiece long middlegame",
        "GameUrl": "https://lichess.org/787zsVup/black#48",
    },
    {
        "PuzzleId": "0000D",
        "FEN": "5rk1/1p3ppp/pq3b2/8/8/1P1Q1N2/P4PPP/3R2K1 w - - 2 27",
        "Moves": "d3d6 f8d8 d6d8 f6d8",
        "Rating": 1500,
        "Themes": "advantage endgame short",
        "GameUrl": "https://lichess.org/F8M8OS71#53",
    },
    {  # a second puzzle from the first game: the same group
        "PuzzleId": "0009B",
        "FEN": "r2qr1k1/b1p2ppp/pp4n1/P1P1p3/4P1n1/B2P2Pb/3NBP1P/RN1QR1K1 b - - 1 16",
        "Moves": "b6c5 e2g4 h3g4 d1g4",
        "Rating": 1100,
        "Themes": "advantage middlegame short",
        "GameUrl": "https://lichess.org/787zsVup#32",
    },
    {"PuzzleId": "bad", "FEN": "8/8/8/8/8/8/8/8 w - - 0 1", "Moves": "e2e4", "GameUrl": "x"},
]


def test_converter_reads_the_hub_schema():
    examples = convert_chess(HUB_ROWS)
    assert len(examples) == 3  # a puzzle without a reply to find is dropped
    first = examples[0]
    assert first["answer"] == " e6e7"
    assert "Position (FEN): r6k/pp2r2p/4Rp1Q/3p4/8/1N1P2R1/PqP2bPP/7K b" in first["text"]
    assert "Opponent plays: f2g3" in first["text"] and first["text"].endswith("Best reply:")
    assert examples[0]["group"] == examples[2]["group"] != examples[1]["group"]
    assert exact_match(" e6e7\n", " e6e7") and exact_match(" e6e7 d1d2", " e6e7")
    assert not exact_match(" e6e8", " e6e7") and not exact_match("", " e6e7")
    card = DATASETS.get("chess_puzzles")
    assert card.generative and "Lichess/chess-puzzles" in card.source


def test_a_local_file_with_answers_is_a_generative_task(tmp_path):
    path = answer_file(tmp_path / "answers.jsonl")
    assert is_answer_file(path)
    task = load_local_file(path)
    assert task.generative and task.train[0].answer in ANSWERS


def test_generative_tasks_are_checked_before_compute(tiny_decoders, tiny_models, tmp_path):
    data = answer_file(tmp_path / "answers.jsonl")
    with pytest.raises(UserError, match=r"datasets\[0\].*generative task.*mode: finetune"):
        resolve(parse_spec(answer_spec(tiny_decoders, data, mode="probe")))
    spec = answer_spec(tiny_decoders, data)
    spec["models"][0] = {"name": "enc", "path": str(tiny_models["tiny-s"]), "pretrain_tokens": 1}
    with pytest.raises(UserError, match=r"only decoders write answers — drop enc"):
        resolve(parse_spec(spec))
    with pytest.raises(UserError, match=r"add the method `xent`"):
        resolve(parse_spec(answer_spec(tiny_decoders, data, methods=["logconf"])))


def test_a_generative_study_runs_and_scores_by_exact_match(tiny_decoders, tmp_path, w2s_cache):
    study = resolve(parse_spec(answer_spec(tiny_decoders, answer_file(tmp_path / "a.jsonl"))))
    assert study.answer_tasks == {"sentiment_words"}
    stages = plan_jobs(study)
    assert [j.method for j in stages["student"]] == ["xent"]  # logconf: binary tasks only
    assert stages["baseline"] == [] and stages["features"] == []
    store = StudyStore(tmp_path / "study")
    results = {}
    for jobs in stages.values():
        for job in jobs:
            results[job.job_id] = run_job(job, study, store)
    frame = results_frame(results.values())
    assert sorted(frame["stage"].to_list()) == ["ground_truth", "ground_truth", "label", "student"]
    assert frame["test_accuracy"].is_between(0, 1).all()
    assert all(math.isnan(v) for v in frame["test_auroc"].to_list())
    ceiling = frame.filter((frame["stage"] == "ground_truth") & (frame["model"] == "tiny-llama"))[
        "test_accuracy"
    ][0]
    assert ceiling > 0.7, ceiling  # the answer is readable off the words: it is learned
    (label_job,) = stages["label"]
    written = artifacts.load_answers(label_job.job_id)
    assert written is not None and set(written.values()) <= {*ANSWERS, " "}
    student = frame.filter(frame["stage"] == "student").row(0, named=True)
    assert 0 <= student["agreement_with_weak"] <= 1
    pgr = compute_pgr(frame)
    assert pgr.height == 1 and pgr["method"].to_list() == ["xent"]
