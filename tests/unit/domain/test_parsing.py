"""Tolerant extraction of XML-tagged fields, and the failures it must not hide."""

from __future__ import annotations

import pytest

from vpsweb.domain.parsing import (
    ParseError,
    extract_fields,
    extract_tag,
    label_lines,
    parse_scores,
    parse_selected_index,
)
from vpsweb.errors import TruncatedAnswer, VpswebError

TAGS = ("translated_poem_title", "translated_poet_name", "initial_translation")
OPTIONAL = (*TAGS, "initial_translation_notes")

GOOD = """<translated_poem_title>Quiet Night Thought</translated_poem_title>
<translated_poet_name>Li Bai</translated_poet_name>
<initial_translation>
Before my bed, the moonlight gleams,
like frost upon the ground.

I raise my head to the bright moon,
and lower it, thinking of home.
</initial_translation>
<initial_translation_notes>Kept the four-line shape.</initial_translation_notes>"""

POEM_LINES = (
    "Before my bed, the moonlight gleams,\nlike frost upon the ground.\n\n"
    "I raise my head to the bright moon,\nand lower it, thinking of home."
)


def candidate_fields(text: str) -> dict[str, str]:
    return extract_fields(text, ["initial_translation"], OPTIONAL, what="initial translation")


# --- extract_tag / extract_fields: what models wrap around answers --------------------------


def test_plain_answer() -> None:
    fields = candidate_fields(GOOD)
    assert fields == {
        "initial_translation": POEM_LINES,
        "translated_poem_title": "Quiet Night Thought",
        "translated_poet_name": "Li Bai",
        "initial_translation_notes": "Kept the four-line shape.",
    }


@pytest.mark.parametrize("fence", ["```", "```xml", "```html", "  ```xml  "])
def test_code_fences_around_the_answer(fence: str) -> None:
    fields = candidate_fields(f"{fence}\n{GOOD}\n```\n")
    assert fields["initial_translation"] == POEM_LINES
    assert fields["initial_translation_notes"] == "Kept the four-line shape."
    assert "```" not in "".join(fields.values())


def test_code_fence_inside_a_field_is_removed() -> None:
    text = "<initial_translation>\n```\nline one\nline two\n```\n</initial_translation>"
    assert extract_tag(text, "initial_translation") == "line one\nline two"


def test_prose_before_and_after() -> None:
    text = (
        "Sure! Here is my translation of the poem, following your strategy.\n\n"
        + GOOD
        + "\n\nI hope this helps. Let me know if you want a rhymed version."
    )
    fields = candidate_fields(text)
    assert fields["initial_translation"] == POEM_LINES
    assert fields["translated_poet_name"] == "Li Bai"
    assert fields["initial_translation_notes"] == "Kept the four-line shape."


def test_think_block_before_the_answer_is_ignored() -> None:
    text = (
        "<think>Draft: <initial_translation>WRONG DRAFT</initial_translation>\n"
        "<translated_poet_name>Li Po</translated_poet_name> hmm, Li Bai is better."
        "</think>\n" + GOOD
    )
    fields = candidate_fields(text)
    assert fields["initial_translation"] == POEM_LINES
    assert fields["translated_poet_name"] == "Li Bai"
    assert "WRONG DRAFT" not in fields["initial_translation"]


def test_think_block_is_case_insensitive_and_multiline() -> None:
    text = (
        "<THINK>\nline\n<selected_index>1</selected_index>\n</Think>\n"
        "<selected_index>2</selected_index>"
    )
    assert parse_selected_index(text) == 2


def test_plain_text_reasoning_before_the_answer() -> None:
    text = (
        "Okay, let me think. The poem is about homesickness; the moon is the key image.\n"
        "I should keep four lines and the contrast of raising and lowering the head.\n"
        "Final answer below.\n\n" + GOOD
    )
    fields = candidate_fields(text)
    assert fields["initial_translation"] == POEM_LINES
    assert fields["translated_poem_title"] == "Quiet Night Thought"


def test_nested_tags_inside_notes_are_kept() -> None:
    text = (
        "<initial_translation>moon</initial_translation>\n"
        "<initial_translation_notes>use <em>x</em> and </initial_translation_notes>"
    )
    fields = candidate_fields(text)
    assert fields["initial_translation_notes"] == "use <em>x</em> and"
    assert fields["initial_translation"] == "moon"


