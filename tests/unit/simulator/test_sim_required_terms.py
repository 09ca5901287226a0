"""The simulator's translator and a "Required terms" block: it writes each target
where the source term is, and misses them as its directives say (``glossmiss``,
``glossraw``: in the model's name for every term, in a term's note for that one)."""

from __future__ import annotations

from tests.helpers.poems import FOG, JING_YE_SI
from vpsweb.domain.glossary import Glossary, Texts, block
from vpsweb.domain.parsing import extract_fields
from vpsweb.simulator import answers
from vpsweb.simulator.required_terms import honour, wanted

GLOSSARY = Glossary.model_validate(
    {
        "terms": {
            "明月": "bright moon",
            "故乡": {"target": "hometown", "note": "sim-glossraw: planted"},
            "李白": "Li Bai",
        }
    }
)
PROMPT = (
    "Translate into English.\n<original_poem>\n" + JING_YE_SI + "\n</original_poem>\n"
    "<initial_translation></initial_translation>\n\n"
    + block(GLOSSARY, Texts(poem=JING_YE_SI, poet="李白"))
)
FIELDS = ["translated_poem_title", "translated_poet_name", "initial_translation"]


def test_the_block_is_read_with_each_terms_places_and_directive() -> None:
    found = [(w.source, w.target, sorted(w.places), w.how) for w in wanted(PROMPT)]
    assert found == [
        ("明月", "bright moon", ["the poem"], "use"),
        ("故乡", "hometown", ["the poem"], "raw"),
        ("李白", "Li Bai", ["the poet's name"], "use"),
    ]
    assert {w.how for w in wanted(PROMPT, model="sim-glossmiss")} == {"miss"}
    assert wanted("no block here") == []


def test_targets_go_on_the_first_line_of_their_source() -> None:
    source = JING_YE_SI.split("\n")
    poem = "a b c\nd e f\n\ng h i\nj k l"
    got = honour(PROMPT, "", source, False, (poem, "Title", "Poet"))
    assert got == (
        "a b c bright moon\nd e f\n\ng h i\nj k l 故乡",
        "Title",
        "Poet Li Bai",
    )
    assert honour("no block", "", source, False, (poem, "T", "P")) == (poem, "T", "P")


def test_chinese_targets_go_before_the_closing_punctuation() -> None:
    g = Glossary.model_validate({"terms": {"fog": "雾"}})
    prompt = "into Simplified Chinese\n" + block(g, Texts(poem=FOG, title="Fog"))
    got = honour(prompt, "", FOG.split("\n"), True, ("雾港静，\n城市。", "标题", "诗人"))
    assert got == ("雾港静雾，\n城市。", "标题雾", "诗人")


def test_a_whole_answer_keeps_the_terms_and_a_directive_misses_them() -> None:
    def translation(model: str) -> dict[str, str]:
        got = answers.respond(PROMPT, temperature=0.4, seed=0, model=model)
        return extract_fields(got.content, ["initial_translation"], FIELDS, what="t")

    plain = translation("sim-chat")
    assert plain["initial_translation"].count("bright moon") == 1
    assert "故乡" in plain["initial_translation"] and plain["translated_poet_name"].endswith(
        "Li Bai"
    )
    missed = translation("sim-glossmiss")
    assert "bright moon" not in missed["initial_translation"]
    assert "故乡" not in missed["initial_translation"]
    assert "Li Bai" not in missed["translated_poet_name"]


def test_source_terms_left_in_a_chinese_line_stay_words() -> None:
    g = Glossary.model_validate({"terms": {"harbor": "港湾", "city": "城市"}})
    prompt = "into Simplified Chinese\n" + block(g, Texts(poem="over harbor and city"))
    got = honour(prompt, "sim-glossraw", ["over harbor and city"], True, ("港静，", "", ""))
    assert got[0] == "港静harbor city，"
