"""The engine against real HTTP providers (`provider="upstream"`): what it sends to
OpenAI and Anthropic, how Anthropic's replies come back as `chat.completion`s, and how
transient and permanent upstream failures are retried (or not).

The upstream is a Python fake written here (`RecordingUpstream`): a ThreadingHTTPServer on
127.0.0.1 that records every request and answers by script. Keys are fake.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import fastrouter_batch as fb
from engine_helpers import CHAT, EMBEDDINGS, Api, chat_line, embedding_line, to_jsonl

OPENAI_KEY = "sk-test-openai"
ANTHROPIC_KEY = "sk-test-anthropic-key"
ENGINE_KEY = "sk-v1-engine-test"


class Recorded:
    def __init__(self, at: float, method: str, path: str, headers: dict[str, str], body: Any):
        self.at, self.method, self.path, self.headers, self.body = at, method, path, headers, body

    @property
    def tag(self) -> str:
        return tag_of(self.path, self.body)

    def __repr__(self) -> str:
        return f"Recorded({self.method} {self.path} tag={self.tag!r} at={self.at:.3f})"


def tag_of(path: str, body: Any) -> str:
    """What identifies a request's line: the last message's text, or the embedding input."""
    if path == "/v1/embeddings":
        return json.dumps(body.get("input"))
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else json.dumps(content)


def openai_chat_reply(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def anthropic_reply(model: str, text: str, stop_reason: str = "end_turn", usage=(3, 2)) -> dict[str, Any]:
    return {
        "id": "msg_up",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> tuple:
    return ("reply", status, headers or {}, body)


def raw(status: int, data: bytes, headers: dict[str, str] | None = None) -> tuple:
    """A reply whose body is `data` as it is (not JSON-encoded)."""
    return ("raw", status, headers or {}, data)


CLOSE = ("close",)


def hang(seconds: float) -> tuple:
    return ("hang", seconds)


class RecordingUpstream:
    """A fake OpenAI + Anthropic upstream. `script[tag]` is a list of actions used one per
    attempt of that line, in order; once it runs out, the line gets a success reply.
    Actions: reply(status, body, headers), raw(status, bytes, headers), CLOSE (socket
    closed without an answer), hang(s) (answer success only after s seconds)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: dict[str, list[tuple]] = {}
        self.lock = threading.Lock()
        self.delay = 0.0  # before every default success reply
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(n)
                at = time.monotonic()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                headers = {k.lower(): v for k, v in self.headers.items()}
                rec = Recorded(at, "POST", self.path, headers, body)
                with upstream.lock:
                    upstream.requests.append(rec)
                    actions = upstream.script.get(rec.tag, [])
                    action = actions.pop(0) if actions else None
                    upstream.in_flight[self.path] += 1
                    upstream.max_in_flight[self.path] = max(
                        upstream.max_in_flight[self.path], upstream.in_flight[self.path]
                    )
                try:
                    reply_ = self.answer(rec, action)
                finally:
                    # Counted out before the reply is written: once the engine has read it,
                    # it may send the next request at once.
                    with upstream.lock:
                        upstream.in_flight[self.path] -= 1
                if reply_ is None:  # CLOSE: no answer at all
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                status, extra, data = reply_
                self.send_response(status)
                if "content-type" not in {k.lower() for k in extra}:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass  # the engine gave up on this attempt (timeout)

            def answer(self, rec: Recorded, action: tuple | None) -> tuple | None:
                if action is not None and action[0] == "close":
                    return None
                if action is not None and action[0] == "hang":
                    time.sleep(action[1])
                    action = None
                if action is None:
                    time.sleep(upstream.delay)
                    return 200, {}, json.dumps(upstream.success(rec)).encode()
                if action[0] == "raw":
                    _, status, extra, data = action
                    return status, extra, data
                _, status, extra, out = action
                return status, extra, json.dumps(out).encode()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def success(self, rec: Recorded) -> dict[str, Any]:
        # Match by suffix: a base URL may carry a path prefix (a proxy's).
        if rec.path.endswith("/v1/messages"):
            return anthropic_reply(rec.body["model"], f"echo {rec.tag}")
        if rec.path.endswith("/v1/embeddings"):
            return {
                "object": "list",
                "model": rec.body["model"],
                "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
                "usage": {"prompt_tokens": 2, "total_tokens": 2},
            }
        return openai_chat_reply(rec.body, f"echo {rec.tag}")

    def for_tag(self, tag: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.tag == tag]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def upstream():
    up = RecordingUpstream()
    try:
        yield up
    finally:
        up.close()


