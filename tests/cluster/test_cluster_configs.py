"""cluster/: Ray's schema and checks, the KubeRay manifest's shape, the documented commands."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
LAUNCHER_CONFIGS = ["aws.yaml", "gcp.yaml"]
RAY_VERSION = "2.60.0"
SUBCOMMANDS = {"run", "resume", "status", "plan", "submit", "report", "list"}
GPU_NODE_TYPES = ["gpu_1x", "gpu_8x"]


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / name).read_text())


def _ray_schema() -> dict[str, Any]:
    """The JSON schema `ray up` validates cluster configs against, from the installed Ray."""
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def _schema_errors(config: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(_ray_schema())
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<top>'}: {error.message}"
        for error in validator.iter_errors(config)
    ]


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_matches_rays_schema(name: str) -> None:
    assert _schema_errors(_load(name)) == [], f"cluster/{name} fails Ray's ray-schema.json"


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_passes_rays_own_checks(name: str) -> None:
    """What `ray up` does before it calls the cloud: merge defaults, then validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(_load(name)))
    validate_config(prepared)
    assert prepared["head_node_type"] == "head"
    assert set(GPU_NODE_TYPES) <= set(prepared["available_node_types"])


def _typo_at_top(config: dict[str, Any]) -> None:
    config["setup_comands"] = config.pop("setup_commands")


def _typo_in_node_type(config: dict[str, Any]) -> None:
    config["available_node_types"]["gpu_1x"]["min_worker"] = 1


def _typo_in_docker(config: dict[str, Any]) -> None:
    config["docker"]["run_option"] = config["docker"].pop("run_options")


def _fractional_gpu(config: dict[str, Any]) -> None:
    config["available_node_types"]["gpu_1x"]["resources"]["GPU"] = 0.5


@pytest.mark.parametrize(
    "breakage", [_typo_at_top, _typo_in_node_type, _typo_in_docker, _fractional_gpu]
)
@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_schema_check_catches_a_broken_copy(name: str, breakage: Any) -> None:
    broken = copy.deepcopy(_load(name))
    breakage(broken)
    assert _schema_errors(broken), f"{breakage.__name__} on cluster/{name} went unnoticed"


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_security_and_storage(name: str) -> None:
    config = _load(name)
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start
    run_options = config["docker"]["run_options"]
    assert "--env RAY_AUTH_MODE=token" in run_options
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert "--volume /shared:/shared" in run_options
    assert "--env W2S_CACHE=/shared/w2s-cache" in run_options
    assert any("/shared" in cmd and "mount" in cmd for cmd in config["initialization_commands"])
    for image in (config["docker"]["image"], config["docker"]["head_image"]):
        assert image.startswith(f"rayproject/ray:{RAY_VERSION}-"), image


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_head_on_demand_workers_spot(name: str) -> None:
    node_types = _load(name)["available_node_types"]

    def interruptible(node_config: dict[str, Any]) -> bool:
        market = node_config.get("InstanceMarketOptions", {}).get("MarketType")  # AWS
        return market == "spot" or node_config.get("scheduling", {}).get("preemptible", False)

    assert not interruptible(node_types["head"]["node_config"])
    for node_type in GPU_NODE_TYPES:
        assert interruptible(node_types[node_type]["node_config"]), node_type


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_installs_torch_before_w2s_ray(name: str) -> None:
    config = _load(name)
    for key in ("head_setup_commands", "worker_setup_commands"):
        commands = config[key]
        torch_at = next(i for i, c in enumerate(commands) if "install -q torch==" in c)
        w2s_at = next(i for i, c in enumerate(commands) if '"w2s-ray @ git+https://' in c)
        assert torch_at < w2s_at, f"cluster/{name} {key}: torch must be installed first"


