"""Every rule of TranslationRequest, checked through ``vpsweb.domain.plan.validate_request``.

The error text matters: each line of ``RequestInvalid.errors`` must name the field
that is wrong and, where there is a closed set of choices, list them.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.poems import JING_YE_SI as POEM
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.models import (
    MAX_POEM_CHARS,
    CandidateResult,
    CandidateScore,
    EditorReview,
    EvaluationResult,
    FinalTranslation,
    GateResult,
    Judgement,
    ModelInfo,
    Revision,
    RevisionCheck,
    StepMetrics,
    StrategyDials,
    Totals,
    TranslationRequest,
    Usage,
    WorkflowMode,
)
from vpsweb.domain.plan import validate_request
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import RequestInvalid

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cfg() -> AppConfig:
    return load_config()


def req(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"poem": POEM, "source_lang": "zh-CN", "target_lang": "en"}
    data.update(changes)
    return data


def errors_of(data: dict[str, Any], cfg: AppConfig) -> list[str]:
    with pytest.raises(RequestInvalid) as info:
        validate_request(data, cfg)
    exc = info.value
    assert exc.errors, "RequestInvalid must carry at least one error line"
    # The exception text carries every line, so a log of str(exc) is enough.
    for line in exc.errors:
        assert line in str(exc)
    assert str(exc).startswith("invalid translation request: ")
    return exc.errors


def single_error(data: dict[str, Any], cfg: AppConfig) -> str:
    errors = errors_of(data, cfg)
    assert len(errors) == 1, errors
    return errors[0]


# --- languages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("en", "en"),
        ("English", "en"),
        ("ENGLISH", "en"),
        (" english ", "en"),
        ("zh-CN", "zh-CN"),
        ("zh-cn", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("Chinese", "zh-CN"),
        ("pl", "pl"),
        ("Polish", "pl"),
    ],
)
def test_source_language_codes_and_names_normalise(cfg: AppConfig, given: str, code: str) -> None:
    target = "zh-CN" if code == "en" else "en"
    request = validate_request(req(source_lang=given, target_lang=target), cfg)
    assert request.source_lang == code
    assert request.target_lang == target


@pytest.mark.parametrize(
    ("given", "code"),
    [("en", "en"), ("English", "en"), ("zh-CN", "zh-CN"), ("Chinese", "zh-CN"), ("zh", "zh-CN")],
)
def test_target_language_codes_and_names_normalise(cfg: AppConfig, given: str, code: str) -> None:
    source = "pl"
    request = validate_request(req(source_lang=source, target_lang=given), cfg)
    assert request.target_lang == code


@pytest.mark.parametrize("polish", ["pl", "Polish", "polish"])
def test_polish_is_not_a_target(cfg: AppConfig, polish: str) -> None:
    line = single_error(req(source_lang="en", target_lang=polish), cfg)
    assert line.startswith("target_lang: ")
    assert "unsupported target language" in line
    assert repr(polish) in line
    assert "en (English)" in line
    assert "zh-CN (Chinese)" in line
    assert "pl (Polish)" not in line


def test_unknown_source_language_lists_the_allowed_ones(cfg: AppConfig) -> None:
    line = single_error(req(source_lang="Klingon"), cfg)
    assert line.startswith("source_lang: ")
    assert "'Klingon'" in line
    assert "allowed: en (English), zh-CN (Chinese), pl (Polish)" in line


def test_unknown_target_language_lists_the_allowed_ones(cfg: AppConfig) -> None:
    line = single_error(req(target_lang="fr"), cfg)
    assert line.startswith("target_lang: ")
    assert "allowed: en (English), zh-CN (Chinese)" in line


def test_both_languages_wrong_reports_both(cfg: AppConfig) -> None:
    errors = errors_of(req(source_lang="xx", target_lang="yy"), cfg)
    fields = sorted(line.split(":", 1)[0] for line in errors)
    assert fields == ["source_lang", "target_lang"]


@pytest.mark.parametrize(
    ("source", "target"), [("en", "en"), ("English", "en"), ("zh", "Chinese"), ("zh-CN", "zh")]
)
def test_source_equal_to_target_is_rejected(cfg: AppConfig, source: str, target: str) -> None:
    line = single_error(req(source_lang=source, target_lang=target), cfg)
    # A model-level rule: the line is prefixed "request" and names both fields.
    assert line.startswith("request: ")
    assert "source_lang and target_lang are both" in line
    assert "choose a different target language" in line


# --- the poem --------------------------------------------------------------------


def test_empty_poem_is_rejected(cfg: AppConfig) -> None:
    line = single_error(req(poem=""), cfg)
    # A translator's words, not pydantic's "String should have at least 1 character".
    assert line == "poem: the poem is empty; paste or load the poem's text"


@pytest.mark.parametrize("blank", [" ", "\n\n", " \t \n  "])
def test_whitespace_only_poem_is_rejected(cfg: AppConfig, blank: str) -> None:
    line = single_error(req(poem=blank), cfg)
    assert line.startswith("poem: ")
    assert "poem has no visible text" in line


def test_poem_of_exactly_50000_characters_is_accepted(cfg: AppConfig) -> None:
    assert MAX_POEM_CHARS == 50_000
    poem = ("月" * 99 + "\n") * 500
    assert len(poem) == 50_000
    assert validate_request(req(poem=poem), cfg).poem == poem


def test_poem_of_50001_characters_is_rejected(cfg: AppConfig) -> None:
    poem = "x" * 50_001
    line = single_error(req(poem=poem), cfg)
    assert line == "poem: the poem has 50,001 characters; the limit is 50,000"


def test_missing_required_fields_are_each_named(cfg: AppConfig) -> None:
    errors = errors_of({}, cfg)
    fields = sorted(line.split(":", 1)[0] for line in errors)
    assert fields == ["poem", "source_lang", "target_lang"]
    assert all("Field required" in line for line in errors)


# --- parallel_count ----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 8])
def test_parallel_count_within_limits_is_accepted(cfg: AppConfig, n: int) -> None:
    assert validate_request(req(parallel_count=n), cfg).parallel_count == n


def test_parallel_count_omitted_stays_none_for_the_mode_default(cfg: AppConfig) -> None:
    assert validate_request(req(), cfg).parallel_count is None


@pytest.mark.parametrize("n", [0, -1])
def test_parallel_count_below_one_is_rejected(cfg: AppConfig, n: int) -> None:
    line = single_error(req(parallel_count=n), cfg)
    assert line == f"parallel_count: parallel_count must be between 1 and 8, got {n}"


def test_parallel_count_above_the_max_names_the_max(cfg: AppConfig) -> None:
    assert cfg.pipeline.parallel_count.max == 8
    line = single_error(req(parallel_count=9), cfg)
    assert line.startswith("parallel_count: ")
    assert "between 1 and 8" in line
    assert "got 9" in line


def test_parallel_count_must_be_a_whole_number(cfg: AppConfig) -> None:
    line = single_error(req(parallel_count=2.5), cfg)
    assert line.startswith("parallel_count: ")
    assert "integer" in line


@pytest.fixture()
def low_max_cfg(tmp_path: Path) -> AppConfig:
    """A copy of config/ whose parallel_count.max is 4 (default 3, reasoning 2)."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    path = target / "pipeline.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["parallel_count"]["max"] = 4
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(target)


