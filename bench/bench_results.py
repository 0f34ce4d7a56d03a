"""Reading results into {custom_id: text}: fastrouter_batch against orjson, same run, same file.

    python bench/bench_results.py [--lines 200000] [--repeat 3] [--keep DIR]

1. Generates a realistic output file in the contract's format (section 4): N lines in
   shuffled order (output lines arrive in any order), OpenAI-shaped ``chat.completion``
   bodies of about 1 KB (answers of 20-160 words with newlines, quotes, markdown and some
   non-ASCII text, full ``usage`` with token details, openai and anthropic models), plus a
   few error lines (0.1%: provider 429/500 answers that keep their ``response``, and
   requests that never ran, with ``"response": null``).
2. Times, best of --repeat, wall clock, building ``{custom_id: text}`` two ways:
   - orjson: ``{d["custom_id"]: d["response"]["body"]["choices"][0]["message"]["content"]
     for d in map(orjson.loads, f)}`` with the one guard error lines need (their text is None);
   - fastrouter_batch: ``read_texts(path)`` (the dict alone, nothing else kept: the
     targets are measured on this one);
   - and, for context, ``read_results(path).texts()`` (every field of every line is read
     and kept in a BatchResults, the dict is built from it);
   and checks the dicts are equal.
3. Measures peak RSS growth of each, each in its own fresh subprocess (imports not counted).
   Both dicts hold the same Python strings (about 165 MB here), which are most of the peak.

4. For context, the memory of keeping every field of every line: a list of orjson dicts
   against a BatchResults (texts, models, usage, errors; bodies read back on demand).

Prints whether the targets (3x the speed, lower peak memory) are met. Exits 1 if the two
dicts differ, 2 if fastrouter_batch (or orjson) is not installed.
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
import gen_batch  # noqa: E402
from _rss import maxrss_mb, proc_status_mb  # noqa: E402
from _timing import best_of  # noqa: E402

CHAT_MODELS = (
    ("openai/gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
    ("openai/gpt-4.1", "gpt-4.1-2025-04-14"),
    ("openai/gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic/claude-4.5-sonnet", "claude-sonnet-4-5-20250929"),
    ("anthropic/claude-4.5-haiku", "claude-haiku-4-5-20251001"),
)
ERROR_RATE = 0.001
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _rid(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(ID_CHARS, k=n))


def _answer(rng: random.Random) -> str:
    """An assistant answer: a few paragraphs, sometimes a list, bold, quotes, non-ASCII."""
    words = gen_batch.VOCAB
    paragraphs = []
    for _ in range(rng.randint(1, 3)):
        sentences = []
        for _ in range(rng.randint(2, 5)):
            s = " ".join(rng.choices(words, k=rng.randint(5, 14)))
            if rng.random() < 0.15:
                s = f'{s} "{rng.choice(words)}"'
            if rng.random() < 0.1:
                s = f"**{s}**"
            sentences.append(s[0].upper() + s[1:] + ".")
        paragraphs.append(" ".join(sentences))
    if rng.random() < 0.3:
        paragraphs.append(
            "\n".join(f"- {' '.join(rng.choices(words, k=rng.randint(3, 8)))}" for _ in range(rng.randint(2, 4)))
        )
    return "\n\n".join(paragraphs)


def _chat_body(rng: random.Random, model: str, created: int) -> dict:
    text = _answer(rng)
    prompt = rng.randint(12, 900)
    completion = max(1, len(text) // 4)
    return {
        "id": f"chatcmpl-{_rid(rng, 29)}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop" if rng.random() < 0.97 else "length",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": f"fp_{_rid(rng, 10).lower()}",
    }


def iter_output_lines(lines: int, seed: int = 1):
    """The output file's lines (str, with "\\n"), in shuffled order."""
    rng = random.Random(seed)
    order = list(range(lines))
    rng.shuffle(order)
    created = 1764000000
    for i in order:
        custom_id = f"request-{i}"
        line_id = f"batch_req_{_rid(rng, 24)}"
        roll = rng.random()
        if roll < ERROR_RATE / 2:
            # Never ran: no response, an error.
            d = {
                "id": line_id,
                "custom_id": custom_id,
                "response": None,
                "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired.",
                },
            }
        elif roll < ERROR_RATE:
            status = rng.choice((429, 500))
            d = {
                "id": line_id,
                "custom_id": custom_id,
                "response": {
                    "status_code": status,
                    "request_id": f"req_{_rid(rng, 24)}",
                    "body": {
                        "error": {
                            "message": "Rate limit reached" if status == 429 else "Server error",
                            "type": "rate_limit_error" if status == 429 else "server_error",
                            "code": "rate_limited" if status == 429 else "server_error",
                        }
                    },
                },
                "error": None,
            }
        else:
            _, upstream = rng.choice(CHAT_MODELS)
            d = {
                "id": line_id,
                "custom_id": custom_id,
                "response": {
                    "status_code": 200,
                    "request_id": f"req_{_rid(rng, 24)}",
                    "body": _chat_body(rng, upstream, created + i // 1000),
                },
                "error": None,
            }
        yield json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n"


def generate(path: str, lines: int, seed: int = 1) -> int:
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in iter_output_lines(lines, seed):
            f.write(line)
    return os.path.getsize(path)


# --- the two readers --------------------------------------------------------------------


def run_orjson(path: str) -> dict:
    import orjson

    out = {}
    with open(path, "rb") as f:
        for d in map(orjson.loads, f):
            r = d["response"]
            out[d["custom_id"]] = (
                r["body"]["choices"][0]["message"]["content"] if r and r["status_code"] == 200 else None
            )
    return out


def run_fastrouter(path: str) -> dict:
    import fastrouter_batch

    return fastrouter_batch.read_texts(path)


def run_fastrouter_full(path: str) -> dict:
    import fastrouter_batch

    return fastrouter_batch.read_results(path).texts()


# For context only (memory): what it costs to keep every field of every result.
def keep_orjson_lines(path: str) -> list:
    import orjson

    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f]