def test_field_runs_from_first_open_to_last_close() -> None:
    text = (
        "<initial_translation>first part</initial_translation> interlude "
        "<initial_translation>second part</initial_translation> tail"
    )
    assert (
        extract_tag(text, "initial_translation")
        == "first part</initial_translation> interlude <initial_translation>second part"
    )


def test_close_tag_inside_the_field_does_not_cut_it_short() -> None:
    text = (
        "<initial_translation>a line about </initial_translation> tags\n"
        "line two</initial_translation>"
    )
    assert extract_tag(text, "initial_translation") == (
        "a line about </initial_translation> tags\nline two"
    )


def test_an_optional_field_left_open_runs_to_the_end() -> None:
    text = (
        "<initial_translation>line one\nline two</initial_translation>\n"
        "<initial_translation_notes>kept the images"
    )
    fields = candidate_fields(text)
    assert fields["initial_translation"] == "line one\nline two"
    assert fields["initial_translation_notes"] == "kept the images"


def test_an_answer_ending_inside_a_required_field_was_cut_off() -> None:
    text = (
        "<translated_poem_title>T</translated_poem_title>\n"
        "<initial_translation>\nline one\nline two\n"
    )
    with pytest.raises(TruncatedAnswer) as info:
        candidate_fields(text)
    assert str(info.value) == "initial translation was cut off inside <initial_translation>"
    assert info.value.missing == ["initial_translation"]
    assert info.value.excerpt.startswith("<translated_poem_title>T")


def test_unclosed_tag_stops_at_a_following_sibling_tag() -> None:
    text = (
        "<initial_translation>\nline one\nline two\n"
        "<initial_translation_notes>my notes</initial_translation_notes>"
    )
    fields = candidate_fields(text)
    assert fields["initial_translation"] == "line one\nline two"
    assert fields["initial_translation_notes"] == "my notes"


def test_unclosed_tag_without_siblings_runs_to_the_end() -> None:
    text = "<initial_translation>line one <initial_translation_notes>n</initial_translation_notes>"
    # extract_tag alone knows no siblings: the field runs to the end of the text.
    assert extract_tag(text, "initial_translation") == (
        "line one <initial_translation_notes>n</initial_translation_notes>"
    )
    assert extract_tag(text, "initial_translation", siblings=OPTIONAL) == "line one"


def test_unclosed_tag_stops_at_the_nearest_sibling() -> None:
    text = "<a>one<c>three</c><b>two</b>"
    assert extract_tag(text, "a", siblings=["a", "b", "c"]) == "one"


def test_sibling_before_the_field_does_not_stop_it() -> None:
    text = "<b>two</b><a>one and more"
    assert extract_tag(text, "a", siblings=["b"]) == "one and more"


def test_tags_with_attributes() -> None:
    text = "<initial_translation lang=\"en\" style='lyric'>\nline\n</initial_translation>"
    assert extract_tag(text, "initial_translation") == "line"


def test_a_longer_tag_name_is_not_mistaken_for_the_tag() -> None:
    text = "<initial_translation_notes>only notes</initial_translation_notes>"
    assert extract_tag(text, "initial_translation") is None
    text = "<refined_translated_poem_title>R</refined_translated_poem_title>"
    assert extract_tag(text, "translated_poem_title") is None


@pytest.mark.parametrize(
    "text",
    [
        "<INITIAL_TRANSLATION>line</INITIAL_TRANSLATION>",
        "<Initial_Translation>line</initial_translation>",
        "<initial_translation>line</Initial_TRANSLATION>",
    ],
)
def test_tags_are_case_insensitive(text: str) -> None:
    assert extract_tag(text, "initial_translation") == "line"


def test_absent_tag_is_none_and_empty_tag_is_empty() -> None:
    assert extract_tag("no tags at all", "initial_translation") is None
    assert (
        extract_tag("<initial_translation>  \n </initial_translation>", "initial_translation") == ""
    )


def test_missing_required_tag_raises_parse_error_naming_the_tag() -> None:
    answer = "I am sorry, I cannot translate this poem."
    with pytest.raises(ParseError) as info:
        candidate_fields(answer)
    exc = info.value
    assert exc.missing == ["initial_translation"]
    assert str(exc) == "initial translation is missing required tag(s) <initial_translation>"
    # The model's text is kept apart: messages reach Celery results and Flower.
    assert "I am sorry" not in str(exc)
    assert exc.excerpt == answer


