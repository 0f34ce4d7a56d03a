"""The pure-Python baseline: validating a batch file with pydantic v2, as a user would today.

    python bench/baseline_pydantic.py FILE.jsonl

One `BatchLine.model_validate_json(line)` per line (pydantic-core parses and validates in
Rust, so this is the fast way to use pydantic), plus the file-level checks in plain Python.
It aims to find the same problems as fastrouter_batch.validate, with the same line numbers
and the same codes, so the benchmark compares equal work:

* lines are counted as fastrouter counts them: split on "\\n", a trailing "\\r" and a
  leading UTF-8 BOM dropped, blank (space/tab/CR only) lines counted but not requests;
* a duplicate custom_id is reported on its later line, naming both lines;
* the file's url is the most common one (the first line's on a tie); other lines get
  url_mismatch;
* the request and byte limits are reported once each, on the line that crosses them.

Known edge differences (none occur in generated files): pydantic's JSON parser accepts
NaN/Infinity, which fastrouter rejects as invalid JSON; a non-list `messages` on an
/v1/embeddings line is reported here but ignored by fastrouter; and when a line has
field-level errors, the cross-field rules of that line (BatchLine._rules) are not run,
so such a line can get fewer issues here (its line number is reported either way).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Annotated, Any

from pydantic import BaseModel, Discriminator, StrictStr, Tag, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"
ENDPOINTS = (CHAT_URL, EMBEDDINGS_URL)
PROVIDERS = ("openai", "anthropic")
ROLES = ("system", "developer", "user", "assistant", "tool")
STRICT_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # used with fullmatch: Anthropic's rule

MAX_REQUESTS = 50_000
MAX_BYTES = 200_000_000
MAX_LINE_BYTES = 8 * 1024 * 1024
BOM = b"\xef\xbb\xbf"


def _kind(v: Any) -> str:
    """A JSON type name for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


def _err(code: str, message: str, at: str | None = None) -> PydanticCustomError:
    """A custom error whose type is our issue code. `at` is a field name to append to the
    error's location, for checks that run on the whole model (pydantic puts the location
    of a model validator's error on the model, not on a field)."""
    # The message goes in through the context so braces in user values are not templates.
    return PydanticCustomError(code, "{message}", {"message": message, "at": at})


class Part(BaseModel):
    """A content part: an object with a string "type"; other keys are not checked."""

    type: StrictStr


def _content_kind(v: Any) -> str | None:
    return "#text" if isinstance(v, str) else "#parts" if isinstance(v, list) else None


# A string or a list of parts. A callable discriminator, not a plain Union, so a wrong
# type gives one clear error instead of one per union member. Tags start with "#" so the
# path builder can drop them from locations.
Content = Annotated[
    Annotated[StrictStr, Tag("#text")] | Annotated[list[Part], Tag("#parts")],
    Discriminator(
        _content_kind,
        custom_error_type="invalid_type",
        custom_error_message="must be a string or a list of content parts",
    ),
]


class Message(BaseModel):
    role: StrictStr
    content: Content | None = None  # null or absent: only for assistant (tool calls)

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v not in ROLES:
            raise _err("invalid_role", f"{v!r} is not a role (expected one of {', '.join(ROLES)})")
        return v

    @model_validator(mode="after")
    def _content(self) -> Message:
        if self.content is None and self.role != "assistant":
            if "content" in self.model_fields_set:  # explicitly null
                raise _err("invalid_type", "must be a string or a list of content parts, not null", "content")
            raise _err("missing_field", "content is required (a string or a list of content parts)", "content")
        return self


