"""`/metrics` of the local engine, read with prometheus_client's own text parser after a
batch run against injected faults: requests by route template, batches by state, lines
and failures by provider (checked against the result files), upstream latency histograms
and retries; and who may read it."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import fastrouter_batch as fb
from engine_helpers import Api, chat_line, to_jsonl

KEY = "sk-metrics-test"
LATENCY = 0.02


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict, family: str, sample: str | None = None, **labels: str) -> float:
    """The sum of `family`'s samples named `sample` (default: the family's own) whose
    labels include `labels`."""
    name = sample or family
    return sum(
        s.value for s in fams[family].samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def counter(fams: dict, family: str, **labels: str) -> float:
    """A counter family's `_total` samples with `labels`, summed (the parser names the
    family without `_total`)."""
    return value(fams, "fastrouter_engine_" + family, f"fastrouter_engine_{family}_total", **labels)


def scrape(url: str, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(url + "/metrics", headers=headers, timeout=10)


@pytest.fixture(scope="module")
def run():
    """One engine, one 240-line batch through a 30% fault rate with one retry, polled a
    known number of times; then the metrics, the batch and its result files."""
    with (
        fb.LocalServer(
            api_key=KEY, fault_rate=0.3, max_retries=1, retry_delay=0.001, latency=LATENCY, concurrency=32
        ) as server,
        Api(server.url, KEY) as api,
    ):
        lines = [chat_line(f"o{i}") for i in range(140)] + [chat_line(f"a{i}", "anthropic") for i in range(100)]
        f = api.upload(to_jsonl(lines))
        b = api.create_batch(f["id"])
        polls = 0
        while b["status"] not in ("completed", "failed", "expired", "cancelled"):
            assert polls < 3000, b
            b = api.batch(b["id"])
            polls += 1
        output, errors = api.lines(b["output_file_id"]), api.lines(b["error_file_id"])
        r = scrape(server.url)
        yield {
            "server": server,
            "response": r,
            "fams": families(r.text),
            "batch": b,
            "polls": polls,
            "output": output,
            "errors": errors,
        }


def test_metrics_parse_and_count_requests_by_route_template(run):
    r, fams, b = run["response"], run["fams"], run["batch"]
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert fams["fastrouter_engine_http_requests"].type == "counter"
    requests = "fastrouter_engine_http_requests"
    polled = counter(fams, "http_requests", route="/v1/batches/{batch_id}", method="GET", status="200")
    assert polled == run["polls"]
    assert counter(fams, "http_requests", route="/v1/files", method="POST", status="200") == 1
    assert counter(fams, "http_requests", route="/v1/batches", method="POST", status="200") == 1
    assert counter(fams, "http_requests", route="/v1/files/{file_id}/content", method="GET", status="200") == 2
    # Bounded label values: templates, never a raw path or an id.
    routes = {s.labels["route"] for s in fams[requests].samples}
    assert routes == {"/v1/files", "/v1/batches", "/v1/batches/{batch_id}", "/v1/files/{file_id}/content"}
    assert not any(b["id"] in str(s.labels) for f in fams.values() for s in f.samples)
    duration = "fastrouter_engine_http_request_duration_seconds"
    assert fams[duration].type == "histogram"
    assert value(fams, duration, duration + "_count", route="/v1/batches/{batch_id}") == run["polls"]


def test_metrics_count_batches_by_status(run):
    fams = run["fams"]
    assert run["batch"]["status"] == "completed"
    by_status = {s.labels["status"]: s.value for s in fams["fastrouter_engine_batches"].samples}
    assert by_status == {
        "validating": 0,
        "in_progress": 0,
        "finalizing": 0,
        "completed": 1,
        "failed": 0,
        "expired": 0,
        "cancelling": 0,
        "cancelled": 0,
    }


def test_metrics_count_lines_and_failures_by_provider_as_the_result_files_do(run):
    fams, b = run["fams"], run["batch"]
    provider = {"o": "openai", "a": "anthropic"}
    ok = {"openai": 0, "anthropic": 0}
    bad = {"openai": 0, "anthropic": 0}
    for line in run["output"]:
        ok[provider[line["custom_id"][0]]] += 1
    for line in run["errors"]:
        bad[provider[line["custom_id"][0]]] += 1
    assert sum(bad.values()) == b["request_counts"]["failed"] > 0, "30% faults with one retry fail some lines"
    for p in ("openai", "anthropic"):
        processed = counter(fams, "lines_processed", provider=p)
        failed = counter(fams, "lines_failed", provider=p)
        assert (processed, failed) == (ok[p] + bad[p], bad[p]), p


def test_metrics_time_every_upstream_attempt_and_count_retries(run):
    fams = run["fams"]
    latency = "fastrouter_engine_upstream_request_duration_seconds"
    assert fams[latency].type == "histogram"
    for p in ("openai", "anthropic"):
        processed = counter(fams, "lines_processed", provider=p)
        retries = counter(fams, "upstream_retries", provider=p)
        attempts = counter(fams, "upstream_requests", provider=p)
        assert retries > 0, p
        assert attempts == processed + retries, p
        # The simulator's faults answer 429 or 500; a line fails when its retry faults too.
        faults = sum(counter(fams, "upstream_requests", provider=p, status=s) for s in ("429", "500"))
        failed = counter(fams, "lines_failed", provider=p)
        assert faults == retries + failed, p
        buckets = sorted(
            (float(s.labels["le"]), s.value)
            for s in fams[latency].samples
            if s.name == latency + "_bucket" and s.labels["provider"] == p
        )
        counts = [n for _, n in buckets]
        assert counts == sorted(counts), "buckets are cumulative"
        assert buckets[-1] == (float("inf"), attempts)
        assert value(fams, latency, latency + "_count", provider=p) == attempts
        # Every attempt took the simulated latency: nothing under 10 ms, a sum to match.
        assert dict(buckets)[0.01] == 0, buckets
        assert value(fams, latency, latency + "_sum", provider=p) >= attempts * LATENCY * 0.9


def test_metrics_report_an_idle_queue_and_no_storage_errors(run):
    fams = run["fams"]
    assert value(fams, "fastrouter_engine_queue_depth") == 0
    assert value(fams, "fastrouter_engine_upstream_in_flight") == 0
    errors = {s.labels["operation"]: s.value for s in fams["fastrouter_engine_storage_errors"].samples}
    assert errors == {"record_results": 0, "batch_step": 0, "request": 0}
    assert value(fams, "fastrouter_engine_storage_paused") == 0


def test_metrics_need_a_key_unless_public():
    with fb.LocalServer(api_key=KEY) as server:
        assert scrape(server.url, None).status_code == 401
        assert scrape(server.url, "sk-other").status_code == 401
        assert scrape(server.url).status_code == 200
    with fb.LocalServer(api_key=KEY, metrics_public=True) as server:
        r = scrape(server.url, None)
        assert r.status_code == 200
        assert "fastrouter_engine_batches" in families(r.text)
        assert httpx.get(server.url + "/v1/batches", timeout=10).status_code == 401


def test_local_server_shows_its_dashboard():
    with fb.LocalServer(api_key=KEY) as server:
        assert server.dashboard_url == server.url + "/"
        assert f'dashboard="{server.url}/"' in repr(server)
        assert KEY not in repr(server)
        page = httpx.get(server.dashboard_url, timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
