"""The README a newcomer reads first: it starts with the install, and its quickstart runs
as written (extracted from the README and run in a fresh process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"no '## {title}' section"
    return match.group(1)


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def test_the_readme_starts_with_the_install():
    text = README.read_text(encoding="utf-8")
    first_section = re.search(r"^## (.+)$", text, re.M)
    assert first_section and first_section.group(1) == "Install"
    install = code_blocks(section("Install"), "sh")[0].splitlines()
    assert install[0] == "pip install fastrouter-batch"
    for extra in ("pandas", "polars", "notebook"):
        assert any(line.startswith(f'pip install "fastrouter-batch[{extra}]"') for line in install), extra
    # The developer's two commands are still there, further down.
    dev = section("Development")
    assert "make demo" in dev and "make test" in dev


def test_the_quickstart_runs_as_written(tmp_path):
    (code,) = code_blocks(section("Quickstart"), "python")
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(" ", 2)[:2] for line in lines] == [["sum", "True"], ["series", "True"]], proc.stdout
    assert all(len(line.split(" ", 2)[2]) > 0 for line in lines), proc.stdout  # an answer each
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the working directory
