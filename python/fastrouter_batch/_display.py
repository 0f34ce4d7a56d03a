"""Rich display in notebooks: the HTML behind ``_repr_html_`` of ``Batch``, ``BatchResults``
and ``ValidationReport`` (the last a Rust class, whose ``_repr_html_`` calls
``validation_report_html`` here, so the three share one look and one escaping).

The HTML is self-contained: inline styles only (no ``<style>``, no script, nothing fetched),
so it renders offline, survives notebook sanitizers and cannot restyle the page around it.
Every value that came from a server or a file goes through ``_text`` (escaped, and cut to a
bounded length), and tables show their first rows and say how many more there are, so a
result set of a million lines displays as quickly and as small as one of ten.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import ValidationReport
    from .results import BatchResults
    from .types import Batch, BatchUsage, ProviderBreakdownList

#: Rows of a results or problems table, and errors of a batch, shown before "... and N more".
MAX_ROWS = 20
#: Characters of one cell (an answer's text, a message) shown before "…".
MAX_CELL = 160
#: Entries of a mapping (metadata, counts by code) shown before "…".
MAX_ENTRIES = 12

_BOX = (
    "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;"
    "font-size:13px;line-height:1.45;max-width:860px"
)
_TABLE = "border-collapse:collapse;margin:6px 0;font-size:12px"
_TH = "text-align:left;padding:3px 8px;border-bottom:1px solid #999;font-weight:600"
_TD = "text-align:left;padding:3px 8px;border-bottom:1px solid #ddd;vertical-align:top"
_KEY = "text-align:left;padding:1px 12px 1px 0;color:#666;font-weight:normal;vertical-align:top;white-space:nowrap"
_MUTED = "color:#666"

GREEN, RED, BLUE, AMBER, GREY, PURPLE = "#2e7d32", "#c62828", "#1565c0", "#b26a00", "#616161", "#6a1b9a"
STATUS_COLORS = {
    "validating": PURPLE,
    "in_progress": BLUE,
    "finalizing": AMBER,
    "completed": GREEN,
    "failed": RED,
    "expired": RED,
    "cancelling": GREY,
    "cancelled": GREY,
}
#: Each batch time, in the order a batch goes through them.
TIMES = (
    ("created_at", "created"),
    ("in_progress_at", "in progress"),
    ("finalizing_at", "finalizing"),
    ("completed_at", "completed"),
    ("failed_at", "failed"),
    ("expired_at", "expired"),
    ("cancelling_at", "cancelling"),
    ("cancelled_at", "cancelled"),
    ("expires_at", "expires"),
)
FINISHED_AT = ("completed_at", "failed_at", "expired_at", "cancelled_at")


def _text(value: Any, limit: int = MAX_CELL) -> str:
    """``value`` as escaped HTML text, cut to ``limit`` characters (before escaping, so an
    entity is never cut in half)."""
    s = value if isinstance(value, str) else str(value)
    if len(s) > limit:
        s = s[:limit] + "…"
    return html.escape(s, quote=True)


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else _text(n)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _badge(label: str, color: str) -> str:
    style = f"display:inline-block;padding:0 7px;border-radius:9px;color:#fff;background:{color};font-size:12px"
    return f'<span style="{style}">{_text(label, 40)}</span>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of already escaped cells."""
    head = "".join(f'<th style="{_TH}">{h}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{_TD}">{c}</td>' for c in row) + "</tr>" for row in rows)
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fields(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of name → already escaped value."""
    body = "".join(f'<tr><th style="{_KEY}">{_text(k)}</th><td style="padding:1px 0">{v}</td></tr>' for k, v in rows)
    return f'<table style="{_TABLE}">{body}</table>' if body else ""


def _more(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return f'<div style="{_MUTED}">… and {total - shown:,} more {what} (first {shown:,} shown)</div>'


def _entries(counts: Mapping[Any, Any], sep: str = " · ", between: str = " ") -> str:
    """``a 3 · b 2`` from a mapping, at most MAX_ENTRIES entries."""
    items = list(counts.items())
    shown = [f"{_text(k, 60)}{between}{_count(v)}" for k, v in items[:MAX_ENTRIES]]
    if len(items) > MAX_ENTRIES:
        shown.append(f"… {len(items) - MAX_ENTRIES:,} more")
    return sep.join(shown)


def _time(ts: Any) -> str:
    """A Unix time as UTC (``2026-12-06 21:37:19 UTC``); anything else as sent."""
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        try:
            when = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return _text(ts)
        return when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return _text(ts)


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def progress_bar(completed: int, failed: int, total: int, label: str, finalizing: bool = False) -> str:
    """A bar of completed (green) and failed (red) requests out of total, with an ARIA
    progressbar role so screen readers (and tests) can read it. ``finalizing`` stripes it: the
    requests have run but the batch is not done."""
    done = min(completed + failed, total) if total else 0
    ok_pct = 100.0 * min(completed, total) / total if total else 0.0
    failed_pct = 100.0 * min(failed, max(total - completed, 0)) / total if total else 0.0
    stripes = (
        ";background-image:repeating-linear-gradient(45deg,rgba(255,255,255,.45) 0 6px,transparent 6px 12px)"
        if finalizing
        else ""
    )
    segments = (
        f'<div style="width:{ok_pct:.2f}%;background-color:#43a047{stripes}"></div>'
        f'<div style="width:{failed_pct:.2f}%;background-color:#e53935{stripes}"></div>'
    )
    bar = (
        "display:flex;height:12px;border-radius:3px;overflow:hidden;background:#e0e0e0;"
        "margin:6px 0 3px 0;max-width:480px"
    )
    return (
        f'<div role="progressbar" aria-valuemin="0" aria-valuemax="{total}" aria-valuenow="{done}" '
        f'aria-label="{_text(label)}" title="{_text(label)}" style="{bar}">{segments}</div>'
    )


def usage_text(usage: BatchUsage | None) -> str:
    """``input 1,200 (cached 0) · output 300 (reasoning 0) · total 1,500 tokens``, escaped."""
    if usage is None:
        return ""
    parts = []
    details_in = usage.input_tokens_details
    cached = getattr(details_in, "cached_tokens", None)
    parts.append(f"input {_count(usage.input_tokens)}" + (f" (cached {_count(cached)})" if cached else ""))
    details_out = usage.output_tokens_details
    reasoning = getattr(details_out, "reasoning_tokens", None)
    parts.append(f"output {_count(usage.output_tokens)}" + (f" (reasoning {_count(reasoning)})" if reasoning else ""))
    parts.append(f"total {_count(usage.total_tokens)} tokens")
    return " · ".join(parts)


def batch_html(batch: Batch) -> str:
    status = str(batch.status or "unknown")
    counts = batch.request_counts
    total = (counts.total or 0) if counts else 0
    completed = (counts.completed or 0) if counts else 0
    failed = (counts.failed or 0) if counts else 0
    done = completed + failed
    summary = f"completed {completed:,} · failed {failed:,} · total {total:,}"
    if status == "finalizing":
        # Every request has run but the output files are still being written: not done yet.
        state = "finalizing: all requests ran, the output files are being written"
    elif total and not batch.is_terminal:
        state = f"{100 * done // total} % done"
    elif status == "validating":
        state = "checking the input file"
    else:
        state = ""
    parts = [
        f'<div style="{_BOX}">',
        f"<div><b>Batch</b> <code>{_text(batch.id)}</code> {_badge(status, STATUS_COLORS.get(status, GREY))}</div>",
        progress_bar(completed, failed, total, f"{summary} ({status})", finalizing=status == "finalizing"),
        f"<div>{summary}" + (f' <span style="{_MUTED}">— {_text(state)}</span>' if state else "") + "</div>",
    ]
    rows: list[tuple[str, str]] = []
    for field, name in TIMES:
        value = getattr(batch, field, None)
        if value is not None:
            rows.append((name, _time(value)))
    finished = next((getattr(batch, f) for f in FINISHED_AT if getattr(batch, f, None) is not None), None)
    if isinstance(finished, (int, float)) and isinstance(batch.created_at, (int, float)):
        rows.append(("took", _duration(max(0, finished - batch.created_at))))
    if batch.usage is not None:
        rows.append(("usage", usage_text(batch.usage)))
    for field in ("endpoint", "input_file_id", "output_file_id", "error_file_id"):
        value = getattr(batch, field)
        if value:
            rows.append((field.replace("_", " "), f"<code>{_text(value)}</code>"))
    if batch.metadata:
        meta = batch.metadata if isinstance(batch.metadata, Mapping) else {"": batch.metadata}
        rows.append(("metadata", _entries(meta, between=": ")))
    parts.append(_fields(rows))
    errors = list(batch.errors or [])
    if errors:
        shown = errors[:MAX_ROWS]
        parts.append(f"<div><b>errors</b> ({_plural(len(errors), 'error')})</div>")
        parts.append(
            _table(
                ["line", "code", "message"],
                (
                    [_text(e.line if e.line is not None else ""), _text(e.code or ""), _text(e.message or "")]
                    for e in shown
                ),
            )
        )
        parts.append(_more(len(shown), len(errors), "errors"))
    parts.append("</div>")
    return "".join(parts)


def providers_html(breakdown: ProviderBreakdownList) -> str:
    """The breakdown by provider as a table: requests (completed, failed, total) and tokens."""
    rows = []
    for p in breakdown.data[:MAX_ROWS]:
        c = p.request_counts
        completed, failed, total = ((c.completed or 0), (c.failed or 0), (c.total or 0)) if c else (0, 0, 0)
        rows.append(
            [
                _text(p.provider, 60),
                progress_bar(completed, failed, total, f"{p.provider}: completed {completed} of {total}"),
                f"{completed:,}",
                f"{failed:,}",
                f"{total:,}",
                usage_text(p.usage),
            ]
        )
    title = f"<b>Providers</b> of <code>{_text(breakdown.batch_id or '')}</code>"
    return (
        f'<div style="{_BOX}"><div>{title}</div>'
        + _table(["provider", "progress", "completed", "failed", "total", "usage"], rows)
        + _more(len(rows), len(breakdown.data), "providers")
        + "</div>"
    )


def results_html(results: BatchResults) -> str:
    s = results.summary()
    total = int(s["total"])
    head = (
        f"<b>BatchResults</b>: {_plural(total, 'result')} — "
        f'<span style="color:{GREEN}">{s["succeeded"]:,} succeeded</span>, '
        f'<span style="color:{RED if s["failed"] else GREY}">{s["failed"]:,} failed</span>'
    )
    if s["missing"]:
        head += f', <span style="color:{RED}">{s["missing"]:,} missing</span>'
    rows: list[tuple[str, str]] = []
    if s["total_tokens"] or s["prompt_tokens"] or s["completion_tokens"]:
        rows.append(
            (
                "tokens",
                f"prompt {s['prompt_tokens']:,} · completion {s['completion_tokens']:,} · total {s['total_tokens']:,}",
            )
        )
    if s["status_codes"]:
        rows.append(("status codes", _entries(s["status_codes"])))
    if s["error_codes"]:
        rows.append(("error codes", _entries(s["error_codes"])))
    shown = min(total, MAX_ROWS)
    table_rows = []
    for i in range(shown):
        r = results[i]
        ok = f'<span style="color:{GREEN}">✓</span>' if r.ok else f'<span style="color:{RED}">✗</span>'
        answer = _text(r.text) if r.text is not None else ""
        if not r.ok:
            answer = f'<span style="color:{RED}">{_text(r.error_code or "")}</span> {_text(r.error_message or "")}'
        usage = r.usage
        tokens = f"{usage.get('prompt_tokens', 0):,} / {usage.get('completion_tokens', 0):,}" if usage else ""
        status = "" if r.status_code is None else str(r.status_code)
        table_rows.append([_text(r.custom_id, 80), ok, status, _text(r.model or "", 60), answer, tokens])
    body = [f'<div style="{_BOX}">', f"<div>{head}</div>", _fields(rows)]
    if shown:
        body.append(_table(["custom_id", "ok", "status", "model", "text / error", "tokens (in / out)"], table_rows))
    body.append(_more(shown, total, "results"))
    body.append("</div>")
    return "".join(body)


def validation_report_html(report: ValidationReport) -> str:
    size = (
        f"{_plural(report.num_requests, 'request')}, {_plural(report.num_lines, 'line')}, {report.total_bytes:,} bytes"
    )
    facts: list[tuple[str, str]] = []
    if report.providers:
        facts.append(("providers", _entries(report.providers)))
    if report.models:
        facts.append(("models", _entries(report.models)))
    if report.url is not None:
        facts.append(("url", f"<code>{_text(report.url)}</code>"))
    if report.ok:
        return (
            f'<div style="{_BOX}"><div><b>ValidationReport</b> {_badge("✓ valid", GREEN)} '
            f'<span style="{_MUTED}">no problems — {size}</span></div>{_fields(facts)}</div>'
        )
    total = report.total_issues
    issues = report.issues
    shown = issues[:MAX_ROWS]
    parts = [
        f'<div style="{_BOX}"><div><b>ValidationReport</b> {_badge("✗ invalid", RED)} '
        f'{_plural(total, "problem")} <span style="{_MUTED}">— {size}</span></div>',
        _fields([("by code", _entries(report.issue_counts)), *facts]),
        _table(
            ["line", "field", "code", "message"],
            (
                [str(i.line), f"<code>{_text(i.path)}</code>" if i.path else "", _text(i.code), _text(i.message)]
                for i in shown
            ),
        ),
        _more(len(shown), total, "problems"),
    ]
    if report.truncated:
        parts.append(
            f'<div style="{_MUTED}">only the first {len(issues):,} problems were kept in detail '
            "(Limits(max_issues=...)); the counts above cover all of them</div>"
        )
    parts.append("</div>")
    return "".join(parts)
