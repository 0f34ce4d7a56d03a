"""DataFrame in, DataFrame out: fastrouter_batch against the same done by hand with
``json.dumps`` and with ``orjson``, same run, same input.

    python bench/bench_frame.py [--rows 100000] [--repeat 5] [--dir DIR]

The files go to /dev/shm (memory) where there is one with 1 GiB free, else to the
temporary directory; ``--dir`` picks another (a disk). On a disk the three ways are not on equal terms:
``BatchBuilder.write`` syncs its file before renaming it into place (``run``'s resume relies
on the parts it writes being on disk), and on ext4 (data=ordered) that sync also flushes
every other dirty file, here the baselines' request files written just before; the
baselines never sync. In memory a sync costs nothing, so what is compared is the work.

The input: a pandas DataFrame of N rows (``id`` str, ``text``, ``model``: half OpenAI, half
Anthropic models, per row). The output file: N result lines in the contract's format
(``bench_results.iter_output_lines``: ~1 KB chat.completion bodies, shuffled, 0.1% error
lines), generated once, not timed.

Each way, timed (best of --repeat rounds, each round running the three ways one after
the other so they share the machine's load; wall clock):
  1. requests: one chat request per row (``"Summarise: {text}"``, the row's model,
     ``max_tokens=200``) written to a JSONL file;
  2. results: the output file read back and joined onto the DataFrame as columns
     ``text``, ``model``, ``prompt_tokens``, ``completion_tokens``, ``error_code``.
  - fastrouter_batch: ``BatchBuilder.from_dataframe(...)`` + ``write(validate=False)``
    (the baselines do not validate either), ``read_results(out).join(df, on="id")`` (the
    file's shuffled order: each row's result found by its id);
  - by hand: a loop over the rows building each request dict, ``json.dumps`` (or
    ``orjson.dumps``) per line; a loop over the output lines with ``json.loads`` (or
    ``orjson.loads``) into dicts per column, then ``df[col] = df["id"].map(d)``.
Checks the three request files parse to the same requests and the joined text columns agree.
Prints the times and the ratios (target: ≥ 3x against orjson, end to end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _timing import best_of  # noqa: E402
from bench_results import iter_output_lines  # noqa: E402

MODELS = ("openai/gpt-4.1-nano", "anthropic/claude-4.5-haiku")


def make_frame(rows: int):
    import pandas as pd

    return pd.DataFrame(
        {
            "id": [f"request-{i}" for i in range(rows)],
            "text": [
                f'Item {i}: a "quoted" note about product {i % 977}, with some détails.\n' * 3 for i in range(rows)
            ],
            "model": [MODELS[i % 2] for i in range(rows)],
        }
    )


def ours(df, requests_path: str, output_path: str):
    import fastrouter_batch as fb

    b = fb.BatchBuilder.from_dataframe(df, prompt="Summarise: {text}", model="{model}", custom_id="id", max_tokens=200)
    b.write(requests_path, validate=False)
    # The output file's (shuffled) order: join finds each row's result by its id.
    return fb.read_results(output_path).join(df, on="id")


def by_hand(df, requests_path: str, output_path: str, dumps, loads):
    with open(requests_path, "wb") as f:
        for cid, text, model in zip(df["id"].tolist(), df["text"].tolist(), df["model"].tolist(), strict=False):
            provider = model.split("/", 1)[0]
            f.write(
                dumps(
                    {
                        "custom_id": cid,
                        "provider": provider,
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "model": model,
                            "messages": [{"role": "user", "content": f"Summarise: {text}"}],
                            "max_tokens": 200,
                        },
                    }
                )
            )
            f.write(b"\n")
    texts, models, prompt, completion, errors = {}, {}, {}, {}, {}
    with open(output_path, "rb") as f:
        for line in f:
            d = loads(line)
            cid = d["custom_id"]
            resp = d.get("response") or {}
            body = resp.get("body") or {}
            err = d.get("error") or body.get("error")
            status = resp.get("status_code") or 0
            if 200 <= status < 300 and not d.get("error"):
                texts[cid] = body["choices"][0]["message"]["content"]
                models[cid] = body.get("model")
                usage = body.get("usage") or {}
                prompt[cid] = usage.get("prompt_tokens")
                completion[cid] = usage.get("completion_tokens")
            else:
                errors[cid] = (err or {}).get("code")
    out = df.copy()
    ids = out["id"]
    out["text_result"] = ids.map(texts)
    out["model_result"] = ids.map(models)
    out["prompt_tokens"] = ids.map(prompt).astype("Int64")
    out["completion_tokens"] = ids.map(completion).astype("Int64")
    out["error_code"] = ids.map(errors)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", default=None, help="where the files go (default: /dev/shm if present)")
    args = ap.parse_args(argv)
    try:
        import orjson
        import pandas  # noqa: F401

        import fastrouter_batch  # noqa: F401
    except ImportError as e:
        print(f"needs fastrouter_batch, pandas and orjson: {e}", file=sys.stderr)
        return 2
    df = make_frame(args.rows)
    shm = os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free >= 1 << 30
    where = args.dir or ("/dev/shm" if shm else None)
    with tempfile.TemporaryDirectory(dir=where) as d:
        output = os.path.join(d, "output.jsonl")
        with open(output, "w", encoding="utf-8") as f:
            for line in iter_output_lines(args.rows):
                f.write(line)
        paths = {k: os.path.join(d, f"requests-{k}.jsonl") for k in ("ours", "json", "orjson")}
        ways = {
            "ours": (ours, (df, paths["ours"], output)),
            "json": (by_hand, (df, paths["json"], output, lambda o: json.dumps(o).encode(), json.loads)),
            "orjson": (by_hand, (df, paths["orjson"], output, orjson.dumps, orjson.loads)),
        }
        # Rounds, each way once per round: on a shared machine all three see the same load.
        best = dict.fromkeys(ways, float("inf"))
        got = {}
        for _ in range(args.repeat):
            for name, (fn, fn_args) in ways.items():
                t, got[name] = best_of(1, fn, *fn_args)
                best[name] = min(best[name], t)
        t_ours, t_json, t_orjson = best["ours"], best["json"], best["orjson"]
        r_ours, r_json, r_orjson = got["ours"], got["json"], got["orjson"]
        with open(paths["ours"], "rb") as a, open(paths["orjson"], "rb") as b:
            same = all(orjson.loads(x) == orjson.loads(y) for x, y in zip(a, b, strict=True))
        texts_agree = (
            r_ours["text_result"].tolist() == r_orjson["text_result"].tolist() == r_json["text_result"].tolist()
        )
    n = args.rows
    folder = where or tempfile.gettempdir()
    print(f"{n:,} rows: DataFrame -> requests file -> results joined back (best of {args.repeat}; files in {folder})")
    print(f"  fastrouter_batch      {t_ours:7.3f} s  ({n / t_ours:,.0f} rows/s)")
    print(f"  by hand, json.dumps   {t_json:7.3f} s  ({t_json / t_ours:.1f}x slower than fastrouter_batch)")
    print(f"  by hand, orjson       {t_orjson:7.3f} s  ({t_orjson / t_ours:.1f}x slower than fastrouter_batch)")
    print(f"  same requests: {same}; same texts joined: {texts_agree}")
    print(f"  target >= 3x against orjson: {'met' if t_orjson / t_ours >= 3 else 'NOT met'}")
    return 0 if same and texts_agree else 1


if __name__ == "__main__":
    sys.exit(main())
