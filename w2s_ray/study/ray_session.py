"""Starting or attaching to Ray: loopback only, sized object store, quiet workers."""

from __future__ import annotations

import logging
import os

import ray

OBJECT_STORE_BYTES = 256 * 1024**2  # the default (30% of RAM in /dev/shm) starves small machines


def _keep_on_loopback() -> None:
    """Make a local Ray listen on 127.0.0.1 only.

    Ray swaps a loopback `_node_ip_address` for the machine's external address unless
    told this is a single-machine cluster. That flag is read when `ray` is imported, so it
    is set both for the processes Ray starts and for this already-imported one.
    """
    from ray._private import ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def start_ray(
    address: str | None = None, num_cpus: int | None = None, dashboard: bool = False
) -> None:
    """Attach to `address`, or start a local Ray bound to 127.0.0.1."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    # Tune's own console tables would fight the live progress display; files keep the detail.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        return
    _keep_on_loopback()
    ray.init(
        num_cpus=num_cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
