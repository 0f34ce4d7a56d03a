"""Known-good batch lines and small helpers shared by the test modules."""

from __future__ import annotations

import json

OK_OPENAI = (
    '{"custom_id":"a","provider":"openai","method":"POST","url":"/v1/chat/completions",'
    '"body":{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"hi"}]}}'
)
OK_ANTHROPIC = (
    '{"custom_id":"b","provider":"anthropic","method":"POST","url":"/v1/chat/completions",'
    '"body":{"model":"anthropic/claude-4.5-sonnet","messages":[{"role":"user","content":"hi"}],"max_tokens":10}}'
)
OK_EMBED = (
    '{"custom_id":"e","provider":"openai","method":"POST","url":"/v1/embeddings",'
    '"body":{"model":"openai/text-embedding-3-small","input":"x"}}'
)


def with_id(line: str, custom_id: str) -> str:
    """`line` (one of the OK_* lines) with its custom_id replaced."""
    old = f'"custom_id":"{json.loads(line)["custom_id"]}"'
    assert old in line
    return line.replace(old, '"custom_id":' + json.dumps(custom_id), 1)


def replaced(line: str, old: str, new: str) -> str:
    """`line` with the first `old` replaced by `new`; `old` must be present."""
    assert old in line, old
    return line.replace(old, new, 1)


def jsonl(*lines: str | bytes) -> bytes:
    """The lines joined into a file, each ending with a newline."""
    return b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)


def triples(report) -> list[tuple[int, str, str | None]]:
    """(line, code, path) of every issue of a report, in report order."""
    return [(i.line, i.code, i.path) for i in report.issues]
