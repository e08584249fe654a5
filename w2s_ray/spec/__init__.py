"""StudySpec: the study YAML as pydantic models, and errors a person can act on.

Parsing checks types and keys; `resolve` checks names against the registries and the ladder
order, so every mistake surfaces before any compute starts.
"""

from w2s_ray.spec.loading import explain_validation_error, load_spec, parse_spec
from w2s_ray.spec.methods import MethodSpec, WeakLabelSpec
from w2s_ray.spec.study import (
    BaselineSpec,
    DatasetEntry,
    DataSpec,
    GenerativeSpec,
    HubDataset,
    HubModel,
    InferenceSpec,
    LocalDataset,
    LocalModel,
    LoraSpec,
    ModelEntry,
    PromptSpec,
    ResourcesSpec,
    StudySpec,
    TrainSpec,
)
from w2s_ray.spec.tracking import TrackingSpec, WandbSpec

__all__ = [
    "BaselineSpec",
    "DataSpec",
    "DatasetEntry",
    "GenerativeSpec",
    "HubDataset",
    "HubModel",
    "InferenceSpec",
    "LocalDataset",
    "LocalModel",
    "LoraSpec",
    "MethodSpec",
    "ModelEntry",
    "PromptSpec",
    "ResourcesSpec",
    "StudySpec",
    "TrackingSpec",
    "TrainSpec",
    "WandbSpec",
    "WeakLabelSpec",
    "explain_validation_error",
    "load_spec",
    "parse_spec",
]
