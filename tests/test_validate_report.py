"""The report around the codes: counts per provider/model/url, file shapes, the providers
option, issue caps, summary(), raise_for_errors(), to_dict() and reprs.
"""

from __future__ import annotations

import json
import re

import pytest

import fastrouter_batch as fb
from batchlines import OK_ANTHROPIC, OK_EMBED, OK_OPENAI, jsonl, replaced, triples, with_id


def test_bom_crlf_blank_lines_and_missing_final_newline_are_accepted(validate_as):
    data = ("\ufeff" + OK_OPENAI + "\r\n\r\n   \n" + OK_ANTHROPIC).encode()
    report = validate_as(data)
    assert report.ok, report.issues
    assert (report.num_lines, report.num_requests, report.total_bytes) == (4, 2, len(data))


def test_counts_per_provider_model_and_url(validate_as):
    nano = replaced(with_id(OK_OPENAI, "c"), "openai/gpt-4.1", "openai/gpt-4.1-nano")
    report = validate_as(jsonl(OK_OPENAI, OK_ANTHROPIC, nano, with_id(OK_OPENAI, "d")))
    assert report.ok, report.issues
    assert report.providers == {"openai": 3, "anthropic": 1}
    assert report.models == {"openai/gpt-4.1": 2, "anthropic/claude-4.5-sonnet": 1, "openai/gpt-4.1-nano": 1}
    assert report.urls == {"/v1/chat/completions": 4}
    assert report.url == "/v1/chat/completions"


def test_the_file_url_is_the_most_common_then_the_first(validate_as):
    mixed = validate_as(jsonl(OK_EMBED, OK_OPENAI, OK_ANTHROPIC))
    assert mixed.urls == {"/v1/embeddings": 1, "/v1/chat/completions": 2}
    assert mixed.url == "/v1/chat/completions"
    tie = validate_as(jsonl(OK_EMBED, OK_OPENAI))
    assert tie.url == "/v1/embeddings"
    assert triples(tie) == [(2, "url_mismatch", "url")]
    assert validate_as(b"").url is None


def test_providers_argument_allows_an_extra_provider(validate_as):
    gemini = OK_OPENAI.replace("openai", "gemini")
    data = jsonl(OK_ANTHROPIC, gemini)
    assert triples(validate_as(data)) == [(2, "unknown_provider", "provider")]
    # The list adds to the built-in providers (as the README says), naming them or not.
    for providers in (["gemini"], ["openai", "anthropic", "gemini"], ("gemini", "gemini")):
        report = validate_as(data, providers=providers)
        assert report.ok, (providers, report.issues)
        assert report.providers == {"anthropic": 1, "gemini": 1}
    # Naming only a built-in one leaves the other built-in accepted, and gemini unknown.
    assert triples(validate_as(data, providers=["openai"])) == [(2, "unknown_provider", "provider")]
    assert triples(validate_as(data, providers=[])) == [(2, "unknown_provider", "provider")]


