"""A study directory holds one study: resuming it with the same numbers-changing settings is
allowed, whatever the device packing, and anything else is refused."""

from __future__ import annotations

import pytest

from w2s_ray.errors import UserError
from w2s_ray.spec import parse_spec
from w2s_ray.study.runner import check_study_dir
from w2s_ray.study.store import StudyStore

BASE = {"name": "same", "datasets": ["rotten_tomatoes"], "models": ["minilm-l3", "minilm-l6"]}


def test_only_a_change_that_changes_numbers_makes_another_study(tmp_path):
    store = StudyStore(tmp_path)
    store.write_bytes("study.yaml", parse_spec(BASE).to_yaml().encode())
    check_study_dir(store, parse_spec(BASE))
    check_study_dir(store, parse_spec({**BASE, "resources": {"jobs_per_gpu": 1}}))
    with pytest.raises(UserError, match="already holds a different study"):
        check_study_dir(store, parse_spec({**BASE, "seeds": [0, 1, 2, 3]}))
