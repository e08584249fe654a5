"""The cost model (seconds, GPU memory), GPU packing and the plan's makespan simulation:
no Ray cluster, no weights; studies are built from registered cards."""

from __future__ import annotations

import random

import pytest

from w2s_ray.models import MODELS
from w2s_ray.spec import parse_spec
from w2s_ray.study.cost import (
    HEAD_SECONDS,
    gpu_memory_bytes,
    job_seconds,
    train_step_seconds,
    training_bytes,
)
from w2s_ray.study.makespan import simulate
from w2s_ray.study.plan import Job, Study
from w2s_ray.study.resources import GIB, gpu_share, job_resources
from w2s_ray.study.scheduler import Node

# docs/benchmarks.md, H100 fine-tuning table: batch 32 and 128 s/step, peak GiB at 128 × 128
H100_ROWS = {
    "minilm-l6": (0.025, 0.034, 2.1),
    "mpnet-base": (0.055, 0.068, 10.1),
    "smollm2-135m": (0.156, 0.154, 17.1),
    "Qwen2.5-0.5B": (0.152, 0.209, 33.0),
    "pythia-1.4b": (0.138, 0.361, 53.7),
}
CPU_TOKENS_PER_S = {"minilm-l6": 1175, "smollm2-135m": 183}  # batch 8 × 128 tokens
GPU_CLUSTER = {"CPU": 64.0, "GPU": 8.0, "memory": 512 * GIB}
CPU_CLUSTER = {"CPU": 64.0, "memory": 512 * GIB}


def _study(models: list[str], **spec: object) -> Study:
    """A fine-tuning study of registered cards, resolved without the hub."""
    data = {
        "name": "cost",
        "datasets": ["sciq"],
        "models": models,
        "mode": "finetune",
        "train": {"batch_size": 32, "max_length": 512},
        **spec,
    }
    parsed = parse_spec(data)
    cards = {name: MODELS.get(name) for name in models}
    return Study(parsed, cards, [(models[0], models[-1])])


def _job(stage: str, model: str, **fields: object) -> Job:
    return Job(f"{stage}-{model}", stage, "sciq", model, seed=0, **fields)  # type: ignore[arg-type]


def test_calibration_reproduces_the_measured_h100_and_cpu_rows():
    for name, (step32, step128, peak) in H100_ROWS.items():
        card = MODELS.get(name)
        assert train_step_seconds(card, "gpu", 32, 128) == pytest.approx(step32, rel=0.25), name
        assert train_step_seconds(card, "gpu", 128, 128) == pytest.approx(step128, rel=0.25), name
        assert training_bytes(card, 128, 128) / GIB == pytest.approx(peak, rel=0.25), name
    for name, rate in CPU_TOKENS_PER_S.items():
        step = train_step_seconds(MODELS.get(name), "cpu", 8, 128)
        assert 8 * 128 / step == pytest.approx(rate, rel=0.1), name


def test_small_models_are_launch_bound_on_a_gpu_and_compute_bound_on_cpu():
    # what docs/benchmarks.md found: 4x the batch costs a small model little extra step time
    # on an H100, so its epoch gets much shorter; on CPU the epoch costs the same
    study = _study(["pythia-70m", "pythia-410m"])
    small = _study(["pythia-70m", "pythia-410m"], train={"batch_size": 8, "max_length": 128})
    large = _study(["pythia-70m", "pythia-410m"], train={"batch_size": 128, "max_length": 128})
    job = _job("ground_truth", "pythia-70m")
    assert job_seconds(job, large, gpus=True) < 0.5 * job_seconds(job, small, gpus=True)
    cpu_ratio = job_seconds(job, large, gpus=False) / job_seconds(job, small, gpus=False)
    assert cpu_ratio == pytest.approx(1.0, abs=0.05)
    # on a GPU the 410M model (24 layers) costs more than the 70M one (6 layers)
    assert job_seconds(_job("ground_truth", "pythia-410m"), study, True) > job_seconds(
        job, study, True
    )


def test_seconds_grow_with_data_and_shrink_with_workers():
    study = _study(["pythia-70m", "pythia-410m"], data={"n_train": 2000, "n_test": 500})
    bigger = _study(["pythia-70m", "pythia-410m"], data={"n_train": 8000, "n_test": 500})
    student = _job("student", "pythia-410m", weak_model="pythia-70m", method="xent")
    alone = job_seconds(student, study, gpus=True)
    assert job_seconds(student, bigger, gpus=True) > 2 * alone
    assert job_seconds(student, study, gpus=True, workers=2) < alone
    probe = _study(["minilm-l3", "minilm-l6"], mode="probe")
    assert job_seconds(_job("ground_truth", "minilm-l6"), probe, gpus=False) == HEAD_SECONDS


