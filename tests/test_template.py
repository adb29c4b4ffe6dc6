"""Prompt templates: filling, escapes, errors with their place, and which template an item gets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine._errors import ConfigError
from engine._template import (
    PromptTemplate,
    default_template_for,
    render_item,
    unknown_placeholders,
)


def test_render_fills_fields() -> None:
    template = PromptTemplate.parse("Classify this {channel} ticket:\n\n{context}\n({channel})")
    fields = {"id": "T-1", "channel": "email", "context": "My card was charged twice."}
    assert template.render(fields) == (
        "Classify this email ticket:\n\nMy card was charged twice.\n(email)"
    )
    assert template.placeholders == frozenset({"channel", "context"})
    assert template.names == ("channel", "context")


def test_doubled_braces_are_literal() -> None:
    template = PromptTemplate.parse('Answer as {{"label": "..."}} for {{{text}}}; }}{{')
    assert template.placeholders == frozenset({"text"})
    assert template.render({"text": "x"}) == 'Answer as {"label": "..."} for {x}; }{'


def test_a_template_without_placeholders() -> None:
    template = PromptTemplate.parse("Say hello.")
    assert template.placeholders == frozenset()
    assert template.render({}) == "Say hello."
    assert PromptTemplate.parse("").render({"a": 1}) == ""


def test_spaces_around_a_name_are_ignored_and_any_other_character_is_kept() -> None:
    template = PromptTemplate.parse("{ context } {rating given} {a:b} {x!r}")
    assert template.names == ("context", "rating given", "a:b", "x!r")
    fields = {"context": "c", "rating given": "4", "a:b": "ab", "x!r": "x"}
    assert template.render(fields) == "c 4 ab x"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (3, "3"),
        (2.5, "2.5"),
        (True, "true"),
        ([1, "a", None], '[1,"a",null]'),
        ({"b": {"c": [True]}}, '{"b":{"c":[true]}}'),
        ("héllo {x}", "héllo {x}"),
    ],
)
def test_non_string_values_render_as_compact_json(value: Any, text: str) -> None:
    assert PromptTemplate.parse("<{v}>").render({"v": value}) == f"<{text}>"


def test_missing_fields() -> None:
    template = PromptTemplate.parse("{a} {b} {c}")
    assert template.missing({"a": 1, "b": None, "c": ""}) == frozenset()
    assert template.missing({"b": 1}) == frozenset({"a", "c"})
    with pytest.raises(KeyError):
        template.render({"b": 1})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Classify {context", "{ at column 10 is never closed (write {{ for a literal brace)"),
        ("JSON like {a{b}", "{ at column 11 is never closed"),
        ("a } b", "} at column 3 has no matching { (write }} for a literal brace)"),
        ("ok {}", "empty {} at column 4"),
        ("ok {  }", "empty {} at column 4"),
        ("line one\nline {two", "{ at line 2, column 6 is never closed"),
        ("{x}}", "} at column 4 has no matching {"),
    ],
)
def test_malformed_templates_say_where(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PromptTemplate.parse(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith("prompt template: ")
    assert "\n" not in str(caught.value)


def test_parsed_templates_are_frozen_values() -> None:
    template = PromptTemplate.parse("{a}")
    assert template == PromptTemplate.parse("{a}")
    assert template != PromptTemplate.parse("{b}")
    with pytest.raises(AttributeError):
        template.text = "{b}"  # type: ignore[misc]


def test_unknown_placeholders_in_order_of_use() -> None:
    template = PromptTemplate.parse("{task} {review} {stars} {task} {product}")
    fields = ["id", "task", "product", "rating_given", "review"]
    assert unknown_placeholders(template, fields) == ["stars"]
    assert unknown_placeholders(PromptTemplate.parse("{b}{a}{b}"), []) == ["b", "a"]
    assert unknown_placeholders(template, [*fields, "stars"]) == []


@pytest.mark.parametrize(
    ("fields", "template"),
    [
        (["id", "prompt", "context", "customer_tier"], "{context}"),
        (["id", "text"], "{text}"),
        (["context", "text"], "{context}"),
        (
            ["id", "task", "product", "rating given", " padded", "a{b"],
            "task: {task}\nproduct: {product}\nrating given: {rating given}",
        ),
        (["id", "prompt"], "{id}"),
        (["id"], "{id}"),
    ],
)
def test_default_template(fields: list[str], template: str) -> None:
    assert default_template_for(fields) == template
    parsed = PromptTemplate.parse(template)
    assert unknown_placeholders(parsed, [*fields, "id"]) == []


def test_render_item_uses_the_run_template() -> None:
    run = PromptTemplate.parse("Tag: {text}")
    assert render_item(run, {"id": "1", "text": "Rates held"}) == "Tag: Rates held"


def test_an_items_own_prompt_wins_and_keeps_its_context() -> None:
    run = PromptTemplate.parse("Classify: {context}")
    fields = {"id": "T", "prompt": "Translate, then classify.", "context": "Hola"}
    assert render_item(run, fields) == "Translate, then classify.\n\nHola"
    fields = {"id": "T", "prompt": "Summarise {context} for {who}", "context": "C", "who": "me"}
    assert render_item(run, fields) == "Summarise C for me"
    assert render_item(run, {"id": "T", "prompt": "Just this {{literal}}"}) == "Just this {literal}"


def test_a_blank_or_non_string_own_prompt_is_ignored() -> None:
    run = PromptTemplate.parse("{context}")
    assert render_item(run, {"prompt": "  ", "context": "c"}) == "c"
    assert render_item(run, {"prompt": None, "context": "c"}) == "c"
    assert render_item(run, {"prompt": 3, "context": "c"}) == "c"


def test_render_item_reasons_are_one_line() -> None:
    run = PromptTemplate.parse("{context} {channel}")
    with pytest.raises(ValueError, match="^no field channel for the prompt template$"):
        render_item(run, {"context": "c"})
    with pytest.raises(ValueError, match="^no fields channel, context for the prompt template$"):
        render_item(run, {"id": "x"})
    with pytest.raises(ValueError, match="^the item's own prompt template: { at column 7"):
        render_item(run, {"prompt": "Reply {like this", "context": "c", "channel": "x"})


@given(st.text())
def test_escaped_text_renders_back_to_itself(text: str) -> None:
    escaped = text.replace("{", "{{").replace("}", "}}")
    assert PromptTemplate.parse(escaped).render({}) == text


@given(
    st.lists(
        st.tuples(st.text().map(lambda t: t.replace("{", "{{").replace("}", "}}")), st.integers()),
        max_size=6,
    )
)
def test_placeholders_between_any_literals(parts: list[tuple[str, int]]) -> None:
    text = "".join(f"{literal}{{f{n}}}" for literal, n in parts)
    fields = {f"f{n}": f"<{n}>" for _, n in parts}
    expected = "".join(
        literal.replace("{{", "{").replace("}}", "}") + f"<{n}>" for literal, n in parts
    )
    assert PromptTemplate.parse(text).render(fields) == expected