def test_a_config_with_a_lower_max_rejects_above_it(low_max_cfg: AppConfig) -> None:
    assert low_max_cfg.pipeline.parallel_count.max == 4
    assert validate_request(req(parallel_count=4), low_max_cfg).parallel_count == 4
    line = single_error(req(parallel_count=5), low_max_cfg)
    assert "between 1 and 4" in line
    assert "got 5" in line


# --- workflow mode, strategy, unknown fields ---------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "reasoning", "non_reasoning"])
def test_every_workflow_mode_is_accepted(cfg: AppConfig, mode: str) -> None:
    assert validate_request(req(workflow_mode=mode), cfg).workflow_mode == WorkflowMode(mode)


def test_unknown_workflow_mode_lists_the_allowed_modes(cfg: AppConfig) -> None:
    line = single_error(req(workflow_mode="turbo"), cfg)
    assert line.startswith("workflow_mode: ")
    for mode in ("'hybrid'", "'reasoning'", "'non_reasoning'"):
        assert mode in line


@pytest.mark.parametrize(
    ("dial", "bad", "allowed"),
    [
        ("adaptation_level", "radical", ["foreignizing", "balanced", "domesticating"]),
        ("repetition_policy", "loose", ["strict", "adaptive"]),
        ("additions_policy", "anything", ["forbid", "allow_with_alt"]),
    ],
)
def test_unknown_strategy_dial_value_is_rejected(
    cfg: AppConfig, dial: str, bad: str, allowed: list[str]
) -> None:
    line = single_error(req(strategy={dial: bad}), cfg)
    assert line.startswith(f"strategy.{dial}: ")
    for choice in allowed:
        assert repr(choice) in line


def test_unknown_strategy_dial_name_is_rejected(cfg: AppConfig) -> None:
    line = single_error(req(strategy={"tone": "wistful"}), cfg)
    assert line.startswith("strategy.tone: ")
    assert "Extra inputs are not permitted" in line


def test_valid_strategy_overrides_are_kept(cfg: AppConfig) -> None:
    request = validate_request(
        req(strategy={"adaptation_level": "domesticating", "few_shots": "ex"}), cfg
    )
    dials = request.strategy.apply_to(cfg.pipeline.strategy_defaults)
    assert dials.adaptation_level == "domesticating"
    assert dials.few_shots == "ex"
    # Untouched dials keep the configured defaults.
    assert dials.repetition_policy == cfg.pipeline.strategy_defaults.repetition_policy
    assert dials.prosody_target == cfg.pipeline.strategy_defaults.prosody_target


