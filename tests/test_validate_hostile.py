"""Hostile inputs: none may crash the validator; each gives a report with the right code
and line. Bad sources (missing file, directory, wrong type) raise the right Python error.
"""

from __future__ import annotations

import json
import random

import pytest

import fastrouter_batch as fb
from batchlines import OK_ANTHROPIC, OK_OPENAI, jsonl, replaced, triples, with_id


def content(text_json: str) -> str:
    """OK_OPENAI (id "c") with the message content replaced by a raw JSON string literal."""
    return replaced(with_id(OK_OPENAI, "c"), '"hi"', text_json)


def test_empty_file(validate_as):
    report = validate_as(b"")
    assert report.ok
    assert (report.num_lines, report.num_requests, report.total_bytes) == (0, 0, 0)
    assert report.providers == {} and report.url is None


def expected_whole_line_codes(data: bytes) -> list[tuple[int, str, None]]:
    """What the validator must say about each line of arbitrary bytes, decided in Python."""
    out = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if all(c in b" \t\r" for c in line):
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            out.append((number, "invalid_utf8", None))
            continue
        try:
            value = json.loads(text, parse_constant=lambda c: 1 / 0)  # NaN/Infinity are not JSON
        except (ValueError, ZeroDivisionError, RecursionError):
            out.append((number, "invalid_json", None))
            continue
        assert not isinstance(value, dict), "the seed made a JSON object; pick another seed"
        out.append((number, "not_an_object", None))
    return out


def test_one_megabyte_of_random_bytes(validate_as):
    # Seeded, so a failure can be replayed; the bytes are as arbitrary as os.urandom's.
    data = random.Random(20241124).randbytes(1 << 20)
    assert not data.startswith(b"\xef\xbb\xbf")
    expected = expected_whole_line_codes(data)
    report = validate_as(data)
    assert report.total_bytes == len(data)
    assert report.num_lines == data.count(b"\n") + 1
    assert triples(report) == expected
    assert {code for _, code, _ in expected} >= {"invalid_utf8"}
    assert report.total_issues == len(expected) > 3000


def test_ten_megabyte_line_is_too_large_under_default_limits(validate_as):
    big = content('"' + "x" * 10_000_000 + '"')
    data = jsonl(OK_ANTHROPIC, big)
    report = validate_as(data)
    assert triples(report) == [(2, "line_too_large", None)]
    assert f"line is {len(big)} bytes, over the 8388608-byte limit" in report.issues[0].message
    assert (report.num_lines, report.num_requests, report.total_bytes) == (2, 2, len(data))


def test_ten_megabyte_line_within_a_raised_line_limit_is_a_normal_request(validate_as):
    data = jsonl(OK_ANTHROPIC, content('"' + "x" * 10_000_000 + '"'))
    report = validate_as(data, limits=fb.Limits(max_line_bytes=20_000_000))
    assert report.ok, report.issues
    assert report.num_requests == 2
    assert report.providers == {"anthropic": 1, "openai": 1}
    # and the content is really checked: a raw control character deep inside is found
    bad = jsonl(OK_ANTHROPIC, content('"' + "x" * 9_000_000 + "\x01" + "x" * 1_000_000 + '"'))
    report = validate_as(bad, limits=fb.Limits(max_line_bytes=20_000_000))
    assert triples(report) == [(2, "invalid_json", None)]


@pytest.mark.parametrize(
    "line",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        content('"hi","deep":' + "[" * 100_000 + "]" * 100_000),
    ],
    ids=["open_arrays", "closed_arrays", "objects", "inside_a_request"],
)
def test_100k_deep_nesting_is_invalid_json(validate_as, line):
    report = validate_as(jsonl(OK_OPENAI, line, OK_ANTHROPIC))
    assert triples(report) == [(2, "invalid_json", None)]
    assert "nesting deeper than 128 levels" in report.issues[0].message


def test_nesting_limit_is_exactly_128_levels(validate_as):
    # line object, body, messages, message: 4 levels, so 124 more arrays make 128.
    def deep(n: int) -> str:
        return content('"hi","deep":' + "[" * n + "]" * n)

    assert validate_as(jsonl(OK_OPENAI, deep(124))).ok
    assert triples(validate_as(jsonl(OK_OPENAI, deep(125)))) == [(2, "invalid_json", None)]


@pytest.mark.parametrize(
    "bad",
    [
        b'"\xc3\x28"',  # a 2-byte sequence cut short
        b'"\xc0\xaf"',  # overlong encoding of '/'
        b'"\xed\xa0\x80"',  # an encoded surrogate
        b'"\xf4\x90\x80\x80"',  # beyond U+10FFFF
    ],
    ids=["cut_short", "overlong", "surrogate", "too_high"],
)
def test_invalid_utf8_in_the_middle_of_a_valid_file(validate_as, bad):
    line = content("@").encode().replace(b"@", bad)
    report = validate_as(jsonl(OK_OPENAI, line, OK_ANTHROPIC))
    assert triples(report) == [(2, "invalid_utf8", None)]
    assert report.num_requests == 3


def test_truncated_utf8_at_the_end_of_the_file(validate_as):
    report = validate_as(jsonl(OK_OPENAI) + b'{"x":"\xe2\x82')
    assert triples(report) == [(2, "invalid_utf8", None)]


def test_nul_bytes(validate_as):
    data = jsonl(OK_OPENAI, b"\x00" * 100, content('"a\x00b"').encode(), with_id(OK_ANTHROPIC, "ok2"))
    report = validate_as(data)
    assert triples(report) == [(2, "invalid_json", None), (3, "invalid_json", None)]


def test_escaped_nul_is_fine(validate_as):
    assert validate_as(jsonl(OK_OPENAI, content('"a\\u0000b"'))).ok


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud800x"])
def test_lone_surrogate_escapes_are_invalid_json(validate_as, escape):
    report = validate_as(jsonl(OK_OPENAI, content('"' + escape + '"')))
    assert triples(report) == [(2, "invalid_json", None)]
    assert "surrogate" in report.issues[0].message


def test_a_surrogate_pair_escape_is_fine(validate_as):
    assert validate_as(jsonl(OK_OPENAI, content('"\\ud83d\\ude00"'))).ok


def test_a_missing_file_raises_file_not_found_naming_the_path(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError) as info:
        fb.validate(path)
    assert info.value.filename == str(path)
    assert str(path) in str(info.value)


def test_a_directory_raises_os_error(tmp_path):
    with pytest.raises(OSError) as info:
        fb.validate(tmp_path)
    assert not isinstance(info.value, FileNotFoundError)
    assert info.value.filename == str(tmp_path)


@pytest.mark.parametrize("source", [123, None, 1.5, object()])
def test_a_source_of_the_wrong_type_raises_type_error(source):
    with pytest.raises(TypeError, match="validate\\(\\) takes a path"):
        fb.validate(source)
