"""Every file reader ends on endless or huge input: /dev/zero, /dev/urandom, a FIFO whose
writer never stops, a 300 MB single line. Past the byte and line limits it stops with a
clear error (file_too_large, line_too_large, naming the file and line) in bounded memory.

Each reader runs in its own subprocess with a timeout (a hang fails the test instead of
hanging the run) and reports its own peak RSS (VmHWM), which must stay under a generous bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="devices and FIFOs of Linux")

TIMEOUT_S = 90
MAX_RSS_MB = 150

# Runs one reader on one path and prints what happened: the error (or the report's codes)
# and the process's peak RSS.
CHILD = textwrap.dedent(
    """
    import json, sys
    import fastrouter_batch as fb

    reader, path, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    out = {}
    try:
        if reader == "validate":
            limits = fb.Limits(**options) if options else None
            report = fb.validate(path, limits=limits)
            out["issues"] = [[i.line, i.code] for i in report.issues[:5]]
            out["codes"] = sorted(report.issue_counts)
            out["messages"] = [i.message for i in report.issues if i.code.endswith("too_large")]
            out["total_bytes"] = report.total_bytes
        elif reader == "read_results":
            fb.read_results(path, **options)
        elif reader == "read_texts":
            fb.read_texts(path, **options)
        elif reader == "read_requests":
            limits = fb.Limits(**options) if options else None
            for _ in fb.read_requests(path, limits=limits):
                pass
        elif reader == "convert":
            limits = fb.Limits(**options) if options else None
            fb.BatchBuilder.from_openai_file(path, limits=limits)
        out["returned"] = True
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    # VmHWM: this process's peak since its exec (ru_maxrss would carry the parent's across it).
    with open("/proc/self/status") as f:
        out["rss_mb"] = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    print(json.dumps(out))
    """
)

# Writes its argument's bytes (repeated to ~1 MiB) to a FIFO for ever, until the reader
# goes away (BrokenPipeError) or it is killed.
WRITER = textwrap.dedent(
    """
    import sys
    unit = bytes.fromhex(sys.argv[2])
    chunk = unit * max(1, (1 << 20) // len(unit))
    try:
        with open(sys.argv[1], "wb") as f:
            while True:
                f.write(chunk)
    except BrokenPipeError:
        pass
    """
)

REQUEST_LINE = (
    b'{"custom_id": "r", "provider": "openai", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}}\n'
)
RESULT_LINE = (
    b'{"id": "batch_req_1", "custom_id": "r", "response": {"status_code": 200, "request_id": "q", "body": '
    b'{"id": "c", "object": "chat.completion", "model": "gpt-4.1-nano", "choices": [{"index": 0, '
    b'"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}]}}, "error": null}\n'
)


def run_reader(reader: str, path: str | Path, **options: object) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, reader, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,  # a reader that never returns fails here
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rss_mb"] < MAX_RSS_MB, out
    return out


def through_fifo(tmp_path: Path, unit: bytes, reader: str, **options: object) -> dict:
    fifo = tmp_path / "endless.jsonl"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(fifo), unit.hex()], stderr=subprocess.DEVNULL)
    try:
        return run_reader(reader, fifo, **options)
    finally:
        writer.kill()
        writer.wait(timeout=10)


@pytest.fixture(scope="module")
def one_huge_line(tmp_path_factory) -> Path:
    """A 300 MB file of one line (a request whose content is 300 MB of NULs, sparse on disk)."""
    path = tmp_path_factory.mktemp("huge") / "one_line.jsonl"
    head = REQUEST_LINE[: REQUEST_LINE.index(b'"hi"') + 1]
    with open(path, "wb") as f:
        f.write(head)
        f.seek(300_000_000)
        f.write(b'"}]}}\n')
    return path


def assert_stopped(out: dict, code: str, where: str) -> None:
    assert "returned" not in out, out
    assert out["error"].startswith("ValueError: "), out
    assert f"[{code}]" in out["error"], out
    assert where in out["error"], out


# --- validate: a report whose file_too_large / line_too_large names the line ----------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_validate_stops_on_an_endless_device(device):
    out = run_reader("validate", device)
    assert "file_too_large" in out["codes"], out
    assert out["total_bytes"] == 200_000_001, out  # the limit, and the byte that passes it
    if device == "/dev/zero":  # one endless line: over the line limit too
        assert out["issues"] == [[1, "line_too_large"], [1, "file_too_large"]], out
        assert "nothing after it is read" in out["messages"][1], out


def test_validate_stops_on_an_endless_fifo(tmp_path):
    out = through_fifo(tmp_path, REQUEST_LINE, "validate")
    assert "file_too_large" in out["codes"], out
    assert out["total_bytes"] == 200_000_001, out


def test_validate_stops_on_one_300_mb_line(one_huge_line):
    out = run_reader("validate", one_huge_line)
    assert out["issues"] == [[1, "line_too_large"], [1, "file_too_large"]], out


# --- the results readers: ValueError naming the file, the line and the code -------------


@pytest.mark.parametrize("reader", ["read_results", "read_texts"])
def test_results_readers_stop_on_dev_zero(reader):
    assert_stopped(run_reader(reader, "/dev/zero"), "line_too_large", "/dev/zero, line 1:")


@pytest.mark.parametrize("reader", ["read_results", "read_texts"])
def test_results_readers_stop_on_dev_urandom(reader):
    out = run_reader(reader, "/dev/urandom")
    assert out["error"].startswith("ValueError: /dev/urandom, line "), out


@pytest.mark.parametrize("reader", ["read_results", "read_texts"])
def test_results_readers_stop_on_an_endless_fifo(tmp_path, reader):
    # An endless line, then endless valid lines (stopped by the byte limit).
    assert_stopped(through_fifo(tmp_path, b"x", reader), "line_too_large", "endless.jsonl, line 1:")
    os.unlink(tmp_path / "endless.jsonl")
    out = through_fifo(tmp_path, RESULT_LINE, reader, max_bytes=20_000_000)
    line = 20_000_000 // len(RESULT_LINE) + 1
    assert_stopped(out, "file_too_large", f"endless.jsonl, line {line}:")


@pytest.mark.parametrize("reader", ["read_results", "read_texts"])
def test_results_readers_stop_on_one_300_mb_line(one_huge_line, reader):
    assert_stopped(run_reader(reader, one_huge_line), "line_too_large", "one_line.jsonl, line 1:")


# --- read_requests ---------------------------------------------------------------------


def test_read_requests_stops_on_dev_zero():
    assert_stopped(run_reader("read_requests", "/dev/zero"), "line_too_large", "/dev/zero, line 1:")


def test_read_requests_stops_on_dev_urandom():
    out = run_reader("read_requests", "/dev/urandom")
    assert out["error"].startswith("ValueError: /dev/urandom, line "), out


def test_read_requests_stops_on_an_endless_fifo(tmp_path):
    assert_stopped(through_fifo(tmp_path, b"\0", "read_requests"), "line_too_large", "endless.jsonl, line 1:")
    os.unlink(tmp_path / "endless.jsonl")
    out = through_fifo(tmp_path, REQUEST_LINE, "read_requests", max_bytes=5_000_000)
    line = 5_000_000 // len(REQUEST_LINE) + 1
    assert_stopped(out, "file_too_large", f"endless.jsonl, line {line}:")


def test_read_requests_stops_on_one_300_mb_line(one_huge_line):
    assert_stopped(run_reader("read_requests", one_huge_line), "line_too_large", "one_line.jsonl, line 1:")


# --- the limits themselves, in process --------------------------------------------------


def test_limits_are_inclusive_and_name_the_line(tmp_path):
    import fastrouter_batch as fb

    path = tmp_path / "out.jsonl"
    path.write_bytes(RESULT_LINE * 3)
    size = len(RESULT_LINE)
    assert len(fb.read_texts(path, max_bytes=3 * size)) == 1
    with pytest.raises(ValueError, match=r"out.jsonl, line 2: .*\[file_too_large\]"):
        fb.read_results(path, max_bytes=size + 10)
    with pytest.raises(ValueError, match=rf"out.jsonl, line 1: .*over the {size - 2}-byte limit.*\[line_too_large\]"):
        fb.read_texts(path, max_line_bytes=size - 2)
    assert len(fb.read_results(path, max_line_bytes=size - 1)) == 3  # the newline is not the line's

    requests = tmp_path / "in.jsonl"
    requests.write_bytes(b"\xef\xbb\xbf" + REQUEST_LINE + b"\r\n" + REQUEST_LINE)
    assert len(list(fb.read_requests(requests))) == 2
    total = requests.stat().st_size
    assert len(list(fb.read_requests(requests, limits=fb.Limits(max_bytes=total)))) == 2
    with pytest.raises(ValueError, match=r"in.jsonl, line 3: .*\[file_too_large\]"):
        list(fb.read_requests(requests, limits=fb.Limits(max_bytes=total - 1)))
    longest = len(REQUEST_LINE) - 1 + 3  # the first line holds the byte-order mark
    assert len(list(fb.read_requests(requests, limits=fb.Limits(max_line_bytes=longest)))) == 2
    with pytest.raises(ValueError, match=r"in.jsonl, line 1: .*\[line_too_large\]"):
        list(fb.read_requests(requests, limits=fb.Limits(max_line_bytes=longest - 1)))


# --- convert (OpenAI's format in): the same limits, 8 GiB in all by default ----------------

OPENAI_LINE = (
    b'{"custom_id": "r", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}}\n'
)


def test_convert_stops_on_dev_zero_and_one_300_mb_line(one_huge_line):
    assert_stopped(run_reader("convert", "/dev/zero"), "line_too_large", "/dev/zero, line 1:")
    assert_stopped(run_reader("convert", one_huge_line), "line_too_large", "one_line.jsonl, line 1:")


def test_convert_stops_on_an_endless_fifo(tmp_path):
    out = through_fifo(tmp_path, OPENAI_LINE, "convert", max_bytes=5_000_000)
    line = 5_000_000 // len(OPENAI_LINE) + 1
    assert_stopped(out, "file_too_large", f"endless.jsonl, line {line}:")


def test_the_convert_command_stops_on_dev_zero():
    proc = subprocess.run(
        [sys.executable, "-m", "fastrouter_batch", "convert", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc
    assert "/dev/zero, line 1:" in proc.stderr and "[line_too_large]" in proc.stderr, proc.stderr
