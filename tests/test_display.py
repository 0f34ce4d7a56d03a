"""Notebook display and the typed usage: ``_repr_html_`` of Batch, BatchResults and
ValidationReport (parsed back with html.parser: what a browser would see as text and as
elements), short reprs, ``Batch.usage`` and ``batches.providers`` against the embedded engine."""

from __future__ import annotations

import asyncio
import json
import re
from html.parser import HTMLParser

import openai.types
import pytest

import fastrouter_batch as fb
from engine_helpers import chat_line, to_jsonl
from fastrouter_batch import _display
from fastrouter_batch.types import Batch

KEY = "sk-display-test"
WAIT = 30.0
SCRIPT = "<script>alert('x')</script>"


BLOCKS = frozenset({"div", "table", "tr", "th", "td"})


class Page(HTMLParser):
    """The elements and the visible text of an HTML fragment."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in BLOCKS:
            self.chunks.append(" ")

    def handle_endtag(self, tag):
        if tag in BLOCKS:
            self.chunks.append(" ")

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        """As a browser lays it out: cells and blocks apart, inline elements run on."""
        return " ".join("".join(self.chunks).split())

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)

    def rows(self) -> int:
        """Rows of data (tbody rows) in every table."""
        return self.count("tr") - self.count("thead")

    def progressbar(self) -> dict[str, str | None]:
        bars = [a for t, a in self.tags if a.get("role") == "progressbar"]
        assert len(bars) == 1, bars
        return bars[0]


def no_markup_from_data(page: Page) -> None:
    assert page.count("script") == 0
    assert all(t in {"div", "span", "b", "code", "table", "thead", "tbody", "tr", "th", "td"} for t, _ in page.tags)
    # Styles are inline only: nothing that could restyle or script the notebook around it.
    assert all(not k.startswith("on") for _, a in page.tags for k in a)


@pytest.fixture(scope="module")
def server():
    with fb.LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    return fb.Client(api_key=KEY, base_url=server.url, timeout=10, max_retries=0)


def mixed_batch(client: fb.Client, **create) -> Batch:
    lines = [chat_line(f"o-{i}", "openai") for i in range(3)] + [chat_line(f"a-{i}", "anthropic") for i in range(2)]
    f = client.files.create(to_jsonl(lines))
    b = client.batches.create(input_file_id=f.id, **create)
    return client.batches.wait(b.id, progress=False, timeout=WAIT)


# --- Batch.usage and batches.providers ---------------------------------------------------------


def test_batch_usage_is_typed_as_openai_batch_usage(client):
    b = mixed_batch(client)
    assert b.status == "completed"
    u = b.usage
    assert isinstance(u, fb.BatchUsage)
    assert u.input_tokens > 0 and u.output_tokens > 0
    assert u.total_tokens == u.input_tokens + u.output_tokens
    assert u.input_tokens_details.cached_tokens == 0
    assert u.output_tokens_details.reasoning_tokens == 0
    # The same shape as openai-python's BatchUsage, field for field.
    theirs = openai.types.BatchUsage.model_validate(u.to_dict())
    assert (theirs.input_tokens, theirs.output_tokens, theirs.total_tokens) == (
        u.input_tokens,
        u.output_tokens,
        u.total_tokens,
    )
    assert theirs.input_tokens_details.cached_tokens == u.input_tokens_details.cached_tokens
    # The sum of the answers' usage, as the results read it.
    results = client.batches.results(b)
    assert u.input_tokens == sum(r.usage["prompt_tokens"] for r in results)
    assert u.output_tokens == sum(r.usage["completion_tokens"] for r in results)


def test_batch_usage_absent_is_none():
    # The hosted service's batch object has no usage.
    b = Batch({"id": "batch_1", "status": "completed", "request_counts": {"total": 1, "completed": 1, "failed": 0}})
    assert b.usage is None
    assert "usage" not in Page(b._repr_html_()).text


def test_providers_breaks_the_batch_down_by_provider(client):
    b = mixed_batch(client)
    breakdown = client.batches.providers(b.id)
    assert isinstance(breakdown, fb.ProviderBreakdownList)
    assert breakdown.batch_id == b.id
    assert [p.provider for p in breakdown] == ["anthropic", "openai"]
    openai_part, anthropic_part = breakdown.get("openai"), breakdown.get("anthropic")
    assert isinstance(openai_part, fb.ProviderBreakdown)
    assert (openai_part.request_counts.total, openai_part.request_counts.completed) == (3, 3)
    assert (anthropic_part.request_counts.total, anthropic_part.request_counts.failed) == (2, 0)
    assert breakdown.get("gemini") is None
    # The parts add up to the batch.
    assert sum(p.usage.input_tokens for p in breakdown) == b.usage.input_tokens
    assert sum(p.usage.total_tokens for p in breakdown) == b.usage.total_tokens
    assert "providers=['anthropic', 'openai']" in repr(breakdown)
    page = Page(breakdown._repr_html_())
    no_markup_from_data(page)
    assert "provider progress completed failed total usage" in page.text
    assert f"openai 3 0 3 input {openai_part.usage.input_tokens:,}" in page.text
    assert [a["aria-valuenow"] for t, a in page.tags if a.get("role") == "progressbar"] == ["2", "3"]


def test_providers_of_an_unknown_or_foreign_batch_is_not_found(server, client):
    with pytest.raises(fb.NotFoundError):
        client.batches.providers("batch_nope")
    with pytest.raises(TypeError, match="batch_id"):
        client.batches.providers(None)  # type: ignore[arg-type]


def test_async_providers(server, client):
    b = mixed_batch(client)

    async def main() -> fb.ProviderBreakdownList:
        aclient = fb.AsyncClient(api_key=KEY, base_url=server.url, timeout=10, max_retries=0)
        return await aclient.batches.providers(b.id)

    breakdown = asyncio.run(main())
    assert {p.provider: p.request_counts.total for p in breakdown} == {"anthropic": 2, "openai": 3}


# --- Batch display -----------------------------------------------------------------------------


def test_batch_html_shows_status_progress_times_usage_and_metadata(client):
    b = mixed_batch(client, metadata={"project": SCRIPT})
    page = Page(b._repr_html_())
    no_markup_from_data(page)
    assert b.id in page.text
    assert "completed" in page.text
    assert "completed 5 · failed 0 · total 5" in page.text
    bar = page.progressbar()
    assert (bar["aria-valuenow"], bar["aria-valuemax"]) == ("5", "5")
    assert re.search(r"created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page.text), page.text
    assert re.search(r"completed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page.text), page.text
    assert f"input {b.usage.input_tokens:,}" in page.text
    assert f"total {b.usage.total_tokens:,} tokens" in page.text
    # The metadata's markup is shown as text, never made an element.
    assert f"project: {SCRIPT}" in page.text
    assert "<script>" not in b._repr_html_()


def test_a_running_batch_shows_how_far_it_is():
    b = Batch({"id": "batch_r", "status": "in_progress", "request_counts": {"total": 8, "completed": 3, "failed": 1}})
    page = Page(b._repr_html_())
    assert "completed 3 · failed 1 · total 8 — 50 % done" in page.text
    assert page.progressbar()["aria-valuenow"] == "4"


def test_finalizing_is_shown_as_such_and_not_as_done():
    b = Batch(
        {
            "id": "batch_f",
            "status": "finalizing",
            "created_at": 1_800_000_000,
            "request_counts": {"total": 4, "completed": 3, "failed": 1},
        }
    )
    html = b._repr_html_()
    page = Page(html)
    assert "finalizing" in page.text
    assert "output files are being written" in page.text
    assert "repeating-linear-gradient" in html  # the bar is striped: not done yet
    assert "repeating-linear-gradient" not in Batch({**b.to_dict(), "status": "completed"})._repr_html_()
    assert "100 %" not in page.text
    assert "created 2027-01-15 08:00:00 UTC" in page.text


def test_a_failed_batch_lists_its_errors_by_line_and_caps_them():
    errors = [{"code": "invalid_json", "line": i, "message": f"line {i}: {SCRIPT}"} for i in range(1, 51)]
    b = Batch({"id": "batch_x", "status": "failed", "errors": {"object": "list", "data": errors}})
    page = Page(b._repr_html_())
    no_markup_from_data(page)
    assert page.rows() == _display.MAX_ROWS
    assert "line 1: " + SCRIPT in page.text
    assert f"… and {50 - _display.MAX_ROWS} more errors" in page.text
    # The plain repr stays short whatever the batch carries.
    assert repr(b) == "Batch(id='batch_x', status='failed', errors=50)"


def test_batch_repr_is_short(client):
    b = mixed_batch(client, metadata={"note": "x" * 500})
    assert repr(b) == f"Batch(id={b.id!r}, status='completed', completed=5, failed=0, total=5)"


# --- BatchResults display ----------------------------------------------------------------------


def result_line(i: int, custom_id: str, ok: bool = True) -> dict:
    if ok:
        body = {
            "id": f"chatcmpl-{i}",
            "object": "chat.completion",
            "model": "gpt-4.1-nano",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {i} {SCRIPT}"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }
        return {"id": f"r{i}", "custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}
    return {
        "id": f"r{i}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": "server_error", "message": f"boom {SCRIPT}"},
    }


def test_results_html_summary_and_first_rows_escaped():
    lines = [result_line(0, SCRIPT), result_line(1, "b"), result_line(2, "c", ok=False)]
    results = fb.read_results(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    html = results._repr_html_()
    page = Page(html)
    no_markup_from_data(page)
    assert "3 results — 2 succeeded, 1 failed" in page.text
    assert "prompt 20 · completion 4 · total 24" in page.text
    assert "server_error 1" in page.text
    assert page.rows() == 3 + 3  # the facts (tokens, status codes, error codes) and the 3 results
    assert SCRIPT in page.text  # the custom_id, the answer and the error message, as text
    assert "boom " + SCRIPT in page.text
    assert "more results" not in page.text


def test_results_html_of_a_huge_set_is_small_and_says_how_many_more():
    n = 50_000
    data = b"".join(json.dumps(result_line(i, f"req-{i}")).encode() + b"\n" for i in range(n))
    results = fb.read_results(data)
    html = results._repr_html_()
    page = Page(html)
    assert f"{n:,} results — {n:,} succeeded" in page.text
    assert f"… and {n - _display.MAX_ROWS:,} more results (first {_display.MAX_ROWS} shown)" in page.text
    assert "req-0" in page.text and f"req-{_display.MAX_ROWS - 1}" in page.text
    assert f"req-{_display.MAX_ROWS} " not in page.text + " "
    assert len(html) < 40_000


def test_a_long_answer_is_cut_in_the_table():
    line = result_line(0, "long")
    line["response"]["body"]["choices"][0]["message"]["content"] = "&" * 10_000
    page = Page(fb.read_results(json.dumps(line).encode())._repr_html_())
    assert "&" * _display.MAX_CELL + "…" in page.text
    assert "&" * (_display.MAX_CELL + 1) not in page.text


# --- ValidationReport display ------------------------------------------------------------------


def test_a_valid_report_says_so():
    report = fb.validate(to_jsonl([chat_line("a"), chat_line("b", "anthropic")]))
    page = Page(report._repr_html_())
    no_markup_from_data(page)
    assert "✓ valid" in page.text
    assert "no problems — 2 requests, 2 lines" in page.text
    assert "anthropic 1 · openai 1" in page.text
    assert page.count("th") == 3  # providers, models, url: no problems table


def test_an_invalid_report_shows_its_problems_as_a_table():
    bad = [chat_line(SCRIPT), chat_line("ok"), chat_line("ok"), {"custom_id": "x", "provider": SCRIPT}]
    report = fb.validate(to_jsonl(bad) + b"{not json\n")
    assert not report.ok
    html = report._repr_html_()
    page = Page(html)
    no_markup_from_data(page)
    assert "✗ invalid" in page.text
    assert f"{report.total_issues} problems" in page.text
    header = [a for t, a in page.tags if t == "th"]
    assert len(header) >= 4
    assert "line field code message" in page.text
    for issue in report.issues:
        assert issue.code in page.text
        assert str(issue.message) in page.text
    assert "duplicate_custom_id" in page.text and "invalid_json" in page.text
    assert SCRIPT in page.text
    assert "<script>" not in html


def test_a_report_with_thousands_of_problems_shows_the_first_and_counts_the_rest():
    n = 5_000
    report = fb.validate(b"not json\n" * n, limits=fb.Limits(max_issues=1_000))
    assert report.total_issues == n and report.truncated
    html = report._repr_html_()
    page = Page(html)
    assert f"{n:,} problems" in page.text
    assert f"… and {n - _display.MAX_ROWS:,} more problems (first {_display.MAX_ROWS} shown)" in page.text
    assert "only the first 1,000 problems were kept in detail" in page.text
    assert len(html) < 20_000
    # The plain repr stays one short line.
    assert len(repr(report)) < 200