def test_extra_unknown_field_is_rejected(cfg: AppConfig) -> None:
    line = single_error(req(temperature=0.3), cfg)
    assert line == "temperature: Extra inputs are not permitted"


def test_several_problems_are_reported_together(cfg: AppConfig) -> None:
    errors = errors_of(
        req(poem="  ", target_lang="pl", parallel_count=99, workflow_mode="x", colour="red"), cfg
    )
    fields = sorted(line.split(":", 1)[0] for line in errors)
    assert fields == ["colour", "parallel_count", "poem", "target_lang", "workflow_mode"]


def test_a_request_object_is_revalidated_against_the_config(
    cfg: AppConfig, low_max_cfg: AppConfig
) -> None:
    request = TranslationRequest.model_validate(req(parallel_count=6))
    assert validate_request(request, cfg).parallel_count == 6
    with pytest.raises(RequestInvalid, match="between 1 and 4"):
        validate_request(request, low_max_cfg)


# --- JSON round trip of the job output -----------------------------------------------------


def _metrics(model: str, prompt: int, completion: int, cost: float, currency: str) -> StepMetrics:
    t0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    return StepMetrics(
        model=ModelInfo(
            model=model, provider="deepseek", api_model=model, reasoning=False, temperature=0.4
        ),
        usage=Usage(
            prompt_tokens=prompt, completion_tokens=completion, cost=cost, currency=currency
        ),
        attempts=2,
        billed_calls=1,
        duration_s=1.25,
        llm_latency_s=1.1,
        reported_latency_s=0.9,
        started_at=t0,
        finished_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
    )


def test_translation_output_round_trips_through_json(cfg: AppConfig) -> None:
    request = validate_request(
        req(title="静夜思", author="李白", parallel_count=3, strategy={"few_shots": "例"}), cfg
    )
    ok = CandidateResult(
        index=0,
        variant="literal",
        strategy_hint="stay close",
        status="succeeded",
        translated_title="Quiet Night Thought",
        translated_poet="Li Bai",
        translation="Before my bed the moonlight\n\nI bow my head",
        notes="kept <em>moon</em>",
        metrics=_metrics("deepseek-chat", 300, 120, 0.00096, "CNY"),
    )
    failed = CandidateResult(
        index=1,
        variant="lyric",
        status="failed",
        error="initial translation is missing required tag(s) <initial_translation>",
        metrics=_metrics("deepseek-chat", 310, 5, 0.000635, "CNY"),
    )
    failed_no_metrics = CandidateResult(
        index=2, variant="musical", status="failed", error="HTTP 401"
    )
    output = TranslationOutput(
        job_id="job-1",
        request=request,
        workflow_mode=WorkflowMode.HYBRID,
        parallel_count=3,
        strategy=StrategyDials(adaptation_level="foreignizing", few_shots="例"),
        candidates=[ok, failed, failed_no_metrics],
        evaluation=EvaluationResult(
            selected_index=0,
            rationale="only survivor",
            scores=[CandidateScore(index=0, scores={"fidelity": 8.0}, total=8.0)],
            method="single_candidate",
            presented_order=[0],
            judgements=[Judgement(order=[0], selected_index=0, rationale="only survivor")],
            gated=[GateResult(index=1, reasons=["copies the source"])],
            metrics=_metrics("deepseek-reasoner", 500, 200, 0.0016, "CNY"),
        ),
        selected_candidate=ok,
        editor_review=EditorReview(suggestions="1. [L1] ...", metrics=None),
        revision=Revision(translation="Before my bed, moonlight", notes=""),
        revision_check=RevisionCheck(
            decision="revision_rejected",
            reason="lost one order",
            orders=[["candidate", "revision"], ["revision", "candidate"]],
            preferred=["revision", None],
        ),
        final=FinalTranslation(translation=ok.translation, source="candidate", candidate_index=0),
        totals=Totals(
            prompt_tokens=1110,
            completion_tokens=325,
            total_tokens=1435,
            cost={"CNY": 0.003195, "USD": 0.5},
            llm_calls=6,
            duration_s=12.5,
        ),
        step_durations={"initial_translation": 3.2, "evaluation": 4.0},
        created_at=datetime(2026, 1, 2, 3, 4, 0, tzinfo=UTC),
        finished_at=datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC),
    )
    text = output.model_dump_json()
    back = TranslationOutput.model_validate_json(text)
    assert back == output
    assert back.model_dump_json() == text
    assert [c.ok for c in back.candidates] == [True, False, False]
    assert back.candidates[1].error == failed.error
    assert back.request.source_lang == "zh-CN"
    assert len(back.all_metrics()) == 3  # two candidates with metrics + evaluation
