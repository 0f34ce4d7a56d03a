"""The engine survives SIGKILL at any moment: started again on the same data directory it
resumes unfinished batches, with no line lost and none answered twice.

Each test runs `python -m fastrouter_batch serve` as a child process, kills it with
SIGKILL at random points (seeded; the seed is printed, set FASTROUTER_TEST_SEED to replay),
restarts it on the same directory and checks the end result line by line.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from engine_helpers import TERMINAL, Api, Serve, chat_line, to_jsonl, wait_until

KEY = "sk-v1-durability-test"
N = 20_000
# 16 in flight per provider (two providers here) at 10 ms each caps the engine at 3,200
# lines/s, so the batch takes > 6 s of processing: four kills 0.2-1.5 s apart always land
# before it is done.
SERVE_ARGS = ["--api-key", KEY, "--latency", "0.01", "--concurrency", "16", "--max-requests", str(N)]
RANDOM_KILLS = 4


def seeded_random() -> random.Random:
    seed = int(os.environ.get("FASTROUTER_TEST_SEED", time.time_ns() % 2**32))
    print(f"durability seed: FASTROUTER_TEST_SEED={seed}")
    return random.Random(seed)


class Engines:
    """The serve processes of one test, all on one data directory; all killed at the end."""

    def __init__(self, tmp_path: Path):
        self.data_dir = tmp_path / "engine-data"
        self.tmp_path = tmp_path
        self.started: list[Serve] = []
        self.args = SERVE_ARGS

    def start(self) -> Serve:
        n = len(self.started)
        s = Serve(["--data-dir", str(self.data_dir), *self.args], self.tmp_path / f"stderr-{n}.txt")
        self.started.append(s)
        assert s.info is not None, s.stderr()
        assert s.info["data_dir"] == str(self.data_dir)
        assert "api_key" not in s.info  # a key was given
        return s

    def cleanup(self) -> None:
        for s in self.started:
            s.kill()


@pytest.fixture
def engines(tmp_path):
    e = Engines(tmp_path)
    try:
        yield e
    finally:
        e.cleanup()


def restart_after_kill(engines: Engines, serve: Serve, api: Api, batch_id: str, log: list[str]) -> tuple[Serve, Api]:
    """SIGKILLs `serve`, starts a new engine on the same directory, checks the batch is
    still there (running again, or already completed) and returns the new engine and a
    client for it."""
    serve.sigkill()
    api.close()
    assert serve.proc.returncode == -signal.SIGKILL
    serve = engines.start()
    api = Api(serve.url, KEY)
    b = api.batch(batch_id)
    log.append(f"restarted: {b['status']} {b['request_counts']} resumed={serve.info['resumed']}")
    assert b["status"] in {"validating", "in_progress", "finalizing", "completed"}, b
    if b["status"] == "completed":
        # Either it completed before the kill (nothing to resume) or the new engine resumed it
        # and finished it before this first look (a kill near the end finalizes in milliseconds).
        assert serve.info["resumed"] in (0, 1), (serve.info, b["status"])
    else:
        assert serve.info["resumed"] == 1, (serve.info, b["status"])
    return serve, api


def unregistered_and_missing(api: Api, data_dir: Path) -> tuple[list[str], list[str]]:
    """Content files in the data directory that no listed file owns, and listed files
    without content."""
    listed = api.ok(api.http.get("/v1/files", params={"limit": 100}))
    assert listed["has_more"] is False
    expected = {f"{f['id']}.jsonl" for f in listed["data"]}
    on_disk = {p.name for p in (data_dir / "files").iterdir()}
    return sorted(on_disk - expected), sorted(expected - on_disk)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(engines):
    rng = seeded_random()
    ids = [f"req-{i:05d}" for i in range(N)]
    data = to_jsonl(chat_line(cid, "openai" if i % 3 else "anthropic") for i, cid in enumerate(ids))
    serve = engines.start()
    assert serve.info["resumed"] == 0
    api = Api(serve.url, KEY)
    f = api.upload(data)
    assert f["num_rows"] == N
    batch = api.create_batch(f["id"])
    bid = batch["id"]
    log: list[str] = []
    try:
        # Right after creation: the batch is validating or just started.
        serve, api = restart_after_kill(engines, serve, api, bid, log)
        kills_mid_run = 0
        for _ in range(RANDOM_KILLS):
            time.sleep(rng.uniform(0.2, 1.5))
            before = api.batch(bid)
            log.append(f"killing at {before['status']} {before['request_counts']}")
            if before["status"] in TERMINAL:
                break
            kills_mid_run += 1
            serve, api = restart_after_kill(engines, serve, api, bid, log)
        assert kills_mid_run == RANDOM_KILLS, log

        # Once more around the end: as soon as every line is counted (the batch is about
        # to finalize) or it is finalizing.
        deadline = time.monotonic() + 40
        while True:
            b = api.batch(bid)
            c = b["request_counts"]
            if b["status"] == "finalizing" or (b["status"] == "in_progress" and c["completed"] + c["failed"] == N):
                log.append(f"killing near the end at {b['status']} {c}")
                serve, api = restart_after_kill(engines, serve, api, bid, log)
                break
            if b["status"] in TERMINAL:
                log.append(f"missed the end: already {b['status']}")
                break
            assert time.monotonic() < deadline, log
            time.sleep(0.002)

        b = api.wait(bid, timeout=40)
        print("\n".join(log))
        assert b["status"] == "completed", (b, log)
        assert b["request_counts"] == {"total": N, "completed": N, "failed": 0}, (b, log)
        assert b["error_file_id"] is None
        assert b["output_file_id"] is not None
        for stamp in ("created_at", "in_progress_at", "finalizing_at", "completed_at"):
            assert isinstance(b[stamp], int), stamp
        out = api.lines(b["output_file_id"])
        assert len(out) == N
        counts = Counter(line["custom_id"] for line in out)
        assert sorted(counts) == ids
        assert set(counts.values()) == {1}
        assert all(line["response"]["status_code"] == 200 and line["error"] is None for line in out)
        assert all(line["response"]["body"]["object"] == "chat.completion" for line in out)
        assert len({line["id"] for line in out}) == N
        file_meta = api.ok(api.http.get(f"/v1/files/{b['output_file_id']}"))
        assert file_meta["num_rows"] == N
        assert unregistered_and_missing(api, engines.data_dir)[1] == []
    finally:
        api.close()


def test_sigkill_right_after_cancel_ends_cancelled_with_every_line_once(engines):
    n = 5_000
    ids = [f"c-{i:04d}" for i in range(n)]
    serve = engines.start()
    api = Api(serve.url, KEY)
    f = api.upload(to_jsonl(chat_line(cid) for cid in ids))
    bid = api.create_batch(f["id"])["id"]
    try:
        api.wait(bid, ["in_progress"], timeout=10, interval=0.005)
        wait_until(lambda: api.batch(bid)["request_counts"]["completed"] >= 500, timeout=20, what="500 lines done")
        cancelling = api.cancel(bid)
        assert cancelling["status"] == "cancelling"
        assert isinstance(cancelling["cancelling_at"], int)
        serve.sigkill()
        assert serve.proc.returncode == -signal.SIGKILL

        serve = engines.start()
        api.close()
        api = Api(serve.url, KEY)
        b = api.wait(bid, timeout=20)
        assert b["status"] == "cancelled", b
        assert isinstance(b["cancelled_at"], int)
        out = api.lines(b["output_file_id"])
        err = api.lines(b["error_file_id"])
        assert len(out) >= 500
        assert len(err) > 0, "the batch was cancelled long before its end"
        assert len(out) + len(err) == n
        counts = Counter(line["custom_id"] for line in out + err)
        assert sorted(counts) == ids
        assert set(counts.values()) == {1}
        assert all(line["response"]["status_code"] == 200 for line in out)
        for line in err:
            assert line["response"] is None, line
            assert line["error"]["code"] == "batch_cancelled", line
            assert line["error"]["message"]
        assert b["request_counts"] == {"total": n, "completed": len(out), "failed": len(err)}
        # Cancelling again is a no-op that answers with the cancelled batch.
        again = api.cancel(bid)
        assert again["status"] == "cancelled"
        assert unregistered_and_missing(api, engines.data_dir)[1] == []
    finally:
        api.close()


def test_sigkill_while_finalizing_leaves_no_stray_result_file(engines):
    """A kill while the output file is being written and registered must leave neither a
    lost result nor a content file that belongs to no file record (it would never be
    listed, downloaded or deleted: disk leaked for good). Several kills at random points
    of the short finalizing step of a 50,000-line batch."""
    rng = seeded_random()
    n = 50_000
    engines.args = ["--api-key", KEY, "--concurrency", "64"]
    serve = engines.start()
    api = Api(serve.url, KEY)
    f = api.upload(to_jsonl(chat_line(f"f-{i:05d}") for i in range(n)))
    report = []
    try:
        for _ in range(5):
            bid = api.create_batch(f["id"])["id"]
            api.wait(bid, ["finalizing", *TERMINAL], timeout=30, interval=0.001)
            time.sleep(rng.uniform(0.0, 0.12))
            serve.sigkill()
            serve = engines.start()
            api.close()
            api = Api(serve.url, KEY)
            b = api.wait(bid, timeout=30)
            assert b["status"] == "completed", b
            assert b["request_counts"] == {"total": n, "completed": n, "failed": 0}
            out = api.lines(b["output_file_id"])
            assert len(out) == n and len({line["custom_id"] for line in out}) == n
            stray, missing = unregistered_and_missing(api, engines.data_dir)
            assert missing == []
            report.append(stray)
        print("unregistered content files after each trial:", report)
        assert report[-1] == [], f"content files left behind by kills while finalizing: {report}"
    finally:
        api.close()


def test_a_batch_whose_window_passes_while_the_engine_is_down_expires_on_restart(engines):
    n = 400
    ids = [f"w-{i:03d}" for i in range(n)]
    engines.args = ["--api-key", KEY, "--latency", "0.05", "--concurrency", "2", "--completion-window", "2"]
    serve = engines.start()
    api = Api(serve.url, KEY)
    try:
        f = api.upload(to_jsonl(chat_line(cid) for cid in ids))
        created = time.monotonic()
        bid = api.create_batch(f["id"])["id"]
        wait_until(lambda: api.batch(bid)["request_counts"]["completed"] >= 10, timeout=10, what="10 lines done")
        serve.sigkill()
        time.sleep(max(0.0, created + 2.5 - time.monotonic()))
        serve = engines.start()
        assert serve.info["resumed"] == 1
        api.close()
        api = Api(serve.url, KEY)
        b = api.wait(bid, timeout=20)
        assert b["status"] == "expired", b
        assert isinstance(b["expired_at"], int)
        out = api.lines(b["output_file_id"])
        err = api.lines(b["error_file_id"])
        assert 10 <= len(out) < n
        counts = Counter(line["custom_id"] for line in out + err)
        assert sorted(counts) == ids and set(counts.values()) == {1}
        assert {line["error"]["code"] for line in err} == {"batch_expired"}
        assert b["request_counts"] == {"total": n, "completed": len(out), "failed": len(err)}
    finally:
        api.close()
