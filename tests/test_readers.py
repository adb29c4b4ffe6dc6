"""Input readers on good and bad input: every bad line is one InvalidItem, the rest still runs."""

from __future__ import annotations

import io
import os
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine._errors import ConfigError, InputError
from engine._items import InvalidItem, Item
from engine.readers import _json_array, check_input, count_items, detect_format, read_items

Write = Callable[[str, bytes], str]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def write(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return write


def read(path: str, fmt: str | None = None, **options: Any) -> list[Item | InvalidItem]:
    return list(read_items(path, fmt, **options))


def invalid(items: list[Item | InvalidItem]) -> list[tuple[int, str]]:
    return [(item.line, item.reason) for item in items if isinstance(item, InvalidItem)]


def valid_ids(items: list[Item | InvalidItem]) -> list[str]:
    return [item.id for item in items if isinstance(item, Item)]


# --- choosing the format ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("A.JSONL", "jsonl"),
        ("a.csv", "csv"),
        ("a.txt", "txt"),
        ("notes.md", "txt"),
        ("a.json", "json"),
    ],
)
def test_format_follows_the_extension(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_format_option_overrides_the_extension_and_knows_aliases() -> None:
    assert detect_format("items.txt", "csv") == "csv"
    assert detect_format("items.dat", "NDJSON") == "jsonl"
    assert detect_format("items.dat", "md") == "txt"


def test_stdin_is_jsonl_unless_told() -> None:
    assert detect_format("-") == "jsonl"
    assert detect_format("-", "csv") == "csv"


def test_unknown_extension_names_the_path_and_the_formats() -> None:
    with pytest.raises(InputError) as caught:
        detect_format("data/items.xlsx")
    message = str(caught.value)
    assert "data/items.xlsx" in message and "--format" in message
    assert all(fmt in message for fmt in ("jsonl", "csv", "txt", "json"))
    assert "\n" not in message


def test_unknown_format_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'xml'"):
        detect_format("a.jsonl", "xml")


# --- inputs that cannot be read at all ---------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match=f"not found: {path}$"):
        check_input(path)
    with pytest.raises(InputError, match="not found"):
        read_items(path)  # raised at the call, before any item is pulled


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        check_input(str(tmp_path))
    with pytest.raises(InputError, match="is a directory"):
        read_items(str(tmp_path), "jsonl")


def test_empty_file(write: Write) -> None:
    path = write("empty.jsonl", b"")
    with pytest.raises(InputError, match=f"empty: {path}$"):
        check_input(path)


def test_unreadable_file(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("secret.jsonl", b'{"id": 1}\n')
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: p != path and real_access(p, mode))
    with pytest.raises(InputError, match="permission denied"):
        check_input(path)


def test_stdin_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO()))
    with pytest.raises(InputError, match="stdin is a terminal"):
        check_input("-")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("blank.jsonl", b"\n  \n\t\r\n"),
        ("blank.txt", b"\n   \n"),
        ("header.csv", b"id,text\n\n"),
        ("nothing.json", b"[ ]\n"),
    ],
)
def test_input_with_no_items(write: Write, name: str, data: bytes) -> None:
    path = write(name, data)
    with pytest.raises(InputError, match=f"^no items in {path}"):
        read(path)


def test_every_line_invalid_is_not_an_error(write: Write) -> None:
    path = write("bad.jsonl", b"{oops\n[1]\n\xff\n")
    items = read(path)
    assert [type(item) for item in items] == [InvalidItem] * 3
    assert [item.line for item in items] == [1, 2, 3]


# --- JSONL -------------------------------------------------------------------------------


def test_jsonl_keeps_every_field_in_order(write: Write) -> None:
    record = {"context": "c", "id": "a-1", "prompt": "p", "zeta": 1, "alpha": [1, {"b": None}]}
    path = write("items.jsonl", orjson.dumps(record) + b"\n")
    [item] = read(path)
    assert isinstance(item, Item)
    assert (item.id, item.line, item.prompt) == ("a-1", 1, "p")
    assert list(item.fields.items()) == list(record.items())


def test_jsonl_lines_count_blank_lines_crlf_and_a_bom(write: Write) -> None:
    data = b'\xef\xbb\xbf{"id": "a"}\r\n\r\n   \n{"id": "b"}\n\n{"id": "c"}'
    items = read(write("items.jsonl", data))
    assert [(item.id, item.line) for item in items] == [("a", 1), ("b", 4), ("c", 6)]


