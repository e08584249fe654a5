"""The vLLM adapter's requests and parsing, as pure functions: no engine needed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from w2s_ray.infer.vllm import (
    continuation_kwargs,
    greedy_kwargs,
    read_continuation,
    read_next_token,
    sampling_kwargs,
)
from w2s_ray.infer.vllm_engine import EngineSpec, engine_kwargs


@dataclass
class Logprob:  # the shape of vllm.sequence.Logprob
    logprob: float
    rank: int | None = None


def test_single_token_answers_ask_for_exactly_those_ids():
    kwargs = sampling_kwargs([[17], [5]])
    assert kwargs == {
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": 2,
        "logprob_token_ids": [5, 17],
    }


def test_longer_answers_ask_for_prompt_logprobs_and_the_last_token():
    kwargs = continuation_kwargs([17, 3])
    assert kwargs["prompt_logprobs"] == 0 and kwargs["logprob_token_ids"] == [3]
    assert kwargs["max_tokens"] == 1  # the answer's last token is read, never sent
    assert "prompt_logprobs" not in continuation_kwargs([5])  # one token: nothing to read back


def test_next_token_logprobs_come_back_in_answer_order():
    position = {5: Logprob(-0.5), 17: Logprob(-2.0), 99: Logprob(-0.1)}
    assert read_next_token(position, [[17], [5]]) == [-2.0, -0.5]
    assert read_next_token({5: -1.5, 17: -0.25}, [[5], [17]]) == [-1.5, -0.25]
    with pytest.raises(RuntimeError, match="token ids \\[17\\]"):
        read_next_token({5: Logprob(-0.5)}, [[17], [5]])


def test_a_continuation_sums_only_the_answer_positions():
    # request: 2 prompt ids + answer[:-1] = [8, 2]; the answer's last token 6 is generated
    prompt_logprobs = [None, {4: Logprob(-9.0)}, {8: Logprob(-1.0)}, {2: Logprob(-0.5)}]
    last = {6: Logprob(-0.25), 1: Logprob(-0.1)}
    assert read_continuation(prompt_logprobs, last, prompt_len=2, answer=[8, 2, 6]) == -1.75
    assert read_continuation(None, last, prompt_len=4, answer=[6]) == -0.25
    with pytest.raises(RuntimeError, match="prompt positions"):
        read_continuation(prompt_logprobs, last, prompt_len=3, answer=[8, 2, 6])
    with pytest.raises(RuntimeError, match="token 3"):
        read_continuation(prompt_logprobs, last, prompt_len=2, answer=[8, 3, 6])
    with pytest.raises(RuntimeError, match=r"token ids \[7\]"):
        read_continuation(prompt_logprobs, last, prompt_len=2, answer=[8, 2, 7])


def test_engine_arguments_follow_the_devices():
    cpu = engine_kwargs(EngineSpec("m"), gpus=0, trust_remote_code=False)
    assert cpu["dtype"] == "float32" and "tensor_parallel_size" not in cpu
    assert cpu["enforce_eager"] is True
    assert "max_model_len" not in cpu and cpu["trust_remote_code"] is False
    assert "runner" not in cpu and "tokenizer" not in cpu  # a generating engine, its own tokens
    big = engine_kwargs(EngineSpec("m", max_model_len=2048), gpus=4, trust_remote_code=True)
    assert big["dtype"] == "bfloat16" and big["tensor_parallel_size"] == 4
    assert big["enforce_eager"] is False  # CUDA graphs pay for themselves on a GPU
    assert big["distributed_executor_backend"] == "mp" and big["max_model_len"] == 2048


def test_pooling_engines_pool_as_the_study_asks_and_never_normalise():
    spec = EngineSpec("exported", runner="pooling", pooling="last", tokenizer="hub/base")
    kwargs = engine_kwargs(spec, gpus=0, trust_remote_code=False)
    assert kwargs["runner"] == "pooling" and kwargs["convert"] == "embed"
    assert kwargs["pooler_config"] == {"pooling_type": "LAST", "use_activation": False}
    assert kwargs["tokenizer"] == "hub/base"  # an exported classifier reads its base's tokens
    mean = engine_kwargs(EngineSpec("m", runner="pooling", pooling="mean"), gpus=1,
                         trust_remote_code=False)  # fmt: skip
    assert mean["pooler_config"]["pooling_type"] == "MEAN"


def test_greedy_answers_take_the_argmax_and_leave_decoding_to_the_tokenizer():
    kwargs = greedy_kwargs(8)
    assert kwargs == {"max_tokens": 8, "temperature": 0.0, "detokenize": False}


def test_exports_left_by_killed_label_jobs_are_removed_a_day_later(tmp_path):
    import os
    import time

    from w2s_ray.infer.vllm import STALE_SECONDS, remove_stale

    old, fresh, other = tmp_path / "classifier-old", tmp_path / "classifier-new", tmp_path / "x"
    for folder in (old, fresh, other):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"0")
    day_ago = time.time() - STALE_SECONDS - 60
    for folder in (old, other):
        os.utime(folder, (day_ago, day_ago))
    remove_stale(tmp_path)
    assert not old.exists() and fresh.exists() and other.exists()
