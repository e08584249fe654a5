"""A local Ray started by w2s-ray must not be reachable from other machines."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_local_ray_listens_on_loopback_only(ray_session):
    import ray

    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]

    @ray.remote(num_cpus=0)
    def worker_address() -> str:
        return ray.util.get_node_ip_address()

    assert ray.get(worker_address.remote()) == "127.0.0.1"