def test_a_small_model_shares_a_gpu_and_a_big_one_takes_it_whole():
    study = _study(["pythia-70m", "pythia-1.4b"])  # batch 32 × 512 tokens, 80 GiB GPUs
    small = _job("ground_truth", "pythia-70m")
    big = _job("ground_truth", "pythia-1.4b")
    assert gpu_share(small, study) < 1
    assert gpu_share(big, study) == 1.0
    request = job_resources(small, study, GPU_CLUSTER)
    assert request["GPU"] == gpu_share(small, study)
    assert request["CPU"] < MODELS.get("pythia-70m").resources.cpus  # its share of the CPUs
    # what it asks for holds its estimate, with room to spare
    assert request["GPU"] * 80 * GIB > gpu_memory_bytes(small, study)


def test_the_share_respects_jobs_per_gpu_and_the_device_memory():
    small = _job("ground_truth", "pythia-70m")
    models = ["pythia-70m", "pythia-1.4b"]
    shares = {
        cap: gpu_share(small, _study(models, resources={"jobs_per_gpu": cap})) for cap in (1, 2, 8)
    }
    assert shares[1] == 1.0 and shares[2] == 0.5
    assert 1 / 8 <= shares[8] < 0.5  # the estimate, not the cap, sizes it
    tight = _study(models, resources={"gpu_memory_gb": 24, "jobs_per_gpu": 8})
    assert gpu_share(small, tight) > shares[8]  # the same job is a bigger part of a 24 GiB GPU


def test_a_cpu_cluster_and_jobs_per_gpu_1_ask_for_what_they_did_before_packing():
    study = _study(["pythia-70m", "pythia-1.4b"])
    whole = _study(["pythia-70m", "pythia-1.4b"], resources={"jobs_per_gpu": 1})
    card = MODELS.get("pythia-70m")
    job = _job("ground_truth", "pythia-70m")
    before = {"CPU": float(card.resources.cpus), "memory": card.resources.memory_gb * GIB}
    assert job_resources(job, study, CPU_CLUSTER) == before
    assert job_resources(job, whole, GPU_CLUSTER) == {**before, "GPU": 1.0}


def test_the_resources_keys_are_checked_like_every_other():
    from w2s_ray.errors import UserError

    with pytest.raises(UserError, match="did you mean 'gpu_memory_gb'"):
        _study(["pythia-70m", "pythia-1.4b"], resources={"gpu_memroy_gb": 40})
    with pytest.raises(UserError, match=r"resources\.jobs_per_gpu"):
        _study(["pythia-70m", "pythia-1.4b"], resources={"jobs_per_gpu": 0})


def test_vllm_inference_and_language_model_fine_tunes_keep_whole_gpus():
    decoders = ["pythia-70m", "pythia-160m"]
    baseline = _job("baseline", "pythia-160m", method="zeroshot", key={"k": 0})
    labels = _job("label", "pythia-70m")  # a fine-tuned weak model labelling
    generative = Job("generative-x", "generative", "sciq", "pythia-160m")
    auto = _study(decoders)
    hf = _study(decoders, inference={"backend": "transformers"})
    for inference in (baseline, labels):
        assert gpu_share(inference, auto) == 1.0  # vLLM would take 90% of the device
        assert gpu_share(inference, hf) < 1.0
    assert gpu_share(_job("ground_truth", "pythia-70m"), auto) < 1.0  # training: shared
    assert gpu_share(generative, hf) == 1.0
    # a model too big for one GPU is still fine-tuned over whole-GPU workers
    big = _study(["pythia-70m", "pythia-12b"])
    student = _job("student", "pythia-12b", weak_model="pythia-70m", method="xent")
    assert job_resources(student, big, GPU_CLUSTER) == {"CPU": 0.01}


def _nodes(count: int, seconds: float, gpu: float, deps: dict[int, list[int]] | None = None):
    deps = deps or {}
    return [
        Node(f"j{i}", tuple(f"j{d}" for d in deps.get(i, [])), {"GPU": gpu}, seconds)
        for i in range(count)
    ]


def test_independent_equal_jobs_fill_every_device():
    whole = simulate(_nodes(8, 10.0, 1.0), devices=4)
    assert whole.makespan == pytest.approx(20.0) == pytest.approx(whole.lower_bound)
    quarters = simulate(_nodes(16, 10.0, 0.25), devices=2)
    assert quarters.makespan == pytest.approx(20.0)
    assert quarters.device_seconds == pytest.approx(16 * 10.0 * 0.25)


def test_shares_pack_per_device_not_over_the_sum():
    # three jobs of 5/8 GPU on two GPUs: no device holds two, so the third waits
    sim = simulate(_nodes(3, 10.0, 0.625), devices=2)
    assert sim.makespan == pytest.approx(20.0)
    assert sim.lower_bound == pytest.approx(10.0)


