"""Which version of each model and dataset a study reads, and the record of it.

A hub model or dataset is read at one commit: the study's pinned `revision:` or, unpinned,
the commit its default branch names now (asked of the hub, else read from the local HF
cache). Job ids hash that commit, so a repository that moved on never reuses old results;
`plan.json` and every job's result say which commit (or which local folder digest) was read.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from w2s_ray.datasets import DATASETS
from w2s_ray.errors import UserError
from w2s_ray.identity import COMMIT, DEFAULT_BRANCH, hub_commit
from w2s_ray.models import ModelCard
from w2s_ray.spec import HubDataset, HubModel, LocalDataset, StudySpec

if TYPE_CHECKING:
    from w2s_ray.study.graph import Job
    from w2s_ray.study.resolve import Study

log = logging.getLogger(__name__)
_WARNED: set[str] = set()  # inputs already warned about in this process


def hub_model_card(card: ModelCard, pinned: str | None) -> ModelCard:
    """`card` with the revision its loaders read: the commit of `pinned` (default: the main
    branch) when the hub or the cache knows it, else `pinned` as given (None: unresolved)."""
    if card.hub_id is None:
        if pinned is not None:
            raise UserError(
                f"'{card.name}' is not a hub model ({card.source}), so it has no `revision` — "
                "drop the key"
            )
        return card
    return replace(card, revision=hub_commit(card.hub_id, "model", pinned) or pinned)


def hub_dataset_revision(name: str, pinned: str | None) -> str | None:
    """The revision a registered dataset is read at: the commit of `pinned`, else of the
    branch its loader reads (`refs/convert/parquet` for script-only datasets, else main);
    `pinned` as given when unknown; None for datasets not on the hub, or unresolved."""
    card = DATASETS.get(name)
    if card.hf_path is None:
        if pinned is not None:
            raise UserError(
                f"dataset '{name}' is not read from the hub ({card.source}), so it has no "
                "`revision` — drop the key"
            )
        return None
    return hub_commit(card.hf_path, "dataset", pinned or card.hf_revision) or pinned


def model_pins(spec: StudySpec) -> dict[str, str]:
    return {m.name: m.revision for m in spec.models if isinstance(m, HubModel)}


def dataset_pins(spec: StudySpec) -> dict[str, str]:
    return {d.name: d.revision for d in spec.datasets if isinstance(d, HubDataset)}


def warn_unresolved(cards: dict[str, ModelCard], revisions: dict[str, str | None]) -> None:
    """One warning for every hub input whose commit is unknown: its job ids cannot tell two
    versions of it apart."""
    models = [n for n, c in cards.items() if c.hub_id is not None and not _is_commit(c.revision)]
    datasets = [n for n, rev in revisions.items() if not _is_commit(rev)]
    unwarned = [n for n in models + datasets if n not in _WARNED]
    _WARNED.update(unwarned)  # the CLI resolves a study twice (check, then run): warn once
    if unwarned:
        log.warning(
            "hub revision unresolved for %s (the hub is offline or unreachable, and the local "
            "HF cache has no record of it): job ids will not change if the repository does — "
            "pin `revision:` to a commit in the study",
            ", ".join(unwarned),
        )


def _is_commit(revision: str | None) -> bool:
    return revision is not None and bool(COMMIT.match(revision))


def model_record(study: Study, name: str) -> dict[str, Any]:
    """Where a model's weights came from, for people: source, hub revision, folder digest."""
    card = study.cards[name]
    record = {"source": card.source}
    if card.hub_id is not None:
        record["revision"] = card.revision or f"{DEFAULT_BRANCH} (unresolved)"
        pinned = model_pins(study.spec).get(name)
        if pinned is not None:
            record["pinned"] = pinned
    if card.digest is not None:
        record["sha256"] = card.digest
    return record


def dataset_record(study: Study, name: str) -> dict[str, Any]:
    """Where a dataset's rows came from, for people: the file's digest, or hub repo and revision."""
    from w2s_ray.study.resolve import dataset_identity

    ref = study.dataset_ref(name)
    if isinstance(ref, LocalDataset):
        return {"source": ref.path, "sha256": dataset_identity(study, name)["file_sha256"]}
    card = DATASETS.get(name)
    record: dict[str, Any] = {"source": card.source}
    if card.hf_path is not None:
        revision = study.dataset_revisions.get(name)
        record["revision"] = revision or f"{card.hf_revision or DEFAULT_BRANCH} (unresolved)"
        pinned = dataset_pins(study.spec).get(name)
        if pinned is not None:
            record["pinned"] = pinned
    return record


def study_record(study: Study) -> dict[str, Any]:
    """Every input's record: what plan.json keeps beside the jobs."""
    return {
        "models": {name: model_record(study, name) for name in study.cards},
        "datasets": {name: dataset_record(study, name) for name in study.spec.dataset_names()},
    }


def job_record(study: Study, job: Job) -> dict[str, Any]:
    """The records of the inputs one job read: what its result.json keeps."""
    record = {
        "model": model_record(study, job.model),
        "dataset": dataset_record(study, job.dataset),
    }
    if job.weak_model is not None:
        record["weak_model"] = model_record(study, job.weak_model)
    return record
