"""`w2s-ray submit`: send a study to a cluster as a Ray Job, so no laptop has to stay awake."""

from __future__ import annotations

import shlex
import tempfile
import time
from pathlib import Path

from w2s_ray.errors import UserError
from w2s_ray.spec import StudySpec
from w2s_ray.study.ray_session import send_cluster_token

AGENT_WAIT_S = 60.0


def default_study_dir(spec: StudySpec) -> str:
    return f"~/w2s-ray/runs/{spec.name}"


def submit_study(spec: StudySpec, address: str, study_dir: str) -> str:
    """Submit `w2s-ray run` of the resolved spec on the cluster; returns the Ray Job id."""
    from ray.job_submission import JobSubmissionClient

    send_cluster_token()
    try:
        client = JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(
            f"no Ray Jobs server answers at '{address}' ({exc}) — give the dashboard address "
            "(http://HEAD:8265; through a tunnel, `ray dashboard CLUSTER.yaml` serves it on "
            "http://127.0.0.1:8265) and put the cluster's token in RAY_AUTH_TOKEN or "
            "~/.ray/auth_token"
        ) from None
    # The cluster expands `~`; an absolute local path is taken as it is.
    target = study_dir if study_dir.startswith("~") else shlex.quote(study_dir)
    entrypoint = f"w2s-ray run study.yaml --study-dir {target} --address auto"
    submission_id = f"w2s-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with tempfile.TemporaryDirectory(prefix="w2s-submit-") as folder:
        (Path(folder) / "study.yaml").write_text(spec.to_yaml())
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                return client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=submission_id,
                    runtime_env={"working_dir": folder},
                    metadata={"w2s_study": spec.name, "w2s_study_dir": study_dir},
                )
            except RuntimeError as exc:
                # a head that has just started has no job agent for a few seconds
                if "No available agent" in str(exc) and time.monotonic() < deadline:
                    time.sleep(2)
                    continue
                raise UserError(f"the cluster at '{address}' refused the job: {exc}") from None