def test_integer_ids_become_strings(write: Write) -> None:
    [item] = read(write("items.jsonl", b'{"id": 42, "x": 1}\n'))
    assert item.id == "42"
    assert isinstance(item, Item) and item.fields["id"] == 42


def test_missing_ids_use_the_line_number_with_one_warning(write: Write) -> None:
    warnings: list[str] = []
    data = b'{"x": 1}\n{"id": "named"}\n\n{"x": 2, "y": 3}\n'
    path = write("items.jsonl", data)
    items = read(path, on_warning=warnings.append)
    assert [item.id for item in items] == ["1", "named", "4"]
    assert isinstance(items[2], Item)
    assert list(items[2].fields.items()) == [("id", "4"), ("x", 2), ("y", 3)]
    assert len(warnings) == 1
    assert path in warnings[0] and "line 1" in warnings[0] and "\n" not in warnings[0]


def test_malformed_json_says_where(write: Write) -> None:
    items = read(write("items.jsonl", b'{"id": "a"}\n{"id": "b", "x": tru}\n{"id": "c"}\n'))
    assert valid_ids(items) == ["a", "c"]
    [(line, reason)] = invalid(items)
    assert line == 2
    assert reason.startswith("malformed JSON") and "column 18" in reason
    assert items[1].id == "line-2"


@pytest.mark.parametrize(
    ("line", "kind"),
    [(b"[1, 2]", "array"), (b'"text"', "string"), (b"3", "number"), (b"null", "null")],
)
def test_a_line_that_is_not_an_object(write: Write, line: bytes, kind: str) -> None:
    items = read(write("items.jsonl", line + b'\n{"id": "ok"}\n'))
    assert invalid(items) == [(1, f"expected a JSON object, got {kind}")]
    assert valid_ids(items) == ["ok"]


def test_invalid_utf8_spoils_only_its_line(write: Write) -> None:
    data = '{"id": "a", "t": "café"}\n'.encode() + b'{"id": "b", "t": "caf\xe9"}\n{"id": "c"}\n'
    items = read(write("items.jsonl", data))
    assert valid_ids(items) == ["a", "c"]
    assert invalid(items) == [(2, "invalid UTF-8 at byte 22")]


def test_over_long_line_is_invalid_and_the_next_line_reads(write: Write) -> None:
    limit = 100
    at_limit = b'{"id": "edge", "pad": "' + b"x" * (limit - 26) + b'"}\n'
    assert len(at_limit) == limit
    data = b'{"id": "a"}\n' + b'{"id": "long", "pad": "' + b"y" * 1000 + b'"}\n' + at_limit
    items = read(write("items.jsonl", data), max_line_bytes=limit)
    assert valid_ids(items) == ["a", "edge"]
    assert invalid(items) == [(2, "line longer than 100 bytes")]


def test_over_long_line_is_read_in_bounded_memory(write: Write) -> None:
    huge = 20_000_000
    path = write("items.jsonl", b'{"pad": "' + b"z" * huge + b'"}\n{"id": "after"}\n')
    tracemalloc.start()
    try:
        items = read(path, max_line_bytes=10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert valid_ids(items) == ["after"]
    assert peak < huge / 20


def test_over_long_last_line_without_newline(write: Write) -> None:
    items = read(
        write("items.jsonl", b'{"id": "a"}\n{"id": "' + b"b" * 500 + b'"}'),
        None,
        max_line_bytes=100,
    )
    assert invalid(items) == [(2, "line longer than 100 bytes")]


def test_duplicate_id(write: Write) -> None:
    data = b'{"id": "a", "n": 1}\n{"id": "b"}\n{"id": "a", "n": 2}\n{"id": 7}\n{"id": "7"}\n'
    items = read(write("items.jsonl", data))
    assert valid_ids(items) == ["a", "b", "7"]
    assert invalid(items) == [(3, "duplicate id 'a'"), (5, "duplicate id '7'")]
    assert isinstance(items[0], Item) and items[0].fields["n"] == 1


def test_an_id_taken_by_a_numbered_item_names_both_places(write: Write) -> None:
    """Line 2 has no id, so it is numbered '2'; line 4 asks for 2 explicitly."""
    path = write("items.jsonl", b'{"id": "a"}\n{"x": 1}\n{"id": "b"}\n{"id": 2}\n')
    items = read(path)
    assert valid_ids(items) == ["a", "2", "b"]
    assert invalid(items) == [
        (4, f"duplicate id '2' ({path}:4): {path}:2 has no 'id' and was numbered 2 by its line")
    ]


def test_a_numbered_item_whose_number_is_taken_says_it_was_numbered(write: Write) -> None:
    path = write("items.jsonl", b'{"id": "3"}\n{"id": "b"}\n{"x": 1}\n')
    assert invalid(read(path)) == [
        (
            3,
            f"duplicate id '3': {path}:3 has no 'id' and was numbered by its line, which an "
            "earlier item has as its id",
        )
    ]


def test_a_duplicate_id_of_thousands_of_digits_is_a_plain_duplicate(write: Write) -> None:
    huge = "7" * 5000
    path = write("items.jsonl", f'{{"id": "{huge}"}}\n{{"id": "{huge}"}}\n'.encode())
    assert invalid(read(path)) == [(2, f"duplicate id {huge[:60]!r}...")]


def test_a_numbered_element_of_a_json_array_is_named_by_its_element(write: Write) -> None:
    path = write("items.json", b'["first", {"id": "1"}]')
    assert invalid(read(path)) == [
        (
            2,
            f"duplicate id '1' ({path} element 2): {path} element 1 has no 'id' and was "
            "numbered 1 by its element",
        )
    ]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ids=st.lists(st.none() | st.integers(1, 12), min_size=1, max_size=12))
