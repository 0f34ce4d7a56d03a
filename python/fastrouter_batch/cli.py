"""The ``fastrouter-batch`` command (also ``python -m fastrouter_batch``).

Exit codes scripts can rely on: 0 ok, 1 the work failed (invalid lines, failed batch),
2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence

from . import _core

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _validate(args: argparse.Namespace) -> int:
    limits = _core.Limits(max_requests=args.max_requests) if args.max_requests else None
    try:
        report = _core.validate(args.file, limits=limits)
    except OSError as e:
        print(f"fastrouter-batch validate: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary(), file=sys.stderr if not report.ok else sys.stdout)
    return EXIT_OK if report.ok else EXIT_FAILED


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
    keys = args.api_key or ([os.environ["FASTROUTER_LOCAL_API_KEY"]] if os.environ.get("FASTROUTER_LOCAL_API_KEY") else [])
    if keys:
        options["api_key"] = keys
    if args.completion_window:
        options["completion_window"] = args.completion_window
    if args.max_requests:
        options["limits"] = _core.Limits(max_requests=args.max_requests)
    try:
        server = _core.LocalServer(**options)  # type: ignore[arg-type]
        server.start()
    except (OSError, ValueError) as e:
        print(f"fastrouter-batch serve: {e}", file=sys.stderr)
        return EXIT_USAGE
    info = {"url": server.url, "data_dir": str(server.data_dir), "resumed": server.resumed}
    if not keys:
        # A key the engine made: the caller has no other way to learn it.
        info["api_key"] = server.api_key
    print(json.dumps(info), flush=True)
    print(f"fastrouter-batch engine serving on {server.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    # SIGTERM (docker, systemd, kill) stops as cleanly as Ctrl-C: results in flight are
    # recorded and a temporary data directory is removed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastrouter-batch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a batch file and report every problem")
    v.add_argument("file")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--max-requests", type=int, default=None)
    v.set_defaults(run=_validate)

    s = sub.add_parser("serve", help="run the local engine (a FastRouter-compatible Batch API)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    s.add_argument("--data-dir", default=None, help="state directory (default: a temporary one)")
    s.add_argument("--provider", choices=["simulated", "upstream"], default="simulated")
    s.add_argument("--api-key", action="append", help="accepted key (repeatable; default: $FASTROUTER_LOCAL_API_KEY or a new one)")
    s.add_argument("--latency", type=float, default=0.0, help="simulated seconds per request")
    s.add_argument("--fault-rate", type=float, default=0.0, help="simulated transient failure rate (0-1)")
    s.add_argument("--concurrency", type=int, default=64, help="requests in flight per provider")
    s.add_argument("--max-retries", type=int, default=5)
    s.add_argument("--completion-window", type=float, default=None, help="seconds before a batch expires (default 24h)")
    s.add_argument("--max-requests", type=int, default=None, help="requests allowed per batch (default 50000)")
    s.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
