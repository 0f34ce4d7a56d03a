"""The workflow layer's ``Client.run`` / ``resume`` / ``retry_failed`` against the local
engine: splitting by request count and by bytes, merging back in input order, local
validation before anything is uploaded, the manifest and resuming after a crash at either
point, rerunning only the failed requests, and one ``Result`` shape for every provider.

Everything talks to 127.0.0.1; waits are bounded (``timeout=`` on every run).
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import pytest

import fastrouter_batch as fb
from engine_helpers import CHAT, EMBEDDINGS, chat_line, embedding_line, to_jsonl
from fastrouter_batch import Client, Limits, LocalServer

KEY = "sk-v1-workflow-run"
WAIT = 30.0  # seconds: the bound on every wait in this file


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def server():
    """A fresh engine per test, so counts of files and batches are this test's own."""
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def client(server) -> Client:
    return Client(KEY, server.url, timeout=10, max_retries=0)


def ids(n: int, prefix: str = "req") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def chat_lines(n: int, prefix: str = "req") -> list[dict]:
    """`n` chat lines alternating openai and anthropic, ids `{prefix}-0000`..."""
    return [chat_line(cid, "anthropic" if i % 2 else "openai") for i, cid in enumerate(ids(n, prefix))]


def write_requests(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(to_jsonl(lines))
    return path


def engine_batches(client: Client) -> list[fb.Batch]:
    return list(client.batches.list(limit=100))


def engine_files(client: Client) -> list[fb.FileObject]:
    return list(client.files.list(limit=100))


def run(client: Client, requests, **kw) -> fb.BatchResults:
    kw.setdefault("progress", False)
    kw.setdefault("timeout", WAIT)
    return client.run(requests, **kw)


def load_manifest(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_all_ok(results: fb.BatchResults, expected_ids: list[str]) -> None:
    assert results.custom_ids == expected_ids
    assert len(results) == len(expected_ids)
    bad = [(r.custom_id, r.status_code, r.error) for r in results if not r.ok]
    assert bad == []
    assert results.missing == []


# --- splitting ---------------------------------------------------------------------------


def test_split_by_request_count_and_merge_in_input_order(client, tmp_path):
    lines = chat_lines(250)
    src = write_requests(tmp_path / "in.jsonl", lines)
    manifest = tmp_path / "run.json"

    results = run(client, src, manifest=manifest, limits=Limits(max_requests=100))

    assert_all_ok(results, ids(250))
    # Every result is the answer to its own request (not just the right id in the right place).
    for r in results:
        assert r.text is not None and f"Question {r.custom_id}?" in r.text

    m = load_manifest(manifest)
    assert m["version"] == 1
    assert m["endpoint"] == CHAT
    parts = m["parts"]
    assert [p["lines"] for p in parts] == [100, 100, 50]
    assert len({p["idempotency_key"] for p in parts}) == 3
    for p in parts:
        data = Path(p["path"]).read_bytes()
        assert p["bytes"] == len(data)
        assert data.count(b"\n") == p["lines"]
        assert p["file_id"] and p["batch_id"]
    # The parts, concatenated, are the input, in order.
    assert b"".join(Path(p["path"]).read_bytes() for p in parts) == src.read_bytes()

    batches = engine_batches(client)
    assert len(batches) == 3
    assert {b.id for b in batches} == {p["batch_id"] for p in parts}
    by_id = {b.id: b for b in batches}
    for p in parts:
        b = by_id[p["batch_id"]]
        assert b.status == "completed"
        assert b.input_file_id == p["file_id"]
        assert (b.request_counts.total, b.request_counts.completed, b.request_counts.failed) == (
            p["lines"],
            p["lines"],
            0,
        )


def test_split_by_bytes(client, tmp_path):
    # Lines of different sizes so the cut points are not all alike.
    lines = [chat_line(cid, content="x" * (20 + 37 * (i % 5))) for i, cid in enumerate(ids(40))]
    src = write_requests(tmp_path / "in.jsonl", lines)
    sizes = [len(json.dumps(line, separators=(",", ":")).encode()) + 1 for line in lines]
    max_bytes = 3 * max(sizes)  # two to three lines per part
    manifest = tmp_path / "run.json"

    results = run(client, src, manifest=manifest, limits=Limits(max_bytes=max_bytes))

    assert_all_ok(results, ids(40))
    parts = load_manifest(manifest)["parts"]
    # What a greedy cut at max_bytes gives.
    expected: list[int] = []
    size = 0
    for s in sizes:
        if expected and size + s <= max_bytes:
            expected[-1] += 1
            size += s
        else:
            expected.append(1)
            size = s
    assert [p["lines"] for p in parts] == expected
    assert len(parts) > 10
    for p in parts:
        assert p["bytes"] <= max_bytes
        assert p["bytes"] == Path(p["path"]).stat().st_size
    assert sum(p["lines"] for p in parts) == 40
    assert b"".join(Path(p["path"]).read_bytes() for p in parts) == src.read_bytes()
    assert len(engine_batches(client)) == len(parts)


def test_unsplit_run_is_one_batch_and_metadata_reaches_it(client, tmp_path):
    results = run(client, chat_lines(7), metadata={"job": "nightly"}, manifest=tmp_path / "m.json")
    assert_all_ok(results, ids(7))
    (batch,) = engine_batches(client)
    assert batch.metadata == {"job": "nightly"}
    assert batch.endpoint == CHAT
    assert batch.request_counts.total == 7


# --- validation before upload ------------------------------------------------------------


def invalid_inputs(tmp_path: Path) -> dict[str, object]:
    no_model = chat_line("req-0001")
    del no_model["body"]["model"]
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_bytes(to_jsonl(chat_lines(5)) + b"{not json\n")
    return {
        "missing model": [chat_line("req-0000"), no_model],
        "duplicate id": [chat_line("a"), chat_line("b"), chat_line("a")],
        "broken file": bad_file,
    }


@pytest.mark.parametrize("case", ["missing model", "duplicate id", "broken file"])
def test_invalid_input_raises_and_uploads_nothing(client, tmp_path, case):
    source = invalid_inputs(tmp_path)[case]
    manifest = tmp_path / "run.json"
    with pytest.raises(fb.BatchValidationError) as info:
        run(client, source, manifest=manifest)
    assert info.value.report.ok is False
    assert info.value.report.issues
    assert engine_files(client) == []
    assert engine_batches(client) == []


def test_duplicate_ids_in_different_parts_are_caught_before_splitting(client, tmp_path):
    # Each part alone would be valid: the whole input must be checked, not each part.
    lines = chat_lines(250)
    lines[220]["custom_id"] = lines[10]["custom_id"]
    with pytest.raises(fb.BatchValidationError) as info:
        run(client, lines, limits=Limits(max_requests=100))
    assert [i.code for i in info.value.report.issues] == ["duplicate_custom_id"]
    assert info.value.report.issues[0].line == 221
    assert engine_files(client) == []
    assert engine_batches(client) == []


def test_empty_input_and_mismatched_endpoint(client, tmp_path):
    with pytest.raises(ValueError, match="no requests"):
        run(client, [])
    with pytest.raises(ValueError, match="endpoint"):
        run(client, chat_lines(2), endpoint=EMBEDDINGS)
    with pytest.raises(FileNotFoundError):
        run(client, tmp_path / "missing.jsonl")
    assert engine_files(client) == []
    assert engine_batches(client) == []


# --- manifest, resume --------------------------------------------------------------------


def test_resume_after_a_crash_between_submit_and_wait(server, client, tmp_path):
    src = write_requests(tmp_path / "in.jsonl", chat_lines(25))
    manifest = tmp_path / "run.json"

    submitted = client.run(src, wait=False, manifest=manifest, limits=Limits(max_requests=10), progress=False)
    assert isinstance(submitted, list) and all(isinstance(b, fb.Batch) for b in submitted)
    assert len(submitted) == 3
    recorded = [p["batch_id"] for p in load_manifest(manifest)["parts"]]
    assert recorded == [b.id for b in submitted]

    # The process "dies" here; a new one picks the run up from the manifest.
    fresh = Client(KEY, server.url, timeout=10, max_retries=0)
    results = fresh.resume(manifest, progress=False, timeout=WAIT)

    assert_all_ok(results, ids(25))
    batches = engine_batches(fresh)
    assert sorted(b.id for b in batches) == sorted(recorded)
    assert len(engine_files(fresh)) >= 3
    assert [p["batch_id"] for p in load_manifest(manifest)["parts"]] == recorded

    # Resuming a finished run again submits nothing either.
    again = fresh.resume(manifest, progress=False, timeout=WAIT)
    assert again.custom_ids == ids(25)
    assert sorted(b.id for b in engine_batches(fresh)) == sorted(recorded)


def test_resume_after_a_crash_between_create_and_recording_the_id(server, client, tmp_path):
    src = write_requests(tmp_path / "in.jsonl", chat_lines(25))
    manifest = tmp_path / "run.json"
    client.run(src, wait=False, manifest=manifest, limits=Limits(max_requests=10), progress=False)
    before = sorted(b.id for b in engine_batches(client))
    assert len(before) == 3

    # The batch of part 2 was created but the process died before saving its id.
    data = load_manifest(manifest)
    lost = data["parts"][1]["batch_id"]
    key = data["parts"][1]["idempotency_key"]
    data["parts"][1]["batch_id"] = None
    manifest.write_text(json.dumps(data), encoding="utf-8")

    fresh = Client(KEY, server.url, timeout=10, max_retries=0)
    results = fresh.resume(manifest, progress=False, timeout=WAIT)

    assert_all_ok(results, ids(25))
    assert sorted(b.id for b in engine_batches(fresh)) == before  # no second batch
    after = load_manifest(manifest)["parts"][1]
    assert after["batch_id"] == lost
    assert after["idempotency_key"] == key


def test_resume_after_a_crash_before_the_upload(server, client, tmp_path):
    """A part that was never uploaded is uploaded and started by resume."""
    src = write_requests(tmp_path / "in.jsonl", chat_lines(12))
    manifest = tmp_path / "run.json"
    client.run(src, wait=False, manifest=manifest, limits=Limits(max_requests=5), progress=False)
    data = load_manifest(manifest)
    # Pretend part 3 never got anywhere: drop its batch from the picture by editing the
    # manifest, as a crash before its upload would have left it. (Its batch exists on the
    # engine, but with another idempotency key.)
    data["parts"][2].update(file_id=None, batch_id=None, idempotency_key="fastrouter-batch-run-test-fresh-key")
    manifest.write_text(json.dumps(data), encoding="utf-8")

    results = Client(KEY, server.url, timeout=10, max_retries=0).resume(manifest, progress=False, timeout=WAIT)
    assert_all_ok(results, ids(12))
    parts = load_manifest(manifest)["parts"]
    assert all(p["file_id"] and p["batch_id"] for p in parts)
    assert len(engine_batches(client)) == 4


def test_resume_without_wait_returns_the_batches(server, client, tmp_path):
    manifest = tmp_path / "run.json"
    client.run(chat_lines(6), wait=False, manifest=manifest, limits=Limits(max_requests=4), progress=False)
    batches = Client(KEY, server.url, timeout=10, max_retries=0).resume(manifest, wait=False)
    assert [b.id for b in batches] == [p["batch_id"] for p in load_manifest(manifest)["parts"]]
    assert len(engine_batches(client)) == 2


@pytest.mark.parametrize(
    "content",
    [
        to_jsonl(chat_lines(3)).decode(),  # a request file, not a manifest
        "[]",
        '{"hello": "world"}',
        '{"version": 99, "parts": []}',
        '{"version": 1, "parts": "none"}',
        '{"version": 1, "parts": [{"file": "x"}]}',
        '{"version": 1, "parts": []}',
        "",
        "\x00\x01garbage",
    ],
    ids=["jsonl", "list", "dict", "version", "parts-not-list", "bad-part", "no-endpoint", "empty", "garbage"],
)
def test_a_file_that_is_not_a_manifest_is_a_clear_value_error(client, tmp_path, content):
    path = tmp_path / "not-a-manifest.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="not a fastrouter-batch manifest") as info:
        client.resume(path, progress=False, timeout=WAIT)
    assert str(path) in str(info.value)
    assert engine_batches(client) == []


def test_resume_of_a_missing_manifest(client, tmp_path):
    with pytest.raises(FileNotFoundError):
        client.resume(tmp_path / "missing.json", progress=False)


# --- when waiting ends early: the batches that keep running are named -------------------


@pytest.fixture
def slow():
    """40 requests take about 2 s here (0.1 s each, one at a time per provider)."""
    with LocalServer(api_key=KEY, latency=0.1, concurrency=1) as s:
        yield s


def test_run_timeout_names_the_batches_that_keep_running(slow, temp):
    client = Client(KEY, slow.url, timeout=10, max_retries=0)
    t = time.monotonic()
    with pytest.raises(fb.WaitTimeout) as info:
        client.run(chat_lines(40), limits=Limits(max_requests=20), progress=False, timeout=0.3)
    assert time.monotonic() - t < 1.5
    error = info.value
    # Every batch of the run (in input order: checked by their results below).
    assert sorted(error.batch_ids) == sorted(b.id for b in engine_batches(client))
    assert len(error.batch_ids) == 2 and all(isinstance(i, str) for i in error.batch_ids)
    message = str(error)
    for batch_id in error.batch_ids:
        assert batch_id in message
    assert "keeps running" in message and "manifest=" in message
    gc.collect()
    assert list(temp.iterdir()) == []  # nothing to resume from: no folder left behind

    # The ids are enough to get every result.
    for part, batch_id in enumerate(error.batch_ids):
        assert client.batches.wait(batch_id, progress=False, timeout=WAIT).status == "completed"
        assert sorted(client.batches.results(batch_id).custom_ids) == ids(40)[20 * part : 20 * (part + 1)]


def test_run_timeout_with_a_manifest_says_how_to_resume(slow, tmp_path):
    client = Client(KEY, slow.url, timeout=10, max_retries=0)
    manifest = tmp_path / "run.json"
    with pytest.raises(fb.WaitTimeout) as info:
        client.run(chat_lines(20), manifest=manifest, progress=False, timeout=0.2)
    assert info.value.batch_ids == [p["batch_id"] for p in load_manifest(manifest)["parts"]]
    assert f"client.resume({str(manifest)!r})" in str(info.value)
    assert_all_ok(client.resume(manifest, progress=False, timeout=WAIT), ids(20))
    assert len(engine_batches(client)) == 1


def test_batches_wait_timeout_carries_the_batch_id(slow):
    client = Client(KEY, slow.url, timeout=10, max_retries=0)
    batch = client.batches.create(input_file_id=client.files.create(to_jsonl(chat_lines(20))).id)
    with pytest.raises(fb.WaitTimeout) as info:
        client.batches.wait(batch.id, progress=False, timeout=0.1)
    assert info.value.batch_ids == [batch.id]


def test_run_without_wait_gives_the_batch_ids_and_their_results(client, temp):
    requests = chat_lines(6)
    batches = run(client, requests, wait=False)
    assert isinstance(batches, list) and [type(b) for b in batches] == [fb.Batch]
    assert [b.id for b in batches] == [b.id for b in engine_batches(client)]
    gc.collect()
    assert list(temp.iterdir()) == []  # the Batch list needs no local file
    # What the docstring says: wait for each, then read it (inputs= for the order).
    done = client.batches.wait(batches[0].id, progress=False, timeout=WAIT)
    assert done.status == "completed"
    assert_all_ok(client.batches.results(done.id, inputs=requests), ids(6))


# --- retry_failed ------------------------------------------------------------------------


@pytest.fixture
def flaky():
    with LocalServer(api_key=KEY, fault_rate=0.4, max_retries=0) as s:
        yield s


def first_run_with_failures(client: Client, src: Path) -> tuple[fb.BatchResults, list[str]]:
    results = run(client, src)
    assert results.custom_ids == ids(40)
    failed = results.failed.custom_ids
    # P(no failure) = 0.6**40 and P(all fail) = 0.4**40: both negligible.
    assert 0 < len(failed) < 40, results.summary()
    assert failed == [r.custom_id for r in results if not r.ok]
    return results, failed


def new_batch(client: Client, before: set[str]) -> fb.Batch:
    added = [b for b in engine_batches(client) if b.id not in before]
    assert len(added) == 1, added
    return added[0]


def test_retry_failed_resubmits_only_the_failed_requests(flaky, tmp_path):
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    src = write_requests(tmp_path / "in.jsonl", chat_lines(40))
    results, failed = first_run_with_failures(client, src)
    before = {b.id for b in engine_batches(client)}

    retried = client.retry_failed(results, progress=False, timeout=WAIT)  # inputs: the last run

    batch = new_batch(client, before)
    assert batch.request_counts.total == len(failed)
    assert retried.custom_ids == failed  # only those, in input order
    # What was sent is exactly the original lines of the failed requests.
    sent = client.files.content(batch.input_file_id).content.splitlines()
    original = {json.loads(raw)["custom_id"]: raw for raw in src.read_bytes().splitlines()}
    assert sent == [original[cid] for cid in failed]


@pytest.mark.parametrize("kind", ["file", "manifest", "builder"])
def test_retry_failed_with_explicit_inputs(flaky, tmp_path, kind):
    first = Client(KEY, flaky.url, timeout=10, max_retries=0)
    lines = chat_lines(40)
    src = write_requests(tmp_path / "in.jsonl", lines)
    manifest = tmp_path / "run.json"
    results = run(first, src, manifest=manifest, limits=Limits(max_requests=15))
    failed = results.failed.custom_ids
    assert 0 < len(failed) < 40, results.summary()

    # Another process: the results read back from the run's files, without its requests.
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    parts_dir = manifest.with_name(manifest.name + ".parts")
    results = fb.read_results(
        *sorted(parts_dir.glob("*.output.jsonl")), *sorted(parts_dir.glob("*.errors.jsonl")), inputs=src
    )
    assert results.failed.custom_ids == failed
    with pytest.raises(ValueError, match="inputs="):
        client.retry_failed(results, progress=False, timeout=WAIT)
    before = {b.id for b in engine_batches(client)}

    if kind == "file":
        inputs = src
    elif kind == "manifest":
        inputs = manifest
    else:
        inputs = fb.BatchBuilder()
        inputs.extend(lines)
    retried = client.retry_failed(results, inputs=inputs, progress=False, timeout=WAIT)

    batch = new_batch(client, before)
    assert batch.request_counts.total == len(failed)
    assert retried.custom_ids == failed


def test_retry_failed_with_inputs_that_lack_the_failed_requests(flaky, tmp_path):
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    src = write_requests(tmp_path / "in.jsonl", chat_lines(40))
    results, _ = first_run_with_failures(client, src)
    before = {b.id for b in engine_batches(client)}
    other = write_requests(tmp_path / "other.jsonl", chat_lines(3, prefix="other"))
    with pytest.raises(ValueError, match="not in the inputs"):
        client.retry_failed(results, inputs=other, progress=False, timeout=WAIT)
    assert {b.id for b in engine_batches(client)} == before


def test_retry_failed_with_nothing_failed_submits_nothing(client):
    results = run(client, chat_lines(5))
    assert results.failed.custom_ids == []
    before = {b.id for b in engine_batches(client)}
    again = client.retry_failed(results, progress=False, timeout=WAIT)
    assert len(again) == 0
    assert {b.id for b in engine_batches(client)} == before


# --- one Result shape for every provider -------------------------------------------------


@pytest.fixture(params=["simulated", "upstream", "native"])
def any_engine(request):
    """The simulated provider, and the engine in front of a fake OpenAI/Anthropic upstream
    (so the Anthropic wire format is mapped back for real), line by line (realtime) and
    through the providers' batch APIs (native)."""
    if request.param == "simulated":
        with LocalServer(api_key=KEY) as s:
            yield s
        return
    with fb.FakeUpstream() as up:
        with LocalServer(
            api_key=KEY,
            provider="upstream",
            upstream_mode="realtime" if request.param == "upstream" else "native",
            poll_interval=0.02,
            openai_base_url=up.url,
            openai_api_key="sk-up-openai",
            anthropic_base_url=up.url,
            anthropic_api_key="sk-up-anthropic",
            retry_delay=0.01,
        ) as s:
            yield s


def assert_usage(usage) -> None:
    assert isinstance(usage, dict)
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert all(isinstance(v, int) for v in usage.values())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0


def test_every_provider_normalizes_to_the_same_result_shape(any_engine):
    client = Client(KEY, any_engine.url, timeout=10, max_retries=0)
    chat = run(
        client,
        [chat_line("oa", "openai", content="Hello openai"), chat_line("an", "anthropic", content="Hello anthropic")],
    )
    emb = run(client, [embedding_line("em", "Hello embeddings"), embedding_line("em2", ["a", "b"])])

    assert chat.custom_ids == ["oa", "an"]
    for r, model in zip(chat, ("gpt-4.1-nano", "claude-4.5-sonnet"), strict=True):
        assert r.ok is True
        assert r.status_code == 200
        assert r.error is None
        assert isinstance(r.text, str) and r.text
        assert "Hello" in r.text
        assert isinstance(r.model, str) and model in r.model
        assert_usage(r.usage)
        assert r.embedding is None
        assert r.body["object"] == "chat.completion"

    assert emb.custom_ids == ["em", "em2"]
    for r in emb:
        assert r.ok is True
        assert r.status_code == 200
        assert r.error is None
        assert r.text is None
        assert isinstance(r.model, str) and "text-embedding-3-small" in r.model
        assert isinstance(r.usage, dict) and r.usage["prompt_tokens"] > 0
        assert isinstance(r.embedding, list) and len(r.embedding) > 0
        assert all(isinstance(x, float) for x in r.embedding)

    # The same attributes exist on every result, whatever the provider or endpoint.
    shape = {"custom_id", "ok", "status_code", "text", "model", "usage", "error", "embedding", "body"}
    for r in [*chat, *emb]:
        assert all(hasattr(r, name) for name in shape)
    # And the same columns for a table.
    assert set(chat.to_columns()) == set(emb.to_columns())


# --- the kinds of requests run accepts ----------------------------------------------------


def test_run_from_a_list_of_dicts(client):
    lines = chat_lines(6)
    results = run(client, lines)
    assert_all_ok(results, ids(6))


def test_run_from_batch_requests(client):
    reqs = [
        fb.BatchRequest.chat(cid, "openai/gpt-4.1-nano", [{"role": "user", "content": f"Q {cid}"}]) for cid in ids(4)
    ]
    reqs.append(
        fb.BatchRequest.chat(
            "claude", "anthropic/claude-4.5-sonnet", [{"role": "user", "content": "Q claude"}], max_tokens=50
        )
    )
    results = run(client, reqs)
    assert_all_ok(results, [*ids(4), "claude"])
    assert "Q claude" in results["claude"].text


def test_run_from_a_generator_a_builder_and_a_path(client, tmp_path):
    results = run(client, (line for line in chat_lines(3)))
    assert_all_ok(results, ids(3))

    builder = fb.BatchBuilder()
    builder.extend(chat_lines(3, prefix="b"))
    assert_all_ok(run(client, builder), ids(3, "b"))

    src = write_requests(tmp_path / "in.jsonl", chat_lines(3, prefix="p"))
    assert_all_ok(run(client, str(src)), ids(3, "p"))
    assert_all_ok(run(client, src), ids(3, "p"))


def test_run_of_embeddings_picks_the_endpoint(client):
    results = run(client, [embedding_line(f"e{i}", f"text {i}") for i in range(3)])
    assert results.custom_ids == ["e0", "e1", "e2"]
    (batch,) = engine_batches(client)
    assert batch.endpoint == EMBEDDINGS


def test_async_run_resume_and_retry_failed(tmp_path):
    """The asyncio twins: run (split and merged in order), resume from the manifest with no
    new batch, retry_failed of only the failed lines — with the event loop kept free."""
    import asyncio

    async def main(server):
        client = fb.AsyncClient(api_key=server.api_key, base_url=server.url)
        rows = [{"id": f"a{i}", "q": f"question {i}"} for i in range(30)]
        builder = fb.BatchBuilder.from_records(rows, prompt="{q}", model="openai/gpt-4.1-nano", custom_id="id")
        manifest = tmp_path / "run.json"
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        results = await client.run(builder, manifest=manifest, limits=fb.Limits(max_requests=10), progress=False)
        t.cancel()
        assert [r.custom_id for r in results] == [f"a{i}" for i in range(30)]
        assert ticks > 0
        before = [b.id async for b in client.batches.list()]
        again = await client.resume(manifest, progress=False)
        assert len(again) == 30
        assert [b.id async for b in client.batches.list()] == before
        failed = results.failed.custom_ids
        retried = await client.retry_failed(results, progress=False)
        assert sorted(r.custom_id for r in retried) == sorted(failed)

    with fb.LocalServer(latency=0.005, fault_rate=0.3, max_retries=0) as server:
        asyncio.run(main(server))
