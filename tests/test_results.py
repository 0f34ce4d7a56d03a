"""Results: `client.batches.results()` / `read_results()` against real batches run by the
local engine (simulated provider), and against hand-written hostile files."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import random
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import fastrouter_batch as fb
from fastrouter_batch import LocalServer

KEY = "sk-v1-results-test"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


# --- helpers ------------------------------------------------------------------------------


def chat_builder(n: int, prefix: str = "req") -> fb.BatchBuilder:
    """`n` chat requests alternating openai and anthropic (several models), some with a
    system prompt or content parts."""
    b = fb.BatchBuilder()
    models = ["openai/gpt-4.1-nano", "anthropic/claude-4.5-sonnet", "openai/gpt-4o-mini", "anthropic/claude-4.5-haiku"]
    for i in range(n):
        model = models[i % len(models)]
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"Question number {i}: what is {i} + {i}?"}]
        if i % 3 == 0:
            messages.insert(0, {"role": "system", "content": "Be brief."})
        if i % 5 == 0:
            messages[-1]["content"] = [{"type": "text", "text": f"Parts question {i}, café 東京"}]
        params = {"max_tokens": 200} if model.startswith("anthropic/") else {}
        b.add_chat(f"{prefix}-{i}", model, messages, **params)
    return b


def run_batch(client: fb.Client, data: Any, endpoint: str = "/v1/chat/completions") -> fb.Batch:
    f = client.files.create(data)
    batch = client.batches.create(input_file_id=f.id, endpoint=endpoint)
    return wait_terminal(client, batch.id)


def wait_terminal(client: fb.Client, batch_id: str, timeout: float = 30.0) -> fb.Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch.status} after {timeout}s"
        time.sleep(0.02)


def raw_lines(client: fb.Client, batch: fb.Batch) -> list[dict[str, Any]]:
    """Every output and error line of the batch, parsed with json (the reference)."""
    out = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            out += [json.loads(line) for line in client.files.content(file_id).text.splitlines() if line.strip()]
    return out


def expected_text(body: Any) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content


def check_against_raw(result: fb.Result, line: dict[str, Any]) -> None:
    """Every field of `result` agrees with the line as json reads it."""
    response, error = line.get("response"), line.get("error")
    assert result.custom_id == line["custom_id"]
    if response is not None:
        body = response["body"]
        assert result.status_code == response["status_code"]
        assert result.body == body
        assert result.ok == (200 <= response["status_code"] < 300 and error is None)
        if result.ok:
            assert result.error is None and result.error_code is None and result.error_message is None
            assert result.text == expected_text(body)
            assert result.model == body.get("model")
            usage = body.get("usage")
            assert result.usage == {
                "prompt_tokens": usage.get("prompt_tokens", 0),
                "completion_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage["total_tokens"],
            }
        else:
            err = body["error"]
            assert result.error == {"code": err.get("code") or err.get("type"), "message": err["message"]}
    else:
        assert result.status_code is None
        assert result.ok is False
        assert result.body is None
        assert result.text is None and result.model is None and result.usage is None
        assert result.error == {"code": error["code"], "message": error["message"]}
    assert result.error_code == (result.error or {}).get("code")
    assert result.error_message == (result.error or {}).get("message")
    assert result.to_dict() == line


@pytest.fixture(scope="module")
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def client(server) -> fb.Client:
    return fb.Client(KEY, server.url, timeout=30, max_retries=0)


# --- real batches -----------------------------------------------------------------------


def test_mixed_chat_batch_every_field(client):
    builder = chat_builder(40)
    batch = run_batch(client, builder)
    assert batch.status == "completed"
    results = client.batches.results(batch)
    lines = raw_lines(client, batch)
    assert len(results) == len(lines) == 40
    # Without inputs: the files' order.
    assert [r.custom_id for r in results] == [line["custom_id"] for line in lines]
    by_id = {line["custom_id"]: line for line in lines}
    for r in results:
        check_against_raw(r, by_id[r.custom_id])
        assert r.ok and r.status_code == 200 and r.error is None
        assert r.text and r.text.startswith("Simulated answer")
        assert r.embedding is None
        assert r.file is not None and Path(r.file).name.endswith(".output.jsonl")
        assert 1 <= r.line <= 40
    # The model answering is the one asked for, whichever provider.
    models = {req["custom_id"]: req["body"]["model"] for req in map(json.loads, builder)}
    for r in results:
        assert r.model == models[r.custom_id]
    # Parts (with non-ASCII text) come back whole.
    assert "café 東京" in results["req-5"].text
    assert results.custom_ids == [r.custom_id for r in results]


def test_inputs_give_the_request_order(client, tmp_path):
    builder = chat_builder(30, prefix="ord")
    batch = run_batch(client, builder)
    want = [f"ord-{i}" for i in range(30)]
    # The downloaded files, shuffled, so file order is clearly not input order.
    lines = raw_lines(client, batch)
    random.Random(3).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("".join(json.dumps(line) + "\n" for line in lines))
    input_path = tmp_path / "input.jsonl"
    builder.write(input_path)

    plain = fb.read_results(shuffled)
    assert [r.custom_id for r in plain] == [line["custom_id"] for line in lines] != want
    for inputs in (
        builder,
        input_path,
        str(input_path),
        want,
        [input_path],
        [fb.BatchRequest.chat("ord-0", "openai/gpt-4.1-nano", [{"role": "user", "content": "x"}]), *want[1:]],
    ):
        r = fb.read_results(shuffled, inputs=inputs)
        assert [x.custom_id for x in r] == want, inputs
        assert list(r.texts()) == want
        assert r.custom_ids == want
        assert r.missing == []
    # Input ids without a result are reported; results for no input come last.
    r = fb.read_results(shuffled, inputs=["ord-2", "nope-1", "ord-1", "nope-2"])
    assert [x.custom_id for x in r][:2] == ["ord-2", "ord-1"]
    assert len(r) == 30 and r.missing == ["nope-1", "nope-2"]
    assert r.summary()["missing"] == 2
    assert "missing=2" in repr(r)
    # Through the client, with the builder.
    via_client = client.batches.results(batch.id, inputs=builder)
    assert [x.custom_id for x in via_client] == want


def test_lookups(client):
    batch = run_batch(client, chat_builder(6, prefix="lk"))
    results = client.batches.results(batch.id)
    r = results["lk-3"]
    assert isinstance(r, fb.Result)
    assert r.custom_id == "lk-3"
    assert "lk-3" in results and "lk-99" not in results and 3 not in results
    assert results.get("lk-4").custom_id == "lk-4"
    assert results.get("lk-99") is None
    sentinel = object()
    assert results.get("lk-99", sentinel) is sentinel
    with pytest.raises(KeyError):
        results["lk-99"]
    assert results[0].custom_id == next(iter(results)).custom_id
    assert results[-1].custom_id == list(results)[-1].custom_id
    with pytest.raises(IndexError):
        results[6]
    with pytest.raises(TypeError):
        results[1.5]  # type: ignore[index]
    assert repr(r).startswith("Result(custom_id='lk-3', ok=True, status_code=200, text='Simulated answer")
    assert repr(results) == "BatchResults(total=6, succeeded=6, failed=0)"
    # The body is parsed once and kept.
    assert r.body is r.body


def test_summary_and_texts(client):
    batch = run_batch(client, chat_builder(12, prefix="sm"))
    results = client.batches.results(batch)
    lines = raw_lines(client, batch)
    s = results.summary()
    usage = [line["response"]["body"]["usage"] for line in lines]
    # Tokens per model and provider (cost.py): the same sums, split.
    by_model, by_provider = s.pop("by_model"), s.pop("by_provider")
    assert s.pop("cached") == 0
    models = {line["response"]["body"]["model"] for line in lines}
    assert set(by_model) == models
    for part in (by_model, by_provider):
        assert sum(m["requests"] for m in part.values()) == 12
        assert sum(m["prompt_tokens"] for m in part.values()) == sum(u["prompt_tokens"] for u in usage)
        assert sum(m["completion_tokens"] for m in part.values()) == sum(u["completion_tokens"] for u in usage)
    assert s == {
        "total": 12,
        "succeeded": 12,
        "failed": 0,
        "missing": 0,
        "prompt_tokens": sum(u["prompt_tokens"] for u in usage),
        "completion_tokens": sum(u["completion_tokens"] for u in usage),
        "total_tokens": sum(u["total_tokens"] for u in usage),
        "status_codes": {200: 12},
        "error_codes": {},
    }
    texts = results.texts()
    assert texts == {line["custom_id"]: expected_text(line["response"]["body"]) for line in lines}
    assert len(results.succeeded) == 12 and len(results.failed) == 0
    assert list(results.failed) == [] and results.failed.texts() == {}


def test_embeddings_batch(client):
    b = fb.BatchBuilder()
    for i in range(5):
        b.add_embedding(f"emb-{i}", "openai/text-embedding-3-small", f"text number {i}")
    b.add_embedding("emb-list", "openai/text-embedding-3-small", ["first", "second"])
    batch = run_batch(client, b, endpoint="/v1/embeddings")
    assert batch.status == "completed"
    results = client.batches.results(batch)
    lines = {line["custom_id"]: line for line in raw_lines(client, batch)}
    assert len(results) == 6
    for r in results:
        body = lines[r.custom_id]["response"]["body"]
        check_against_raw(r, lines[r.custom_id])
        assert r.ok and r.text is None
        assert r.embedding == body["data"][0]["embedding"]
        assert len(r.embedding) == 64 and all(isinstance(x, float) for x in r.embedding)
        assert r.usage["completion_tokens"] == 0 and r.usage["prompt_tokens"] > 0
    assert results.texts() == {f"emb-{i}": None for i in range(5)} | {"emb-list": None}
    # `embedding` is the first vector when several inputs were embedded.
    assert results["emb-list"].embedding == lines["emb-list"]["response"]["body"]["data"][0]["embedding"]


def test_all_failed_batch():
    with LocalServer(api_key=KEY, fault_rate=1.0, max_retries=0) as s:
        client = fb.Client(KEY, s.url, timeout=30, max_retries=0)
        batch = run_batch(client, chat_builder(10, prefix="fail"))
        assert batch.status == "completed"
        assert batch.output_file_id is None and batch.error_file_id
        results = client.batches.results(batch)
        lines = {line["custom_id"]: line for line in raw_lines(client, batch)}
        assert len(results) == 10
        codes = {}
        for r in results:
            check_against_raw(r, lines[r.custom_id])
            assert not r.ok and r.status_code in (429, 500)
            assert r.text is None and r.usage is None and r.model is None and r.embedding is None
            assert r.error_code in ("rate_limited", "server_error") and r.error_message
            codes[r.error_code] = codes.get(r.error_code, 0) + 1
            assert repr(r).endswith(f"ok=False, status_code={r.status_code}, error_code={r.error_code!r})")
        s_ = results.summary()
        assert (s_["total"], s_["succeeded"], s_["failed"]) == (10, 0, 10)
        assert s_["error_codes"] == codes
        assert sum(s_["status_codes"].values()) == 10 and set(s_["status_codes"]) <= {429, 500}
        assert s_["prompt_tokens"] == s_["completion_tokens"] == s_["total_tokens"] == 0
        assert len(results.succeeded) == 0 and len(results.failed) == 10
        assert "fail-1" in results.failed and "fail-1" not in results.succeeded
        assert results.failed["fail-1"].custom_id == "fail-1"
        with pytest.raises(KeyError):
            results.succeeded["fail-1"]
        assert results.texts() == {f"fail-{i}": None for i in range(10)}


def test_cancelled_batch_has_not_run_lines():
    with LocalServer(api_key=KEY, latency=0.1, concurrency=1) as s:
        client = fb.Client(KEY, s.url, timeout=30, max_retries=0)
        builder = chat_builder(40, prefix="cx")
        f = client.files.create(builder)
        batch = client.batches.create(input_file_id=f.id)
        deadline = time.monotonic() + 20
        while True:
            b = client.batches.retrieve(batch.id)
            if b.status == "in_progress" and b.request_counts and (b.request_counts.completed or 0) >= 2:
                break
            assert time.monotonic() < deadline, b.status
            time.sleep(0.02)
        client.batches.cancel(batch.id)
        done = wait_terminal(client, batch.id)
        assert done.status == "cancelled"
        results = client.batches.results(done, inputs=builder)
        lines = {line["custom_id"]: line for line in raw_lines(client, done)}
        assert len(results) == 40 and results.missing == []
        assert [r.custom_id for r in results] == [f"cx-{i}" for i in range(40)]
        ran = [r for r in results if r.ok]
        not_run = [r for r in results if not r.ok]
        assert len(ran) >= 2 and len(not_run) >= 1
        for r in results:
            check_against_raw(r, lines[r.custom_id])
        for r in not_run:
            assert r.error["code"] == "batch_cancelled" and r.error_code == "batch_cancelled"
            assert "cancelled" in r.error["message"]
            assert r.status_code is None and r.body is None and r.text is None
        s_ = results.summary()
        assert s_["error_codes"] == {"batch_cancelled": len(not_run)}
        assert s_["status_codes"] == {200: len(ran)}
        assert [r.custom_id for r in results.failed] == [r.custom_id for r in not_run]
        assert [r.custom_id for r in results.succeeded] == [r.custom_id for r in ran]


def test_async_client_results(server):
    async def go() -> None:
        aclient = fb.AsyncClient(KEY, server.url, timeout=30, max_retries=0)
        builder = chat_builder(8, prefix="as")
        f = await aclient.files.create(builder)
        batch = await aclient.batches.create(input_file_id=f.id)
        deadline = time.monotonic() + 30
        while batch.status not in TERMINAL:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
            batch = await aclient.batches.retrieve(batch.id)
        for given in (batch, batch.id):
            results = await aclient.batches.results(given, inputs=builder)
            assert [r.custom_id for r in results] == [f"as-{i}" for i in range(8)]
            assert all(r.ok and r.text for r in results)

    asyncio.run(go())


def test_results_of_unfinished_and_failed_batches(server, client):
    with LocalServer(api_key=KEY, latency=0.5, concurrency=1) as slow:
        c = fb.Client(KEY, slow.url, timeout=30, max_retries=0)
        f = c.files.create(chat_builder(5, prefix="slow"))
        b = c.batches.create(input_file_id=f.id)
        with pytest.raises(fb.FastRouterError, match="no results yet"):
            c.batches.results(b.id)
        c.batches.cancel(b.id)
    bad = client.files.create(b"this is not json\n")
    b = client.batches.create(input_file_id=bad.id)
    done = wait_terminal(client, b.id)
    assert done.status == "failed"
    with pytest.raises(fb.FastRouterError, match=r"failed: line 1"):
        client.batches.results(done)


def test_downloaded_files_go_with_the_results(client):
    batch = run_batch(client, chat_builder(3, prefix="tmp"))
    results = client.batches.results(batch)
    r = results["tmp-1"]
    directory = Path(r.file).parent
    assert directory.is_dir()
    del results
    gc.collect()
    assert directory.is_dir()  # a Result still holds the files
    assert r.body["choices"][0]["message"]["content"] == r.text
    del r
    gc.collect()
    assert not directory.exists()


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_dataframes(client, lib):
    mod = pytest.importorskip(lib)
    batch = run_batch(client, chat_builder(7, prefix="df"))
    results = fb.read_results(*_download(client, batch), inputs=[f"df-{i}" for i in range(7)])
    frame = results.to_pandas() if lib == "pandas" else results.to_polars()
    assert list(frame.columns) == [
        "custom_id",
        "ok",
        "status_code",
        "text",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "error_code",
        "error_message",
        "cached",
    ]
    assert len(frame) == 7
    rows = frame.to_dict("records") if lib == "pandas" else frame.to_dicts()
    for row, r in zip(rows, results, strict=True):
        assert row["custom_id"] == r.custom_id and bool(row["ok"]) is r.ok
        assert row["status_code"] == 200 and row["text"] == r.text and row["model"] == r.model
        assert row["prompt_tokens"] == r.usage["prompt_tokens"]
        assert row["completion_tokens"] == r.usage["completion_tokens"]
        assert row["error_code"] is None and row["error_message"] is None
    assert mod is not None


def _download(client: fb.Client, batch: fb.Batch) -> list[bytes]:
    return [client.files.content(fid).content for fid in (batch.output_file_id, batch.error_file_id) if fid]


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_dataframe_extras_missing(monkeypatch, lib):
    monkeypatch.setitem(sys.modules, lib, None)  # import raises ImportError
    results = fb.read_results(ok_line("a").encode())
    with pytest.raises(ImportError, match=rf"fastrouter-batch\[{lib}\]"):
        results.to_pandas() if lib == "pandas" else results.to_polars()


def test_to_columns_with_failures(tmp_path):
    data = "".join(x + "\n" for x in [ok_line("a"), rejected_line("b", 429), never_ran_line("c")])
    cols = fb.read_results(data.encode()).to_columns()
    assert cols == {
        "custom_id": ["a", "b", "c"],
        "ok": [True, False, False],
        "status_code": [200, 429, None],
        "text": ["Hello a", None, None],
        "model": ["gpt-4.1-nano", None, None],
        "prompt_tokens": [3, None, None],
        "completion_tokens": [4, None, None],
        "error_code": [None, "rate_limited", "batch_expired"],
        "error_message": [None, "Slow down", "Not run in time"],
        "cached": [False, False, False],
    }


def test_to_pandas_is_what_pandas_makes_of_the_columns():
    """to_pandas() builds its columns from arrays (not lists of Python objects); the frame is
    still what pandas makes of ``to_columns()`` by itself, with nullable ints, dtype by
    dtype and value by value."""
    pd = pytest.importorskip("pandas")
    lines = [ok_line("a"), rejected_line("b", 429), never_ran_line("c"), ok_line("d", content="Ünïcödé ✓")]
    results = fb.read_results("".join(x + "\n" for x in lines).encode())
    expected = pd.DataFrame(results.to_columns())
    for name in ("status_code", "prompt_tokens", "completion_tokens"):
        expected[name] = expected[name].astype("Int64")
    pd.testing.assert_frame_equal(results.to_pandas(), expected)
    # A column without a single value is object (of None), as pandas makes it too.
    only_ok = fb.read_results((ok_line("a") + "\n").encode()).to_pandas()
    assert only_ok["error_code"].dtype == object and only_ok["error_code"].tolist() == [None]


def test_to_polars_is_what_polars_makes_of_the_columns():
    pl = pytest.importorskip("polars")
    lines = [ok_line("a"), rejected_line("b", 429), never_ran_line("c"), ok_line("d", content="Ünïcödé ✓")]
    results = fb.read_results("".join(x + "\n" for x in lines).encode())
    cols = results.to_columns()
    types = {"ok": pl.Boolean, "cached": pl.Boolean, "status_code": pl.Int64}
    types |= {"prompt_tokens": pl.Int64, "completion_tokens": pl.Int64}
    expected = pl.DataFrame({k: pl.Series(k, v, dtype=types.get(k, pl.Utf8)) for k, v in cols.items()})
    assert results.to_polars().equals(expected)
    # Joined by id, a row without a result is null in every result column.
    out = results.join(pl.DataFrame({"id": ["d", "zz", "b"]}), on="id")
    assert out["text"].to_list() == ["Ünïcödé ✓", None, None]
    assert out["ok"].to_list() == [True, None, False] and out["status_code"].to_list() == [200, None, 429]
    assert out["error_code"].to_list() == [None, None, "rate_limited"]


def test_join_gathers_each_column_by_id_and_leaves_unknown_rows_missing():
    pd = pytest.importorskip("pandas")
    lines = [ok_line("a"), rejected_line("b", 429), ok_line("c", content="third")]
    results = fb.read_results("".join(x + "\n" for x in lines).encode())
    df = pd.DataFrame({"id": ["c", "zz", "a", "b"], "n": [1, 2, 3, 4]})
    out = results.join(df, on="id")
    assert out["text"].tolist()[0] == "third" and out["text"].tolist()[2] == "Hello a"
    assert out["text"].isna().tolist() == [False, True, False, True]
    assert out["status_code"].tolist() == [200, pd.NA, 200, 429]
    assert out["error_code"].tolist()[3] == "rate_limited"
    # A row without a result: its booleans are missing too (nullable), not False.
    assert str(out["ok"].dtype) == "boolean" and out["ok"].tolist() == [True, pd.NA, True, False]
    assert out["cached"].tolist() == [False, pd.NA, False, False]
    # Every row found: plain bool columns.
    full = results.join(df[df["id"] != "zz"], on="id")
    assert full["ok"].dtype == bool and full["ok"].tolist() == [True, True, False]
    assert full["n"].tolist() == [1, 3, 4] and list(full.index) == [0, 2, 3]


def test_columns_at_positions_check_their_input():
    results = fb.read_results((ok_line("a") + "\n" + rejected_line("b", 429) + "\n").encode())
    cols = results._set.frame_columns(at=struct.pack("=3q", 1, -1, 0), missing="-")
    assert cols["custom_id"] == ["b", "-", "a"] and cols["text"] == ["-", "-", "Hello a"]
    assert cols["error_code"] == ["rate_limited", "-", "-"]
    assert cols["status_code"] == (struct.pack("=3q", 429, 0, 200), bytes([0, 1, 0]))
    assert cols["ok"] == (bytes([0, 0, 1]), bytes([0, 1, 0]))
    # A column without a single value is None (pandas makes it object, not str).
    assert results._set.frame_columns(at=struct.pack("=q", 0))["error_code"] is None
    with pytest.raises(IndexError, match="position 2 is out of range for 2 results"):
        results._set.frame_columns(at=struct.pack("=q", 2))
    with pytest.raises(ValueError, match="multiple of 8"):
        results._set.frame_columns(at=b"\x00" * 7)


# --- files written by hand ----------------------------------------------------------------


def ok_line(custom_id: str, content: Any = None, **body: Any) -> str:
    b = {
        "id": f"chatcmpl-{custom_id}",
        "object": "chat.completion",
        "model": "gpt-4.1-nano",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"Hello {custom_id}" if content is None else content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    b.update(body)
    return json.dumps(
        {
            "id": f"batch_req_{custom_id}",
            "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": "r", "body": b},
            "error": None,
        },
        ensure_ascii=False,
    )


def rejected_line(custom_id: str, status: int) -> str:
    return json.dumps(
        {
            "id": "x",
            "custom_id": custom_id,
            "response": {
                "status_code": status,
                "body": {"error": {"message": "Slow down", "type": "rate_limit_error", "code": "rate_limited"}},
            },
            "error": None,
        }
    )


def never_ran_line(custom_id: str) -> str:
    return json.dumps(
        {
            "id": "x",
            "custom_id": custom_id,
            "response": None,
            "error": {"code": "batch_expired", "message": "Not run in time"},
        }
    )


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def test_truncated_last_line_names_file_and_line(tmp_path):
    good = ok_line("a")
    p = write(tmp_path, "out.jsonl", f"{good}\n{ok_line('b')}\n{good[:-20]}")
    with pytest.raises(ValueError) as e:
        fb.read_results(p)
    msg = str(e.value)
    assert str(p) in msg and "line 3" in msg and "truncated" in msg


def test_invalid_json_line_names_file_and_line(tmp_path):
    out = write(tmp_path, "out.jsonl", f"{ok_line('a')}\n{ok_line('b')}\n")
    err = write(tmp_path, "err.jsonl", f"{never_ran_line('c')}\n\n{{not json}}\n")
    with pytest.raises(ValueError) as e:
        fb.read_results(out, err)
    assert str(err) in str(e.value) and "line 3" in str(e.value) and "invalid JSON" in str(e.value)
    for bad, why in [
        ("[1, 2]", "expected a JSON object"),
        ('{"response": null}', "no custom_id"),
        ('{"custom_id": 5}', "custom_id must be a string"),
    ]:
        p = write(tmp_path, "bad.jsonl", f"{ok_line('a')}\n{bad}\n")
        with pytest.raises(ValueError, match=rf"bad\.jsonl, line 2: {why}"):
            fb.read_results(p)
    p = write(tmp_path, "utf8.jsonl", ok_line("a").encode() + b"\n" + b'{"custom_id": "\xff"}\n')
    with pytest.raises(ValueError, match=r"utf8\.jsonl, line 2: invalid UTF-8"):
        fb.read_results(p)
    with pytest.raises(ValueError, match=r"<bytes #2>, line 1"):
        fb.read_results(ok_line("a").encode(), b"nope\n")


def test_empty_and_blank_files(tmp_path):
    for data in ("", "\n\n", " \r\n", "\ufeff"):
        r = fb.read_results(write(tmp_path, "empty.jsonl", data))
        assert len(r) == 0 and list(r) == [] and r.texts() == {}
        assert r.summary()["total"] == 0
        assert repr(r) == "BatchResults(total=0, succeeded=0, failed=0)"
    assert len(fb.read_results()) == 0


def test_bom_crlf_blank_lines_and_bytes(tmp_path):
    data = "\ufeff" + ok_line("a") + "\r\n\r\n" + ok_line("b") + "\n" + ok_line("c")
    p = write(tmp_path, "crlf.jsonl", data)
    for source in (p, str(p), data.encode(), bytearray(data.encode())):
        r = fb.read_results(source)
        assert [x.custom_id for x in r] == ["a", "b", "c"]
        assert [x.line for x in r] == [1, 3, 4]
        assert r["a"].body["id"] == "chatcmpl-a"  # read back after the BOM
        assert r["c"].to_dict()["custom_id"] == "c"
    assert fb.read_results(data.encode())["a"].file is None


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        fb.read_results(tmp_path / "nope.jsonl")
    with pytest.raises(OSError):
        fb.read_results(tmp_path)  # a directory
    with pytest.raises(TypeError, match="paths"):
        fb.read_results(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="inputs"):
        fb.read_results(ok_line("a").encode(), inputs=[42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"inputs: .*in\.jsonl, line 1"):
        fb.read_results(ok_line("a").encode(), inputs=write(tmp_path, "in.jsonl", "nope\n"))


def test_text_shapes():
    lines = [
        ok_line("str", 'plain "quoted" \n new line \u00e9 \U0001f600'),
        ok_line(
            "parts",
            [
                {"type": "text", "text": "one, "},
                {"type": "image_url", "image_url": {"url": "u"}},
                {"type": "text", "text": "two"},
            ],
        ),
        ok_line("null", None).replace('"Hello null"', "null"),
        ok_line("empty", ""),
        json.dumps(
            {
                "custom_id": "anthropic",
                "response": {
                    "status_code": 200,
                    "body": {
                        "type": "message",
                        "model": "claude",
                        "content": [{"type": "text", "text": "Native"}],
                        "usage": {"input_tokens": 5, "output_tokens": 6},
                    },
                },
            }
        ),
    ]
    r = fb.read_results("\n".join(lines).encode())
    assert r["str"].text == 'plain "quoted" \n new line \u00e9 \U0001f600'
    assert r["parts"].text == "one, two"
    assert r["null"].text is None and r["null"].ok
    assert r["empty"].text == ""
    assert r["anthropic"].text == "Native" and r["anthropic"].model == "claude"
    assert r["anthropic"].usage == {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}


def test_base64_embeddings():
    vector = [0.5, -1.25, 3.0]
    b64 = base64.b64encode(struct.pack("<3f", *vector)).decode()
    line = json.dumps(
        {
            "custom_id": "e",
            "response": {
                "status_code": 200,
                "body": {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": b64}],
                    "model": "text-embedding-3-small",
                    "usage": {"prompt_tokens": 2, "total_tokens": 2},
                },
            },
        }
    )
    assert fb.read_results(line.encode())["e"].embedding == vector


def test_repeated_custom_id_last_wins(tmp_path):
    first = rejected_line("x", 429)
    retry = ok_line("x")
    r = fb.read_results(
        write(tmp_path, "a.jsonl", first + "\n"), write(tmp_path, "b.jsonl", retry + "\n" + ok_line("y"))
    )
    assert len(r) == 3  # every line is a result
    assert r["x"].ok and r["x"].text == "Hello x"
    assert r.texts() == {"x": "Hello x", "y": "Hello y"}
    ordered = fb.read_results(
        write(tmp_path, "a.jsonl", first + "\n"),
        write(tmp_path, "b.jsonl", retry + "\n" + ok_line("y")),
        inputs=["y", "x"],
    )
    assert [(x.custom_id, x.ok) for x in ordered] == [("y", True), ("x", True), ("x", False)]


def test_body_is_read_back_from_the_file(tmp_path):
    p = write(tmp_path, "out.jsonl", ok_line("a") + "\n" + ok_line("b") + "\n")
    r = fb.read_results(p)
    # Replaced by a new file (as downloads do): the open file still has the old lines.
    p2 = write(tmp_path, "other.jsonl", ok_line("zzz") + "\n")
    os.replace(p2, p)
    assert r["b"].body["id"] == "chatcmpl-b"
    # Rewritten in place: the change is noticed, never misread.
    p.write_text(ok_line("a") + "\n" + ok_line("b") + "\n")
    r = fb.read_results(p)
    with open(p, "r+b") as f:
        f.write(ok_line("q").encode() + b"\n")
        f.truncate()
    with pytest.raises(OSError, match="changed since it was read"):
        _ = r["b"].body
    with pytest.raises(OSError, match="changed since it was read"):
        r["a"].to_dict()
    assert r["a"].text == "Hello a"  # what was read stays


def test_many_lines_in_order_and_views(tmp_path):
    n = 5000
    rng = random.Random(7)
    ids = [f"id-{i}" for i in range(n)]
    lines = []
    for cid in ids:
        roll = rng.random()
        lines.append(
            ok_line(cid, f"text {cid} " + "x" * rng.randint(0, 3000))
            if roll < 0.9
            else rejected_line(cid, 500)
            if roll < 0.95
            else never_ran_line(cid)
        )
    p = write(tmp_path, "big.jsonl", "\n".join(lines) + "\n")
    r = fb.read_results(p)
    assert [x.custom_id for x in r] == ids
    ok_ids = [
        json.loads(x)["custom_id"]
        for x in lines
        if json.loads(x)["response"] and json.loads(x)["response"]["status_code"] == 200
    ]
    assert r.succeeded.custom_ids == ok_ids
    assert len(r.succeeded) + len(r.failed) == n
    assert all(not x.ok for x in r.failed)
    assert r.succeeded.summary()["failed"] == 0
    assert r.failed.summary()["succeeded"] == 0
    t = r.texts()
    assert all(t[i].startswith(f"text {i} ") for i in ok_ids)
    rev = fb.read_results(p, inputs=list(reversed(ids)))
    assert rev.custom_ids == list(reversed(ids))
    assert rev.failed.custom_ids == [i for i in reversed(ids) if i not in set(ok_ids)]


# --- read_texts: the dict alone -----------------------------------------------------------


def test_read_texts_of_a_real_batch_matches_the_reference(client, tmp_path):
    batch = run_batch(client, chat_builder(9, prefix="rt"))
    out = tmp_path / "out.jsonl"
    client.files.download(batch.output_file_id, out)
    lines = raw_lines(client, batch)
    expected = {line["custom_id"]: expected_text(line["response"]["body"]) for line in lines}
    assert fb.read_texts(out) == expected
    assert list(fb.read_texts(out)) == [line["custom_id"] for line in lines]  # the file's order
    assert fb.read_texts(out.read_bytes()) == expected
    assert fb.read_texts(out) == fb.read_results(out).texts()


def test_read_texts_failures_shapes_and_repeats(tmp_path):
    out = write(
        tmp_path,
        "out.jsonl",
        "\ufeff"
        + ok_line("a", 'plain "q" \n \u00e9 \U0001f600')
        + "\r\n\r\n"
        + ok_line("x", "first")
        + "\n"
        + ok_line("emb", None).replace('"Hello emb"', "null")
        + "\n",
    )
    err = write(
        tmp_path, "err.jsonl", rejected_line("r", 429) + "\n" + never_ran_line("n") + "\n" + ok_line("x", "second")
    )
    t = fb.read_texts(out, err)
    assert t == {"a": 'plain "q" \n \u00e9 \U0001f600', "x": "second", "emb": None, "r": None, "n": None}
    assert list(t) == ["a", "x", "emb", "r", "n"]  # a repeated id keeps its first place, its last text
    assert t == fb.read_results(out, err).texts()
    assert fb.read_texts() == {}
    assert fb.read_texts(write(tmp_path, "blank.jsonl", "\n \r\n")) == {}


def test_read_texts_errors_name_file_and_line(tmp_path):
    good = write(tmp_path, "good.jsonl", ok_line("a") + "\n")
    bad = write(tmp_path, "bad.jsonl", f"{ok_line('b')}\n\n{{not json}}\n")
    with pytest.raises(ValueError) as e:
        fb.read_texts(good, bad)
    assert str(bad) in str(e.value) and "line 3" in str(e.value) and "invalid JSON" in str(e.value)
    with pytest.raises(ValueError, match=r"<bytes #2>, line 1: expected a JSON object"):
        fb.read_texts(ok_line("a").encode(), b"[1]\n")
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        fb.read_texts(tmp_path / "nope.jsonl")
    with pytest.raises(TypeError, match="paths"):
        fb.read_texts(42)  # type: ignore[arg-type]


def test_read_texts_many_blocks(tmp_path):
    # Several reader blocks (128 KiB each) with lines longer than a block among them.
    rng = random.Random(3)
    ids = [f"id-{i}" for i in range(3000)]
    texts = {cid: f"{cid} " + "é" * rng.choice((0, 10, 500, 200_000)) for cid in ids}
    p = write(tmp_path, "big.jsonl", "\n".join(ok_line(cid, texts[cid]) for cid in ids) + "\n")
    assert p.stat().st_size > 4 * 128 * 1024
    t = fb.read_texts(p)
    assert list(t) == ids and t == texts


def test_a_request_file_is_not_taken_for_results(tmp_path):
    req = json.dumps(
        {
            "custom_id": "a",
            "provider": "openai",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "openai/gpt-4.1-nano", "messages": []},
        }
    )
    p = write(tmp_path, "batch.jsonl", req + "\n")
    for read in (fb.read_results, fb.read_texts):
        with pytest.raises(ValueError, match=r"batch\.jsonl, line 1: not a result line.*input file"):
            read(p)
    p = write(tmp_path, "out.jsonl", ok_line("a") + "\nnot json\n")
    with pytest.raises(ValueError, match=r"line 2: invalid JSON"):
        fb.read_results(p)
