"""A study's methods: how students learn from weak labels (losses, selection, bootstrapping,
weak-label processing, rounds)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from w2s_ray.spec.base import Strict


class WeakLabelSpec(Strict):
    """What happens to a student's weak labels before it learns them, in this order.

    `ensemble_seeds`: the pair's weak model is trained this many times on its own half (the
    same examples, a different training seed each) and the members' labels are averaged;
    `ensemble_models`: other ladder models' labels of the same examples are averaged in (a
    pair whose strong model is not above every member is skipped). `probe`: a kNN or
    logistic-regression probe on the strong model's own frozen features, fitted to the weak
    labels out of sample (kNN leaves each example out of its own neighbours; logistic
    regression is cross-fitted over 4 folds), then `probe_use: relabel` trains the student on
    the probe's predictions and `filter` drops the `filter_fraction` of examples whose weak
    label the probe contradicts most (EleutherAI's w2s). `drop_least_confident`: the
    fraction of examples whose label is closest to 0.5 is left out.
    """

    ensemble_seeds: int = Field(default=1, ge=1, le=16)
    ensemble_models: list[str] = Field(default_factory=list)
    probe: Literal["knn", "logreg"] | None = None
    probe_use: Literal["relabel", "filter"] = "relabel"
    k: int = Field(default=50, ge=1)  # kNN neighbours (EleutherAI's default)
    l2: float = Field(default=1e-3, ge=0)  # logistic regression's L2 penalty (theirs)
    filter_fraction: float = Field(default=0.1, gt=0, lt=1)  # their `contamination`
    drop_least_confident: float = Field(default=0.0, ge=0, lt=1)

    @field_validator("ensemble_models")
    @classmethod
    def _unique_members(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a model is listed twice — list each once")
        return value

    def changes_labels(self) -> bool:
        """False for the settings that leave the weak labels as they are."""
        return (
            self.ensemble_seeds > 1
            or bool(self.ensemble_models)
            or self.probe is not None
            or self.drop_least_confident > 0
        )

    def label(self) -> str:
        """A few words naming the processing, for job titles and the plan."""
        parts = []
        if self.ensemble_seeds > 1:
            parts.append(f"{self.ensemble_seeds}-seed ensemble")
        if self.ensemble_models:
            parts.append(f"ensemble with {'+'.join(self.ensemble_models)}")
        if self.probe is not None:
            parts.append(f"{self.probe} {self.probe_use}")
        if self.drop_least_confident > 0:
            parts.append(f"{self.drop_least_confident:g} least confident dropped")
        return ", ".join(parts)

    def identity(self) -> dict[str, Any]:
        """What changes the processed labels (unused options of a switch left out)."""
        key: dict[str, Any] = {}
        if self.ensemble_seeds > 1:
            key["ensemble_seeds"] = self.ensemble_seeds
        if self.ensemble_models:
            key["ensemble_models"] = sorted(self.ensemble_models)
        if self.probe is not None:
            key["probe"] = [self.probe, self.probe_use]
            key["probe_setting"] = self.k if self.probe == "knn" else self.l2
            if self.probe_use == "filter":
                key["filter_fraction"] = self.filter_fraction
        if self.drop_least_confident > 0:
            key["drop_least_confident"] = self.drop_least_confident
        return key


class MethodSpec(Strict):
    """How students learn from weak labels: a loss from the registry and its options, how
    the final weights are chosen, and whether labels climb the ladder one rung at a time.

    `select`: `last` keeps the last epoch's weights; `weak_val` holds out `val_fraction` of
    the student half, labeled by the weak supervisor only, and keeps the epoch that agrees
    with those labels best (no ground truth is seen); `oracle` does the same against the
    held-out examples' true labels, an upper bound that a real user could not run.
    `options_by_model`: loss options for one strong model, merged over `options` when that
    model is the student (or a bootstrap rung) — the paper's larger α_max for its largest
    students, e.g. `{gpt2-xl: {aux_max: 0.75}}`.
    `bootstrap`: a weak → strong pair is trained through every ladder model between them,
    each step's student relabeling the student half for the next (Burns et al. 2023, 4.3.1).
    `weak_labels`: ensembles, probes and confidence filters applied to the weak labels first
    (WeakLabelSpec). `rounds`: strong-to-strong iteration; round r's row is method
    `<name>_r<r>`.
    `generative`: the strong decoder first learns the task's unlabeled text as a language
    model (finetune mode); its ceiling is measured from the same starting point. The paper
    used it for its reward-modeling task (section 5.2.2), not the NLP tasks; here any
    binary task with a strong decoder may use it.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    loss: str | None = None  # defaults to `name`
    options: dict[str, float] = Field(default_factory=dict)
    options_by_model: dict[str, dict[str, float]] = Field(default_factory=dict)
    select: Literal["last", "weak_val", "oracle"] = "last"
    val_fraction: float = Field(default=0.2, gt=0, le=0.5)
    bootstrap: bool = False
    generative: bool = False
    weak_labels: WeakLabelSpec | None = None
    # strong-to-strong iteration: round 1 learns the weak labels; each later round a fresh
    # student learns the previous round's predictions on the student half (a row each)
    rounds: int = Field(default=1, ge=1, le=10)

    @property
    def loss_name(self) -> str:
        return self.loss or self.name

    @property
    def processes_labels(self) -> bool:
        return self.weak_labels is not None and self.weak_labels.changes_labels()

    def describe(self, model: str) -> str:
        """One line saying what ran when `model` was trained: recorded in each result row."""
        options = ",".join(f"{k}={v:g}" for k, v in sorted(self.options_for(model).items()))
        parts = [f"loss={self.loss_name}" + (f"({options})" if options else "")]
        if self.select != "last":
            parts.append(f"select={self.select}({self.val_fraction:g})")
        if self.bootstrap:
            parts.append("bootstrap")
        if self.generative:
            parts.append("generative")
        if self.processes_labels:
            assert self.weak_labels is not None
            settings = ",".join(
                f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in self.weak_labels.identity().items()
            )
            parts.append(f"weak_labels({settings})")
        if self.rounds > 1:
            parts.append(f"rounds={self.rounds}")
        return "; ".join(parts)

    def row_name(self, round_: int | None) -> str:
        """The `method` of a result row: round r of an iterated method is `<name>_r<r>`."""
        return self.name if self.rounds == 1 or round_ is None else f"{self.name}_r{round_}"

    def options_for(self, model: str) -> dict[str, float]:
        """The loss options that apply when `model` is the one trained."""
        return {**self.options, **self.options_by_model.get(model, {})}