def engine(up: RecordingUpstream, **options: Any) -> fb.LocalServer:
    opts: dict[str, Any] = {
        "provider": "upstream",
        "upstream_mode": "realtime",
        "api_key": ENGINE_KEY,
        "openai_base_url": up.url,
        "openai_api_key": OPENAI_KEY,
        "anthropic_base_url": up.url,
        "anthropic_api_key": ANTHROPIC_KEY,
        "retry_delay": 0.01,
        "upstream_timeout": 10.0,
    }
    opts.update(options)
    return fb.LocalServer(**opts)


def run(server: fb.LocalServer, lines: list[dict], endpoint: str = CHAT, timeout: float = 30.0):
    """Runs the lines as one batch; returns (batch, {custom_id: output line}, {custom_id: error line})."""
    with Api(server.url, server.api_key) as api:
        b, out, err = api.run(to_jsonl(lines), endpoint, timeout=timeout)
        raw = b"".join(api.content(f) for f in (b["output_file_id"], b["error_file_id"]) if f)
    for secret in (OPENAI_KEY, ANTHROPIC_KEY):
        assert secret.encode() not in raw, f"{secret} leaked into the result files"
    ids = Counter(x["custom_id"] for x in out + err)
    assert ids == Counter(x["custom_id"] for x in lines), ids
    return b, {x["custom_id"]: x for x in out}, {x["custom_id"]: x for x in err}


def assert_no_key_on_disk(server: fb.LocalServer) -> None:
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (OPENAI_KEY, ANTHROPIC_KEY):
                assert secret.encode() not in data, f"{secret} stored in {path}"


# --- what goes upstream -----------------------------------------------------------------


def test_openai_request_goes_out_unchanged_but_for_the_model_prefix(upstream):
    body_fields = {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
        "seed": 7,
        "n": 1,
        "stop": ["\n\n"],
        "response_format": {"type": "json_object"},
        "user": "u-1",
        "logprobs": False,
        "metadata": {"a": "b"},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "openai-shape"}]
    line = chat_line("o1", "openai", "openai/gpt-4.1-mini", messages=messages, **body_fields)
    up_reply = openai_chat_reply({"model": "gpt-4.1-mini"}, "hi there") | {"system_fingerprint": "fp_x"}
    upstream.script["openai-shape"] = [reply(200, up_reply, {"x-request-id": "req_upstream_1"})]
    with engine(upstream) as server:
        b, out, err = run(server, [line])
        assert_no_key_on_disk(server)
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 1, "completed": 1, "failed": 0}
    assert err == {}
    (rec,) = upstream.requests
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "x-api-key" not in rec.headers
    assert rec.headers["content-type"] == "application/json"
    assert rec.body == {**line["body"], "model": "gpt-4.1-mini"}
    o = out["o1"]
    assert o["error"] is None
    assert o["response"] == {"status_code": 200, "request_id": "req_upstream_1", "body": up_reply}


def test_openai_embeddings_request(upstream):
    line = embedding_line("e1", ["x", "y"], dimensions=2, encoding_format="float")
    with engine(upstream) as server:
        b, out, _ = run(server, [line], EMBEDDINGS)
    assert b["status"] == "completed"
    (rec,) = upstream.requests
    assert rec.path == "/v1/embeddings"
    assert rec.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert rec.body == {
        "model": "text-embedding-3-small",
        "input": ["x", "y"],
        "dimensions": 2,
        "encoding_format": "float",
    }
    assert out["e1"]["response"]["body"]["data"][0]["embedding"] == [0.6, 0.8]


