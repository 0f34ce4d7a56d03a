"""The DataFrame notebook example runs headless (as test_notebook.py runs notebook.ipynb):
a DataFrame to a structured batch across both providers, joined back with typed columns,
the truncated row's error in its row only, the cache making the second run submit nothing,
and the cost summary."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")
pytest.importorskip("pydantic")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "dataframe.ipynb"


def test_dataframe_notebook_runs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    text = lambda i: "".join(  # noqa: E731
        o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in code[i].get("outputs", [])
    )
    assert "BatchResults(total=6, succeeded=6, failed=0)" in text(2)
    joined = text(3)
    assert "'sku': dtype('int64')" in joined and "'score': Int64Dtype()" in joined
    assert "does not fit Review" in joined and joined.count("does not fit") == 1
    assert "cached: 6 batches on the service: 1" in text(4)
    assert "batch cost $" in text(5) and "'anthropic/claude-4.5-haiku': ('anthropic'" in text(5)