def test_the_longest_chain_starts_first():
    nodes = [
        Node("a", (), {"GPU": 1.0}, 1.0),
        Node("b", ("a",), {"GPU": 1.0}, 10.0),
        Node("c", (), {"GPU": 1.0}, 5.0),
        Node("d", (), {"GPU": 1.0}, 5.0),
    ]
    sim = simulate(nodes, devices=2)
    assert sim.critical_path == pytest.approx(11.0)
    assert sim.makespan == pytest.approx(11.0)  # c and d first would end at 16


def test_a_random_graph_never_beats_its_lower_bound():
    rng = random.Random(0)
    nodes = []
    for i in range(300):
        deps = tuple(f"j{d}" for d in rng.sample(range(i), min(i, rng.randint(0, 2))))
        share = rng.choice([0.25, 0.375, 0.5, 1.0, 2.0])
        nodes.append(Node(f"j{i}", deps, {"GPU": share, "CPU": 1.0}, rng.uniform(1, 100)))
    for devices in (1, 3, 8):
        sim = simulate(nodes, devices)
        assert sim.makespan >= sim.lower_bound - 1e-6
        assert sim.makespan <= sum(n.seconds for n in nodes)  # some job always runs
    cpus = simulate(nodes, 4, unit="CPU")
    assert cpus.device_seconds == pytest.approx(sum(n.seconds for n in nodes))


def test_the_run_records_each_jobs_estimate_for_status():
    from w2s_ray.study.plan import plan_jobs
    from w2s_ray.study.runner import plan_record
    from w2s_ray.study.scheduling import schedule

    study = _study(["pythia-70m", "pythia-410m"])
    stages = plan_jobs(study)
    jobs = [job for staged in stages.values() for job in staged]
    record = plan_record(study, stages, schedule(study, jobs, GPU_CLUSTER))
    jobs = [job for stage in record["stages"].values() for job in stage]  # type: ignore[union-attr]
    assert jobs and all(job["seconds"] > 0 for job in jobs)
    shares = {job["resources"].get("GPU") for job in jobs}
    assert any(0 < share < 1 for share in shares if share)  # the shares are what run asks for


def test_the_pythia_reproduction_plans_3146_jobs_and_packing_shortens_it():
    from pathlib import Path

    from w2s_ray.spec import load_spec
    from w2s_ray.study.estimate import job_cost
    from w2s_ray.study.plan import plan_jobs, resolve

    spec = load_spec(Path(__file__).parents[3] / "studies" / "repro-pythia.yaml")
    study = resolve(spec)  # offline: revisions stay unresolved, with a warning
    jobs = [job for stage in plan_jobs(study).values() for job in stage]
    assert len(jobs) == 3146
    costs = {job.job_id: job_cost(job, study) for job in jobs}

    def nodes(whole: bool) -> list[Node]:
        out = []
        for job in jobs:
            resources = dict(costs[job.job_id].resources)
            if whole and resources.get("GPU"):
                resources["GPU"] = max(1.0, resources["GPU"])
            out.append(Node(job.job_id, job.deps, resources, costs[job.job_id].seconds))
        return out

    packed, whole = simulate(nodes(False), 32), simulate(nodes(True), 32)
    assert packed.lower_bound <= packed.makespan < whole.makespan
    assert packed.device_seconds < whole.device_seconds


PACKING_SCRIPT = """
import json, logging, os, sys, time
from pathlib import Path

import ray

from w2s_ray.study.ray_session import OBJECT_STORE_BYTES, _keep_on_loopback
from w2s_ray.study.scheduler import Node, Scheduler

out = Path(sys.argv[1])


def executor(payloads):  # runs in a Ray worker: records when each job held its share
    for key in payloads:
        started = time.time()
        time.sleep(4.0)  # longer than a GPU worker takes to start on a busy machine
        (out / key).write_text(json.dumps([started, time.time()]))
    return [None] * len(payloads)


_keep_on_loopback()
ray.init(address="local", num_cpus=4, num_gpus=1, object_store_memory=OBJECT_STORE_BYTES,
         include_dashboard=False, _node_ip_address="127.0.0.1",
         logging_level=logging.WARNING, log_to_driver=False)
try:
    nodes = [Node(f"j{i}", (), {"GPU": 0.25, "CPU": 0.5}, 1.0, payload=f"j{i}") for i in range(8)]
    failures = Scheduler(nodes, executor).run()
    assert not failures, failures
finally:
    ray.shutdown()
"""


@pytest.mark.slow
def test_ray_runs_four_quarter_gpu_jobs_at_once_on_one_gpu(tmp_path):
    """The scheduler hands fractional GPU requests to Ray, which packs them on the device
    (a GPU declared to Ray: the jobs only sleep)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[3]
    env = {**os.environ, "PYTHONPATH": str(root), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-c", PACKING_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    spans = [json.loads(p.read_text()) for p in tmp_path.iterdir()]
    assert len(spans) == 8
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running, peak = 0, 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 4  # more would not fit one GPU; fewer would waste it