def test_a_duplicate_says_it_was_numbered_exactly_when_a_number_clashed(
    write: Write, ids: list[int | None]
) -> None:
    """Items with and without ids (None: numbered by its line), ids among the line numbers."""
    path = write(
        "items.jsonl", b"".join(orjson.dumps({} if i is None else {"id": i}) + b"\n" for i in ids)
    )
    holders: dict[str, bool] = {}  # id -> whether its holder was numbered
    expected: list[tuple[int, bool]] = []  # (line, the message says numbered)
    for line, raw in enumerate(ids, 1):
        item_id, numbered = (str(line), True) if raw is None else (str(raw), False)
        if item_id in holders:
            expected.append((line, numbered or holders[item_id]))
        else:
            holders[item_id] = numbered
    found = [(line, "was numbered" in reason) for line, reason in invalid(read(path))]
    assert found == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'""', "blank id"),
        (b'"  \\t"', "blank id"),
        (b"null", "id must be a string or an integer, not null"),
        (b"1.5", "id must be a string or an integer, not number"),
        (b"true", "id must be a string or an integer, not boolean"),
        (b"[1]", "id must be a string or an integer, not array"),
    ],
)
def test_unusable_ids(write: Write, value: bytes, reason: str) -> None:
    items = read(write("items.jsonl", b'{"id": ' + value + b'}\n{"id": "ok"}\n'))
    assert invalid(items) == [(1, reason)]
    assert valid_ids(items) == ["ok"]


def test_invalid_item_ids_never_collide(write: Write) -> None:
    data = b'{"id": "line-2"}\n{bad\n{"id": "line-2~2"}\n{"id": "line-4"}\n'
    items = read(write("items.jsonl", data))
    assert [item.id for item in items] == ["line-2", "line-2~2", "line-3", "line-4"]
    assert invalid(items) == [
        (2, "malformed JSON: unexpected character, expected a string key at column 2"),
        (3, "duplicate id 'line-2~2'"),
    ]


def test_reading_stops_cleanly_when_abandoned(write: Write) -> None:
    path = write("items.jsonl", b'{"id": "a"}\n{"id": "b"}\n')
    items = read_items(path)
    assert next(items).id == "a"
    items.close()  # the file is closed; a ResourceWarning would fail the test


# --- CSV ---------------------------------------------------------------------------------


def test_csv_header_names_the_fields(write: Write) -> None:
    data = b"id, task ,product\nr1,Score it,Lamp\nr2,List defects,Tent\n"
    items = read(write("reviews.csv", data))
    assert [(item.id, item.line) for item in items] == [("r1", 2), ("r2", 3)]
    assert isinstance(items[0], Item)
    assert list(items[0].fields.items()) == [
        ("id", "r1"),
        ("task", "Score it"),
        ("product", "Lamp"),
    ]


