"""Validation speed: fastrouter_batch.validate against the pydantic baseline, same run, same file.

    python bench/bench_validate.py [--lines 200000] [--keep DIR]

1. Generates a clean N-line batch file (bench/gen_batch.py) and a broken copy with ~1% bad
   lines of several kinds (plus harmless blank and CRLF lines that shift the numbering).
2. Times both validators on the clean file (best of --repeat, wall clock) and prints MB/s
   and the speedup. Only the ratio is meaningful across machines.
3. Checks they agree: on the clean file both report only the file-level limit issue (a file
   over 50,000 lines has too many requests for one batch: that is expected, not a bug);
   on the broken file both flag exactly the lines the injector broke.
4. Measures peak RSS growth of each validator, each in its own fresh subprocess.

Exits 1 if any check fails, 2 if fastrouter_batch is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _rss  # noqa: E402
import baseline_pydantic  # noqa: E402
import gen_batch  # noqa: E402
from _rss import maxrss_mb, proc_status_mb  # noqa: E402
from _timing import best_of  # noqa: E402

MAX_REQUESTS = baseline_pydantic.MAX_REQUESTS
MAX_BYTES = baseline_pydantic.MAX_BYTES


# --- the two validators, as {(line, code)} plus counts ---------------------------------


def run_pydantic(path: str) -> dict:
    r = baseline_pydantic.validate_file(path)
    return {
        "pairs": {(line, code) for line, code, _ in r["errors"]},
        "requests": r["requests"],
        "lines": r["lines"],
        "bytes": r["bytes"],
        "detail": {(line, c): m for line, c, m in r["errors"]},
    }


def _code(code) -> str:
    # The binding may expose codes as str or as an enum-like object; compare by name.
    return str(getattr(code, "value", code))


def run_fastrouter(path: str) -> dict:
    import fastrouter_batch

    r = fastrouter_batch.validate(path)
    return {
        "pairs": {(i.line, _code(i.code)) for i in r.issues},
        "requests": r.num_requests,
        "lines": r.num_lines,
        "bytes": r.total_bytes,
        "ok": r.ok,
        "detail": {(i.line, _code(i.code)): f"{i.path or ''}: {i.message}" for i in r.issues},
    }


VALIDATORS = {"pydantic": run_pydantic, "fastrouter": run_fastrouter}


# --- the broken copy --------------------------------------------------------------------


def _break(req: dict, kind: str, rng: random.Random, clean_ids: list[str]) -> str | None:
    """Mutates one request dict in place (or returns a replacement line); None if `kind`
    does not apply to this request."""
    body = req["body"]
    if kind == "invalid_json":
        text = json.dumps(req, ensure_ascii=False)
        return text[: rng.randint(1, len(text) - 2)]  # cut short: never valid JSON
    if kind == "duplicate_custom_id":
        if not clean_ids:
            return None
        req["custom_id"] = rng.choice(clean_ids)
    elif kind == "invalid_role":
        rng.choice(body["messages"])["role"] = rng.choice(("robot", "User", "human", ""))
    elif kind == "missing_max_tokens":
        # The classic mistake: switched an openai request to claude, kept no max_tokens.
        req["provider"] = "anthropic"
        body["model"] = rng.choice(gen_batch.ANTHROPIC_MODELS)
        body.pop("max_tokens", None)
    elif kind == "provider_model_mismatch":
        body["model"] = "openai/gpt-4.1" if req["provider"] == "anthropic" else "anthropic/claude-4.5-haiku"
    elif kind == "invalid_type":
        body["messages"][-1]["content"] = 42
    elif kind == "empty_messages":
        body["messages"] = []
    elif kind == "custom_id_format":
        if req["provider"] != "anthropic":
            return None
        req["custom_id"] = req["custom_id"].replace("-", " ")  # a space: not allowed
    return json.dumps(req, ensure_ascii=False)


BAD_KINDS = (
    "invalid_json",
    "duplicate_custom_id",
    "invalid_role",
    "missing_max_tokens",
    "provider_model_mismatch",
    "invalid_type",
    "empty_messages",
    "custom_id_format",
)


def make_broken(src: str, dst: str, rate: float = 0.01, seed: int = 2) -> dict[int, str]:
    """Copies src to dst breaking ~rate of the lines; returns {line: kind} of broken lines."""
    rng = random.Random(seed)
    broken: dict[int, str] = {}
    clean_ids: list[str] = []  # ids of lines left intact, for duplicates that must be seen
    out: list[str] = []
    n = 0
    with open(src, encoding="utf-8") as f:
        for text in f:
            if rng.random() < 0.001:  # blank lines count as lines, not requests
                out.append(rng.choice(("", "  ", "\t", "\r")) + "\n")
                n += 1
            n += 1
            if rng.random() < rate:
                kind = rng.choice(BAD_KINDS)
                line = _break(json.loads(text), kind, rng, clean_ids)
                if line is not None:
                    out.append(line + "\n")
                    broken[n] = kind
                    continue
            if rng.random() < 0.01:  # a sample of intact ids is enough to copy from
                clean_ids.append(json.loads(text)["custom_id"])
            if rng.random() < 0.001:
                text = text[:-1] + "\r\n"  # CRLF endings are fine
            out.append(text)
    with open(dst, "w", encoding="utf-8", newline="") as f:
        f.write("".join(out))
    return broken


def limit_issues(path: str) -> set[tuple[int, str]]:
    """The file-level issues a correct validator must report: the line holding request
    MAX_REQUESTS + 1 and the line holding byte MAX_BYTES (0-based), if any."""
    out = set()
    requests = pos = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if pos <= MAX_BYTES < pos + len(raw):
                out.add((n, "file_too_large"))
            pos += len(raw)
            if raw.strip(b" \t\r\n"):
                requests += 1
                if requests == MAX_REQUESTS + 1:
                    out.add((n, "too_many_requests"))
    return out


# --- checks -----------------------------------------------------------------------------


def _line_preview(path: str, wanted: set[int]) -> dict[int, str]:
    out = {}
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n in wanted:
                out[n] = raw[:100].decode("utf-8", "replace").rstrip()
    return out


def compare(name: str, path: str, p: dict, fr: dict, expected: set[tuple[int, str]]) -> bool:
    """Prints whether both validators flag the expected lines; a diff when not."""
    ok = True
    lines_p = {line for line, _ in p["pairs"]}
    lines_f = {line for line, _ in fr["pairs"]}
    lines_e = {line for line, _ in expected}
    if (p["requests"], p["lines"]) != (fr["requests"], fr["lines"]):
        ok = False
        print(
            f"  MISMATCH {name}: requests/lines pydantic {p['requests']}/{p['lines']}, "
            f"fastrouter {fr['requests']}/{fr['lines']}"
        )
    for label, got, res in (("pydantic", lines_p, p), ("fastrouter", lines_f, fr)):
        if got != lines_e:
            ok = False
            missed, extra = sorted(lines_e - got), sorted(got - lines_e)
            print(
                f"  MISMATCH {name}: {label} flags {len(got)} lines, {len(lines_e)} expected; "
                f"missed {len(missed)}, extra {len(extra)}"
            )
            preview = _line_preview(path, set(missed[:10] + extra[:10]))
            for n in missed[:10]:
                print(f"    missed line {n} ({[c for x, c in expected if x == n]}): {preview.get(n)}")
            for n in extra[:10]:
                print(f"    extra  line {n}: {[(c, m) for (x, c), m in res['detail'].items() if x == n]}")
    if lines_p != lines_f:
        ok = False
        print(
            f"  MISMATCH {name}: lines only pydantic flags: {sorted(lines_p - lines_f)[:20]}; "
            f"only fastrouter flags: {sorted(lines_f - lines_p)[:20]}"
        )
    # Same lines but different codes is worth seeing, though line sets are the criterion.
    code_diff = sorted(p["pairs"] ^ fr["pairs"])
    if code_diff and lines_p == lines_f:
        print(f"  note {name}: same lines, {len(code_diff)} differing (line, code) pairs, e.g.:")
        for n, c in code_diff[:10]:
            side = "pydantic" if (n, c) in p["pairs"] else "fastrouter"
            print(f"    line {n}: {c} only from {side}: {(p if side == 'pydantic' else fr)['detail'][(n, c)]}")
    if ok:
        print(
            f"  {name}: OK, both flag the same {len(lines_p)} lines "
            f"({len(p['pairs'])} issues pydantic, {len(fr['pairs'])} fastrouter), as expected"
        )
    return ok


# --- memory, in a fresh process per validator -------------------------------------------

_proc_status_mb, _maxrss_mb = proc_status_mb, maxrss_mb


def rss_child(which: str, path: str) -> None:
    """Runs in the subprocess: import first (not counted), then validate once and report
    peak RSS during validation minus RSS just before it.

    On Linux, ru_maxrss is not usable as is: it keeps the parent's high-water mark across
    exec (the parent held the broken copy in memory), and importing pydantic leaves a peak
    a streaming validator may never pass again. So the peak is reset (clear_refs "5") and
    read as VmHWM, which is what ru_maxrss reports for a fresh process. Elsewhere this falls
    back to ru_maxrss, with those caveats."""
    if which == "fastrouter":
        import fastrouter_batch  # noqa: F401
    before = _proc_status_mb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS mark (Linux >= 4.0)
        reset = True
    except OSError:
        reset = False
    if before is None or not reset:
        before = _maxrss_mb()
    VALIDATORS[which](path)
    after = _proc_status_mb("VmHWM") if reset else None
    print(json.dumps({"before_mb": before, "after_mb": after if after is not None else _maxrss_mb()}))


def rss_growth(which: str, path: str) -> float:
    return _rss.rss_growth(os.path.abspath(__file__), which, path)


# --- main -------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark fastrouter_batch.validate against a pydantic v2 baseline.")
    ap.add_argument("--lines", type=int, default=200_000, help="requests in the generated file (default 200000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per validator; the best counts (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--keep", metavar="DIR", help="write the generated files to DIR and keep them")
    ap.add_argument("--rss-child", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0

    try:
        import fastrouter_batch  # noqa: F401
    except ImportError as e:
        print(f"fastrouter_batch is not importable ({e}); build it first (maturin develop --release).")
        return 2

    tmp = None
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        work = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_validate_")
        work = tmp.name
    clean, broken = os.path.join(work, "clean.jsonl"), os.path.join(work, "broken.jsonl")
    try:
        t = time.perf_counter()
        size = gen_batch.generate(clean, args.lines, seed=args.seed)
        bad = make_broken(clean, broken)
        print(
            f"file: {args.lines:,} lines, {size / 1e6:.1f} MB ({clean}); "
            f"broken copy: {len(bad):,} bad lines; generated in {time.perf_counter() - t:.1f}s"
        )

        t_p, res_p = best_of(args.repeat, run_pydantic, clean)
        t_f, res_f = best_of(args.repeat, run_fastrouter, clean)
        mbs_p, mbs_f = size / 1e6 / t_p, size / 1e6 / t_f
        print(f"pydantic baseline:  {t_p:7.3f} s  {mbs_p:8.1f} MB/s  (best of {args.repeat})")
        print(f"fastrouter_batch:   {t_f:7.3f} s  {mbs_f:8.1f} MB/s  (best of {args.repeat})")
        print(f"fastrouter_batch / pydantic speedup: {t_p / t_f:.1f}x (target >= 20x)")

        print("checks:")
        ok = True
        if res_f["bytes"] != size:
            ok = False
            print(f"  MISMATCH: fastrouter total_bytes {res_f['bytes']} != file size {size}")
        expected = limit_issues(clean)
        if expected:
            print(
                f"  clean file: the only expected issues are file-level limits {sorted(expected)} "
                f"(so fastrouter's .ok is {res_f['ok']})"
            )
        ok &= compare("clean file", clean, res_p, res_f, expected)
        expected_bad = set(bad.items()) | limit_issues(broken)
        ok &= compare("broken file", broken, run_pydantic(broken), run_fastrouter(broken), expected_bad)

        rss_p, rss_f = rss_growth("pydantic", clean), rss_growth("fastrouter", clean)
        print(
            f"peak RSS growth while validating (fresh subprocess each): "
            f"pydantic {rss_p:.1f} MB, fastrouter_batch {rss_f:.1f} MB (file {size / 1e6:.0f} MB)"
        )
        print("all checks passed" if ok else "SOME CHECKS FAILED (see MISMATCH above)")
        return 0 if ok else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
