"""The glossary: its model and bounds, parsing YAML and CSV (every bad line named),
matching (normalised; case-insensitive and whole words for Latin scripts), the
"Required terms" block and the check of a translated text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.helpers.poems import FOG, JING_YE_SI
from vpsweb.domain.glossary import (
    MAX_TERMS,
    Glossary,
    GlossaryTerm,
    Texts,
    block,
    misses,
    occurs,
    reasons,
    relevant,
    required,
)
from vpsweb.domain.glossary_text import parse_glossary, sniff
from vpsweb.domain.models import TranslationRequest
from vpsweb.errors import RequestInvalid

ZH = Glossary(
    terms=[
        GlossaryTerm(source="明月", target="bright moon", note="not just 'moon'"),
        GlossaryTerm(source="故乡", target="hometown"),
        GlossaryTerm(source="长安", target="Chang'an"),  # not in the poem
        GlossaryTerm(source="李白", target="Li Bai"),
    ]
)


def _problems(text: str, **kw: object) -> list[str]:
    with pytest.raises(RequestInvalid) as bad:
        parse_glossary(text, **kw)  # type: ignore[arg-type]
    return bad.value.errors


# --- parsing -----------------------------------------------------------------------------


def test_yaml_mapping_with_notes_and_text_as_written() -> None:
    g = parse_glossary(
        "# names\n长安: Chang'an\n李白: {target: Li Bai, note: the poet}\nno: 'yes'\n",
        mode="strict",
    )
    assert g.mode == "strict"
    assert [(t.source, t.target, t.note) for t in g.terms] == [
        ("长安", "Chang'an", ""),
        ("李白", "Li Bai", "the poet"),
        ("no", "yes", ""),  # not False: YAML scalars are read as written
    ]


def test_yaml_list_and_a_folded_note() -> None:
    text = (
        "- source: Kraków\n  target: Krakow\n"
        "- source: Wisła\n  target: the Vistula\n  note: >\n    the river,\n    not the town\n"
    )
    g = parse_glossary(text)
    assert g.terms[1] == GlossaryTerm(
        source="Wisła", target="the Vistula", note="the river, not the town"
    )


@pytest.mark.parametrize(
    "text",
    [
        "source,target,note\n长安,Chang'an,the capital\n\n李白,Li Bai,\n",
        "\ufeffSource;Target\n长安;Chang'an\n李白;Li Bai\n",
        'source\ttarget\n长安\tChang\'an\n"李白"\t"Li Bai"\n',
    ],
)
def test_csv_with_commas_semicolons_or_tabs(text: str) -> None:
    assert sniff(text) == "csv"
    g = parse_glossary(text)
    assert [(t.source, t.target) for t in g.terms] == [("长安", "Chang'an"), ("李白", "Li Bai")]


def test_every_bad_yaml_line_is_named_in_file_order() -> None:
    text = (
        "长安: Chang'an\n"  # 1
        "x:\n"  # 2: no target
        "y: {target: a, nope: b}\n"  # 3: unknown field
        "z: <b>bold</b>\n"  # 4: a tag
        "长安: Changan\n"  # 5: the same source again
        f"w: {'x' * 201}\n"  # 6: too long
    )
    found = _problems(text, name="terms.yaml")
    assert [p.split(": ")[1] for p in found] == [
        "line 2",
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ], found
    assert all(p.startswith("terms.yaml: line ") for p in found)
    assert "'x' has no target" in found[0]
    assert "unknown field 'nope'; expected target, note" in found[1]
    assert "must not contain '<' or '>'" in found[2]
    assert "'长安' is already given on line 1" in found[3]
    assert "at most 200 characters" in found[4]


def test_a_duplicate_differs_only_by_case_or_quotes() -> None:
    found = _problems("Chang'an: 长安\nchang\u2019an: 长安\n")
    assert found == ["glossary: line 2: 'chang’an' is already given on line 1"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: [b\n", "glossary: line 2: not valid YAML"),
        ("- source: a\n- [1, 2]\n", "line 1: no target"),
        ("- source: a\n  target: b\n- [1, 2]\n", "line 3: expected {source, target, note}"),
        ("just words\n", "line 1: expected a mapping (source: target) or a list"),
        ("# nothing\n", "glossary: no terms"),
        ("", "glossary: no terms"),
        ("source,target\n", "glossary: no terms"),
        ("source,target,colour\na,b,c\n", "row 1: the header must be source,target"),
        ("source,target\n,b\na,\na,b,c\n", "row 2: no source"),
    ],
)
def test_bad_files(text: str, said: str) -> None:
    found = _problems(text)
    assert any(said in p for p in found), found


def test_csv_rows_are_named_by_their_line() -> None:
    found = _problems("source,target,note\n\nok,fine\n,nothing\nlonely\na,b,c,d\n")
    assert found == [
        "glossary: row 4: no source",
        "glossary: row 5: no target",
        "glossary: row 6: 4 cells for 3 columns",
    ]


def test_the_glossary_is_bounded() -> None:
    many = "".join(f"t{i}: x\n" for i in range(MAX_TERMS + 1))
    assert any("at most 500" in p for p in _problems(many))
    with pytest.raises(ValidationError):
        GlossaryTerm(source="a", target="b", note="n" * 501)
    with pytest.raises(ValidationError, match="is empty"):
        GlossaryTerm(source="  ", target="b")
    with pytest.raises(ValidationError, match="single line"):
        GlossaryTerm(source="a\nb", target="b")


def test_terms_may_be_a_mapping_and_the_request_carries_it() -> None:
    g = Glossary.model_validate(
        {"terms": {"长安": "Chang'an", "李白": {"target": "Li Bai", "note": "n"}}, "mode": "strict"}
    )
    assert [t.source for t in g.terms] == ["长安", "李白"] and g.terms[1].note == "n"
    with pytest.raises(ValidationError, match="same source term"):
        Glossary.model_validate({"terms": [{"source": "a", "target": "b"}] * 2})
    request = TranslationRequest(poem=JING_YE_SI, source_lang="zh-CN", target_lang="en", glossary=g)
    again = TranslationRequest.model_validate_json(request.model_dump_json())
    assert again == request and again.glossary == g


# --- matching and the block ------------------------------------------------------------


def test_latin_terms_match_case_insensitively_and_as_whole_words() -> None:
    assert occurs("Chang'an", "the walls of CHANG\u2019AN at dawn")
    assert occurs("little cat", "on Little\n  Cat feet")  # whitespace runs are one space
    assert not occurs("Chang", "Changsha in the rain")
    assert not occurs("cat", "a catalogue")
    assert occurs("cat.", "the cat.")  # a term ending in punctuation
    assert occurs("Ｆｏｇ", "the fog comes")  # full-width forms are normalised (NFKC)


def test_chinese_terms_match_anywhere() -> None:
    assert occurs("明月", "床前明月光")
    assert occurs("长安", "长安一片月")
    assert occurs("Chang'an", "长安Chang'an城")  # a Han neighbour is a word break


def test_the_block_lists_only_the_terms_that_occur_and_where() -> None:
    source = Texts(poem=JING_YE_SI, title="静夜思", poet="李白")
    assert [(r.term.source, r.places) for r in required(ZH, source)] == [
        ("明月", ("poem",)),
        ("故乡", ("poem",)),
        ("李白", ("poet",)),
    ]
    text = block(ZH, source)
    assert text.startswith("Required terms (")
    assert text.splitlines()[1:] == [
        "<required_terms>",
        '- "明月" → "bright moon" (in the poem) — not just \'moon\'',
        '- "故乡" → "hometown" (in the poem)',
        '- "李白" → "Li Bai" (in the poet\'s name)',
        "</required_terms>",
    ]
    assert "长安" not in text
    assert block(ZH, Texts(poem=FOG)) == "" and block(None, source) == ""


def test_the_relevant_part_is_what_decides_a_poem() -> None:
    source = Texts(poem=JING_YE_SI, poet="李白")
    cut = relevant(ZH.model_copy(update={"mode": "strict"}), source)
    assert cut is not None and cut.mode == "strict"
    assert [t.source for t in cut.terms] == ["明月", "故乡", "李白"]
    assert relevant(ZH, Texts(poem=FOG)) is None and relevant(None, source) is None


# --- the check -------------------------------------------------------------------------


def test_a_miss_is_translated_otherwise_or_left_untranslated() -> None:
    source = Texts(poem=JING_YE_SI, poet="李白")
    good = Texts(poem="Bright Moon before my bed\n... my hometown", poet="Li Bai")
    assert misses(ZH, source, good) == []
    bad = Texts(poem="the moon before my bed\n... 故乡", poet="Li Po")
    assert reasons(ZH, source, bad) == [
        'glossary: "明月" should be "bright moon" (translated otherwise)',
        'glossary: "故乡" should be "hometown" (left untranslated)',
        'glossary: "李白" should be "Li Bai" in the poet\'s name (translated otherwise)',
    ]
    assert reasons(None, source, bad) == []


def test_latin_source_into_chinese() -> None:
    g = Glossary(
        terms=[
            GlossaryTerm(source="fog", target="雾"),
            GlossaryTerm(source="Harbor", target="港湾"),
        ]
    )
    source = Texts(poem=FOG, title="Fog")
    assert reasons(g, source, Texts(poem="雾来了\n港湾和城市", title="雾")) == []
    assert reasons(g, source, Texts(poem="Fog来了\n海港和城市", title="雾")) == [
        'glossary: "fog" should be "雾" (left untranslated)',
        'glossary: "Harbor" should be "港湾" (translated otherwise)',
    ]
    # The title holds "Fog" too: its translation must say 雾.
    assert reasons(g, source, Texts(poem="雾\n港湾", title="烟")) == [
        'glossary: "fog" should be "雾" in the title (translated otherwise)'
    ]


def test_a_term_kept_as_it_is_needs_only_to_be_there() -> None:
    g = Glossary(terms=[GlossaryTerm(source="Sandburg", target="Sandburg")])
    source = Texts(poem="Sandburg wrote this")
    assert reasons(g, source, Texts(poem="桑德堡 Sandburg")) == []
    assert reasons(g, source, Texts(poem="桑德堡")) == [
        'glossary: "Sandburg" should be "Sandburg" (translated otherwise)'
    ]


def test_the_block_is_counted_in_the_estimate_and_the_sizing() -> None:
    from vpsweb.config import load_config
    from vpsweb.domain import sizing
    from vpsweb.domain.estimate import estimate_job
    from vpsweb.domain.plan import build_plan

    cfg = load_config()
    base = {"poem": JING_YE_SI, "source_lang": "zh-CN", "target_lang": "en", "author": "李白"}

    def prompt_tokens(glossary: Glossary | None) -> dict[str, int]:
        plan = build_plan({**base, "glossary": glossary}, cfg, job_id="0123456789ab")
        steps = {s.step: s.expected.prompt_tokens for s in estimate_job(plan, cfg).steps}
        sized = {s.step: s.prompt for s in sizing.estimate(plan, cfg)}
        return {k: steps[k] + sized[k] for k in ("initial_translation", "translator_revision")}

    without, with_terms = prompt_tokens(None), prompt_tokens(ZH)
    assert all(with_terms[k] > without[k] for k in without)