def test_csv_quoting_and_embedded_newlines_keep_line_numbers(write: Write) -> None:
    data = (
        b"id,review\n"
        b'1,"Great, really great"\n'
        b'2,"first line\nsecond line\r\nthird, with ""quotes"""\n'
        b"3,plain\n"
        b'4,"one\ntwo",extra\n'
        b'5,5" screen\n'
    )
    items = read(write("reviews.csv", data))
    assert [(item.id, item.line) for item in items if isinstance(item, Item)] == [
        ("1", 2),
        ("2", 3),
        ("3", 6),
        ("5", 9),
    ]
    assert isinstance(items[1], Item)
    assert items[1].fields["review"] == 'first line\nsecond line\r\nthird, with "quotes"'
    assert items[4].fields["review"] == '5" screen'  # type: ignore[union-attr]
    assert invalid(items) == [(7, "expected 2 columns, got 3")]


def test_csv_wrong_column_count(write: Write) -> None:
    items = read(write("a.csv", b"id,a,b\n1,x,y\n2,x\n3,x,y,z\n4,x,y\n"))
    assert valid_ids(items) == ["1", "4"]
    assert invalid(items) == [(3, "expected 3 columns, got 2"), (4, "expected 3 columns, got 4")]
    assert [item.id for item in items if isinstance(item, InvalidItem)] == ["line-3", "line-4"]


def test_csv_blank_rows_are_skipped(write: Write) -> None:
    items = read(write("a.csv", b"id,a\n\n1,x\n,\n  ,  \n2,y\n"))
    assert [(item.id, item.line) for item in items] == [("1", 3), ("2", 6)]


def test_csv_invalid_utf8_and_long_lines(write: Write) -> None:
    data = b'id,a\n1,caf\xe9\n2,"ok\nbut \xff here"\n3,' + b"x" * 200 + b"\n4,fine\n"
    items = read(write("a.csv", data), max_line_bytes=100)
    assert valid_ids(items) == ["4"]
    assert invalid(items) == [
        (2, "invalid UTF-8 at byte 6"),
        (3, "invalid UTF-8 at byte 5 on line 4 of this record"),
        (5, "line longer than 100 bytes"),
    ]


def test_csv_broken_quoting(write: Write) -> None:
    items = read(write("a.csv", b'id,a\n1,"ab"c\n2,ok\n3,"never closed\n'))
    assert valid_ids(items) == ["2"]
    assert invalid(items) == [
        (2, "bad CSV: ',' expected after '\"'"),
        (4, "bad CSV: unexpected end of data"),
    ]


def test_csv_without_id_column_warns_once(write: Write) -> None:
    warnings: list[str] = []
    items = read(write("a.csv", b"text\nhello\nworld\n"), on_warning=warnings.append)
    assert [item.id for item in items] == ["2", "3"]
    assert len(warnings) == 1


def test_csv_blank_id(write: Write) -> None:
    items = read(write("a.csv", b"id,a\n,x\n  ,y\n1,z\n"))
    assert invalid(items) == [(2, "blank id"), (3, "blank id")]


def test_csv_bad_header(write: Write) -> None:
    with pytest.raises(InputError, match="duplicate column 'a'"):
        read(write("a.csv", b"id,a,a \n1,2,3\n"))
    with pytest.raises(InputError, match=r"CSV header .*line 1.*invalid UTF-8"):
        read(write("b.csv", b"id,\xff\n1,2\n"))


# --- TXT and Markdown --------------------------------------------------------------------


def test_txt_one_item_per_non_blank_line(write: Write) -> None:
    warnings: list[str] = []
    data = b"First headline\n\n   \n  Second, indented  \r\nThird\xff\nlast without newline"
    items = read(write("h.txt", data), on_warning=warnings.append)
    assert [(item.id, item.line) for item in items if isinstance(item, Item)] == [
        ("1", 1),
        ("4", 4),
        ("6", 6),
    ]
    assert isinstance(items[1], Item)
    assert list(items[1].fields.items()) == [("id", "4"), ("text", "Second, indented")]
    assert invalid(items) == [(5, "invalid UTF-8 at byte 6")]
    assert warnings == []  # a text line cannot carry an id: numbering it is no surprise


def test_markdown_reads_as_text(write: Write) -> None:
    items = read(write("tasks.md", b"# Tasks\n\n- write the report\n"))
    assert [item.fields["text"] for item in items if isinstance(item, Item)] == [
        "# Tasks",
        "- write the report",
    ]


# --- JSON array --------------------------------------------------------------------------