def test_anthropic_request_is_translated(upstream):
    a1 = chat_line(
        "a1",
        "anthropic",
        "anthropic/claude-4.5-sonnet",
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "translate-me"},
        ],
        max_tokens=77,
        stop="END",
        temperature=0.2,
    )
    a2 = chat_line(
        "a2",
        "anthropic",
        "anthropic/claude-4.5-haiku",
        messages=[
            {"role": "system", "content": "One."},
            {"role": "system", "content": "Two."},
            {"role": "user", "content": "two-systems"},
        ],
        max_tokens=5,
        stop=["A", "B"],
        top_p=0.5,
    )
    with engine(upstream) as server:
        b, _out, err = run(server, [a1, a2])
        assert_no_key_on_disk(server)
    assert b["status"] == "completed" and err == {}
    (r1,) = upstream.for_tag("translate-me")
    assert r1.path == "/v1/messages"
    assert r1.headers["x-api-key"] == ANTHROPIC_KEY
    assert r1.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in r1.headers
    assert r1.body == {
        "model": "claude-4.5-sonnet",
        "max_tokens": 77,
        "system": "Be terse.",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "translate-me"},
        ],
        "stop_sequences": ["END"],
        "temperature": 0.2,
    }
    (r2,) = upstream.for_tag("two-systems")
    assert r2.body == {
        "model": "claude-4.5-haiku",
        "max_tokens": 5,
        "system": "One.\n\nTwo.",
        "messages": [{"role": "user", "content": "two-systems"}],
        "stop_sequences": ["A", "B"],
        "top_p": 0.5,
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("end_turn", "stop"), ("max_tokens", "length"), ("stop_sequence", "stop")],
)
def test_anthropic_reply_becomes_a_chat_completion(upstream, stop_reason, finish_reason):
    up = anthropic_reply("claude-4.5-sonnet-20260101", "ignored", stop_reason, usage=(11, 7))
    up["content"] = [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]
    upstream.script["map-me"] = [reply(200, up, {"request-id": "req_anthropic_9"})]
    line = chat_line("m1", "anthropic", content="map-me")
    with engine(upstream) as server:
        b, out, _ = run(server, [line])
    assert b["status"] == "completed"
    resp = out["m1"]["response"]
    assert resp["status_code"] == 200
    assert resp["request_id"] == "req_anthropic_9"
    body = resp["body"]
    assert body["object"] == "chat.completion"
    assert body["id"] == "msg_up"
    assert body["model"] == "claude-4.5-sonnet-20260101"
    assert isinstance(body["created"], int)
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Hello"
    assert choice["finish_reason"] == finish_reason
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


# --- retries ----------------------------------------------------------------------------

OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
RATE_LIMITED = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
UNAVAILABLE = {"error": {"message": "Service unavailable", "type": "server_error", "code": None}}


def test_transient_failures_are_retried_until_success(upstream):
    upstream.script.update(
        {
            "r429": [reply(429, RATE_LIMITED, {"retry-after-ms": "50"})] * 2,
            "r529": [reply(529, OVERLOADED)] * 2,
            "r503": [reply(503, UNAVAILABLE)] * 3,
            "r500-anthropic": [reply(500, {"type": "error", "error": {"type": "api_error", "message": "x"}})],
            "r408": [reply(408, {"error": {"message": "timeout"}}), reply(409, {"error": {"message": "conflict"}})],
            "close": [CLOSE],
            "close-twice": [CLOSE, CLOSE],
            "fine": [],
        }
    )
    lines = [
        chat_line("l429", "openai", content="r429"),
        chat_line("l529", "anthropic", content="r529"),
        chat_line("l503", "openai", content="r503"),
        chat_line("l500a", "anthropic", content="r500-anthropic"),
        chat_line("l408", "openai", content="r408"),
        chat_line("lclose", "openai", content="close"),
        chat_line("lclose2", "anthropic", content="close-twice"),
        chat_line("lfine", "openai", content="fine"),
    ]
    with engine(upstream) as server:
        b, out, err = run(server, lines)
    assert err == {}
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 8, "completed": 8, "failed": 0}
    attempts = {tag: len(upstream.for_tag(tag)) for tag in upstream.script}
    assert attempts == {
        "r429": 3,
        "r529": 3,
        "r503": 4,
        "r500-anthropic": 2,
        "r408": 3,
        "close": 2,
        "close-twice": 3,
        "fine": 1,
    }
    for line in lines:
        o = out[line["custom_id"]]
        assert o["response"]["status_code"] == 200
        tag = line["body"]["messages"][-1]["content"]
        assert o["response"]["body"]["choices"][0]["message"]["content"] == f"echo {tag}"
    # Every attempt of a line sent the same request.
    for tag in upstream.script:
        recs = upstream.for_tag(tag)
        assert all(r.body == recs[0].body and r.path == recs[0].path for r in recs)


