"""DataFrame in, DataFrame out, end to end on the embedded engine (real HTTP over
127.0.0.1): structured output from a pydantic model across OpenAI and Anthropic models
(per-row model from a column), ``Result.parsed`` and its per-row error, ``join(df)`` with
typed columns and the id column's dtype kept, the result cache (a second run submits
nothing; ten changed rows submit one batch of ten; two processes writing at once lose
nothing), and the cost summary.

The row whose answer does not fit: its ``max_tokens`` comes from a column (``col()``) and
is 8 for that row only. The simulator writes the schema's JSON and cuts it at max_tokens
(finish_reason "length"), as a real model does: the truncated JSON fails validation in
that row only, deterministically.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from pydantic import BaseModel, Field

import fastrouter_batch as fb
from fastrouter_batch import Client, LocalServer

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

KEY = "sk-v1-dataframe-flow"
WAIT = 60.0
NANO = "openai/gpt-4.1-nano"
SONNET = "anthropic/claude-4.5-sonnet"


class Review(BaseModel):
    summary: str
    score: int = Field(ge=1, le=5)
    positive: bool
    tags: list[str]


@pytest.fixture
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def client(server) -> Client:
    return Client(KEY, server.url, timeout=10, max_retries=0)


def products(n: int, start: int = 100) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": pd.array(range(start, start + n), dtype="int64"),
            "text": [f"product {i}: a sturdy thing" for i in range(n)],
            "model": [SONNET if i % 2 else NANO for i in range(n)],
            "budget": pd.array([8 if i == 3 else 400 for i in range(n)], dtype="Int64"),
        }
    )


def batch_sizes(client: Client) -> list[int]:
    return [b.request_counts.total for b in client.batches.list(limit=100)]


def test_structured_batch_across_both_providers_joins_back_typed(client):
    df = products(8)
    res = client.run(
        df,
        prompt="Review this product: {text}",
        model="{model}",
        custom_id="sku",
        response_format=Review,
        params={"max_tokens": fb.col("budget"), "temperature": 0.2},
        timeout=WAIT,
        progress=False,
    )
    assert len(res) == 8 and len(res.failed) == 0
    # Both providers ran: the answers name the model of their row.
    assert {r.model for r in res} == {NANO, SONNET}
    for i, r in enumerate(res):
        if i == 3:
            assert r.parsed is None
            assert "does not fit Review" in r.parse_error
        else:
            assert isinstance(r.parsed, Review), (r.custom_id, r.text, r.parse_error)
            assert 1 <= r.parsed.score <= 5
            assert r.parse_error is None
        assert r.cached is False

    out = res.join(df, on="sku")
    assert list(out["sku"]) == list(df["sku"]) and out["sku"].dtype == df["sku"].dtype
    assert list(out.columns[:4]) == ["sku", "text", "model", "budget"]
    assert {"text_result", "summary", "score", "positive", "tags", "parse_error", "ok"} <= set(out.columns)
    assert str(out["score"].dtype) == "Int64" and str(out["positive"].dtype) == "boolean"
    # The bad row: its error in its row only, missing values in its parsed fields.
    assert out["parse_error"].notna().tolist() == [i == 3 for i in range(8)]
    assert out["score"].isna().tolist() == [i == 3 for i in range(8)]
    assert out["ok"].all()

    # polars, too: same columns, the id's dtype kept.
    pdf = pl.DataFrame({c: df[c].tolist() for c in df.columns})
    pout = res.join(pdf, on="sku")
    assert pout["sku"].dtype == pdf["sku"].dtype and pout["score"].dtype == pl.Int64
    assert pout["score"].is_null().to_list() == [i == 3 for i in range(8)]


def test_request_lines_carry_the_strict_schema_and_one_max_tokens_default():
    df = products(4)
    b = fb.BatchBuilder.from_dataframe(df, prompt="{text}", model="{model}", custom_id="sku", response_format=Review)
    lines = [json.loads(x) for x in b]
    assert [x["provider"] for x in lines] == ["openai", "anthropic", "openai", "anthropic"]
    rf = lines[0]["body"]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    # The same strict schema openai-python makes for the model.
    from openai.lib._pydantic import to_strict_json_schema

    assert rf["json_schema"]["schema"] == to_strict_json_schema(Review)
    assert [x["body"].get("max_tokens") for x in lines] == [None, 1024, None, 1024]
    assert fb.BatchRequest.chat("a", SONNET, [{"role": "user", "content": "x"}]).body["max_tokens"] == 1024
    one = fb.BatchBuilder()
    one.add_chat("a", SONNET, [{"role": "user", "content": "x"}], max_completion_tokens=50)
    assert "max_tokens" not in json.loads(next(iter(one)))["body"]
    # The row-by-row path (a function) writes the same lines as the columnar one.
    slow = fb.BatchBuilder.from_dataframe(
        df, prompt=lambda r: r["text"], model="{model}", custom_id="sku", response_format=Review
    )
    assert slow.to_bytes() == b.to_bytes()


def test_extend_takes_a_builder_and_run_explains_a_frame_without_prompt(client):
    a = fb.BatchBuilder.from_records([{"t": "x"}], prompt="{t}", model=NANO, custom_id=lambda r: "a")
    b = fb.BatchBuilder.from_records([{"t": "y"}], prompt="{t}", model=NANO, custom_id=lambda r: "b")
    a.extend(b)
    assert [json.loads(x)["custom_id"] for x in a] == ["a", "b"]
    with pytest.raises(TypeError, match="needs prompt="):
        client.run(products(2))
    with pytest.raises(TypeError, match="apply to a DataFrame"):
        client.run(a, prompt="{t}")
    res = client.run(a, timeout=WAIT, progress=False)
    assert res.failed().custom_ids == [] and res.failed().custom_ids == res.failed.custom_ids
    assert len(res.failed) == res.summary()["failed"] == 0


def test_cache_second_run_submits_nothing_and_ten_changed_rows_one_batch_of_ten(client, tmp_path):
    cache = fb.ResultCache(tmp_path / "cache.sqlite3")
    df = products(40)
    kw = {"prompt": "Review: {text}", "model": "{model}", "custom_id": "sku", "response_format": Review}
    first = client.run(df, cache=cache, timeout=WAIT, progress=False, **kw)
    assert batch_sizes(client) == [40] and not any(r.cached for r in first)
    assert len(cache) == 40

    again = client.run(df, cache=cache, timeout=WAIT, progress=False, **kw)
    assert batch_sizes(client) == [40]  # no new batch
    assert all(r.cached for r in again)
    assert again.texts() == first.texts()
    assert [r.parsed for r in again] == [r.parsed for r in first]
    assert again.summary()["cached"] == 40

    changed = df.copy()
    changed.loc[5:14, "text"] = [f"changed {i}" for i in range(10)]
    third = client.run(changed, cache=cache, timeout=WAIT, progress=False, **kw)
    assert sorted(batch_sizes(client)) == [10, 40]
    assert [r.cached for r in third] == [not (5 <= i <= 14) for i in range(40)]
    assert third.custom_ids == [str(s) for s in df["sku"]]
    joined = third.join(changed, on="sku")
    assert joined["cached"].tolist() == [not (5 <= i <= 14) for i in range(40)]

    # The same requests under other custom_ids are the same requests.
    renamed = df.assign(sku=df["sku"] + 1000)
    fourth = client.run(renamed, cache=cache, timeout=WAIT, progress=False, **kw)
    assert sorted(batch_sizes(client)) == [10, 40] and all(r.cached for r in fourth)

    cache.clear()
    assert len(cache) == 0


def test_cache_sends_a_request_repeated_within_one_run_once(client, tmp_path):
    """Rows asking the same thing (same model, prompt, parameters) are one request: with
    the cache on, it is sent once and its answer goes to every row asking it, counted as
    cached (not paid for again: no tokens in the summary)."""
    df = products(6)
    df.loc[[2, 4], ["text", "model", "budget"]] = df.loc[0, ["text", "model", "budget"]].tolist()
    kw = {"prompt": "{text}", "model": "{model}", "custom_id": "sku", "cache": tmp_path / "c.sqlite3"}
    res = client.run(df, timeout=WAIT, progress=False, **kw)
    assert batch_sizes(client) == [4]  # rows 0, 2 and 4 are one request
    assert res.custom_ids == [str(s) for s in df["sku"]] and len(res.succeeded) == 6
    assert res["102"].text == res["104"].text == res["100"].text
    assert len({res[str(s)].text for s in (100, 101, 103, 105)}) == 4
    assert [r.cached for r in res] == [False, False, True, False, True, False]
    sent = [r for r in res if not r.cached]
    summary = res.summary()
    assert summary["cached"] == 2
    # Tokens per model are the tokens paid for: the answers sent, not their copies.
    paid = sum(m["prompt_tokens"] for m in summary["by_model"].values())
    assert paid == sum(r.usage["prompt_tokens"] for r in sent) < summary["prompt_tokens"]
    again = client.run(df, timeout=WAIT, progress=False, **kw)
    assert batch_sizes(client) == [4] and all(r.cached for r in again)


def test_a_shared_request_that_fails_fails_for_each_row_and_is_retried(tmp_path):
    """The request sent once for three rows fails: each row has the failure (not cached),
    and ``retry_failed`` finds all three requests (sync and async)."""
    import asyncio

    df = pd.DataFrame({"sku": [1, 2, 3], "text": ["same"] * 3})
    kw = {"prompt": "{text}", "model": NANO, "custom_id": "sku", "cache": tmp_path / "c.sqlite3"}
    with LocalServer(api_key=KEY, fault_rate=1.0, max_retries=0) as server:
        client = Client(KEY, server.url, timeout=10, max_retries=0)
        res = client.run(df, timeout=WAIT, progress=False, **kw)
        assert batch_sizes(client) == [1]
        assert [(r.custom_id, r.ok, r.cached) for r in res] == [
            ("1", False, False),
            ("2", False, False),
            ("3", False, False),
        ]
        assert len({r.error["code"] for r in res}) == 1
        again = client.retry_failed(res, timeout=WAIT, progress=False)
        assert sorted(r.custom_id for r in again) == ["1", "2", "3"]
        assert sorted(batch_sizes(client)) == [1, 3]

        async def main() -> list[str]:
            async with fb.AsyncClient(KEY, server.url, timeout=10, max_retries=0) as ac:
                ares = await ac.run(df, timeout=WAIT, progress=False, **kw)
                return sorted(r.custom_id for r in await ac.retry_failed(ares, timeout=WAIT, progress=False))

        assert asyncio.run(main()) == ["1", "2", "3"]


def test_cache_size_bound_drops_the_least_recently_used(tmp_path):
    cache = fb.ResultCache(tmp_path / "c.sqlite3", max_bytes=1000)
    cache.put_many([(f"k{i}", "x" * 100) for i in range(8)])
    assert len(cache) == 8
    cache.get_many(["k0"])  # used: kept
    cache.put_many([("k8", "y" * 300)])
    assert cache.size_bytes <= 1000
    assert "k0" in cache.get_many(["k0"]) and not cache.get_many(["k1"])


WRITER = textwrap.dedent(
    """
    import sys
    import fastrouter_batch as fb
    cache = fb.ResultCache(sys.argv[1])
    tag = sys.argv[2]
    sys.stdin.readline()  # both start together
    for i in range(200):
        cache.put_many([(f"{tag}-{i}-{j}", "r" * 50) for j in range(5)])
    print("done", flush=True)
    """
)


def test_two_processes_writing_the_cache_at_once_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite3"
    fb.ResultCache(path)  # made before, so both open the same file
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), tag], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "done"
    cache = fb.ResultCache(path)
    assert len(cache) == 2 * 200 * 5
    keys = [f"{t}-{i}-{j}" for t in "ab" for i in range(200) for j in range(5)]
    assert len(cache.get_many(keys)) == 2000


def test_summary_tokens_per_model_and_provider_and_cost(client):
    df = products(6)
    res = client.run(
        df, prompt="{text}", model="{model}", custom_id="sku", params={"max_tokens": 50}, timeout=WAIT, progress=False
    )
    prices = {NANO: (0.10, 0.40), SONNET: (3.0, 15.0)}
    s = res.summary(prices=prices)
    assert set(s["by_model"]) == {NANO, SONNET} and set(s["by_provider"]) == {"openai", "anthropic"}
    m = s["by_model"][SONNET]
    assert m["provider"] == "anthropic" and m["requests"] == 3
    tokens = [r.usage for r in res if r.model == SONNET]
    assert m["prompt_tokens"] == sum(u["prompt_tokens"] for u in tokens) > 0
    assert m["realtime_cost"] == pytest.approx((m["prompt_tokens"] * 3.0 + m["completion_tokens"] * 15.0) / 1e6)
    assert m["batch_cost"] == pytest.approx(m["realtime_cost"] / 2)
    assert s["cost"]["batch"] == pytest.approx(s["by_model"][NANO]["batch_cost"] + m["batch_cost"])
    assert s["cost"]["unpriced"] == []
    assert res.summary(prices={NANO: (1, 1)})["cost"]["unpriced"] == [SONNET]
    with pytest.raises(ValueError, match="prices"):
        res.summary(prices={NANO: (1,)})


def test_async_run_takes_a_frame(server):
    import asyncio

    async def main():
        client = fb.AsyncClient(KEY, server.url, timeout=10, max_retries=0)
        return await client.run(
            products(4),
            prompt="{text}",
            model="{model}",
            custom_id="sku",
            response_format=Review,
            timeout=WAIT,
            progress=False,
        )

    res = asyncio.run(main())
    assert [isinstance(r.parsed, Review) for r in res] == [True] * 4


def test_read_results_with_a_builder_parses(client, tmp_path):
    b = fb.BatchBuilder.from_dataframe(
        products(3), prompt="{text}", model=NANO, custom_id="sku", response_format=Review
    )
    res = client.run(b, timeout=WAIT, progress=False)
    assert all(isinstance(r.parsed, Review) for r in res)
    plain = res.with_response_format(None)
    assert all(r.parsed is None for r in plain)
    frame = res.to_pandas()
    assert {"summary", "score", "parse_error", "cached"} <= set(frame.columns)


def test_batches_results_with_a_builder_as_inputs_parses(client):
    """The four operations by hand: ``batches.results(id, inputs=builder)`` keeps the
    builder's models as ``read_results(..., inputs=builder)`` does (sync and async)."""
    import asyncio

    b = fb.BatchBuilder.from_dataframe(
        products(3), prompt="{text}", model=NANO, custom_id="sku", response_format=Review
    )
    uploaded = client.files.create(file=b, purpose="batch")
    batch = client.batches.wait(client.batches.create(input_file_id=uploaded.id).id, timeout=WAIT, progress=False)
    res = client.batches.results(batch, inputs=b)
    assert [r.custom_id for r in res] == ["100", "101", "102"]
    assert all(isinstance(r.parsed, Review) for r in res), [r.parse_error for r in res]
    assert all(r.parsed is None for r in client.batches.results(batch))  # no inputs: no models

    async def main() -> list[object]:
        async with fb.AsyncClient(KEY, client.base_url, timeout=10, max_retries=0) as ac:
            return [r.parsed for r in await ac.batches.results(batch.id, inputs=b)]

    assert all(isinstance(p, Review) for p in asyncio.run(main()))