def test_json_array_of_objects_and_strings(write: Write) -> None:
    data = (
        b'[\n  {"id": "a", "t": "commas, [brackets] and {braces}", "n": {"x": [1, {"y": 2}]}},\n'
        b'  "a bare string \\" with an escaped quote",\n'
        b'  {"id": "c", "t": "back\\\\slash\\\\"}\n]\n'
    )
    items = read(write("items.json", data))
    assert [(item.id, item.line) for item in items] == [("a", 1), ("2", 2), ("c", 3)]
    assert isinstance(items[0], Item) and items[0].fields["n"] == {"x": [1, {"y": 2}]}
    assert isinstance(items[1], Item)
    assert items[1].fields["text"] == 'a bare string " with an escaped quote'
    assert isinstance(items[2], Item) and items[2].fields["t"] == "back\\slash\\"


def test_json_array_bad_elements(write: Write) -> None:
    data = b'[{"id": "a"}, 3, {"id": tru}, , null, {"id": "f"},]'
    items = read(write("items.json", data))
    assert valid_ids(items) == ["a", "f"]
    assert invalid(items) == [
        (2, "expected an object or a string, got number"),
        (3, "malformed JSON: invalid literal, expected 'true' at character 8 of the element"),
        (4, "empty array element (a stray comma?)"),
        (5, "expected an object or a string, got null"),
        (7, "empty array element (a stray comma?)"),
    ]
    assert [item.id for item in items if isinstance(item, InvalidItem)][:2] == [
        "element-2",
        "element-3",
    ]


def test_json_array_truncated_or_followed_by_junk(write: Write) -> None:
    items = read(write("cut.json", b'[{"id": "a"}, {"id": "b"}, {"id": "c", "t": "unfini'))
    assert valid_ids(items) == ["a", "b"]
    assert [line for line, _ in invalid(items)] == [3]
    items = read(write("junk.json", b'[{"id": "a"}]\n{"id": "b"}\n'))
    assert valid_ids(items) == ["a"]
    assert invalid(items) == [(2, "unexpected data after the end of the JSON array")]


def test_json_that_is_not_an_array(write: Write) -> None:
    with pytest.raises(InputError, match="not a JSON array.*--format jsonl"):
        read(write("one.json", b'{"id": "a"}\n{"id": "b"}\n'))


def test_json_array_over_long_element(write: Write) -> None:
    data = b'[{"id": "a"}, {"id": "b", "pad": "' + b"x" * 300_000 + b'"}, {"id": "c"}]'
    items = read(write("items.json", data), max_line_bytes=1000)
    assert valid_ids(items) == ["a", "c"]
    assert invalid(items) == [(2, "array element longer than 1000 bytes")]


def test_json_array_across_many_chunks(write: Write) -> None:
    elements = [
        {"id": f"e{n}", "t": 'quote " backslash \\ comma , bracket ] brace }' * (n % 7), "n": n}
        for n in range(3000)
    ]
    data = orjson.dumps(elements, option=orjson.OPT_INDENT_2)
    assert len(data) > 8 * 65536
    items = read(write("big.json", data))
    assert [dict(item.fields) for item in items] == elements
    assert count_items(write("big2.json", data)) == 3000


@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
def test_json_array_split_at_every_byte(
    write: Write, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(_json_array, "_CHUNK", chunk)
    elements: list[Any] = [
        {"id": "a", "t": 'q\\" \\\\ , ] } [ {'},
        "s\\\\",
        {"id": "b", "n": [[1], {"x": "]"}]},
    ]
    data = b"\xef\xbb\xbf " + orjson.dumps(elements) + b" \n"
    items = read(write("small.json", data))
    assert [item.fields.get("t", item.fields.get("text")) for item in items] == [
        elements[0]["t"],
        elements[1],
        None,
    ]
    assert [item.id for item in items] == ["a", "2", "b"]


# --- stdin -------------------------------------------------------------------------------


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'{"id": "a"}\nnot json\n{"id": "b"}\n'))
    monkeypatch.setattr(sys, "stdin", stdin)
    items = read("-")
    assert valid_ids(items) == ["a", "b"]
    assert invalid(items)[0][0] == 2
    assert not stdin.closed  # borrowed, not closed
    assert count_items("-") is None


def test_stdin_with_a_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"id,a\n1,x\n")))
    assert valid_ids(read("-", "csv")) == ["1"]


def test_empty_stdin_has_no_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    with pytest.raises(InputError, match="^no items in stdin$"):
        read("-")


