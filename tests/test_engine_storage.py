"""A real full disk: the engine's data directory on a small tmpfs that the test fills while
a batch runs. The batch must pause and say so (`storage_unavailable` in `errors.data`),
uploads must answer 507 with the contract's JSON error, and once the filler is removed the
batch must finish by itself with every line exactly once.

The tmpfs is mounted in a private mount namespace (`unshare`), so nothing outside the test
sees it: as root, or as any user where user namespaces are allowed. Where neither is
possible the test is skipped with the reason (as root it must run, so CI always runs it);
the same behaviour is covered everywhere by the fault-hook tests in engine/tests/storage.rs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from engine_helpers import chat_line, to_jsonl

LINES = 6000

CHILD = textwrap.dedent(
    """
    import errno, json, os, subprocess, sys, time
    import httpx
    import fastrouter_batch as fb

    root, input_path = sys.argv[1], sys.argv[2]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", root], check=True)
    filler = os.path.join(root, "filler")
    out = {"polls": []}

    def notice(b):
        data = (b.get("errors") or {}).get("data") or []
        return next((e["message"] for e in data if e.get("code") == "storage_unavailable"), None)

    def wait(http, batch_id, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            b = http.get(f"/v1/batches/{batch_id}").json()
            if pred(b):
                return b
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out after {timeout}s; last {json.dumps(b)}")
            time.sleep(0.05)

    def fill():
        with open(filler, "wb", buffering=0) as f:
            for size in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        f.write(b"\\0" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e

    data_dir = os.path.join(root, "data")
    headers = {"Authorization": "Bearer sk-disk"}
    with fb.LocalServer(data_dir=data_dir, api_key="sk-disk", latency=0.01, concurrency=16) as server, \\
            httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        data = open(input_path, "rb").read()
        f = http.post("/v1/files", files={"file": ("in.jsonl", data)}, data={"purpose": "batch"}).json()
        b = http.post("/v1/batches", json={"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                            "completion_window": "24h"}).json()
        wait(http, b["id"], lambda b: b["request_counts"]["completed"] >= 300, 60)
        fill()
        out["filled_at"] = http.get(f"/v1/batches/{b['id']}").json()["request_counts"]
        full = wait(http, b["id"], lambda b: notice(b) is not None or b["status"] in ("completed", "failed"), 60)
        out["while_full"] = full
        time.sleep(2)
        out["two_seconds_later"] = http.get(f"/v1/batches/{b['id']}").json()
        r = http.post("/v1/files", files={"file": ("more.jsonl", data[:20000])}, data={"purpose": "batch"})
        out["upload_while_full"] = {"status": r.status_code, "body": r.text}
        os.remove(filler)
        done = wait(http, b["id"], lambda b: b["status"] in ("completed", "failed", "expired", "cancelled"), 120)
        out["done"] = done
        content = http.get(f"/v1/files/{done['output_file_id']}/content").text if done["output_file_id"] else ""
        out["output_ids"] = [json.loads(line)["custom_id"] for line in content.splitlines() if line.strip()]
    print(json.dumps(out))
    """
)


def namespace_command() -> list[str]:
    if os.geteuid() == 0:
        return ["unshare", "--mount"]
    return ["unshare", "--user", "--map-root-user", "--mount"]


def test_a_full_filesystem_pauses_the_batch_and_it_continues_when_space_returns(tmp_path):
    cmd = namespace_command()
    probe = [*cmd, "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"]
    can = shutil.which("unshare") is not None and subprocess.run(probe, capture_output=True).returncode == 0
    if not can:
        if os.geteuid() == 0:
            pytest.fail("running as root yet cannot mount a tmpfs in a private mount namespace (unshare --mount)")
        pytest.skip(
            "cannot mount a small filesystem here (needs root or user namespaces); "
            "engine/tests/storage.rs covers the same with a fault hook"
        )
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    source = tmp_path / "in.jsonl"
    source.write_bytes(to_jsonl(chat_line(f"r{i}") for i in range(LINES)))
    proc = subprocess.run(
        [*cmd, sys.executable, "-c", CHILD, str(mnt), str(source)], capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    full = out["while_full"]
    assert full["status"] == "in_progress", full
    message = next(e["message"] for e in full["errors"]["data"] if e["code"] == "storage_unavailable")
    assert "cannot write to its data directory" in message, message
    later = out["two_seconds_later"]
    assert later["status"] not in ("completed", "failed"), later
    assert later["errors"]["data"][0]["code"] == "storage_unavailable", later

    upload = out["upload_while_full"]
    assert upload["status"] == 507, upload
    error = json.loads(upload["body"])["error"]
    assert error["code"] == "insufficient_storage" and error["status"] == 507, error
    assert "os error" not in error["message"], error

    done = out["done"]
    assert done["status"] == "completed", done
    assert done["errors"] is None, done
    assert done["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}, done
    assert sorted(out["output_ids"]) == sorted(f"r{i}" for i in range(LINES))
    # It was paused mid-batch, not only at the end: results stopped being recorded.
    assert later["request_counts"]["completed"] < LINES, later