def test_str_path_and_bytearray_sources(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_bytes(jsonl(OK_OPENAI, "[1]"))
    assert triples(fb.validate(str(path))) == [(2, "not_an_object", None)]
    assert triples(fb.validate(bytearray(path.read_bytes()))) == [(2, "not_an_object", None)]


def test_max_issues_caps_details_but_counts_everything(validate_as):
    report = validate_as(b"nope\n" * 100, limits=fb.Limits(max_issues=5))
    assert [(i.line, i.code) for i in report.issues] == [(n, "invalid_json") for n in range(1, 6)]
    assert report.issue_counts == {"invalid_json": 100}
    assert report.total_issues == 100
    assert report.truncated is True
    full = validate_as(b"nope\n" * 100)
    assert (len(full.issues), full.total_issues, full.truncated) == (100, 100, False)


def test_counts_mix_codes(validate_as):
    data = jsonl(OK_OPENAI, "nope", "[1]", OK_OPENAI, "nope")
    report = validate_as(data, limits=fb.Limits(max_issues=2))
    assert report.issue_counts == {"invalid_json": 2, "not_an_object": 1, "duplicate_custom_id": 1}
    assert report.total_issues == 4
    assert report.truncated


@pytest.mark.parametrize("max_issues", [1, 2])
def test_truncated_issues_are_the_first_ones_in_line_order(validate_as, max_issues):
    # A duplicate id (line 2) and a url mismatch (line 3) come before the bad JSON on
    # line 5: kept details must be the first problems of the file, not the first found.
    data = jsonl(OK_OPENAI, OK_OPENAI, OK_EMBED, with_id(OK_OPENAI, "c"), "nope")
    full = validate_as(data)
    assert triples(full) == [
        (2, "duplicate_custom_id", "custom_id"),
        (3, "url_mismatch", "url"),
        (5, "invalid_json", None),
    ]
    capped = validate_as(data, limits=fb.Limits(max_issues=max_issues))
    assert triples(capped) == triples(full)[:max_issues]


def bad_report(n: int) -> fb.ValidationReport:
    return fb.validate(jsonl(OK_OPENAI, *(["[1]"] * n)))


def test_raise_for_errors_lists_first_ten_and_how_many_more():
    report = bad_report(25)
    with pytest.raises(fb.BatchValidationError) as info:
        report.raise_for_errors()
    err = info.value
    assert isinstance(err, fb.FastRouterError)
    assert err.report is report
    lines = str(err).splitlines()
    assert lines[0] == "25 problems in a file of 26 lines:"
    assert lines[1:11] == ["  " + str(i) for i in report.issues[:10]]
    assert lines[1] == "  line 2: a line must be a JSON object, not an array [not_an_object]"
    assert lines[11:] == ["  ... and 15 more"]


def test_raise_for_errors_is_catchable_as_fastrouter_error_and_silent_when_ok():
    with pytest.raises(fb.FastRouterError):
        bad_report(1).raise_for_errors()
    assert issubclass(fb.BatchValidationError, fb.FastRouterError)
    assert fb.validate(jsonl(OK_OPENAI)).raise_for_errors() is None


def test_summary():
    ok = fb.validate(jsonl(OK_OPENAI, "", OK_ANTHROPIC))
    assert ok.summary() == f"valid: 2 requests on 3 lines, {len(jsonl(OK_OPENAI, '', OK_ANTHROPIC))} bytes"
    bad = bad_report(4)
    text = bad.summary(max_issues=2).splitlines()
    assert text == [
        "4 problems in a file of 5 lines:",
        "  line 2: a line must be a JSON object, not an array [not_an_object]",
        "  line 3: a line must be a JSON object, not an array [not_an_object]",
        "  ... and 2 more",
    ]
    assert len(bad.summary().splitlines()) == 5  # all four listed, no "more" line
    assert str(bad) == bad.summary()
    single = bad_report(1).summary()
    assert single.startswith("1 problem in a file of 2 lines:")


def test_to_dict_round_trips_through_json():
    report = fb.validate(jsonl(OK_OPENAI, OK_OPENAI, "nope"))
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d == {
        "ok": False,
        "issues": [i.to_dict() for i in report.issues],
        "issue_counts": {"duplicate_custom_id": 1, "invalid_json": 1},
        "total_issues": 2,
        "truncated": False,
        "num_lines": 3,
        "num_requests": 3,
        "total_bytes": 2 * (len(OK_OPENAI) + 1) + 5,
        "providers": {"openai": 2},
        "models": {"openai/gpt-4.1": 2},
        "urls": {"/v1/chat/completions": 2},
        "url": "/v1/chat/completions",
    }
    assert d["issues"][0] == {
        "line": 2,
        "path": "custom_id",
        "code": "duplicate_custom_id",
        "message": report.issues[0].message,
    }
    assert d["issues"][1]["path"] is None


def test_reprs_are_readable():
    report = fb.validate(jsonl(OK_OPENAI, "[1]"))
    size = len(OK_OPENAI) + 1 + 4
    assert repr(report) == f"ValidationReport(ok=False, requests=2, lines=2, bytes={size}, issues=1 [not_an_object=1])"
    assert repr(fb.validate(b"")) == "ValidationReport(ok=True, requests=0, lines=0, bytes=0, issues=0)"
    issue = report.issues[0]
    assert repr(issue) == (
        'ValidationIssue(line=2, path=None, code="not_an_object", message="a line must be a JSON object, not an array")'
    )
    assert str(issue) == "line 2: a line must be a JSON object, not an array [not_an_object]"
    pathed = fb.validate(jsonl(OK_ANTHROPIC, replaced(OK_OPENAI, '"method":"POST"', '"method":"GET"'))).issues[0]
    assert re.fullmatch(
        r'ValidationIssue\(line=2, path="method", code="method_not_post", message=".*GET.*"\)', repr(pathed)
    )
    assert str(pathed).startswith("line 2: method: ")


def test_issues_compare_equal_across_reports():
    a = fb.validate(jsonl(OK_OPENAI, "[1]")).issues
    b = fb.validate(jsonl(OK_ANTHROPIC, "[1]")).issues
    c = fb.validate(jsonl(OK_ANTHROPIC, "[1]", "[1]")).issues
    assert a == b
    assert c[0] == a[0] and c[1] != a[0]
