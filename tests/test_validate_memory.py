"""Validating a file far bigger than the memory it may use: streamed, bounded RSS.

The validation runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

LINE = (
    '{"custom_id":"r-BBBBBB-%05d","provider":"openai","method":"POST","url":"/v1/chat/completions",'
    '"body":{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"%s"}],"max_tokens":64}}\n'
)
LINES_PER_BLOCK = 1_000
BLOCKS = 250  # 250,000 lines of ~1.2 kB: ~310 MB
# Lines of realistic size: the duplicate-id check remembers ~100 bytes per request by
# design, so a file of a million tiny lines would use ~100 MB for the ids alone.

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import fastrouter_batch as fb
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = fb.validate(sys.argv[1], limits=fb.Limits(max_requests=10**9, max_bytes=10**12))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kib": after - before, "ok": r.ok, "num_requests": r.num_requests,
                      "num_lines": r.num_lines, "total_bytes": r.total_bytes, "issues": r.total_issues}))
    """
)


def write_big_file(path) -> tuple[int, int]:
    """Writes BLOCKS copies of a precomputed block, each with its own ids; returns (lines, bytes)."""
    text = "hello, please answer in one line " * 32
    template = "".join(LINE % (j, text) for j in range(LINES_PER_BLOCK)).encode()
    size = 0
    with open(path, "wb") as f:
        for b in range(BLOCKS):
            block = template.replace(b"BBBBBB", b"%06d" % b)
            f.write(block)
            size += len(block)
    return BLOCKS * LINES_PER_BLOCK, size


def test_a_300_mb_file_validates_in_under_100_mb(tmp_path):
    path = tmp_path / "big.jsonl"
    try:
        lines, size = write_big_file(path)
        assert size > 300_000_000, size
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["ok"] is True and out["issues"] == 0
        assert out["num_requests"] == out["num_lines"] == lines
        assert out["total_bytes"] == size
        # The file is 300 MB: reading it whole would grow RSS by at least that much.
        assert out["growth_kib"] < 100 * 1024, out
    finally:
        path.unlink(missing_ok=True)