_RANGES = {"temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2)}


class SamplingParams(BaseModel):
    """The sampling parameters fastrouter checks (null is the default for each)."""

    temperature: Any = None
    top_p: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    n: Any = None
    max_completion_tokens: Any = None
    top_k: Any = None
    seed: Any = None
    stop: Any = None

    @field_validator("temperature", "top_p", "presence_penalty", "frequency_penalty")
    @classmethod
    def _number(cls, v: Any, info: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _err("invalid_type", f"must be a number, not {_kind(v)}")
        lo, hi = _RANGES[info.field_name]
        if not lo <= v <= hi:
            raise _err("invalid_value", f"must be between {lo} and {hi}, not {v!r}")
        return v

    @field_validator("n", "max_completion_tokens", "top_k", "seed")
    @classmethod
    def _integer(cls, v: Any, info: Any) -> Any:
        if v is None:
            return v
        positive = info.field_name != "seed"
        expected = "a positive integer" if positive else "an integer"
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _err("invalid_type", f"must be {expected}, not {_kind(v)}")
        if isinstance(v, float) or (positive and v < 1):
            raise _err("invalid_value", f"must be {expected}, not {v!r}")
        return v

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise _err("invalid_type", "must be a string or a list of strings")
        return v


class Body(SamplingParams):
    """The request body: a chat body (model, messages) or an embeddings body (model,
    input). Which fields are required depends on the line's url, so that is checked by
    BatchLine; here are the checks that hold whatever the url."""

    model: StrictStr
    # Annotated without Optional: absent gives None (the default is not validated) while
    # an explicit null is an invalid_type error, as in fastrouter.
    messages: list[Message] = None  # type: ignore[assignment]
    input: Any = None
    max_tokens: Any = None

    @field_validator("max_tokens")
    @classmethod
    def _max_tokens(cls, v: Any) -> Any:
        # Checked by hand: pydantic's int would accept "9" (lax) or reject 1.5 as a type
        # error (strict); the contract says a string is a type error, 0 or 1.5 a bad value.
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _err("invalid_type", f"must be a positive integer, not {_kind(v)}")
        if isinstance(v, float) or not 0 < v < 2**64:
            raise _err("invalid_value", f"must be a positive integer, not {v!r}")
        return v


class BatchLine(BaseModel):
    custom_id: StrictStr
    provider: StrictStr
    method: StrictStr
    url: StrictStr
    body: Body

    @model_validator(mode="after")
    def _rules(self) -> BatchLine:
        # The rules that tie fields together. All are collected (a line gets every
        # problem, not only the first); validate_file unpacks them from the error context.
        problems = _line_rules(self)
        if problems:
            raise PydanticCustomError(
                "batch_rules", "{count} problem(s)", {"count": len(problems), "problems": problems}
            )
        return self


def _line_rules(line: BatchLine) -> list[tuple[str, str, str]]:
    """(path, code, message) for every cross-field problem of a well-typed line."""
    out = []
    cid, provider, body = line.custom_id, line.provider, line.body
    if cid == "":
        out.append(("custom_id", "custom_id_format", "must not be empty"))
    elif provider == "anthropic" and not STRICT_ID.fullmatch(cid):
        out.append(
            (
                "custom_id",
                "custom_id_format",
                f"{cid!r} does not match ^[a-zA-Z0-9_-]{{1,64}}$, which anthropic requires",
            )
        )
    known = provider if provider in PROVIDERS else None
    if known is None:
        out.append(
            (
                "provider",
                "unknown_provider",
                f"{provider!r} is not a supported provider (expected one of {', '.join(PROVIDERS)})",
            )
        )
    if line.method != "POST":
        out.append(("method", "method_not_post", f'must be "POST", not {line.method!r}'))
    endpoint = line.url if line.url in ENDPOINTS else None
    if endpoint is None:
        out.append(("url", "unsupported_url", f"{line.url!r} is not a batch endpoint"))
    elif known == "anthropic" and endpoint == EMBEDDINGS_URL:
        out.append(("url", "unsupported_endpoint", f"anthropic does not serve {EMBEDDINGS_URL}"))

    prefix, _, name = body.model.partition("/")
    if not prefix or not name:
        out.append(
            (
                "body.model",
                "provider_model_mismatch",
                f'model {body.model!r} has no provider prefix; write it as "{provider}/{body.model}"',
            )
        )
    elif prefix != provider:
        out.append(
            (
                "body.model",
                "provider_model_mismatch",
                f"model {body.model!r} belongs to {prefix!r} but the line's provider is {provider!r}",
            )
        )

    if endpoint == CHAT_URL:
        if body.messages is None:
            out.append(("body.messages", "missing_field", "body.messages is required (a non-empty list of messages)"))
        elif not body.messages:
            out.append(("body.messages", "empty_messages", "must hold at least one message"))
        if body.max_tokens is None and known == "anthropic":
            out.append(("body.max_tokens", "missing_max_tokens", "anthropic requires max_tokens on every chat request"))
    elif endpoint == EMBEDDINGS_URL:
        inp = body.input
        if "input" not in body.model_fields_set:
            out.append(("body.input", "missing_field", "body.input is required (the text or list of texts to embed)"))
        elif not isinstance(inp, (str, list)):
            out.append(("body.input", "invalid_type", f"must be a string or a list, not {_kind(inp)}"))
        elif not inp:
            out.append(("body.input", "empty_input", "must not be empty"))
    return out


def _path(loc: tuple) -> str:
    """('body', 'messages', 2, 'role') -> 'body.messages[2].role' (union tags dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("#"):
            out += f".{part}" if out else part
    return out


def _issues(e: ValidationError) -> list[tuple[str, str, str]]:
    """A pydantic error as (path, code, message) issues with fastrouter's codes."""
    out = []
    for err in e.errors(include_url=False, include_input=False):
        kind, loc, ctx = err["type"], err["loc"], err.get("ctx") or {}
        if kind == "batch_rules":
            out.extend(ctx["problems"])
            continue
        path = _path(loc)
        if ctx.get("at"):
            path = f"{path}.{ctx['at']}" if path else ctx["at"]
        if kind == "missing":
            code, msg = "missing_field", "is required"
        elif kind in ("model_type", "model_attributes_type", "dict_type") and not loc:
            code, msg = "not_an_object", "a line must be a JSON object"
        elif kind.endswith("_type") and kind != "invalid_type":
            code, msg = "invalid_type", err["msg"]
        else:  # our own codes (invalid_role, invalid_type, ...) come through as they are
            code, msg = kind, err["msg"]
        out.append((path, code, msg))
    return out


def _facts(line: bytes) -> tuple[Any, Any]:
    """custom_id and url of a line that failed validation but is JSON: a bad line's id
    still counts for duplicates, and its url for the file's url."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    return obj.get("custom_id"), obj.get("url")


def _json_problem(line: bytes) -> tuple[str, str]:
    """(code, message) for a line pydantic could not parse: bad UTF-8 is its own code."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as u:
        return "invalid_utf8", f"not valid UTF-8 (bad byte at column {u.start + 1})"
    try:  # again without the newline, so the error's position reads "line 1"
        BatchLine.model_validate_json(line.rstrip(b"\r\n"))
    except ValidationError as e:
        return "invalid_json", "not valid JSON: " + e.errors()[0]["msg"].removeprefix("Invalid JSON: ")
    return "invalid_json", "not valid JSON"


def validate_file(
    path, *, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> dict:
    """Validates a batch file. Returns {"lines", "requests", "bytes", "errors"}, errors being
    (line, code, message) in line order; message starts with the field path, if any."""
    with open(path, "rb") as f:
        return validate_stream(f, max_requests=max_requests, max_bytes=max_bytes, max_line_bytes=max_line_bytes)


def validate_stream(
    f, *, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> dict:
    """`validate_file` over an open binary file or any iterable of lines (bytes, each with
    its newline): `io.BytesIO(data)` validates bytes in memory."""
    errors: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}  # custom_id -> first line
    url_counts: dict[str, int] = {}
    endpoint_lines: dict[str, list[int]] = {}  # valid url -> its lines, for url_mismatch
    first_url = None
    lines = requests = pos = 0  # pos: bytes so far, BOM excluded (as fastrouter counts)
    total = 0

    for raw in f:  # binary iteration splits on b"\n" only, like fastrouter
        lines += 1
        total += len(raw)
        if lines == 1 and raw.startswith(BOM):
            raw = raw[3:]
        pos += len(raw)
        if pos > max_bytes and pos - len(raw) <= max_bytes:  # this line crosses it
            errors.append((lines, "file_too_large", f"the file passes the {max_bytes}-byte limit at this line"))
        # The line is validated as read: its "\n" or "\r\n" is JSON whitespace, and
        # slicing it off would copy every line. Only blank-looking lines are stripped.
        if raw[:1] in b" \t\r\n" and not raw.strip(b" \t\r\n"):  # b"" is in any bytes
            continue  # blank: counted as a line, not a request
        requests += 1
        if requests == max_requests + 1:
            errors.append(
                (
                    lines,
                    "too_many_requests",
                    f"a batch holds at most {max_requests} requests; this is request {requests}",
                )
            )
        if len(raw) > max_line_bytes:
            size = len(raw.rstrip(b"\n").removesuffix(b"\r"))
            if size > max_line_bytes:
                errors.append(
                    (
                        lines,
                        "line_too_large",
                        f"line is {size} bytes, over the {max_line_bytes}-byte limit per line",
                    )
                )
                continue
        line = raw

        try:
            req = BatchLine.model_validate_json(line)
            cid, url = req.custom_id, req.url
        except ValidationError as e:
            issues = _issues(e)
            if issues and issues[0][1] == "json_invalid":
                errors.append((lines, *_json_problem(line)))
                continue
            for p, code, msg in issues:
                errors.append((lines, code, f"{p}: {msg}" if p else msg))
            cid, url = _facts(line)

        if isinstance(cid, str):
            first = seen.setdefault(cid, lines)
            if first != lines:
                errors.append(
                    (
                        lines,
                        "duplicate_custom_id",
                        f"custom_id: {cid!r} is used on line {first} and again on line {lines}",
                    )
                )
        if isinstance(url, str):
            url_counts[url] = url_counts.get(url, 0) + 1
            if url in ENDPOINTS:
                endpoint_lines.setdefault(url, []).append(lines)
                if first_url is None:
                    first_url = url

    # One url per file: the most common (the first line's on a tie); the rest mismatch.
    if url_counts:
        top = max(url_counts.values())
        file_url = first_url if url_counts.get(first_url) == top else min(u for u, n in url_counts.items() if n == top)
        for url, at in endpoint_lines.items():
            if url != file_url:
                errors.extend((n, "url_mismatch", f"url: {url!r} differs from the file's url {file_url!r}") for n in at)
    errors.sort(key=lambda e: e[0])  # stable: a line's issues keep their order
    return {"lines": lines, "requests": requests, "bytes": total, "errors": errors}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Validate a batch JSONL file with pydantic v2 (the benchmark baseline).")
    ap.add_argument("file", help="batch file (.jsonl)")
    ap.add_argument("--show", type=int, default=20, help="errors to print (default 20)")
    args = ap.parse_args(argv)
    size = os.path.getsize(args.file)
    t = time.perf_counter()
    r = validate_file(args.file)
    dt = time.perf_counter() - t
    for line, code, msg in r["errors"][: args.show]:
        print(f"line {line}: {msg} [{code}]")
    if len(r["errors"]) > args.show:
        print(f"... and {len(r['errors']) - args.show} more")
    print(
        f"{r['lines']:,} lines, {r['requests']:,} requests, {len(r['errors']):,} errors; "
        f"{size / 1e6:.1f} MB in {dt:.2f}s = {size / 1e6 / dt:.1f} MB/s"
    )
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
