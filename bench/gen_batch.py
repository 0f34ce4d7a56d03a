"""Generate realistic, deterministic batch files (JSONL, one request per line).

    python bench/gen_batch.py OUT.jsonl --lines 200000 [--seed 1] [--url /v1/chat/completions]

Every generated line is valid: the benchmarks rely on a clean file having no
line-level problems (a file over 50,000 lines still trips the file-level
request limit, which is expected). The same seed always gives the same bytes.

Reuse from other scripts:
    iter_requests(lines, seed, url) -> the request dicts
    iter_lines(lines, seed, url)    -> the JSONL lines (str, with "\\n")
    generate(path, lines, seed, url) -> writes the file, returns its size in bytes
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"

OPENAI_MODELS = ("openai/gpt-4.1-nano", "openai/gpt-4.1", "openai/gpt-4o-mini")
ANTHROPIC_MODELS = ("anthropic/claude-4.5-sonnet", "anthropic/claude-4.5-haiku")
EMBEDDING_MODELS = ("openai/text-embedding-3-small", "openai/text-embedding-3-large")

# A fixed vocabulary, so output depends only on the seed. Mostly short English
# words (average ~5 letters keeps a 200,000-line file well under the
# 200 MB file limit), plus a few non-ASCII words: files are written as raw
# UTF-8, which the validators must decode.
VOCAB = tuple(
    """
    the a an of to in and or but for with on at by from as is are was be been
    this that these those it its we you they he she them our your their my
    data model batch request response token prompt answer question context
    summary report table list item value field record file line user system
    please explain describe compare summarize translate classify extract write
    rewrite review check find list give show make keep use need want help
    short long clear simple brief detailed formal casual polite exact final
    first second third next last other same new old main key best good fine
    price order invoice customer product service account ticket issue error
    email letter note message title text word sentence paragraph section page
    city country market company team project plan goal task step result test
    why how what when where which who whose whom if then else because so
    one two three four five ten many few more most less all some any each
    code python rust json schema api endpoint server client queue cache limit
    café naïve résumé straße 東京 данные
    """.split()
)

STREAM_WORDS = 1 << 18
OPENAI_MAX_TOKENS = 0.8  # openai requests carrying max_tokens (anthropic: always)
TEMPERATURE = 0.4  # requests carrying a temperature
TEMPERATURES = (0.0, 0.2, 0.5, 0.7, 1.0)
MAX_TOKENS = (64, 128, 256, 512, 1000, 2048)


def _word_stream(rng: random.Random) -> list[str]:
    """A long random word sequence; texts are slices of it. Drawing each word with
    rng.choices per message was most of the generator's time; slicing is C-speed."""
    return rng.choices(VOCAB, k=STREAM_WORDS)


def _text(rng: random.Random, stream: list[str]) -> str:
    """10-120 words (mostly short: a triangular draw peaking at 30), capitalised,
    sometimes split in two paragraphs."""
    k = int(rng.triangular(10, 121, 30))
    start = rng.randrange(len(stream) - k)
    words = stream[start : start + k]
    if k > 40 and rng.random() < 0.2:
        words[k // 2] += ".\n\n"  # a JSON-escaped newline in the content
    return " ".join(words).capitalize() + rng.choice(".?")


# Conversation shapes (1-3 messages, last one user): a single question, a system
# prompt then the question, or a user/assistant/user exchange.
SHAPES = (("user",), ("system", "user"), ("user", "assistant", "user"))


def _messages(rng: random.Random, stream: list[str]) -> list[dict]:
    return [{"role": role, "content": _text(rng, stream)} for role in rng.choice(SHAPES)]


def iter_chat_inputs(lines: int, seed: int = 1):
    """(custom_id, model, messages, options) per request: the arguments a user passes
    to a builder. `options` holds max_tokens / temperature only when present."""
    rng = random.Random(seed)
    stream = _word_stream(rng)
    for i in range(1, lines + 1):
        anthropic = rng.random() < 0.5
        model = rng.choice(ANTHROPIC_MODELS if anthropic else OPENAI_MODELS)
        messages = _messages(rng, stream)
        options = {}
        if anthropic or rng.random() < OPENAI_MAX_TOKENS:
            options["max_tokens"] = rng.choice(MAX_TOKENS)
        if rng.random() < TEMPERATURE:
            options["temperature"] = rng.choice(TEMPERATURES)
        yield f"request-{i}", model, messages, options


def iter_requests(lines: int, seed: int = 1, url: str = CHAT_URL):
    """The request dicts, in file order."""
    if url == CHAT_URL:
        for custom_id, model, messages, options in iter_chat_inputs(lines, seed):
            yield {
                "custom_id": custom_id,
                "provider": model.split("/", 1)[0],
                "method": "POST",
                "url": CHAT_URL,
                "body": {"model": model, "messages": messages, **options},
            }
    elif url == EMBEDDINGS_URL:
        # Anthropic does not serve embeddings: every line is openai.
        rng = random.Random(seed)
        stream = _word_stream(rng)
        for i in range(1, lines + 1):
            inp = _text(rng, stream) if rng.random() < 0.7 else [_text(rng, stream) for _ in range(rng.randint(1, 4))]
            yield {
                "custom_id": f"request-{i}",
                "provider": "openai",
                "method": "POST",
                "url": EMBEDDINGS_URL,
                "body": {"model": rng.choice(EMBEDDING_MODELS), "input": inp},
            }
    else:
        raise ValueError(f"url must be {CHAT_URL!r} or {EMBEDDINGS_URL!r}, not {url!r}")


def iter_lines(lines: int, seed: int = 1, url: str = CHAT_URL):
    """The JSONL lines (compact JSON, raw UTF-8, each ending in a newline)."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    for req in iter_requests(lines, seed, url):
        yield dumps(req) + "\n"


def generate(path, lines: int, seed: int = 1, url: str = CHAT_URL) -> int:
    """Writes `lines` requests to `path`; returns the file size in bytes."""
    chunk: list[str] = []
    # newline="" so "\n" is written as is on every platform.
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in iter_lines(lines, seed, url):
            chunk.append(line)
            if len(chunk) >= 10_000:  # big writes: few syscalls, bounded memory
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    return os.path.getsize(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate a realistic, deterministic batch JSONL file.")
    ap.add_argument("out", help="output path (.jsonl)")
    ap.add_argument("--lines", type=int, default=200_000, help="number of requests (default 200000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--url", default=CHAT_URL, choices=(CHAT_URL, EMBEDDINGS_URL), help="endpoint of every line")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    size = generate(args.out, args.lines, args.seed, args.url)
    dt = time.perf_counter() - t
    print(f"wrote {args.lines:,} lines, {size / 1e6:.1f} MB to {args.out} in {dt:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