# --- counting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.jsonl", b'{"id": 1}\n\n{bad\n\xff\n', 3),
        ("a.txt", b"one\n\n two\n", 2),
        ("a.csv", b'id,a\n1,"x\ny"\n\n2,z\n', 2),
        ("a.json", b'[{"id": 1}, "two", 3]', 3),
    ],
)
def test_count_items_matches_what_is_read(
    write: Write, name: str, data: bytes, expected: int
) -> None:
    path = write(name, data)
    assert count_items(path) == expected == len(read(path))


def test_sample_data_reads_cleanly() -> None:
    root = Path(__file__).resolve().parents[1] / "sample_data"
    for name, size in (("tickets.jsonl", 60), ("reviews.csv", 50), ("headlines.txt", 40)):
        items = read(str(root / name))
        assert len(items) == size == count_items(str(root / name))
        assert all(isinstance(item, Item) for item in items)


# --- property: good lines survive, each bad line is reported where it is -----------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_records = st.dictionaries(
    st.text(max_size=8).filter(lambda key: key != "id"), _json_values, max_size=4
)
_LIMIT = 4096
_CORRUPTIONS = {
    "truncated": lambda line: line[: max(1, len(line) // 2)].rstrip(b"}") or b"{",
    "not utf-8": lambda line: line[:-1] + b'\xff"}' if line.endswith(b"}") else b"\xff",
    "not an object": lambda line: b"[" + line + b"]",
    "too long": lambda line: b'{"pad": "' + b"x" * _LIMIT + b'"}',
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(_records, min_size=1, max_size=25),
    corrupt=st.lists(st.sampled_from([None, None, None, *_CORRUPTIONS]), min_size=25, max_size=25),
    blanks=st.lists(st.booleans(), min_size=25, max_size=25),
)
def test_good_lines_survive_and_bad_lines_are_reported(
    write: Write, records: list[dict[str, Any]], corrupt: list[str | None], blanks: list[bool]
) -> None:
    lines: list[bytes] = []
    expected: list[tuple[str, int, dict[str, Any] | None]] = []
    for n, record in enumerate(records):
        if blanks[n]:
            lines.append(b"  ")
        full = {"id": f"item-{n}", **record}
        line = orjson.dumps(full)
        kind = corrupt[n]
        if kind is None:
            expected.append(("ok", len(lines) + 1, full))
            lines.append(line)
        else:
            expected.append(("bad", len(lines) + 1, None))
            lines.append(_CORRUPTIONS[kind](line))
    items = read(write("prop.jsonl", b"\n".join(lines) + b"\n"), max_line_bytes=_LIMIT)
    got = [
        ("ok", item.line, dict(item.fields)) if isinstance(item, Item) else ("bad", item.line, None)
        for item in items
    ]
    assert got == expected


def _tickets(prefix: str, count: int) -> bytes:
    return b"".join(
        orjson.dumps({"id": f"{prefix}{i:05d}", "context": f"{prefix} {i}"}) + b"\n"
        for i in range(count)
    )


@pytest.mark.parametrize("change", ["rewrite", "append"])
def test_an_input_changed_while_it_is_read_stops_the_reading(tmp_path: Path, change: str) -> None:
    """Rewritten in place (or appended to) mid-read, the file would mix two inputs in one run:
    reading stops with one line within a few dozen items of the change."""
    source = tmp_path / "items.jsonl"
    source.write_bytes(_tickets("t", 20_000))
    read: list[str] = []
    with pytest.raises(InputError, match="items.jsonl changed while the run read it"):
        for item in read_items(str(source)):
            read.append(item.id)
            if len(read) == 2_000:
                if change == "rewrite":
                    source.write_bytes(_tickets("z", 20_000))
                else:
                    with source.open("ab") as handle:
                        handle.write(_tickets("a", 10))
    assert 2_000 <= len(read) <= 2_000 + 64


def test_an_input_replaced_by_a_new_file_is_read_as_it_was(tmp_path: Path) -> None:
    """A new file renamed over the path leaves the open one whole: nothing mixes."""
    source, new = tmp_path / "items.jsonl", tmp_path / "new.jsonl"
    source.write_bytes(_tickets("t", 5_000))
    new.write_bytes(_tickets("z", 5_000))
    ids = []
    for item in read_items(str(source)):
        ids.append(item.id)
        if len(ids) == 100:
            new.replace(source)
    assert ids == [f"t{i:05d}" for i in range(5_000)]
