"""The engine's dashboard in a real headless Chromium (Selenium + chromedriver): enter the
key, watch a running batch progress to completed, open it, download its output and error
files (their bytes checked against the API), read a failed batch's errors by line; another
key sees none of it; the page is readable at phone width and loads nothing from elsewhere.

Screenshots go to $FASTROUTER_ARTIFACTS/dashboard (default: a temporary directory, printed).
Without Chromium, chromedriver or selenium these tests are skipped, saying which is missing;
with FASTROUTER_REQUIRE_BROWSER=1 (set by CI) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import fastrouter_batch as fb
from engine_helpers import Api, chat_line, to_jsonl, wait_until

KEY_A = "sk-dashboard-a"
KEY_B = "sk-dashboard-b"
KEY_SLOT = "fastrouter-batch.key"
REQUIRED = os.environ.get("FASTROUTER_REQUIRE_BROWSER") == "1"


def _browser() -> tuple[str, str] | str:
    """(chromium, chromedriver) paths, or why they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install --group test)"
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    chrome = next((p for p in map(shutil.which, names) if p), None)
    if chrome is None:
        return "no Chromium found on PATH (Debian: apt-get install chromium chromium-driver)"
    driver = shutil.which("chromedriver") or next(
        (p for p in ("/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver") if os.access(p, os.X_OK)), None
    )
    if driver is None:
        return "no chromedriver found (Debian: apt-get install chromium-driver)"
    return chrome, driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    root = os.environ.get("FASTROUTER_ARTIFACTS")
    d = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("dashboard-screenshots")
    d.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {d}")
    return d


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dashboard-downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    found = _browser()
    if isinstance(found, str):
        if REQUIRED:
            pytest.fail(f"FASTROUTER_REQUIRE_BROWSER=1 but {found}")
        pytest.skip(found)
    chrome, driver_path = found
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = chrome
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    drv.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="module")
def server():
    # Slow, one request at a time per provider, some faults and no retries: a batch runs
    # for seconds (the page must show it move) and ends with failed lines too.
    with fb.LocalServer(api_key=[KEY_A, KEY_B], latency=0.4, concurrency=1, fault_rate=0.2, max_retries=0) as s:
        yield s


@pytest.fixture(scope="module")
def api_a(server):
    with Api(server.url, KEY_A) as api:
        yield api


# --- page helpers -------------------------------------------------------------------------


def by_id(drv, element_id: str):
    from selenium.webdriver.common.by import By

    return drv.find_element(By.ID, element_id)