def test_retry_after_headers_are_honoured(upstream):
    """With a 5 s backoff base, an unhonoured header would mean a >= 2.5 s wait."""
    upstream.script.update(
        {
            "after-ms": [reply(429, RATE_LIMITED, {"retry-after-ms": "200"})],
            "after-s": [reply(429, RATE_LIMITED, {"retry-after": "1"})],
            "after-s-529": [reply(529, OVERLOADED, {"retry-after": "1"})],
            "both": [reply(503, UNAVAILABLE, {"retry-after": "9", "retry-after-ms": "300"})],
        }
    )
    lines = [
        chat_line("ms", "openai", content="after-ms"),
        chat_line("s", "openai", content="after-s"),
        chat_line("s529", "anthropic", content="after-s-529"),
        chat_line("both", "openai", content="both"),
    ]
    with engine(upstream, retry_delay=5.0) as server:
        b, _out, err = run(server, lines)
    assert b["status"] == "completed" and err == {}

    def gap(tag: str) -> float:
        first, second = upstream.for_tag(tag)
        return second.at - first.at

    assert 0.19 <= gap("after-ms") < 1.5, gap("after-ms")
    assert 0.9 <= gap("after-s") < 2.4, gap("after-s")
    assert 0.9 <= gap("after-s-529") < 2.4, gap("after-s-529")
    assert 0.29 <= gap("both") < 2.4, gap("both")  # retry-after-ms wins


def test_permanent_errors_are_not_retried(upstream):
    openai_400 = {
        "error": {
            "message": "Invalid 'messages': empty.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "invalid_value",
        }
    }
    anthropic_400 = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too big"}}
    upstream.script.update(
        {
            "bad-openai": [reply(400, openai_400, {"x-request-id": "req_bad"})] * 5,
            "bad-anthropic": [reply(400, anthropic_400)] * 5,
            "unauthorized": [reply(401, {"error": {"message": "bad key", "type": "auth", "code": "invalid_api_key"}})]
            * 5,
            "missing": [reply(404, {"error": {"message": "no such model", "type": "x", "code": "model_not_found"}})]
            * 5,
            "ok": [],
        }
    )
    lines = [
        chat_line("bo", "openai", content="bad-openai"),
        chat_line("ba", "anthropic", content="bad-anthropic"),
        chat_line("un", "openai", content="unauthorized"),
        chat_line("mi", "openai", content="missing"),
        chat_line("ok", "openai", content="ok"),
    ]
    with engine(upstream) as server:
        b, out, err = run(server, lines)
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 5, "completed": 1, "failed": 4}
    assert b["output_file_id"] is not None and b["error_file_id"] is not None
    assert {tag: len(upstream.for_tag(tag)) for tag in upstream.script} == {
        "bad-openai": 1,
        "bad-anthropic": 1,
        "unauthorized": 1,
        "missing": 1,
        "ok": 1,
    }
    assert list(out) == ["ok"]
    assert err["bo"]["error"] is None
    assert err["bo"]["response"] == {"status_code": 400, "request_id": "req_bad", "body": openai_400}
    assert err["ba"]["response"]["status_code"] == 400
    assert err["ba"]["response"]["body"] == {
        "error": {
            "message": "max_tokens: too big",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }
    assert err["un"]["response"]["status_code"] == 401
    assert err["mi"]["response"]["status_code"] == 404
    assert err["mi"]["response"]["body"]["error"]["code"] == "model_not_found"


def test_exhausted_retries_land_in_the_error_file(upstream):
    upstream.script.update(
        {
            "always-500": [reply(500, UNAVAILABLE)] * 10,
            "always-529": [reply(529, OVERLOADED)] * 10,
            "always-close": [CLOSE] * 10,
        }
    )
    lines = [
        chat_line("x500", "openai", content="always-500"),
        chat_line("x529", "anthropic", content="always-529"),
        chat_line("xclose", "openai", content="always-close"),
    ]
    with engine(upstream, max_retries=2) as server:
        b, out, err = run(server, lines)
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 3, "completed": 0, "failed": 3}
    # Every request failed: no output file, only an error file.
    assert b["output_file_id"] is None and b["error_file_id"] is not None
    assert out == {}
    assert {tag: len(upstream.for_tag(tag)) for tag in upstream.script} == {
        "always-500": 3,
        "always-529": 3,
        "always-close": 3,
    }
    assert err["x500"]["error"] is None
    assert err["x500"]["response"]["status_code"] == 500
    assert err["x500"]["response"]["body"] == UNAVAILABLE
    assert err["x529"]["response"]["status_code"] == 529
    assert err["x529"]["response"]["body"] == {
        "error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": "overloaded_error"}
    }
    assert err["xclose"]["response"] is None
    assert err["xclose"]["error"]["code"] == "upstream_unreachable"
    assert err["xclose"]["error"]["message"]
    assert OPENAI_KEY not in err["xclose"]["error"]["message"]


