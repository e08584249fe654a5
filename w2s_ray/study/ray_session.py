"""Starting or attaching to Ray: loopback only, sized object store, quiet workers."""

from __future__ import annotations

import logging
import os
import socket
from urllib.parse import urlsplit

import ray

from w2s_ray.errors import UserError

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


def send_cluster_token() -> None:
    """Ray 2.60 clusters want a token by default, but an explicit address sends none unless
    RAY_AUTH_MODE=token; do what `address="auto"` does and use a token found on this
    machine (`~/.ray/auth_token`, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH)."""
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str, host: str | None, port: int | None) -> None:
    """Fail in seconds on an address nothing listens on: `ray.init` would retry for minutes."""
    if host is None or port is None:
        return  # "auto" and bare names are resolved by Ray itself
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise UserError(
        f"no Ray cluster answers at '{address}' ({reason}) — check the host and port "
        "(`ray status` on the head node prints the address, GCS port 6379 by default) and "
        "that this machine can reach it, or leave out --address to run on a local Ray"
    )


def _host_and_port(address: str) -> tuple[str | None, int | None]:
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        return parts.hostname, parts.port
    except ValueError:
        raise UserError(
            f"'{address}' is not a Ray address — write HOST:PORT (e.g. 10.0.0.5:6379), "
            "ray://HOST:10001, or auto"
        ) from None


def attach_ray(address: str) -> None:
    """Connect to a running cluster; an unreachable one is a user error with the fixes."""
    host, port = _host_and_port(address)
    _check_reachable(address, host, port)
    if host in {"127.0.0.1", "localhost"}:
        _keep_on_loopback()  # else Ray rewrites the address to this machine's external one
    send_cluster_token()
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError) as exc:
        raise UserError(
            f"cannot attach to a Ray cluster at '{address}' ({exc}) — check the address "
            "(`ray status` on the head node prints it), that this machine reaches it, and, "
            "as Ray 2.60 clusters require a token by default, that the cluster's token is in "
            "~/.ray/auth_token or RAY_AUTH_TOKEN"
        ) from None


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
        attach_ray(address)
        return
    _keep_on_loopback()
    ray.init(
        # a new Ray of our own: without "local", ray.init joins whatever cluster `ray start`
        # (or ray.cluster_utils) last left on this machine, and refuses num_cpus there
        address="local",
        num_cpus=num_cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
