"""Upload and download speed and memory of the HTTP client, against curl and openai-python.

    python bench/bench_transfer.py [--lines 240000] [--repeat 3] [--keep bench/out]

Generates a ~200 MB batch file (bench/gen_batch.py), starts a LocalServer in this process
(limits raised to 250 MB / 1,000,000 requests) and, in the same run:

1. Wall time, best of `--repeat`: `Client.files.create(path)` vs `curl -F file=@path`, and
   `Client.files.download(id, path)` vs `curl -o path`. Prints our/curl ratios
   (target <= 1.25x).
2. Peak RSS growth, each in its own fresh subprocess (the server stays in this one):
   our `files.create(path)` and `files.download(id, path)`, then openai-python's
   `files.create(file=open(path, "rb"))` and `files.content(id).write_to_file(path)`.
   Growth = VmHWM after the transfer minus VmRSS just before it (the peak is reset first
   through /proc/self/clear_refs when the kernel allows; otherwise VmHWM before/after).
   Target <= 32 MB each direction for ours; openai-python's figures are for comparison.

Checks that every upload has the file's size and every download its exact bytes (size and
SHA-256). Exits 1 if a check fails, 2 if fastrouter_batch or curl is missing. Linux only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_batch import generate  # noqa: E402

try:
    import fastrouter_batch as fb
except ImportError:  # pragma: no cover
    print("fastrouter_batch is not installed (maturin develop --release)", file=sys.stderr)
    sys.exit(2)

KEY = "sk-bench-transfer"
WALL_TARGET = 1.25
RSS_TARGET_MB = 32.0

# Runs in a fresh interpreter: warm up (imports, client, one small request), reset the
# peak, do one transfer, report the peak growth.
CHILD = r"""
import json, os, sys, time
mode, url, key, path, file_id, out = sys.argv[1:7]

def status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
    return fields

if mode.startswith("ours"):
    import fastrouter_batch as fb
    client = fb.Client(key, url, timeout=600, max_retries=0)
    client.files.list().first_page()                    # runtime, pool, one request
    if mode == "ours-upload":
        run = lambda: client.files.create(path).bytes
    else:
        run = lambda: client.files.download(file_id, out).stat().st_size
else:
    import openai
    client = openai.OpenAI(api_key=key, base_url=url + "/v1", timeout=600, max_retries=0)
    client.files.list()                                 # imports, pool, one request
    if mode == "openai-upload":
        def run():
            with open(path, "rb") as f:
                return client.files.create(file=f, purpose="batch").bytes
    else:
        def run():
            client.files.content(file_id).write_to_file(out)
            return os.path.getsize(out)

reset = False
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                    # resets VmHWM to VmRSS
    reset = True
except OSError:
    pass
before = status()
base = before["VmRSS"] if reset else before["VmHWM"]
t = time.perf_counter()
size = run()
wall = time.perf_counter() - t
after = status()
print(json.dumps({"growth": after["VmHWM"] - base, "size": size, "wall": wall, "reset": reset,
                  "rss_before": before["VmRSS"], "hwm_after": after["VmHWM"]}))
