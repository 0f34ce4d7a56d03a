"""The notebook example runs headless: sync calls and the progress bar under Jupyter's
running event loop, a top-level await of the async client, and the rich (text/html) display
of a Batch, BatchResults and ValidationReports in the executed notebook's outputs."""

from __future__ import annotations

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"


def test_notebook_runs_with_a_running_event_loop():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = {i: cell.get("outputs", []) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"}
    text = lambda i: "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs[i])  # noqa: E731
    assert "('completed', 40)" in text(3)
    # The progress bar was drawn: a widget with ipywidgets (the `notebook` extra; the test
    # dependencies have it), else tqdm's text bar on stderr.
    widget = any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs[3])
    if importlib.util.find_spec("ipywidgets") is not None:
        assert widget, outputs[3]
    else:
        assert any(o.get("name") == "stderr" and "40/40" in o.get("text", "") for o in outputs[3]), outputs[3]
    assert text(4).startswith("(40, ")
    assert "Simulated answer" in text(4)
    assert "'completed'" in text(5)
    # No tqdm warning anywhere (ipywidgets present: a widget; absent: the text bar, quietly).
    assert not any("IProgress" in o.get("text", "") for cell in outputs.values() for o in cell)

    # The rich display: each cell's result carries text/html beside its short text/plain.
    batch_html, batch_text = html(outputs[7]), text(7)
    assert batch_text.startswith("Batch(id=") and "status='completed'" in batch_text and len(batch_text) < 200
    assert 'role="progressbar"' in batch_html and 'aria-valuenow="40"' in batch_html
    batch_page = visible(batch_html)
    assert "completed 40 · failed 0 · total 40" in batch_page
    assert re.search(r"created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", batch_page), batch_page
    assert re.search(r"usage input [\d,]+ · output [\d,]+ · total [\d,]+ tokens", batch_page), batch_page
    # The breakdown by provider (it adds up to the batch's usage: the cell asserts it).
    assert "provider progress completed failed total usage openai" in visible(html(outputs[8]))
    assert "openai 40 0 40 input" in visible(html(outputs[8]))

    results_page = visible(html(outputs[9]))
    assert "40 results — 40 succeeded, 0 failed" in results_page
    assert re.search(r"q\d+ ✓ 200 ", results_page) and "Simulated answer" in results_page
    assert "… and 20 more results (first 20 shown)" in results_page

    valid_page = visible(html(outputs[10]))
    assert "✓ valid" in valid_page and "no problems — 40 requests, 40 lines" in valid_page

    invalid_html = html(outputs[11])
    invalid_page = visible(invalid_html)
    assert "✗ invalid" in invalid_page
    assert "line field code message" in invalid_page
    for code in ("custom_id_format", "method_not_post", "missing_max_tokens", "invalid_json"):
        assert code in invalid_page, invalid_page
    # The custom_id's markup is text in the page, never an element.
    assert "<b>q1</b>" not in invalid_html and "&lt;b&gt;q1&lt;/b&gt;" in invalid_html


def html(cell_outputs: list) -> str:
    found = [o["data"]["text/html"] for o in cell_outputs if "text/html" in o.get("data", {})]
    assert len(found) == 1, cell_outputs
    return "".join(found[0]) if isinstance(found[0], list) else found[0]


class Visible(HTMLParser):
    """The text a browser shows: cells and blocks apart, inline elements run on."""

    BLOCKS = frozenset({"div", "table", "tr", "th", "td"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.BLOCKS:
            self.chunks.append(" ")

    def handle_endtag(self, tag):
        self.handle_starttag(tag, [])

    def handle_data(self, data):
        self.chunks.append(data)


def visible(markup: str) -> str:
    parser = Visible()
    parser.feed(markup)
    parser.close()
    return " ".join("".join(parser.chunks).split())


def test_a_notebook_without_ipywidgets_gets_the_text_bar_and_no_warning():
    """Without the `notebook` extra tqdm.auto warned "IProgress not found"; now the text bar
    (which Jupyter renders) is drawn quietly. ipywidgets is made unimportable in the kernel."""
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell("import sys, warnings\nsys.modules['ipywidgets'] = None  # as if not installed"),
        v4.new_code_cell(
            "import fastrouter_batch as fb\n"
            "server = fb.LocalServer()\n"
            "server.start()\n"
            "client = fb.Client(api_key=server.api_key, base_url=server.url)\n"
            "rows = [{'q': str(i)} for i in range(4)]\n"
            "builder = fb.BatchBuilder.from_records(rows, prompt='{q}', model='openai/gpt-4.1-nano')\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    b = client.batches.wait(client.batches.create(input_file_id=client.files.create(builder).id).id)\n"
            "server.stop()\n"
            "print('warnings:', [str(w.message) for w in caught])\n"
            "b.status"
        ),
    ]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[1].outputs
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert "4/4" in stderr and "status=completed" in stderr, outputs
    assert "IProgress" not in stderr
    stdout = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert "warnings: []" in stdout, outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any(o.get("data", {}).get("text/plain") == "'completed'" for o in outputs), outputs
