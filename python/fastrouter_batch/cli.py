"""The ``fastrouter-batch`` command (also ``python -m fastrouter_batch``).

Exit codes scripts can rely on (the README's table, checked against this code by
tests/test_cli_terms.py): 0 ok; 1 the work failed (a batch failed, expired or was
cancelled, some lines failed, the server failed or was not reached); 2 usage or validation
error (bad arguments, an invalid or missing file, a request the server refused as wrong:
any 4xx but 429); 130 interrupted. Progress goes to stderr; ``--json`` prints
machine-readable results on stdout. A reader that stops early
(``fastrouter-batch results ID | head``) ends the command quietly, exit 1.

The API options (``--api-key``, ``--base-url``, ``--max-retries``, ``--no-progress``) go
before the command or after it, as git's do. No message ever shows a key: usage errors are
redacted (``_redact``), and base URLs are shown without their userinfo.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from . import _core
from ._manifest import Manifest
from ._plan import SamplingTable
from ._run import STOP_HINT
from .client import Client

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: How many problems (validation issues, a batch's errors) the human output lists.
MAX_LISTED = 20


class UsageError(Exception):
    """A mistake in how the command was called: its message is printed, exit 2."""


#: The keys this invocation knows of (``--api-key`` values, the key variables), which no
#: message may show. Set by ``main`` before parsing.
_SECRETS: list[str] = []
#: Anything shaped like a FastRouter or OpenAI key, and the userinfo of a URL.
_KEY_SHAPE = re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{3,}")
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/?#@\s]*@")

#: Values shorter than this are not redacted as keys (FastRouter's keys are far longer).
MIN_SECRET_CHARS = 8

API_OPTIONS = ("--api-key", "--base-url", "--max-retries", "--no-progress")
#: The API options' values when given neither before nor after the command.
_API_DEFAULTS: dict[str, Any] = {
    "api_key_client": None,
    "base_url": None,
    "max_retries_client": 2,
    "no_progress": False,
}


def _secrets_in(argv: Sequence[str]) -> list[str]:
    """The values of ``--api-key`` in ``argv`` (``--api-key K`` and ``--api-key=K``, or an
    abbreviation such as ``--api K``) and of the key variables."""
    found = [os.environ.get(v, "") for v in ("FASTROUTER_API_KEY", "FASTROUTER_LOCAL_API_KEY")]
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if len(name) > 4 and "--api-key".startswith(name):
            found.append(value if eq else (argv[i + 1] if i + 1 < len(argv) else ""))
    # Too short a value would blot out ordinary words ("k" from "keeps"); a real key is long.
    return sorted({k.strip() for k in found if len(k.strip()) >= MIN_SECRET_CHARS}, key=len, reverse=True)


def _redact(text: str) -> str:
    """``text`` without any key this invocation knows of, nothing shaped like a key, and
    no URL userinfo."""
    for key in _SECRETS:
        text = text.replace(key, "***")
    text = _KEY_SHAPE.sub("sk-***", text)
    return _USERINFO.sub(r"\1***@", text)


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors (``invalid choice: 'X'``, ``unrecognized arguments``)
    quote what was typed: redacted, so a key typed in the wrong place is never shown."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_redact(message)}\n")


def _say(command: str, message: object) -> None:
    """A message on stderr, prefixed with the command, never showing a key."""
    print(_redact(f"fastrouter-batch {command}: {message}"), file=sys.stderr)


def _os_error_text(e: OSError) -> str:
    """A file error in one wording everywhere: ``No such file or directory: 'x.jsonl'``."""
    if e.strerror and e.filename is not None:
        return f"{e.strerror}: {os.fspath(e.filename)!r}"
    return str(e)


def _open_output(path: str) -> IO[str]:
    """An output file, its directory made first (``-o results/out.jsonl``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", encoding="utf-8", newline="")


def _problem(line: int | None, param: str | None, message: str | None, code: str | None) -> str:
    """One problem as ``line 2, custom_id: must be a string, not a number [invalid_type]``."""
    where = ", ".join(x for x in (f"line {line}" if line is not None else None, param) if x)
    text = f"{where}: {message or ''}".rstrip() if where else (message or "")
    return f"{text} [{code}]" if code else text


def _listing(problems: Sequence[str], total: int, limit: int = MAX_LISTED) -> str:
    """The first ``limit`` problems, indented, then ``... and N more``."""
    lines = [f"  {p}" for p in problems[:limit]]
    if total > len(lines):
        lines.append(f"  ... and {total - len(lines)} more")
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _report_text(report: Any, name: str, note: str = "") -> str:
    """An invalid file's report: a header, then every problem (line, field, message, code)."""
    issues = report.issues
    where = "" if report.truncated else f" in {_plural(len({i.line for i in issues}), 'line')}"
    head = f"{name}: {_plural(report.total_issues, 'problem')}{where}{note}:"
    body = _listing([_problem(i.line, i.path, i.message, i.code) for i in issues], report.total_issues)
    return f"{head}\n{body}" if body else head


def _check_file(path: str, sampling: list[str] | None = None) -> Any:
    """Validates ``path`` as one batch (``sampling``: ``--anthropic-sampling``): raises
    BatchValidationError if it is invalid and UsageError if it holds no requests (the
    server would fail such a batch)."""
    report = _core.validate(path, anthropic_sampling=_sampling_table(sampling))
    report.raise_for_errors()
    if report.num_requests == 0:
        raise UsageError(f"{path} has no requests")
    return report


SAMPLING_HELP = (
    "an Anthropic model (glob) and the sampling parameters it takes: both, either (temperature or "
    "top_p) or none; repeatable, tried before the built-in table (docs/anthropic-translation.md)"
)


def _sampling_table(values: list[str] | None) -> SamplingTable | None:
    """``--anthropic-sampling PATTERN=SUPPORT`` (repeatable) as ``anthropic_sampling``."""
    if not values:
        return None
    table: dict[str, Any] = {}
    for v in values:
        pattern, sep, support = v.partition("=")
        if not sep or not pattern or support not in ("both", "either", "none"):
            raise ValueError(f"--anthropic-sampling takes PATTERN=both|either|none, not {v!r}")
        table[pattern] = support
    return table


def _validate(args: argparse.Namespace) -> int:
    limits = _core.Limits(max_requests=args.max_requests) if args.max_requests else None
    try:
        report = _core.validate(args.file, limits=limits, anthropic_sampling=_sampling_table(args.anthropic_sampling))
    except OSError as e:
        _say("validate", _os_error_text(e))
        return EXIT_USAGE
    except ValueError as e:
        _say("validate", e)
        return EXIT_USAGE
    empty = report.ok and report.num_requests == 0
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.ok and not empty:
        print(report.summary())
    elif not report.ok:
        print(_report_text(report, args.file), file=sys.stderr)
    if empty:
        print(f"fastrouter-batch validate: {args.file} has no requests", file=sys.stderr)
    return EXIT_OK if report.ok and not empty else EXIT_USAGE


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


#: Where `serve` finds the key it accepts when no --api-key is given, in order: a key for the
#: local engine alone, else the one the client commands use (so `serve`, then `list` in
#: another shell with the same environment, just works). Neither: it makes one up and prints it.
SERVE_KEY_VARIABLES = ("FASTROUTER_LOCAL_API_KEY", "FASTROUTER_API_KEY")


def _serve_keys(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """The keys `serve` accepts, and the environment variable they came from (if one)."""
    if args.api_key:
        return list(args.api_key), None
    for name in SERVE_KEY_VARIABLES:
        if os.environ.get(name):
            return [os.environ[name]], name
    return [], None


def _serve(args: argparse.Namespace) -> int:
    options: dict[str, object] = {
        "provider": args.provider,
        "host": args.host,
        "port": args.port,
        "latency": args.latency,
        "fault_rate": args.fault_rate,
        "concurrency": args.concurrency,
        "max_retries": args.max_retries,
    }
    if args.data_dir:
        options["data_dir"] = args.data_dir
    keys, key_from = _serve_keys(args)
    if keys:
        options["api_key"] = keys
    if args.completion_window:
        options["completion_window"] = args.completion_window
    if args.max_requests:
        options["limits"] = _core.Limits(max_requests=args.max_requests)
    if args.metrics_public:
        options["metrics_public"] = True
    if args.provider == "upstream":
        options["upstream_mode"] = args.upstream_mode
        options["poll_interval"] = args.poll_interval
        if args.native_chunk_size:
            options["native_chunk_size"] = args.native_chunk_size
        if args.keep_input_files:
            options["delete_input_files"] = False
    try:
        options["anthropic_sampling"] = _sampling_table(args.anthropic_sampling)
        server = _core.LocalServer(**options)  # type: ignore[arg-type]
        server.start()
    except OSError as e:
        _say("serve", _os_error_text(e))
        return EXIT_USAGE
    except ValueError as e:
        _say("serve", e)
        return EXIT_USAGE
    # SIGTERM (docker, systemd, kill) stops as cleanly as Ctrl-C: results in flight are
    # recorded and a temporary data directory is removed. Set before the line that tells
    # the caller the server is up: a SIGTERM right after it must find the handler, and
    # the stop below.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        info = {
            "url": server.url,
            "dashboard": server.dashboard_url,
            "data_dir": str(server.data_dir),
            "resumed": server.resumed,
        }
        if not keys:
            # A key the engine made: the caller has no other way to learn it.
            info["api_key"] = server.api_key
        if key_from:  # before the JSON line: whoever reads that finds this said already
            print(f"fastrouter-batch: accepting the key in ${key_from}", file=sys.stderr, flush=True)
        print(json.dumps(info), flush=True)
        print(
            f"fastrouter-batch engine serving on {server.url} (Ctrl-C to stop); dashboard: {server.dashboard_url}",
            file=sys.stderr,
            flush=True,
        )
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


def _client(args: argparse.Namespace) -> Client:
    key = args.api_key_client if args.api_key_client is not None else os.environ.get("FASTROUTER_API_KEY")
    if not key:
        raise UsageError("no API key: pass --api-key KEY or set the FASTROUTER_API_KEY environment variable")
    return Client(api_key=key, base_url=args.base_url, max_retries=args.max_retries_client)


def _emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    if args.json:
        print(json.dumps(obj.to_dict() if hasattr(obj, "to_dict") else obj, indent=2))
    else:
        print(text)


def _batch_errors(b: Any) -> str:
    """A batch's own errors (why it failed: line, field, code, message), listed; "" if none."""
    data = list(b.errors or [])
    return _listing([_problem(e.line, e.param, e.message, e.code) for e in data], len(data))


def _emit_batch(args: argparse.Namespace, b: Any, errors_to: Any) -> None:
    """The batch as JSON, or its one-line summary followed by its errors (to ``errors_to``)."""
    _emit(args, b, _batch_line(b))
    if not args.json:
        errors = _batch_errors(b)
        if errors:
            print(errors, file=errors_to)


def _batch_line(b: Any) -> str:
    c = b.request_counts
    counts = f"{c.completed}/{c.total} completed, {c.failed} failed" if c else "no counts yet"
    return f"{b.id}  {b.status:<11} {counts}  output={b.output_file_id or '-'} errors={b.error_file_id or '-'}"


def _created(b: Any) -> str:
    """When the batch was created, in UTC (``-`` if the server did not say)."""
    at = b.created_at
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        return "-".ljust(23)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + " UTC"


def _wait_hint(batch_id: str) -> str:
    return f"wait for it with `fastrouter-batch wait {batch_id}`"


def _batch_exit(b: Any) -> int:
    failed = b.request_counts.failed if b.request_counts else 0
    return EXIT_OK if b.status == "completed" and not failed else EXIT_FAILED


def _metadata(pairs: Sequence[str] | None) -> dict[str, str]:
    metadata = {}
    for kv in pairs or []:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise UsageError(f"--metadata expects KEY=VALUE, got {_redact(repr(kv))}")
        metadata[key] = value
    return metadata


def _submit(args: argparse.Namespace) -> int:
    metadata = _metadata(args.metadata)
    client = _client(args)
    # Checked here, as `run` does: an invalid or empty file is reported and nothing is uploaded.
    try:
        report = _check_file(args.file, args.anthropic_sampling)
    except _core.BatchValidationError as e:
        note = ", nothing uploaded"
        if {"too_many_requests", "file_too_large"} & set(e.report.issue_counts):
            note += " (`fastrouter-batch run` splits a file over the limits into several batches)"
        _say("submit", _report_text(e.report, args.file, note))
        return EXIT_USAGE
    url = report.url or "/v1/chat/completions"
    if args.endpoint is not None and args.endpoint != url:
        raise UsageError(f"--endpoint {args.endpoint} does not match the requests' url {url}")
    f = client.files.create(args.file)
    b = client.batches.create(input_file_id=f.id, endpoint=url, metadata=metadata or None)
    print(f"submitted {b.id} (file {f.id}, {f.num_rows} requests)", file=sys.stderr)
    if args.wait:
        b = client.batches.wait(b.id, progress=not args.no_progress)
        _emit_batch(args, b, sys.stderr)
        return _batch_exit(b)
    _emit(args, b, b.id)
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    b = _client(args).batches.retrieve(args.batch_id)
    _emit_batch(args, b, sys.stdout)
    return EXIT_OK


def _wait(args: argparse.Namespace) -> int:
    b = _client(args).batches.wait(args.batch_id, timeout=args.timeout, progress=not args.no_progress)
    _emit_batch(args, b, sys.stderr)
    return _batch_exit(b)


def _cancel(args: argparse.Namespace) -> int:
    b = _client(args).batches.cancel(args.batch_id)
    _emit(args, b, _batch_line(b))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    batches = _client(args).batches.list(limit=args.limit).data
    if args.json:
        print(json.dumps([b.to_dict() for b in batches], indent=2))
    else:
        for b in batches:
            print(f"{_created(b)}  {_batch_line(b)}")
    return EXIT_OK


def _download(args: argparse.Namespace) -> int:
    client = _client(args)
    b = client.batches.retrieve(args.batch_id)
    if not b.is_terminal:
        _say("download", f"batch {b.id} is {b.status}: nothing to download yet; {_wait_hint(b.id)}")
        return EXIT_FAILED
    out = args.output or f"{b.id}.output.jsonl"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    written = []
    if b.output_file_id:
        written.append(str(client.files.download(b.output_file_id, out)))
    if b.error_file_id:
        written.append(str(client.files.download(b.error_file_id, _errors_path(out))))
    _emit(args, {"batch": b.id, "files": written}, "\n".join(written) or "no files")
    return _batch_exit(b)


def _errors_path(out: str) -> str:
    return (out[: -len(".jsonl")] if out.endswith(".jsonl") else out) + ".errors.jsonl"


def _write_results(results: Any, fmt: str, output: str | None) -> None:
    stream = _open_output(output) if output else sys.stdout
    try:
        if fmt == "csv":
            import csv

            w = csv.writer(stream)
            w.writerow(["custom_id", "ok", "status_code", "text", "error_code", "error_message"])
            for r in results:
                err = r.error or {}
                w.writerow([r.custom_id, r.ok, r.status_code, r.text, err.get("code"), err.get("message")])
        else:
            for r in results:
                err = r.error or {}
                stream.write(
                    json.dumps(
                        {
                            "custom_id": r.custom_id,
                            "ok": r.ok,
                            "status_code": r.status_code,
                            "text": r.text,
                            "error": err or None,
                        }
                    )
                    + "\n"
                )
    finally:
        if output:
            stream.close()


def _results(args: argparse.Namespace) -> int:
    if args.json and args.format == "csv":
        raise UsageError("--json prints JSON Lines (the same as --format jsonl): it cannot go with --format csv")
    client = _client(args)
    b = client.batches.retrieve(args.batch_id)
    if not b.is_terminal and not (b.output_file_id or b.error_file_id):
        _say("results", f"batch {b.id} is {b.status}: no results yet; {_wait_hint(b.id)}")
        return EXIT_FAILED
    results = client.batches.results(b)
    _write_results(results, args.format, args.output)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    if not args.resume and not args.file:
        raise UsageError("give FILE or --resume MANIFEST")
    if args.json and not args.output:
        raise UsageError("--json prints a summary on stdout: give -o OUT for the results")
    client = _client(args)
    STOP_HINT.set(lambda _manifest: _run_stop_hint(args))
    with tempfile.TemporaryDirectory(prefix="fastrouter-batch-cli-") as scratch:
        # The summary names the batches: they are in the manifest (a scratch one if none was asked for).
        manifest: str = args.resume or args.manifest or os.path.join(scratch, "run.json")
        if args.resume:
            results = client.resume(args.resume, progress=not args.no_progress)
        else:
            results = client.run(
                args.file,
                manifest=manifest if args.manifest or args.json else None,
                progress=not args.no_progress,
                anthropic_sampling=_sampling_table(args.anthropic_sampling),
            )
        _write_results(results, args.format, args.output)
        ok, total = sum(1 for r in results if r.ok), len(results)
        if args.json:
            summary = {
                "batches": [p.batch_id for p in Manifest.load(manifest).parts if p.batch_id],
                **results.summary(),
                "output": str(args.output),
                "format": args.format,
                "manifest": args.resume or args.manifest,
            }
            print(json.dumps(summary, indent=2))
        else:
            print(f"{ok}/{total} requests succeeded", file=sys.stderr)
        del results  # its files may live in the scratch directory
    return EXIT_OK if ok == total else EXIT_FAILED


def _run_stop_hint(args: argparse.Namespace) -> str:
    """What a stopped ``run`` says to do next, in the command's terms."""
    manifest = args.resume or args.manifest
    if manifest:
        return f"`fastrouter-batch run --resume {manifest}` waits for them again (nothing is submitted twice)"
    return (
        "follow each with `fastrouter-batch wait ID`, then `fastrouter-batch results ID`; "
        "pass --manifest PATH to make a run resumable with `fastrouter-batch run --resume PATH`"
    )


def _convert(args: argparse.Namespace) -> int:
    from ._convert import check_provider, write_converted

    check_provider(args.provider)
    open(args.file, "rb").close()  # a missing FILE is said before anything is made
    if args.output:
        tmp = Path(args.output).with_name(f".{Path(args.output).name}.tmp-{os.getpid()}")
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as out:
                n = write_converted(args.file, out, args.provider)
            os.replace(tmp, args.output)
        finally:
            tmp.unlink(missing_ok=True)
        print(
            f"{_plural(n, 'request')} written to {args.output} (check it: fastrouter-batch validate {args.output})",
            file=sys.stderr,
        )
    else:
        write_converted(args.file, sys.stdout, args.provider)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fastrouter-batch",
        description="Build, validate and run LLM batch jobs through FastRouter's Batch API, or serve "
        "that API locally. The API options may also go before the command "
        "(fastrouter-batch --api-key KEY status ID).",
        epilog="Exit codes: 0 ok; 1 the work failed (a batch or some requests failed, the server failed or "
        "was not reached); 2 usage or validation error, or a request the server refused; 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"fastrouter-batch {_core.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def api_options(p: argparse.ArgumentParser) -> None:
        # SUPPRESS: an option not given after the command keeps the value given before it.
        p.add_argument(
            "--api-key", dest="api_key_client", default=argparse.SUPPRESS, help="default: $FASTROUTER_API_KEY"
        )
        p.add_argument("--base-url", default=argparse.SUPPRESS, help="default: $FASTROUTER_BASE_URL or the hosted API")
        p.add_argument(
            "--max-retries", dest="max_retries_client", type=int, default=argparse.SUPPRESS, help="default: 2"
        )
        p.add_argument(
            "--no-progress", action="store_true", default=argparse.SUPPRESS, help="no progress bar on stderr"
        )

    api_options(parser)
    api = _Parser(add_help=False)
    api_options(api)

    def json_flag(p: argparse.ArgumentParser, text: str = "print the batch as JSON on stdout") -> None:
        p.add_argument("--json", action="store_true", help=text)

    p = sub.add_parser(
        "submit",
        parents=[api],
        help="validate a batch file, upload it and start a batch",
        description="Validates FILE locally (an invalid or empty file is reported and nothing "
        "is uploaded, exit 2), uploads it and starts a batch. Prints the batch id, or with "
        "--wait the finished batch (and why it failed, if it did).",
    )
    p.add_argument("file")
    p.add_argument("--endpoint", default=None, help="default: the url of the file's requests")
    p.add_argument("--metadata", action="append", metavar="KEY=VALUE", help="repeatable")
    p.add_argument("--wait", action="store_true", help="wait for the batch to finish")
    p.add_argument("--anthropic-sampling", action="append", metavar="PATTERN=SUPPORT", help=SAMPLING_HELP)
    json_flag(p)
    p.set_defaults(run=_submit)
    p = sub.add_parser("status", parents=[api], help="show a batch (and why it failed, if it did)")
    p.add_argument("batch_id")
    json_flag(p)
    p.set_defaults(run=_status)
    p = sub.add_parser("wait", parents=[api], help="wait for a batch to finish, with progress")
    p.add_argument("batch_id")
    p.add_argument("--timeout", type=float, default=None)
    json_flag(p)
    p.set_defaults(run=_wait)
    p = sub.add_parser("download", parents=[api], help="download a batch's output (and error) file")
    p.add_argument("batch_id")
    p.add_argument("-o", "--output", default=None, help="default: BATCH_ID.output.jsonl")
    json_flag(p, 'print {"batch": ID, "files": [...]} as JSON on stdout')
    p.set_defaults(run=_download)
    p = sub.add_parser(
        "results",
        parents=[api],
        help="a batch's results, one per request",
        description="Prints a finished batch's results, one per request: JSON Lines "
        "(one object per line: custom_id, ok, status_code, text, error) or CSV. "
        "Exit 1 if any request failed.",
    )
    p.add_argument("batch_id")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("-o", "--output", default=None, help="results file (default: stdout)")
    json_flag(p, "the same as --format jsonl: one JSON object per result, one per line")
    p.set_defaults(run=_results)
    p = sub.add_parser("cancel", parents=[api], help="cancel a batch (partial results are kept)")
    p.add_argument("batch_id")
    json_flag(p)
    p.set_defaults(run=_cancel)
    p = sub.add_parser("list", parents=[api], help="list recent batches")
    p.add_argument("--limit", type=int, default=20)
    json_flag(p, "print the batches as a JSON array on stdout")
    p.set_defaults(run=_list)
    p = sub.add_parser(
        "run",
        parents=[api],
        help="validate, split, submit, wait and collect results",
        description="Validates FILE, splits it over the limits, submits, waits and writes "
        "every request's result (JSON Lines or CSV) to -o OUT or stdout; a summary goes to "
        "stderr. With --json the summary is a JSON object on stdout (needs -o).",
    )
    p.add_argument("file", nargs="?")
    p.add_argument("-o", "--output", default=None, help="results file (default: stdout)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--manifest", default=None, help="record progress here (resume with --resume)")
    p.add_argument("--resume", default=None, metavar="MANIFEST", help="continue a run from its manifest")
    p.add_argument("--anthropic-sampling", action="append", metavar="PATTERN=SUPPORT", help=SAMPLING_HELP)
    json_flag(p, "print a JSON summary on stdout (batches, total, succeeded, failed, ..., output); needs -o")
    p.set_defaults(run=_run)

    v = sub.add_parser("validate", help="check a batch file and report every problem")
    v.add_argument("file")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--max-requests", type=int, default=None)
    v.add_argument("--anthropic-sampling", action="append", metavar="PATTERN=SUPPORT", help=SAMPLING_HELP)
    v.set_defaults(run=_validate)

    s = sub.add_parser("serve", help="run the local engine (a FastRouter-compatible Batch API)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    s.add_argument("--data-dir", default=None, help="state directory (default: a temporary one)")
    s.add_argument("--provider", choices=["simulated", "upstream"], default="simulated")
    s.add_argument(
        "--api-key",
        action="append",
        help="accepted key (repeatable; default: $FASTROUTER_LOCAL_API_KEY, else $FASTROUTER_API_KEY, else a new one)",
    )
    s.add_argument(
        "--upstream-mode",
        choices=["native", "realtime"],
        default="native",
        help="upstream: the providers' batch APIs (half price, default) or one realtime call per line",
    )
    s.add_argument(
        "--poll-interval", type=float, default=60.0, help="native: longest wait between polls, seconds (default 60)"
    )
    s.add_argument(
        "--native-chunk-size", type=int, default=None, help="native: at most this many requests per upstream batch"
    )
    s.add_argument(
        "--keep-input-files",
        action="store_true",
        help="native: keep uploaded OpenAI input files after their batch ends",
    )
    s.add_argument("--latency", type=float, default=0.0, help="simulated seconds per request")
    s.add_argument("--fault-rate", type=float, default=0.0, help="simulated transient failure rate (0-1)")
    s.add_argument("--concurrency", type=int, default=64, help="requests in flight per provider")
    s.add_argument("--max-retries", type=int, default=5)
    s.add_argument("--completion-window", type=float, default=None, help="seconds before a batch expires (default 24h)")
    s.add_argument("--max-requests", type=int, default=None, help="requests allowed per batch (default 50000)")
    s.add_argument("--anthropic-sampling", action="append", metavar="PATTERN=SUPPORT", help=SAMPLING_HELP)
    s.add_argument("--metrics-public", action="store_true", help="serve /metrics without a key (default: needs one)")
    s.set_defaults(run=_serve)

    c = sub.add_parser(
        "convert",
        help="turn a batch file in OpenAI's format into FastRouter's",
        description='Adds "provider" to every line of FILE and prefixes its model with it '
        "(gpt-4o-mini becomes openai/gpt-4o-mini); lines already in FastRouter's format are kept.",
    )
    c.add_argument("file")
    c.add_argument("--provider", default="openai", help="the lines' provider (default: openai)")
    c.add_argument("-o", "--output", default=None, help="converted file (default: stdout)")
    c.set_defaults(run=_convert)
    return parser


#: The commands that talk to the API (and so take the API options).
API_COMMANDS = ("submit", "status", "wait", "download", "results", "cancel", "list", "run")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = [k for k in _API_DEFAULTS if hasattr(args, k)]
    if args.command not in API_COMMANDS and given:
        names = dict(zip(_API_DEFAULTS, API_OPTIONS, strict=True))
        parser.error(
            f"{', '.join(names[k] for k in given)} before the command go with the API commands "
            f"({', '.join(API_COMMANDS)}), not {args.command}"
        )
    for key, default in _API_DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, default)
    return args


def _stdout_closed() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as the Python docs
    recommend (https://docs.python.org/3/library/signal.html#note-on-sigpipe): point stdout
    at devnull so the final flush cannot fail again, and exit 1 (the output is incomplete)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    _SECRETS[:] = _secrets_in(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except UsageError as e:
        _say(args.command, e)
        return EXIT_USAGE
    except _core.BatchValidationError as e:
        report, name = getattr(e, "report", None), getattr(args, "file", None)
        text = _report_text(report, name, ", nothing uploaded") if report is not None and name else str(e)
        _say(args.command, text)
        return EXIT_USAGE
    except _core.APIStatusError as e:
        param = getattr(e, "param", None)
        extra = f" (field: {param})" if param and param not in str(e) else ""
        _say(args.command, f"{e}{extra}")
        return EXIT_USAGE if e.status_code < 500 and e.status_code != 429 else EXIT_FAILED
    except _core.FastRouterError as e:
        _say(args.command, e)
        return EXIT_FAILED
    except OSError as e:
        _say(args.command, _os_error_text(e))
        return EXIT_USAGE
    except ValueError as e:
        _say(args.command, e)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say(args.command, "interrupted (batches keep running)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