"""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def best_of(n: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def curl_upload(url: str, path: Path) -> dict:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-S",
            "--fail-with-body",
            "-F",
            "purpose=batch",
            "-F",
            f"file=@{path}",
            "-H",
            f"Authorization: Bearer {KEY}",
            f"{url}/v1/files",
        ],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


def curl_download(url: str, file_id: str, dest: Path) -> int:
    subprocess.run(
        [
            "curl",
            "-s",
            "-S",
            "--fail",
            "-o",
            str(dest),
            f"{url}/v1/files/{file_id}/content",
            "-H",
            f"Authorization: Bearer {KEY}",
        ],
        check=True,
        timeout=600,
    )
    return dest.stat().st_size


def child(mode: str, url: str, path: Path, file_id: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, url, KEY, str(path), file_id, str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=240_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", default=None, help="directory for the generated file (reused if present)")
    args = ap.parse_args(argv)
    if shutil.which("curl") is None:
        print("curl is not on PATH", file=sys.stderr)
        return 2

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"transfer-{args.lines}.jsonl"
    if not src.exists():
        t = time.perf_counter()
        generate(src, args.lines)
        print(f"generated {args.lines:,} lines in {time.perf_counter() - t:.1f}s")
    size = src.stat().st_size
    digest = sha256(src)
    mb = size / 1e6
    print(f"file: {src} ({size / 1e6:.1f} MB, {args.lines:,} lines)")
    print(
        f"python {sys.version.split()[0]}, fastrouter_batch {fb.__version__}, "
        f"{os.cpu_count()} CPUs, best of {args.repeat}"
    )

    failures: list[str] = []
    limits = fb.Limits(max_bytes=250_000_000, max_requests=1_000_000)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-transfer-engine-"))
    try:
        with fb.LocalServer(api_key=KEY, limits=limits, data_dir=data_dir) as server:
            url = server.url
            client = fb.Client(KEY, url, timeout=600, max_retries=0)
            client.files.list().first_page()  # warm up

            # --- upload: ours vs curl -----------------------------------------------------------
            uploaded: list[str] = []

            def ours_up():
                f = client.files.create(src)
                uploaded.append(f.id)
                return f.bytes

            def curl_up():
                body = curl_upload(url, src)
                uploaded.append(body["id"])
                return body["bytes"]

            # interleave so neither side gets a warmer page cache or disk
            up_ours, up_curl = float("inf"), float("inf")
            for _ in range(args.repeat):
                t, n = best_of(1, ours_up)
                up_ours = min(up_ours, t)
                if n != size:
                    failures.append(f"our upload stored {n} bytes, expected {size}")
                t, n = best_of(1, curl_up)
                up_curl = min(up_curl, t)
                if n != size:
                    failures.append(f"curl upload stored {n} bytes, expected {size}")
            file_id = uploaded[0]
            for extra in uploaded[1:]:
                client.files.delete(extra)  # keep the engine's disk use down

            # --- download: ours vs curl ---------------------------------------------------------
            ours_dest, curl_dest = work / "down-ours.jsonl", work / "down-curl.jsonl"
            down_ours, down_curl = float("inf"), float("inf")
            for _ in range(args.repeat):
                t, _ = best_of(1, lambda: client.files.download(file_id, ours_dest))
                down_ours = min(down_ours, t)
                t, _ = best_of(1, lambda: curl_download(url, file_id, curl_dest))
                down_curl = min(down_curl, t)
            for name, dest in (("our", ours_dest), ("curl", curl_dest)):
                if dest.stat().st_size != size or sha256(dest) != digest:
                    failures.append(f"{name} download differs from the uploaded file")
            curl_dest.unlink()

            print()
            print(f"{f'wall time (best of {args.repeat})':<26}{'ours':>9}{'curl':>9}{'ratio':>8}   target")
            for label, ours, curl in (
                ("upload files.create", up_ours, up_curl),
                ("download files.download", down_ours, down_curl),
            ):
                ratio = ours / curl
                ok = "ok" if ratio <= WALL_TARGET else "MISSED"
                print(
                    f"{label:<26}{ours:>8.2f}s{curl:>8.2f}s{ratio:>7.2f}x   <= {WALL_TARGET}x {ok}"
                    f"   ({mb / ours:.0f} vs {mb / curl:.0f} MB/s)"
                )

            # --- peak RSS growth, each in a fresh subprocess -------------------------------------
            rss: dict[str, dict] = {}
            for mode in ("ours-upload", "ours-download", "openai-upload", "openai-download"):
                out = work / f"rss-{mode}.jsonl"
                r = child(mode, url, src, file_id, out)
                rss[mode] = r
                if r["size"] != size:
                    failures.append(f"{mode}: {r['size']} bytes, expected {size}")
                if mode.endswith("download"):
                    if sha256(out) != digest:
                        failures.append(f"{mode}: downloaded bytes differ")
                    out.unlink()
                else:
                    # the subprocess uploaded a copy: remove it from the engine
                    for f in client.files.list():
                        if f.id != file_id and f.purpose == "batch":
                            client.files.delete(f.id)
            print()
            print(f"{'peak RSS growth':<26}{'ours':>10}{'openai':>10}   target (ours)")
            for direction in ("upload", "download"):
                ours = rss[f"ours-{direction}"]["growth"] / 2**20
                theirs = rss[f"openai-{direction}"]["growth"] / 2**20
                ok = "ok" if ours <= RSS_TARGET_MB else "MISSED"
                print(f"{direction:<26}{ours:>8.1f}MB{theirs:>8.1f}MB   <= {RSS_TARGET_MB:.0f} MB {ok}")
            print(f"{'(wall in subprocess)':<26}" + "".join(f"  {m}: {rss[m]['wall']:.2f}s" for m in rss))
            if not all(r["reset"] for r in rss.values()):
                print("note: /proc/self/clear_refs not writable; growth is VmHWM after - VmHWM before")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            (work / "down-ours.jsonl").unlink(missing_ok=True)

    if failures:
        print("\nFAILED checks:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
