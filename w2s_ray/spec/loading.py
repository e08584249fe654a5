"""Reading a study file: YAML without duplicate keys, and pydantic's errors turned into one
line per mistake naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from w2s_ray.errors import UserError
from w2s_ray.registry import suggest
from w2s_ray.spec.methods import MethodSpec, WeakLabelSpec
from w2s_ray.spec.study import (
    DataSpec,
    GenerativeSpec,
    HubDataset,
    HubModel,
    LocalDataset,
    LocalModel,
    LoraSpec,
    ResourcesSpec,
    StudySpec,
    TrainSpec,
)
from w2s_ray.spec.tracking import TrackingSpec, WandbSpec


def _loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _UNION_BRANCHES or "[" in str(part):
            continue  # pydantic names union branches; a person wants the key path
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


_UNION_BRANCHES = {
    "str",
    "bool",
    "LocalModel",
    "HubModel",
    "LocalDataset",
    "HubDataset",
    "MethodSpec",
}


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    models: dict[str, tuple[type[BaseModel], ...]] = {
        "train": (TrainSpec,),
        "lora": (LoraSpec,),
        "data": (DataSpec,),
        "generative": (GenerativeSpec,),
        "resources": (ResourcesSpec,),
        "tracking": (TrackingSpec,),
        "wandb": (WandbSpec,),
        "methods": (MethodSpec,),
        "weak_labels": (WeakLabelSpec,),
        "models": (LocalModel, HubModel),
        "datasets": (LocalDataset, HubDataset),
    }
    named = [p for p in loc[:-1] if isinstance(p, str) and p in models]
    found = models[named[-1]] if named else (StudySpec,)  # the innermost: tracking.wandb
    return list(dict.fromkeys(f for model in found for f in model.model_fields))


def explain_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem: where (file, key), what was wrong, how to fix it."""
    lines = []
    seen: set[str] = set()
    for err in exc.errors():
        where = _loc_text(err["loc"])
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            line = f"{source}: unknown key '{where}'{suggest(key, _fields_at(err['loc']))}"
        elif err["type"] == "missing":
            line = f"{source}: missing required key '{where}' — add it"
        else:
            line = f"{source}: key '{where}': {err['msg']} (got {err.get('input')!r})"
        if where not in seen:  # union branches repeat one mistake several times
            seen.add(where)
            lines.append(line)
    return "\n".join(lines)


def parse_spec(data: Any, source: str = "<study>") -> StudySpec:
    if not isinstance(data, dict):
        raise UserError(f"{source}: a study file must be a YAML mapping (name:, datasets:, ...)")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise UserError(explain_validation_error(source, exc)) from None


class _DuplicateKeyError(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's SafeLoader keeps the last of two equal keys silently, so a second `methods:`
    would replace the first; this one refuses them, in every mapping at every depth."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` keys may be overridden by design
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKeyError(key, seen[key], line)
                    seen[key] = line
                except TypeError:
                    continue  # an unhashable key: the base constructor reports it
        return super().construct_mapping(node, deep)


def load_spec(path: str | Path) -> StudySpec:
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read study file '{path}': {exc.strerror or exc} — give the path of a "
            "study YAML file, e.g. studies/quickstart.yaml (`ls studies/` lists the examples)"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except _DuplicateKeyError as exc:
        raise UserError(
            f"{path}: key '{exc.key}' is given twice in one mapping (lines {exc.first} and "
            f"{exc.second}); YAML would keep only the last — merge them into one"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where} — fix the syntax there") from None
    return parse_spec(data, str(path))
