"""``client.run`` over a DataFrame (``prompt=``, ``model=``, ``response_format=``...) and with
the result cache (``cache=``): the requests are built, looked up in the cache, only the
misses run as batches (a request found twice or more among them runs once, its answer
shared), and hits and fresh results come back as one ``BatchResults`` in the requests'
order (``Result.cached`` tells them apart). Successful fresh results are stored.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core, _run
from ._batches import AsyncBatches, Batches
from ._cache import ResultCache, open_cache, request_key, scope
from ._files import AsyncFiles, Files
from ._io import bounded_lines
from ._offloop import off_loop
from ._plan import SamplingTable
from ._run import RUN_INPUTS, RunOptions
from .builder import BatchBuilder
from .results import BatchResults
from .types import Batch

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: A merged result set keeps the fresh one alive (it owns the run's downloaded files).
_KEEP: weakref.WeakKeyDictionary[BatchResults, BatchResults] = weakref.WeakKeyDictionary()

_FRAME_KEYS = ("prompt", "model", "system", "custom_id", "provider", "response_format", "params")
_UNSPLIT = _core.Limits(max_requests=2**62, max_bytes=2**62)


class DataRunOptions(RunOptions, total=False):
    """``run``'s options: ``RunOptions``, and for a DataFrame how each row becomes a request
    (``BatchBuilder.from_dataframe``'s arguments; ``params`` the extra body parameters),
    and ``cache``."""

    prompt: Any
    model: Any
    system: Any
    custom_id: Any
    provider: Any
    response_format: Any
    params: Mapping[str, Any] | None
    cache: bool | str | os.PathLike[str] | ResultCache | None


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and (hasattr(value, "iter_rows") or hasattr(value, "to_dict"))


def split_options(requests: Any, options: dict[str, Any]) -> tuple[Any, ResultCache | None, dict[str, Any]]:
    """``(the requests, the cache, the remaining RunOptions)``: a DataFrame becomes a builder."""
    frame = {k: options.pop(k) for k in _FRAME_KEYS if k in options}
    cache = open_cache(options.pop("cache", None))
    if _is_frame(requests):
        if frame.get("prompt") is None or frame.get("model") is None:
            raise TypeError(
                "run(df) needs prompt= (a template over the columns, e.g. 'Summarise: {text}') and model= "
                "(a model name, or '{column}' for one per row)"
            )
        params = dict(frame.pop("params", None) or {})
        requests = BatchBuilder.from_dataframe(requests, **frame, **params)
    elif any(v is not None for v in frame.values()):
        given = ", ".join(f"{k}=" for k, v in frame.items() if v is not None)
        raise TypeError(
            f"run(): {given} apply to a DataFrame (one request per row); the requests given are "
            f"{type(requests).__name__}: build them with BatchBuilder.from_records(...) first"
        )
    return requests, cache, options


def _parser_of(requests: Any) -> Any:
    return getattr(requests, "_fb_parser", None) or None


def _attach(results: BatchResults, parser: Any) -> BatchResults:
    if parser:
        results._set = results._set.with_parser(parser)
    return results


class _Lookup:
    """The requests split by the cache: hits (as result lines) and misses (a builder)."""

    def __init__(self, requests: Any, cache: ResultCache, service: str, sampling: SamplingTable | None = None) -> None:
        if isinstance(requests, (str, os.PathLike)):
            builder = BatchBuilder()
            # (Within the line limit; a run's input may be larger than one batch.)
            builder.extend(json.loads(raw) for _, raw in bounded_lines(requests, _UNSPLIT))
        elif isinstance(requests, _core.BatchBuilder):
            builder = requests  # type: ignore[assignment]
        else:
            builder = BatchBuilder()
            builder.extend(requests)
        if len(builder) == 0:
            raise ValueError("run(): no requests to run (the input is empty)")
        builder.validate(limits=_UNSPLIT, anthropic_sampling=sampling).raise_for_errors()
        self.ids: list[str] = []
        self.key_of: dict[str, str] = {}
        parsed: list[tuple[str, str, Any]] = []
        for line in builder:
            d = json.loads(line)
            cid, key = request_key(d, service)
            self.ids.append(cid)
            self.key_of[cid] = key
            parsed.append((cid, key, d))
        found = cache.get_many(list(dict.fromkeys(self.key_of.values())))
        hits: list[str] = []
        self.misses = BatchBuilder()
        # The same request twice in one run is sent once: the others share its answer.
        sent: dict[str, str] = {}
        self.copies: dict[str, tuple[str, Any]] = {}  # custom_id → (the one sent, its request)
        for cid, key, d in parsed:
            if key in found:
                hits.append(f'{{"id":"cached","custom_id":{json.dumps(cid)},"response":{found[key]},"error":null}}')
            elif key in sent:
                self.copies[cid] = (sent[key], d)
            else:
                sent[key] = cid
                self.misses.add(d)
        self.hits = ("\n".join(hits) + "\n").encode() if hits else b""

    def store(self, cache: ResultCache, fresh: BatchResults) -> None:
        items = []
        for r in fresh.succeeded:
            key = self.key_of.get(r.custom_id)
            if key is not None:
                items.append((key, json.dumps(r.to_dict()["response"], separators=(",", ":"), ensure_ascii=False)))
        cache.put_many(items)

    def _copied(self, fresh: BatchResults) -> tuple[bytes, bytes]:
        """The lines of the requests sent once for several custom_ids: the answer's line
        under each other custom_id (none where the answer is missing: so is theirs), as
        ``(answers, failures)``. An answer shared is not paid for again: it counts as a
        cached one (``Result.cached``, no tokens in ``summary()``); a failure shared is a
        failure of each, which ``retry_failed`` sends again."""
        answers: list[str] = []
        failures: list[str] = []
        for cid, (sent, _) in self.copies.items():
            r = fresh.get(sent)
            if r is not None:
                line = json.dumps({**r.to_dict(), "custom_id": cid}, ensure_ascii=False)
                (answers if r.ok else failures).append(line)

        def joined(lines: list[str]) -> bytes:
            return ("\n".join(lines) + "\n").encode() if lines else b""

        return joined(answers), joined(failures)

    def _copies_inputs(self, inputs: tuple[Path, ...]) -> tuple[Path, ...]:
        """The run's request files and one of the copies' requests beside them (so that
        ``retry_failed`` finds a shared failure's other custom_ids)."""
        if not self.copies or not inputs:
            return inputs
        path = inputs[0].parent / "shared-requests.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for _, d in self.copies.values())
        return (*inputs, path)

    def merge(self, fresh: BatchResults | None) -> BatchResults:
        paths: list[Any] = sorted({r.file for r in fresh if r.file}) if fresh is not None else []
        shared, failed = self._copied(fresh) if fresh is not None else (b"", b"")
        paths += [failed] if failed else []
        cached = [x for x in (self.hits, shared) if x]
        merged = BatchResults(_core.read_results(paths, inputs=self.ids, cached=cached or None))
        if fresh is not None:
            _KEEP[merged] = fresh
            if fresh in RUN_INPUTS:
                RUN_INPUTS[merged] = self._copies_inputs(RUN_INPUTS[fresh])
        return merged


def run(
    files: Files,
    batches: Batches,
    requests: Any,
    base_url: str | None,
    *,
    wait: bool,
    **options: Unpack[DataRunOptions],
) -> BatchResults | list[Batch]:
    requests, cache, rest = split_options(requests, dict(options))
    parser = _parser_of(requests)
    if cache is None:
        out = _run.run(files, batches, requests, wait=wait, **rest)
        return _attach(out, parser) if isinstance(out, BatchResults) else out
    if not wait:
        raise ValueError("cache= needs wait=True: results are cached as the run collects them")
    lookup = _Lookup(requests, cache, scope(base_url), rest.get("anthropic_sampling"))
    fresh: BatchResults | None = None
    if len(lookup.misses):
        ran = _run.run(files, batches, lookup.misses, wait=True, **rest)
        assert isinstance(ran, BatchResults)
        fresh = ran
        lookup.store(cache, fresh)
    return _attach(lookup.merge(fresh), parser)


async def arun(
    files: AsyncFiles,
    batches: AsyncBatches,
    requests: Any,
    base_url: str | None,
    *,
    wait: bool,
    **options: Unpack[DataRunOptions],
) -> BatchResults | list[Batch]:
    requests, cache, rest = await off_loop(split_options, requests, dict(options))
    parser = _parser_of(requests)
    if cache is None:
        out = await _run.arun(files, batches, requests, wait=wait, **rest)
        return _attach(out, parser) if isinstance(out, BatchResults) else out
    if not wait:
        raise ValueError("cache= needs wait=True: results are cached as the run collects them")
    lookup = await off_loop(_Lookup, requests, cache, scope(base_url), rest.get("anthropic_sampling"))
    fresh: BatchResults | None = None
    if len(lookup.misses):
        ran = await _run.arun(files, batches, lookup.misses, wait=True, **rest)
        assert isinstance(ran, BatchResults)
        fresh = ran
        await off_loop(lookup.store, cache, fresh)
    merged = await off_loop(lookup.merge, fresh)
    return _attach(merged, parser)
