"""Tokens per model and provider, and with a user's price table what they cost at batch
prices and what the same tokens would cost realtime. No prices are built in: they change,
and a stale table would be wrong silently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import BatchResults


def _request_models(results: BatchResults) -> dict[str, tuple[str, str]]:
    """``{custom_id: (provider, model)}`` from the requests of the run that made the results
    (empty for results read from files)."""
    from ._io import read_requests
    from ._run import RUN_INPUTS

    out: dict[str, tuple[str, str]] = {}
    for path in RUN_INPUTS.get(results, ()):
        for req in read_requests(path):
            model = req.body.get("model")
            out[req.custom_id] = (req.provider, model if isinstance(model, str) else "unknown")
    return out


def _price(prices: Mapping[str, tuple[float, ...]], provider: str, model: str) -> tuple[float, ...] | None:
    for key in (model, f"{provider}/{model}"):
        if key in prices:
            p = tuple(prices[key])
            if len(p) not in (2, 4) or not all(isinstance(x, (int, float)) and x >= 0 for x in p):
                raise ValueError(
                    f"prices[{key!r}] must be (input_per_million, output_per_million) or "
                    f"(input, output, batch_input, batch_output), non-negative numbers; got {prices[key]!r}"
                )
            return p
    return None


def add_costs(
    results: BatchResults, summary: dict[str, Any], prices: Mapping[str, tuple[float, ...]] | None, discount: float
) -> None:
    if prices is not None and not isinstance(prices, Mapping):
        raise TypeError(f"prices must be a dict of model -> (input, output) per million tokens, got {type(prices)}")
    if not 0 <= discount <= 1:
        raise ValueError(f"batch_discount must be between 0 and 1, got {discount!r}")
    cols = results.to_columns()
    requested = _request_models(results)
    by_model: dict[str, dict[str, Any]] = {}
    cached = 0
    for cid, model, p, c, hit in zip(
        cols["custom_id"], cols["model"], cols["prompt_tokens"], cols["completion_tokens"], cols["cached"], strict=False
    ):
        if cid in requested:
            provider, name = requested[cid]
        else:
            name = model or "unknown"
            provider = name.split("/", 1)[0] if "/" in name else "unknown"
        e = by_model.setdefault(
            name, {"provider": provider, "requests": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0}
        )
        e["requests"] += 1
        cached += bool(hit)
        if hit:
            e["cached"] += 1
            continue  # paid for by the run that cached it
        e["prompt_tokens"] += p or 0
        e["completion_tokens"] += c or 0
    by_provider: dict[str, dict[str, Any]] = {}
    unpriced = []
    total_batch = total_realtime = 0.0
    for name, e in by_model.items():
        e["total_tokens"] = e["prompt_tokens"] + e["completion_tokens"]
        prov = by_provider.setdefault(
            e["provider"], {"requests": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        )
        for k in ("requests", "cached", "prompt_tokens", "completion_tokens", "total_tokens"):
            prov[k] += e[k]
        if prices is None:
            continue
        price = _price(prices, e["provider"], name)
        if price is None:
            unpriced.append(name)
            continue
        i, o = price[0], price[1]
        bi, bo = (price[2], price[3]) if len(price) == 4 else (i * discount, o * discount)
        e["realtime_cost"] = (e["prompt_tokens"] * i + e["completion_tokens"] * o) / 1e6
        e["batch_cost"] = (e["prompt_tokens"] * bi + e["completion_tokens"] * bo) / 1e6
        prov["realtime_cost"] = prov.get("realtime_cost", 0.0) + e["realtime_cost"]
        prov["batch_cost"] = prov.get("batch_cost", 0.0) + e["batch_cost"]
        total_batch += e["batch_cost"]
        total_realtime += e["realtime_cost"]
    summary["cached"] = cached
    summary["by_model"] = by_model
    summary["by_provider"] = by_provider
    if prices is not None:
        summary["cost"] = {
            "batch": total_batch,
            "realtime": total_realtime,
            "saved": total_realtime - total_batch,
            "unpriced": unpriced,
        }
