"""LocalServer's life: one engine per data directory, what it tells once stopped, the key
it made kept for the next start, and a forked child that inherits a running server."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

import fastrouter_batch as fb
from fastrouter_batch import LocalServer


def test_a_second_engine_on_the_same_data_dir_is_refused(tmp_path):
    with LocalServer(data_dir=tmp_path, api_key="sk-one") as first:
        c = fb.Client("sk-one", first.url, max_retries=0)
        f = c.files.create(
            b'{"custom_id":"a","provider":"openai","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4.1-nano","messages":[]}}\n'
        )
        with pytest.raises(OSError, match="another engine is using this data directory") as ei:
            LocalServer(data_dir=tmp_path, api_key="sk-one").start()
        assert str(tmp_path) in str(ei.value)
        assert c.files.retrieve(f.id).id == f.id  # the first is unharmed
    with LocalServer(data_dir=tmp_path, api_key="sk-one") as again:  # free once stopped
        assert fb.Client("sk-one", again.url).files.retrieve(f.id).id == f.id


def test_properties_stay_readable_and_a_made_up_key_is_kept(tmp_path):
    s = LocalServer(data_dir=tmp_path, latency=0.05, concurrency=2)
    with pytest.raises(RuntimeError, match="has not started"):
        _ = s.url
    with s:
        key, url = s.api_key, s.url
        c = fb.Client(key, url, max_retries=0)
        lines = b"".join(
            b'{"custom_id":"r%d","provider":"openai","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4.1-nano","messages":[{"role":"user","content":"hi"}]}}\n'
            % i
            for i in range(100)
        )
        batch = c.batches.create(input_file_id=c.files.create(lines).id, endpoint="/v1/chat/completions")
    assert not s.running
    assert (s.api_key, s.url, s.data_dir) == (key, url, tmp_path)
    with s:  # the same object: the same key, so the resumed batch is visible
        assert s.api_key == key and s.resumed == 1
        done = fb.Client(key, s.url).batches.wait(batch.id, timeout=30, progress=False)
        assert done.status == "completed" and done.request_counts.completed == 100


def wait_child(pid: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        assert time.monotonic() < deadline, "the forked child hung"
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="os.fork")
def test_a_forked_child_leaves_the_parents_server_alone():
    with LocalServer() as s:
        data_dir = s.data_dir
        pid = os.fork()
        if pid == 0:  # the child: uses the server, then leaves the with block
            code = 1
            try:
                signal.alarm(20)  # never hang the test run
                c = fb.Client(s.api_key, s.url, max_retries=0)
                c.files.list().first_page()
                s.stop()  # forgets the parent's server: no wait, nothing removed
                code = 0 if not s.running else 2
            finally:
                os._exit(code)
        assert wait_child(pid) == 0
        assert data_dir.exists()  # the child did not remove the parent's temporary dir
        assert s.running
        fb.Client(s.api_key, s.url, max_retries=0).files.list().first_page()


@pytest.mark.skipif(sys.platform == "win32", reason="os.fork")
def test_a_forked_child_leaves_the_parents_fake_upstream_alone():
    from fastrouter_batch.testing import FakeUpstream

    with FakeUpstream() as up:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(20)
                up.stop()
                code = 0
            finally:
                os._exit(code)
        assert wait_child(pid) == 0
        assert up.url.startswith("http://127.0.0.1:")