def css(drv, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return drv.find_elements(By.CSS_SELECTOR, selector)


def visible(drv, element_id: str) -> bool:
    return by_id(drv, element_id).is_displayed()


def sign_in(drv, url: str, key: str) -> None:
    drv.get(url + "/")
    wait_until(lambda: visible(drv, "login") or visible(drv, "list"), 10, what="the page to start")
    if visible(drv, "list"):
        by_id(drv, "signout").click()
        wait_until(lambda: visible(drv, "login"), 10, what="the key form")
    by_id(drv, "key").send_keys(key)
    css(drv, "#login-form button[type=submit]")[0].click()


def shot(drv, shots: Path, name: str) -> None:
    drv.save_screenshot(str(shots / f"{name}.png"))


def item(drv, batch_id: str):
    found = css(drv, f'li.batch[data-id="{batch_id}"]')
    return found[0] if found else None


def item_state(drv, batch_id: str) -> dict[str, Any] | None:
    """The list item's status, progress and text, read at once (the page redraws it as it polls)."""
    return drv.execute_script(
        """
        const li = document.querySelector(`li.batch[data-id="${arguments[0]}"]`);
        if (!li) return null;
        const bar = li.querySelector("[role=progressbar]");
        return {status: li.dataset.status, done: Number(bar.getAttribute("aria-valuenow")),
                total: Number(bar.getAttribute("aria-valuemax")), text: li.innerText,
                times: li.querySelectorAll("time").length};
    """,
        batch_id,
    )


def severe_console_messages(drv) -> list[str]:
    """Errors the page logged since the last call (the log is drained as it is read)."""
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def wait_download(folder: Path, name: str, timeout: float = 20) -> bytes:
    path = folder / name
    wait_until(
        lambda: path.exists() and not (folder / (name + ".crdownload")).exists(), timeout, what=f"download of {name}"
    )
    return path.read_bytes()


def mixed_lines(n: int) -> list[dict[str, Any]]:
    return [chat_line(f"r{i}", "openai" if i % 2 else "anthropic") for i in range(n)]


# --- tests ----------------------------------------------------------------------------------


def test_a_running_batch_progresses_live_then_its_page_downloads_its_files(browser, server, api_a, shots, downloads):
    drv = browser
    severe_console_messages(drv)
    sign_in(drv, server.url, KEY_A)
    wait_until(lambda: visible(drv, "list"), 10, what="the batch list")
    shot(drv, shots, "01-list-empty")
    f = api_a.upload(to_jsonl(mixed_lines(40)))
    b = api_a.create_batch(f["id"], metadata={"team": "research", "run": "nightly"})
    bid = b["id"]

    # The list shows it without a reload, moving: distinct partial counts while it runs.
    partial: set[int] = set()
    deadline = time.monotonic() + 90
    while True:
        seen = item_state(drv, bid)
        status = seen and seen["status"]
        if status == "in_progress" and 0 < seen["done"] < seen["total"] and seen["done"] not in partial:
            partial.add(seen["done"])
            if len(partial) == 1:
                shot(drv, shots, "02-list-running")
        if status == "completed":
            break
        assert time.monotonic() < deadline, f"batch still {status} on the page"
        time.sleep(0.1)
    assert len(partial) >= 2, f"the page showed progress only at {partial}"
    shot(drv, shots, "03-list-completed")
    final = api_a.batch(bid)
    c = final["request_counts"]
    assert c["failed"] > 0 and c["completed"] > 0, final
    seen = item_state(drv, bid)
    text = seen["text"]
    assert f"{c['completed']} completed · {c['failed']} failed · 40 total" in text
    assert "team research" in text and "run nightly" in text
    assert f"{final['usage']['input_tokens']:,} in · {final['usage']['output_tokens']:,} out" in text
    assert seen["times"] == 2, "created and finished times"

    # Its page: the breakdown by provider agrees with the API's.
    item(drv, bid).find_element("css selector", "a.id").click()
    wait_until(lambda: visible(drv, "detail") and css(drv, "#batch-id"), 10, what="the batch page")
    assert by_id(drv, "batch-id").text == bid
    providers = api_a.ok(api_a.http.get(f"/v1/batches/{bid}/providers"))["data"]
    breakdown = {p["provider"]: p["request_counts"] for p in providers}
    rows = {r.find_elements("css selector", "td")[0].text: r for r in css(drv, "#providers tbody tr")}
    assert set(rows) == {"anthropic", "openai"}
    for name, counts in breakdown.items():
        cells = [td.text for td in rows[name].find_elements("css selector", "td")]
        want = [str(counts["total"]), str(counts["completed"]), str(counts["failed"]), "0 not run"]
        assert cells[2:6] == want, cells
    assert "team research" in by_id(drv, "detail").text
    shot(drv, shots, "04-batch-page")

    # Downloads go through fetch with the key in a header: bytes as the API serves them.
    css(drv, "#files button.output")[0].click()
    assert wait_download(downloads, f"{bid}_output.jsonl") == api_a.content(final["output_file_id"])
    css(drv, "#files button.errors")[0].click()
    errors = wait_download(downloads, f"{bid}_error.jsonl")
    assert errors == api_a.content(final["error_file_id"])
    assert len(errors.splitlines()) == c["failed"]
    wait_until(lambda: "Downloaded" in by_id(drv, "notice").text, 10, what="the download notice")

    # The key: in this tab's session storage only, never in the URL or a cookie.
    assert drv.execute_script(f"return sessionStorage.getItem('{KEY_SLOT}')") == KEY_A
    assert drv.execute_script("return localStorage.length") == 0
    assert drv.get_cookies() == []
    assert KEY_A not in drv.current_url
    assert severe_console_messages(drv) == []


def test_a_failed_batch_shows_its_errors_by_line(browser, server, api_a, shots):
    drv = browser
    bad = (
        to_jsonl([chat_line("ok-1")])
        + b"{not json\n"
        + to_jsonl(
            [
                {
                    **chat_line("no-max", "anthropic"),
                    "body": {"model": "anthropic/claude-4.5-sonnet", "messages": [{"role": "user", "content": "hi"}]},
                },
                chat_line("ok-1"),
            ]
        )
    )
    f = api_a.upload(bad)
    b = api_a.wait(api_a.create_batch(f["id"])["id"])
    assert b["status"] == "failed"
    expected = sorted((e["line"], e["code"]) for e in b["errors"]["data"])
    assert [line for line, _ in expected] == [2, 3, 4], expected

    sign_in(drv, server.url, KEY_A)
    wait_until(lambda: item(drv, b["id"]), 10, what="the failed batch in the list")
    assert item(drv, b["id"]).get_attribute("data-status") == "failed"
    item(drv, b["id"]).find_element("css selector", "a.id").click()
    wait_until(lambda: css(drv, "#errors tbody tr"), 10, what="the errors table")
    shown = [[td.text for td in tr.find_elements("css selector", "td")] for tr in css(drv, "#errors tbody tr")]
    assert [(int(r[0]), r[1]) for r in shown] == expected
    messages = {(e["line"], e["message"]) for e in b["errors"]["data"]}
    assert {(int(r[0]), r[3]) for r in shown} == messages
    assert "No requests ran." in by_id(drv, "providers").text
    shot(drv, shots, "05-failed-batch")


def test_another_key_sees_none_of_it(browser, server, api_a, shots):
    drv = browser
    f = api_a.upload(to_jsonl(mixed_lines(2)))
    mine = api_a.create_batch(f["id"], metadata={"owner": "a"})["id"]
    sign_in(drv, server.url, KEY_B)
    wait_until(
        lambda: visible(drv, "list") and "No batches yet" in by_id(drv, "list-summary").text,
        10,
        what="an empty list for key B",
    )
    assert css(drv, "li.batch") == []
    assert mine not in drv.page_source
    shot(drv, shots, "06-other-key")
    drv.get(f"{server.url}/#/batches/{mine}")
    wait_until(lambda: "No such batch" in by_id(drv, "detail").text, 10, what="a not-found page")
    assert "owner" not in by_id(drv, "detail").text

    # A key the engine does not accept is refused and forgotten.
    sign_in(drv, server.url, "sk-not-accepted")
    wait_until(lambda: visible(drv, "login") and by_id(drv, "login-error").is_displayed(), 10, what="the refusal")
    assert "does not accept" in by_id(drv, "login-error").text
    assert drv.execute_script(f"return sessionStorage.getItem('{KEY_SLOT}')") is None


def test_the_dashboard_is_readable_on_a_phone(browser, server, api_a, shots):
    drv = browser
    f = api_a.upload(to_jsonl(mixed_lines(2)))
    b = api_a.create_batch(f["id"], metadata={"purpose": "a rather long metadata value " * 4})
    api_a.wait(b["id"], timeout=60)
    drv.set_window_size(390, 844)
    try:
        sign_in(drv, server.url, KEY_A)
        wait_until(lambda: item(drv, b["id"]), 10, what="the list")
        overflow = "return document.documentElement.scrollWidth - window.innerWidth"
        assert drv.execute_script(overflow) <= 0, "the list scrolls sideways at phone width"
        assert float(drv.execute_script("return parseFloat(getComputedStyle(document.body).fontSize)")) >= 14
        shot(drv, shots, "07-phone-list")
        item(drv, b["id"]).find_element("css selector", "a.id").click()
        wait_until(lambda: css(drv, "#providers tbody tr"), 10, what="the batch page")
        assert drv.execute_script(overflow) <= 0, "the batch page scrolls sideways at phone width"
        shot(drv, shots, "08-phone-batch")
        drv.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        shot(drv, shots, "09-phone-batch-bottom")
    finally:
        drv.set_window_size(1280, 1000)


def test_the_page_loads_nothing_from_elsewhere(browser, server):
    drv = browser
    severe_console_messages(drv)
    sign_in(drv, server.url, KEY_A)
    wait_until(lambda: visible(drv, "list"), 10, what="the list")
    resources = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources, "the page loads its script and style"
    assert all(r.startswith(server.url + "/") for r in resources), resources
    policy = json.loads(
        drv.execute_script(
            "return JSON.stringify(Array.from(document.querySelectorAll('script,link')).map(e => e.src || e.href))"
        )
    )
    assert all(p.startswith(server.url + "/") for p in policy), policy
    assert severe_console_messages(drv) == []


def upstream_cells(drv) -> list[list[str]]:
    """The upstream batches table's cell texts, read at once (the page redraws as it polls)."""
    return drv.execute_script(
        """return [...document.querySelectorAll("#upstream tbody tr")]
            .map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim()));"""
    )


def test_a_native_batch_page_lists_its_upstream_batches(browser, shots):
    """Native mode: the batch page shows each provider batch (provider, upstream id, status,
    counts) as the API's `upstream_batches` reports it, while running and once done."""
    drv = browser
    with fb.FakeUpstream() as up:
        up.configure(stall=True)
        with (
            fb.LocalServer(
                provider="upstream",
                upstream_mode="native",
                api_key=KEY_A,
                openai_base_url=up.url,
                openai_api_key="sk-fake-openai",
                anthropic_base_url=up.url,
                anthropic_api_key="sk-fake-anthropic",
                poll_interval=0.05,
            ) as server,
            Api(server.url, KEY_A) as api,
        ):
            b = api.create_batch(api.upload(to_jsonl(mixed_lines(8)))["id"])
            bid = b["id"]

            def submitted() -> list[dict[str, Any]] | None:
                ups = api.batch(bid).get("upstream_batches") or []
                return ups if len(ups) == 2 and all(u["id"] for u in ups) else None

            ups = wait_until(submitted, 30, what="both upstream batches submitted")
            sign_in(drv, server.url, KEY_A)
            wait_until(lambda: item(drv, bid), 10, what="the native batch in the list")
            item(drv, bid).find_element("css selector", "a.id").click()
            wait_until(lambda: len(css(drv, "#upstream tbody tr")) == 2, 10, what="the upstream batches table")
            rows = upstream_cells(drv)
            assert sorted(r[0] for r in rows) == ["anthropic", "openai"]
            assert sorted(r[1] for r in rows) == sorted(u["id"] for u in ups)
            shot(drv, shots, "06-native-upstream-running")

            up.configure(stall=False)
            final = api.wait(bid, timeout=30)
            assert final["status"] == "completed"

            def shows_final() -> bool:
                cells = upstream_cells(drv)
                want = {
                    (
                        u["provider"],
                        u["id"],
                        f"{u['request_counts']['completed']} / {u['request_counts']['failed']} / 4",
                    )
                    for u in final["upstream_batches"]
                }
                return {(c[0], c[1], c[3]) for c in cells} == want

            wait_until(shows_final, 15, what="the final upstream counts on the page")
            shot(drv, shots, "07-native-upstream-done")