def _kuberay_docs() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all((CLUSTER / "kuberay-rayjob.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs}


def _containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return spec["containers"] + spec.get("initContainers", [])


def test_kuberay_rayjob_required_fields() -> None:
    job = _kuberay_docs()["RayJob"]
    assert job["apiVersion"] == "ray.io/v1" and job["metadata"]["name"]
    spec = job["spec"]
    assert spec["entrypoint"] == (
        "w2s-ray run /studies/my-study.yaml --address auto --study-dir /shared/studies/my-study"
    )
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == RAY_VERSION
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    groups = cluster["workerGroupSpecs"]
    assert groups
    for group in groups:
        assert group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["template"]["spec"]["containers"]
    gpu_groups = [g for g in groups if "gpu" in g["groupName"]]
    assert gpu_groups
    for group in gpu_groups:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1, group["groupName"]


def test_kuberay_images_match_ray_version() -> None:
    cluster = _kuberay_docs()["RayJob"]["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"]]
    templates += [group["template"] for group in cluster["workerGroupSpecs"]]
    images = [c["image"] for template in templates for c in _containers(template)]
    assert images
    for image in images:
        repo, _, tag = image.partition(":")
        assert repo == "rayproject/ray" and tag.startswith(f"{RAY_VERSION}-"), image


def test_kuberay_shared_volume_and_study_file() -> None:
    docs = _kuberay_docs()
    cluster = docs["RayJob"]["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]
    templates = [head] + [group["template"] for group in cluster["workerGroupSpecs"]]
    pvc = yaml.safe_load((CLUSTER / "kuberay-pvc.yaml").read_text())
    assert pvc["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in pvc["spec"]["accessModes"]
    for template in templates:
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        claim = volumes["shared"]["persistentVolumeClaim"]["claimName"]
        assert claim == pvc["metadata"]["name"]
        container = template["spec"]["containers"][0]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/shared"] == "shared"
    config_map = docs["ConfigMap"]
    head_volumes = {v["name"]: v for v in head["spec"]["volumes"]}
    assert head_volumes["study"]["configMap"]["name"] == config_map["metadata"]["name"]
    study_path = docs["RayJob"]["spec"]["entrypoint"].split()[2]
    assert study_path.removeprefix("/studies/") in config_map["data"]


def test_kuberay_study_is_a_valid_study() -> None:
    """The example study must parse and name real models and datasets (no torch import)."""
    from w2s_ray.datasets import DATASETS
    from w2s_ray.models import find_model
    from w2s_ray.spec import parse_spec

    text = _kuberay_docs()["ConfigMap"]["data"]["my-study.yaml"]
    spec = parse_spec(yaml.safe_load(text), "cluster/kuberay-rayjob.yaml ConfigMap")
    for model in spec.model_names():
        find_model(model)
    for dataset in spec.dataset_names():
        DATASETS.get(dataset)


COMMAND = re.compile(r"(?<![\w/.-])w2s-ray\s+([A-Za-z][\w-]*)")


def _markdown_code(text: str) -> list[str]:
    fenced = re.findall(r"```.*?```", text, flags=re.DOTALL)
    rest = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return fenced + re.findall(r"`[^`\n]+`", rest)


def _yaml_code(text: str) -> list[str]:
    """String values, plus the commands in comments: backticked, or a line of its own."""
    strings: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for doc in yaml.safe_load_all(text):
        walk(doc)
    for line in text.splitlines():
        _, hash_, comment = line.partition("#")
        if hash_:
            strings += re.findall(r"`[^`]+`", comment)
            if comment.strip().startswith("w2s-ray "):
                strings.append(comment)
    return strings


def _subcommands(name: str) -> list[str]:
    text = (CLUSTER / name).read_text()
    code = _markdown_code(text) if name.endswith(".md") else _yaml_code(text)
    return [match for snippet in code for match in COMMAND.findall(snippet)]


@pytest.mark.parametrize(
    "name", ["README.md", *LAUNCHER_CONFIGS, "kuberay-rayjob.yaml", "kuberay-pvc.yaml"]
)
def test_documented_commands_use_real_subcommands(name: str) -> None:
    found = _subcommands(name)
    unknown = sorted(set(found) - SUBCOMMANDS)
    assert not unknown, f"cluster/{name} shows `w2s-ray {unknown[0]}`; known: {sorted(SUBCOMMANDS)}"
    if name == "README.md":
        assert {"run", "submit", "status", "resume"} <= set(found)
    elif name != "kuberay-pvc.yaml":
        assert "run" in found, f"cluster/{name} should show how to launch a study"