def test_a_hung_upstream_times_out_and_is_retried(upstream):
    upstream.script["slow"] = [hang(3.0)]
    with engine(upstream, upstream_timeout=0.5) as server:
        start = time.monotonic()
        b, out, err = run(server, [chat_line("s", "openai", content="slow")])
        took = time.monotonic() - start
    assert b["status"] == "completed" and err == {}
    assert len(upstream.for_tag("slow")) == 2
    assert took < 2.9, took  # it did not wait for the hung answer
    assert out["s"]["response"]["body"]["choices"][0]["message"]["content"] == "echo slow"


def test_unreachable_upstream(upstream):
    # A port nothing listens on: bind one, then close it.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    with engine(upstream, openai_base_url=dead, max_retries=1) as server:
        b, out, err = run(
            server, [chat_line("d", "openai", content="dead"), chat_line("a", "anthropic", content="alive")]
        )
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    assert err["d"]["response"] is None
    assert err["d"]["error"]["code"] == "upstream_unreachable"
    assert out["a"]["response"]["status_code"] == 200


def test_concurrency_is_a_limit_per_provider(upstream):
    upstream.delay = 0.1
    lines = [chat_line(f"o{i}", "openai", content=f"co{i}") for i in range(12)]
    lines += [chat_line(f"a{i}", "anthropic", content=f"ca{i}") for i in range(12)]
    with engine(upstream, concurrency=3) as server:
        b, _out, err = run(server, lines)
    assert b["status"] == "completed" and err == {}
    assert dict(upstream.max_in_flight) == {"/v1/chat/completions": 3, "/v1/messages": 3}


def test_base_urls_keep_their_path_prefix(upstream):
    with engine(
        upstream, openai_base_url=upstream.url + "/openai-proxy/", anthropic_base_url=upstream.url + "/anthropic-proxy"
    ) as server:
        run(server, [chat_line("o", "openai", content="po"), chat_line("a", "anthropic", content="pa")])
    assert sorted(r.path for r in upstream.requests) == [
        "/anthropic-proxy/v1/messages",
        "/openai-proxy/v1/chat/completions",
    ]


HTML = b"<html><body><h1>Welcome to the proxy</h1></body></html>"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_2xx_reply_that_is_not_json_is_never_a_success(upstream, provider):
    """A 200 whose body is not the provider's JSON (a proxy's HTML page, say) carries no
    answer: the line must not be counted completed nor written to the output file (for
    Anthropic, not turned into an empty `chat.completion`)."""
    upstream.script["html"] = [raw(200, HTML, {"content-type": "text/html"})] * 10
    upstream.script["fine"] = []
    lines = [chat_line("html", provider, content="html"), chat_line("fine", provider, content="fine")]
    with engine(upstream, max_retries=1) as server:
        b, out, err = run(server, lines)
    assert b["status"] == "completed"
    assert list(out) == ["fine"], out.get("html")
    assert list(err) == ["html"]
    assert b["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
