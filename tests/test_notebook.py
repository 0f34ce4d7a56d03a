"""The notebook example runs headless: sync calls and the progress bar under Jupyter's
running event loop, and a top-level await of the async client."""

from __future__ import annotations

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
    # The progress bar was drawn (tqdm.auto: a widget or text on stderr, depending on ipywidgets).
    assert any(
        o.get("name") == "stderr" or "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs[3]
    ), outputs[3]
    assert text(4).startswith("(40, ")
    assert "Simulated answer" in text(4)
    assert "'completed'" in text(5)
