"""The straggler policy: its quorum arithmetic, and which policy a plan fixes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from tests.helpers.poems import FOG_COUPLET as POEM
from vpsweb.config import load_config
from vpsweb.domain.models import WAIT_ALL, StragglerPolicy
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.errors import RequestInvalid


def plan(cfg: Any = None, manual: Any = False, **changes: Any) -> JobPlan:
    data: dict[str, Any] = {"poem": POEM, "source_lang": "en", "target_lang": "zh-CN"}
    data.update(changes)
    return build_plan(data, cfg or load_config(), job_id="t", offline=True, manual=manual)


@pytest.mark.parametrize(
    ("n", "need"), [(1, None), (2, None), (3, None), (4, 3), (5, 4), (6, 5), (7, 6), (8, 6)]
)
def test_default_quorum_never_drops_more_than_a_quarter(n: int, need: int | None) -> None:
    """None: wait for all (N <= 3: every strategy is judged)."""
    assert StragglerPolicy().quorum_count(n) == need


def test_wait_all_never_has_a_quorum_and_strings_name_a_policy() -> None:
    assert StragglerPolicy.model_validate("wait_all") == WAIT_ALL
    assert all(WAIT_ALL.quorum_count(n) is None for n in range(1, 9))
    assert StragglerPolicy(quorum=0.5).quorum_count(8) == 4
    with pytest.raises(ValidationError):
        StragglerPolicy.model_validate({"policy": "fastest"})


def test_the_plan_takes_the_config_policy_unless_the_job_overrides_it() -> None:
    cfg = load_config()
    assert plan(cfg, parallel_count=8).straggler == cfg.pipeline.straggler
    assert plan(cfg, parallel_count=8, straggler="wait_all").straggler == WAIT_ALL
    custom = {"policy": "quorum", "quorum": 0.5, "grace": 1.0}
    assert plan(cfg, parallel_count=8, straggler=custom).straggler.grace == 1.0
    # A person answering the candidates is never late.
    assert plan(cfg, ["initial_translation"], parallel_count=8).straggler == WAIT_ALL


def test_a_mode_may_set_its_own_policy() -> None:
    cfg = load_config()
    modes = dict(cfg.pipeline.modes)
    modes[next(iter(modes))] = modes[next(iter(modes))].model_copy(update={"straggler": WAIT_ALL})
    changed = dataclasses.replace(cfg, pipeline=cfg.pipeline.model_copy(update={"modes": modes}))
    first = next(iter(modes)).value
    assert plan(changed, workflow_mode=first, parallel_count=8).straggler == WAIT_ALL


def test_a_bad_policy_in_a_request_is_refused_before_anything_is_enqueued() -> None:
    with pytest.raises(RequestInvalid, match="straggler"):
        plan(parallel_count=8, straggler={"policy": "quorum", "quorum": 2})


def test_plans_stored_before_policies_existed_wait_for_all() -> None:
    stored = plan(parallel_count=8).model_dump(mode="json")
    del stored["straggler"]
    assert JobPlan.model_validate(stored).straggler == WAIT_ALL
