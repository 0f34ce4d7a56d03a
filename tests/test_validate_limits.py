"""The size and count limits (Limits): each reported once, at the exact line that crosses it.

Each case runs twice (fixture `validate_as`): from a file path and from bytes in memory.
"""

from __future__ import annotations

import pytest

import fastrouter_batch as fb
from batchlines import OK_ANTHROPIC, OK_EMBED, OK_OPENAI, jsonl, replaced, triples, with_id


def five_requests_with_a_blank_line() -> bytes:
    lines = [with_id(OK_OPENAI, f"id{i}") for i in range(5)]
    return jsonl(lines[0], "", *lines[1:])


def test_too_many_requests_at_the_line_of_the_first_extra_request(validate_as):
    report = validate_as(five_requests_with_a_blank_line(), limits=fb.Limits(max_requests=3))
    # requests 1..5 sit on lines 1, 3, 4, 5, 6: request 4 is on line 5.
    assert triples(report) == [(5, "too_many_requests", None)]
    assert report.num_requests == 5 and report.num_lines == 6


def test_max_requests_is_inclusive(validate_as):
    assert validate_as(five_requests_with_a_blank_line(), limits=fb.Limits(max_requests=5)).ok


def test_file_too_large_at_the_line_holding_the_first_byte_over(validate_as):
    lines = [with_id(OK_OPENAI, f"id{i}") for i in range(5)]
    data = jsonl(*lines)
    size = len(lines[0]) + 1  # every line has the same length
    assert len(data) == 5 * size
    report = validate_as(data, limits=fb.Limits(max_bytes=2 * size + 5))
    assert triples(report) == [(3, "file_too_large", None)]
    assert triples(validate_as(data, limits=fb.Limits(max_bytes=len(data) - 1))) == [(5, "file_too_large", None)]
    assert validate_as(data, limits=fb.Limits(max_bytes=len(data))).ok


@pytest.mark.parametrize("content_len", [20_000, 3_000_000], ids=["within_a_block", "longer_than_a_block"])
def test_line_too_large(validate_as, content_len):
    big = replaced(with_id(OK_OPENAI, "big"), '"hi"', '"' + "x" * content_len + '"')
    data = jsonl(OK_ANTHROPIC, big, OK_OPENAI, "[1]")
    report = validate_as(data, limits=fb.Limits(max_line_bytes=10_000))
    # line numbering goes on after the skipped line
    assert triples(report) == [(2, "line_too_large", None), (4, "not_an_object", None)]
    assert f"line is {len(big)} bytes, over the 10000-byte limit" in report.issues[0].message
    assert (report.num_lines, report.num_requests, report.total_bytes) == (4, 4, len(data))
    report = validate_as(data, limits=fb.Limits(max_line_bytes=len(big)))
    assert triples(report) == [(4, "not_an_object", None)]


def test_a_bom_counts_against_max_bytes(validate_as):
    data = b"\xef\xbb\xbf" + jsonl(OK_OPENAI)
    report = validate_as(data, limits=fb.Limits(max_bytes=len(data) - 1))
    assert report.total_bytes == len(data)
    assert triples(report) == [(1, "file_too_large", None)]


def test_a_file_of_exactly_max_bytes_ending_in_an_over_long_line_without_newline(validate_as):
    big = replaced(with_id(OK_OPENAI, "big"), '"hi"', '"' + "x" * 20_000 + '"')
    data = jsonl(OK_ANTHROPIC) + big.encode()  # no final newline
    report = validate_as(data, limits=fb.Limits(max_line_bytes=10_000, max_bytes=len(data)))
    assert report.total_bytes == len(data)
    assert triples(report) == [(2, "line_too_large", None)]


def test_file_level_checks_span_blocks(validate_as):
    # ~3.5 MB: several of the validator's 1 MiB blocks, checked in parallel and merged.
    lines = [with_id(OK_OPENAI, f"id-{n}") + " " * 150 for n in range(1, 20_001)]
    lines[0] = OK_OPENAI  # id "a"
    lines[14_999] = OK_OPENAI  # line 15,000 repeats it
    lines[17_999] = with_id(OK_EMBED, "emb")  # line 18,000: the odd url out
    text = "\r\n".join(lines[:10_000]) + "\r\n\r\n" + "\n".join(lines[10_000:]) + "\n"
    # the blank line makes file line numbers one more than list indices from 10,001 on
    report = validate_as(text.encode(), limits=fb.Limits(max_requests=12_345))
    assert triples(report) == [
        (12_347, "too_many_requests", None),
        (15_001, "duplicate_custom_id", "custom_id"),
        (18_001, "url_mismatch", "url"),
    ]
    assert "line 1 and again on line 15001" in report.issues[1].message
    assert (report.num_lines, report.num_requests) == (20_001, 20_000)
    assert report.urls == {"/v1/chat/completions": 19_999, "/v1/embeddings": 1}


def test_limits_defaults_repr_and_equality():
    limits = fb.Limits()
    assert (limits.max_requests, limits.max_bytes, limits.max_line_bytes, limits.max_issues) == (
        50_000,
        200_000_000,
        8 * 1024 * 1024,
        100_000,
    )
    assert repr(limits) == "Limits(max_requests=50000, max_bytes=200000000, max_line_bytes=8388608, max_issues=100000)"
    assert fb.Limits(max_requests=3) == fb.Limits(max_requests=3)
    assert fb.Limits(max_requests=3) != fb.Limits(max_requests=4)
    with pytest.raises(ValueError, match="max_requests must be at least 1"):
        fb.Limits(max_requests=0)
