"""A batch read before it finished has no output file: using its `output_file_id` (None) as
a file id says so, and how to wait, instead of a bare type error. Sync and async, against
the local engine over loopback."""

from __future__ import annotations

import asyncio

import pytest

import fastrouter_batch as fb
from engine_helpers import SAMPLE

NO_OUTPUT = r"file_id must be a str, got NoneType: the batch has no output file yet.*client\.batches\.wait\(batch\.id\)"


@pytest.fixture(scope="module")
def running():
    with fb.LocalServer(latency=10.0) as server:  # answers take 10 s: the batch is still running
        client = fb.Client(base_url=server.url, api_key=server.api_key, max_retries=0)
        batch = client.batches.create(input_file_id=client.files.create(SAMPLE).id)
        yield server, client, client.batches.retrieve(batch.id)


def test_download_of_a_running_batch_says_it_has_no_output_yet(running, tmp_path):
    _, client, batch = running
    assert batch.status in ("validating", "in_progress") and batch.output_file_id is None
    with pytest.raises(TypeError, match=NO_OUTPUT):
        client.files.download(batch.output_file_id, tmp_path / "out.jsonl")
    with pytest.raises(TypeError, match=NO_OUTPUT):
        client.files.content(batch.output_file_id)
    assert not (tmp_path / "out.jsonl").exists()
    # Another type keeps the plain message.
    with pytest.raises(TypeError, match="file_id must be a str, got int"):
        client.files.content(7)  # type: ignore[arg-type]


def test_the_async_client_says_the_same(running, tmp_path):
    server, _, batch = running

    async def main() -> None:
        client = fb.AsyncClient(base_url=server.url, api_key=server.api_key, max_retries=0)
        with pytest.raises(TypeError, match=NO_OUTPUT):
            await client.files.download(batch.output_file_id, tmp_path / "out.jsonl")

    asyncio.run(main())