def test_every_missing_required_tag_is_named() -> None:
    with pytest.raises(ParseError) as info:
        extract_fields("<a>x</a>", ["a", "b", "c"], what="thing")
    assert info.value.missing == ["b", "c"]
    assert "thing is missing required tag(s) <b>, <c>" in str(info.value)


def test_empty_required_tag_raises_parse_error() -> None:
    text = (
        "<translated_poem_title>T</translated_poem_title>\n"
        "<initial_translation>\n   \n</initial_translation>\n"
        "<initial_translation_notes>notes</initial_translation_notes>"
    )
    with pytest.raises(ParseError) as info:
        candidate_fields(text)
    assert info.value.missing == ["initial_translation"]


def test_parse_error_excerpt_is_bounded() -> None:
    with pytest.raises(ParseError) as info:
        candidate_fields("x" * 5000)
    assert info.value.excerpt == "x" * 60
    assert "xxx" not in str(info.value)


def test_optional_tags_default_to_empty() -> None:
    fields = candidate_fields("<initial_translation>only this</initial_translation>")
    assert fields == {
        "initial_translation": "only this",
        "translated_poem_title": "",
        "translated_poet_name": "",
        "initial_translation_notes": "",
    }


def test_parse_error_is_a_vpsweb_error() -> None:
    assert issubclass(ParseError, VpswebError)


def test_case_folding_does_not_shift_the_field() -> None:
    assert extract_tag("<t>İstanbul at night</t>", "t") == "İstanbul at night"


# --- parse_selected_index -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<selected_index>2</selected_index>", 2),
        ("<selected_index> 3 </selected_index>", 3),
        ("<selected_index>Candidate 2</selected_index>", 2),
        ("<selected_index>I choose #4 because it sings</selected_index>", 4),
        (
            "<evaluation><analysis>1 is close, 3 is wordy</analysis>"
            "<selected_index>3</selected_index><rationale>r</rationale></evaluation>",
            3,
        ),
        ("```xml\n<selected_index>1</selected_index>\n```", 1),
        ("<selected_index>12 (of 12)</selected_index>", 12),
    ],
)
def test_selected_index_number_with_text_around(text: str, expected: int) -> None:
    assert parse_selected_index(text) == expected


@pytest.mark.parametrize("text", ["I pick the second one.", "<selected_index></selected_index>"])
def test_selected_index_missing(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_selected_index(text)
    assert info.value.missing == ["selected_index"]
    assert "<selected_index>" in str(info.value)


def test_selected_index_not_a_number() -> None:
    with pytest.raises(ParseError, match="is not a number: 'the second one'"):
        parse_selected_index("<selected_index>the second one</selected_index>")


# --- parse_scores --------------------------------------------------------------------------


def test_parse_scores() -> None:
    text = """<scores>
<score id="1">fidelity=8, imagery=7, musicality=6.5, fluency=9</score>
<score id=2>Fidelity: 5; Imagery = 4</score>
<score id="3">no numbers here</score>
</scores>"""
    assert parse_scores(text) == {
        1: {"fidelity": 8.0, "imagery": 7.0, "musicality": 6.5, "fluency": 9.0},
        2: {"fidelity": 5.0, "imagery": 4.0},
        3: {},
    }


def test_parse_scores_ignores_think_blocks_and_absent_scores() -> None:
    text = '<think><score id="9">fidelity=1</score></think><score id="1">fluency=7</score>'
    assert parse_scores(text) == {1: {"fluency": 7.0}}
    assert parse_scores("no scores") == {}


# --- label_lines -------------------------------------------------------------------------


def test_label_lines_keeps_blank_lines_as_stanza_breaks() -> None:
    poem = "床前明月光，\n疑是地上霜。\n\n举头望明月，\n低头思故乡。"
    assert label_lines(poem) == (
        "[L1] 床前明月光，\n[L2] 疑是地上霜。\n\n[L3] 举头望明月，\n[L4] 低头思故乡。"
    )


def test_label_lines_labels_only_non_empty_lines() -> None:
    poem = "\n\none\n   \ntwo\n\n\nthree\n\n"
    labelled = label_lines(poem)
    assert labelled == "[L1] one\n\n[L2] two\n\n\n[L3] three"
    labels = [line.split("]")[0] + "]" for line in labelled.splitlines() if line]
    assert labels == ["[L1]", "[L2]", "[L3]"]


def test_label_lines_single_line() -> None:
    assert label_lines("  only line  ") == "[L1] only line"
