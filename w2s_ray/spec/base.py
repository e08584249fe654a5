"""What every part of a study spec shares: strict models and paths from where a study is
started."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def absolute_path(path: str) -> str:
    # Ray Tune runs each job in a directory of its own, so a relative path would point
    # somewhere else there; relative paths mean the directory the study is started from.
    return str(Path(path).expanduser().absolute())


PathFromHere = Annotated[str, Field(min_length=1), AfterValidator(absolute_path)]


class Strict(BaseModel):
    """Unknown keys are refused and parsed specs are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
