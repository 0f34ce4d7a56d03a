"""OpenAI's batch format to FastRouter's: OpenAI's lines have no ``provider`` and name bare
models (``gpt-4o-mini``); FastRouter's carry ``"provider": "openai"`` and name
``openai/gpt-4o-mini``. Used by ``fastrouter-batch convert`` and
``BatchBuilder.from_openai_file``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import IO, Any

from ._core import Limits
from ._io import bounded_lines


def convert_request(request: Any, provider: str) -> Any:
    """One request in FastRouter's format: ``provider`` added if absent, the model prefixed
    with it if it has no ``provider/``. Lines already in FastRouter's format pass unchanged;
    what is not a request object is left for validation to report."""
    if not isinstance(request, dict):
        return request
    out = dict(request)
    out.setdefault("provider", provider)
    body = out.get("body")
    if isinstance(body, dict):
        model = body.get("model")
        if isinstance(model, str) and model and "/" not in model:
            out["body"] = {**body, "model": f"{out['provider']}/{model}"}
    return out


def check_provider(provider: Any) -> str:
    if not isinstance(provider, str):
        raise TypeError(f"provider must be a str, got {type(provider).__name__}")
    if not provider or "/" in provider or provider.strip() != provider:
        raise ValueError(f"provider must be a provider name such as 'openai', got {provider!r}")
    return provider


#: How far ``convert`` reads: 8 MiB per line (a batch file's), 8 GiB in all (a file to
#: convert may be larger than one batch: ``run`` splits it). Past them it stops, naming
#: the line, whatever the source (a FIFO, ``/dev/zero``).
CONVERT_LIMITS = Limits(max_bytes=8 << 30)


def iter_converted(path: str | os.PathLike[str], provider: str, limits: Limits | None = None) -> Iterator[Any]:
    """The requests of the JSONL file at ``path`` in FastRouter's format (blank lines
    skipped); ValueError naming the file and line for a line that is not JSON, or past
    ``limits`` (``CONVERT_LIMITS`` by default: ``file_too_large``, ``line_too_large``)."""
    check_provider(provider)
    for where, raw in bounded_lines(path, limits if limits is not None else CONVERT_LIMITS):
        try:
            request = json.loads(raw)
        except ValueError as e:
            raise ValueError(f"{where}: not valid JSON ({e})") from None
        yield convert_request(request, provider)


def write_converted(path: str | os.PathLike[str], out: IO[str], provider: str) -> int:
    """Writes ``path``'s requests, converted, to ``out`` as JSON Lines; the number written."""
    n = 0
    for request in iter_converted(path, provider):
        out.write(json.dumps(request, ensure_ascii=False, separators=(",", ":")) + "\n")
        n += 1
    return n
