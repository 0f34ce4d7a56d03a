"""Small inputs are validated on the calling thread, large ones through the parallel
pipeline: both give the same report. The same bytes go through both ways, just under and
just over the threshold (one 1 MiB block): as bytes (inline up to the threshold), as a
regular file (likewise) and through a FIFO (always the pipeline: its size is unknown)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

import fastrouter_batch as fb
from batchlines import OK_ANTHROPIC, OK_OPENAI, replaced, with_id

BLOCK = 1 << 20


def input_of(size: int) -> bytes:
    """About `size` bytes of lines with problems of several kinds, cut to exactly `size`."""
    lines = []
    i = 0
    while sum(len(x) + 1 for x in lines) < size + 1000:
        kind = i % 6
        if kind == 0:
            lines.append(with_id(OK_OPENAI, "dup"))
        elif kind == 1:
            lines.append(replaced(with_id(OK_OPENAI, f"r{i}"), '"user"', '"usr"'))
        elif kind == 2:
            lines.append("{broken")
        elif kind == 3:
            lines.append(replaced(with_id(OK_ANTHROPIC, f"a{i}"), '"hi"', '"' + "x" * 700 + '"'))
        elif kind == 4:
            lines.append("")
        else:
            lines.append(with_id(OK_OPENAI, f"ok{i}"))
        i += 1
    return ("\n".join(lines) + "\n").encode()[:size]


def through_fifo(tmp_path, data: bytes, limits: fb.Limits) -> fb.ValidationReport:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        return fb.validate(fifo, limits=limits)
    finally:
        writer.join(timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="FIFOs")
@pytest.mark.parametrize("size", [5_000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17])
def test_inline_and_pipelined_validation_report_the_same(tmp_path, size):
    data = input_of(size)
    assert len(data) == size
    limits = fb.Limits(max_issues=500, max_requests=1000)
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    reports = [fb.validate(data, limits=limits), fb.validate(path, limits=limits), through_fifo(tmp_path, data, limits)]
    first = reports[0].to_dict()
    assert all(r.to_dict() == first for r in reports[1:])
    assert reports[0].total_issues > 5 and reports[0].total_bytes == size
    assert {"duplicate_custom_id", "invalid_json", "invalid_value", "too_many_requests"} & set(first["issue_counts"])


CHILD = """
import os, sys
import fastrouter_batch as fb
data = open(sys.argv[1], "rb").read()
before = len(os.listdir("/proc/self/task"))
report = fb.validate(data)
fb.validate(sys.argv[1])
print(before, len(os.listdir("/proc/self/task")), report.num_lines)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/task")
@pytest.mark.parametrize("lines", [1, 1000])
def test_a_small_input_is_validated_on_the_calling_thread(tmp_path, lines):
    # No runtime, no pool, no pipeline: the process has as many threads after as before.
    import subprocess

    path = tmp_path / "small.jsonl"
    path.write_bytes(("\n".join(with_id(OK_OPENAI, f"id{i}") for i in range(lines)) + "\n").encode())
    assert path.stat().st_size <= BLOCK
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after, num_lines = map(int, out.stdout.split())
    assert (after, num_lines) == (before, lines)