def keep_batch_results(path: str):
    import fastrouter_batch

    return fastrouter_batch.read_results(path)


READERS = {
    "orjson": run_orjson,
    "fastrouter": run_fastrouter,
    "fastrouter-full": run_fastrouter_full,
    "orjson-lines": keep_orjson_lines,
    "batch-results": keep_batch_results,
}


# --- memory, in a fresh process per reader (as bench_validate.py) -----------------------

_proc_status_mb, _maxrss_mb = proc_status_mb, maxrss_mb


def rss_child(which: str, path: str) -> None:
    """Runs in the subprocess: imports first (not counted), then reads once and reports the
    peak RSS while reading minus the RSS just before, the result still held (the dict is
    what the caller wanted). The peak mark is reset (clear_refs "5") and read as VmHWM."""
    import orjson  # noqa: F401

    if which.startswith("fastrouter") or which == "batch-results":
        import fastrouter_batch  # noqa: F401
    before = _proc_status_mb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    if before is None or not reset:
        before = _maxrss_mb()
    result = READERS[which](path)
    after = _proc_status_mb("VmHWM") if reset else None
    print(
        json.dumps(
            {"before_mb": before, "after_mb": after if after is not None else _maxrss_mb(), "entries": len(result)}
        )
    )


def rss_growth(which: str, path: str) -> float:
    return _rss.rss_growth(os.path.abspath(__file__), which, path)


# --- main -------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark fastrouter_batch.read_results against orjson.")
    ap.add_argument("--lines", type=int, default=200_000, help="lines in the generated output file (default 200000)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", metavar="DIR", help="write (and reuse) the generated file in DIR")
    ap.add_argument("--no-context", action="store_true", help="skip the context memory measurements")
    ap.add_argument("--rss-child", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    try:
        import orjson  # noqa: F401
    except ImportError:
        print("orjson is not installed (pip install orjson)", file=sys.stderr)
        return 2
    try:
        import fastrouter_batch  # noqa: F401
    except ImportError:
        print("fastrouter_batch is not installed (maturin develop --release)", file=sys.stderr)
        return 2

    tmp = None
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        directory = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-results-")
        directory = tmp.name
    path = os.path.join(directory, f"output-{args.lines}-{args.seed}.jsonl")
    if not os.path.exists(path):
        t = time.perf_counter()
        generate(path, args.lines, args.seed)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    size = os.path.getsize(path)
    print(f"output file: {args.lines:,} lines, {size / 1e6:.0f} MB ({size / args.lines:.0f} bytes a line)")

    t_o, d_o = best_of(args.repeat, run_orjson, path)
    print(f"orjson            : {t_o:.3f} s ({size / t_o / 1e6:.0f} MB/s)")
    d_o_len = len(d_o)
    t_f, d_f = best_of(args.repeat, run_fastrouter, path)
    print(f"fastrouter_batch  : {t_f:.3f} s ({size / t_f / 1e6:.0f} MB/s)  read_texts(path)")
    same = d_o == d_f
    del d_f
    t_full, d_f = best_of(args.repeat, run_fastrouter_full, path)
    print(
        f"  (context)       : {t_full:.3f} s ({size / t_full / 1e6:.0f} MB/s)  read_results(path).texts(), "
        f"{t_o / t_full:.1f}x orjson"
    )
    same = same and d_o == d_f
    errors = sum(1 for v in d_f.values() if v is None)
    print(f"speedup           : {t_o / t_f:.1f}x (target 3x)")
    print(
        f"check             : {'OK' if same else 'MISMATCH'}: {d_o_len:,} entries each, "
        f"{errors} without text (error lines)"
    )
    del d_o, d_f

    rss_o, rss_f = rss_growth("orjson", path), rss_growth("fastrouter", path)
    print(
        f"peak RSS growth   : orjson {rss_o:.1f} MB, fastrouter_batch {rss_f:.1f} MB "
        f"({rss_f - rss_o:+.1f} MB, {(rss_f / rss_o - 1) * 100:+.1f}%; "
        "fresh subprocess each, the dict held at the peak)"
    )
    rss_full = rss_growth("fastrouter-full", path)
    print(f"  (context)       : read_results(path).texts() {rss_full:.1f} MB (the BatchResults held too)")
    print(
        f"targets           : speed 3x {'met' if t_o / t_f >= 3 else 'NOT met'}; "
        f"lower peak memory {'met' if rss_f < rss_o else 'NOT met'}"
    )
    if not args.no_context:
        rss_l, rss_r = rss_growth("orjson-lines", path), rss_growth("batch-results", path)
        print(
            f"context (memory)  : keeping every field of every line: orjson dicts {rss_l:.0f} MB, "
            f"BatchResults {rss_r:.0f} MB"
        )
    if tmp is not None:
        tmp.cleanup()
    if not same:
        print("FAILED: the two dicts differ")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