def test_async_run_with_the_cache_submits_only_what_is_not_cached(server, tmp_path):
    import asyncio

    cache = fb.ResultCache(tmp_path / "a.sqlite3")
    sync = Client(KEY, server.url, timeout=10, max_retries=0)

    async def main(df):
        client = fb.AsyncClient(KEY, server.url, timeout=10, max_retries=0)
        return await client.run(
            df, prompt="{text}", model="{model}", custom_id="sku", cache=cache, timeout=WAIT, progress=False
        )

    first = asyncio.run(main(products(6)))
    again = asyncio.run(main(products(8)))  # the same 6 rows, and 2 more
    assert sorted(batch_sizes(sync)) == [2, 6]
    assert [r.cached for r in again] == [True] * 6 + [False] * 2
    assert [r.text for r in again][:6] == [r.text for r in first]


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_join_lines_rows_up_by_id_whatever_the_order_and_leaves_rows_without_a_result_empty(client, lib):
    df = products(4)
    res = client.run(
        df, prompt="{text}", model="{model}", custom_id="sku", response_format=Review, timeout=WAIT, progress=False
    )
    # Another frame: the rows reversed, a row whose sku never ran, ids as floats (as pandas
    # makes an int column with a missing value).
    other = pd.DataFrame({"sku": [103.0, 102.0, 999.0, 101.0, 100.0], "note": list("abcde")})
    if lib == "polars":
        other = pl.DataFrame({"sku": [103.0, 102.0, 999.0, 101.0, 100.0], "note": list("abcde")})
    out = res.join(other, on="sku")
    rows = out.to_dicts() if lib == "polars" else out.to_dict("records")
    by_id = {r.custom_id: r for r in res}
    for row in rows:
        r = by_id.get(str(int(row["sku"])))
        if r is None:
            assert row["text"] is None or row["text"] != row["text"]  # missing (None or NaN)
            assert row["score"] is None or pd.isna(row["score"])
        else:
            assert row["text"] == r.text and row["score"] == r.parsed.score
    assert list(out["note"]) == list("abcde") and out["sku"].dtype == other["sku"].dtype


def test_structured_output_crosses_the_translation_to_anthropic_and_back():
    """Through provider="upstream": Anthropic lines go out in Anthropic's wire format (the
    schema as output_config.format) to FakeUpstream over HTTP, and come back translated."""
    with (
        fb.FakeUpstream() as up,
        LocalServer(
            api_key=KEY,
            provider="upstream",
            openai_base_url=up.url,
            openai_api_key="sk-fake-openai",
            anthropic_base_url=up.url,
            anthropic_api_key="sk-fake-anthropic",
            retry_delay=0.01,
        ) as server,
    ):
        client = Client(KEY, server.url, timeout=10, max_retries=0)
        df = products(6)
        res = client.run(
            df, prompt="{text}", model="{model}", custom_id="sku", response_format=Review, timeout=WAIT, progress=False
        )
        assert len(res.succeeded) == 6
        assert all(isinstance(r.parsed, Review) for r in res), [r.parse_error for r in res]
        out = res.join(df, on="sku")
        assert out["score"].between(1, 5).all() and str(out["score"].dtype) == "Int64"
