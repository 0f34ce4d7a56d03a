"""Checks the wheel and sdist in DIR (default dist/) as a PyPI user would meet them.

- `auditwheel show`: the wheel is manylinux, for glibc 2.28 or older, and its file name
  carries that tag;
- the extension module is stripped (no symbol table, no debug sections);
- LICENSE ships in the wheel and the sdist; the metadata has the license, Python
  3.10-3.14 and OS classifiers, project URLs and keywords, and only user-facing extras;
- a fresh virtualenv installs the wheel (dependencies from the registry) and, from a
  folder outside the source tree, imports it, validates, runs a batch on the embedded
  engine and runs the CLI.

Exit 0 when all hold; otherwise the failures are listed and the exit code is 1.
"""

from __future__ import annotations

import email
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

MAX_GLIBC = (2, 28)
PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]

SMOKE = """
import json, fastrouter_batch as fb, openai
line = {"custom_id": "r1", "provider": "openai", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}}
data = (json.dumps(line) + "\\n").encode()
assert fb.validate(data).ok
with fb.LocalServer() as server:
    c = openai.OpenAI(base_url=server.url + "/v1", api_key=server.api_key)
    f = c.files.create(file=("in.jsonl", data), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    import time
    deadline = time.monotonic() + 30
    while b.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        b = c.batches.retrieve(b.id)
    assert b.status == "completed", b
print(fb.__file__)
"""


def elf_section_names(data: bytes) -> list[str]:
    """Section names of a 64-bit little-endian ELF file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off, strtab_size = headers[shstrndx][4], headers[shstrndx][5]
    strtab = data[strtab_off : strtab_off + strtab_size]
    return [strtab[h[0] : strtab.index(b"\0", h[0])].decode() for h in headers]


def main(dist: Path) -> list[str]:
    problems: list[str] = []
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"expected one wheel and one sdist in {dist}, found {wheels + sdists}"]
    wheel, sdist = wheels[0].resolve(), sdists[0].resolve()
    print(f"wheel: {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB); sdist: {sdist.name}")

    # The platform tag, as auditwheel sees the binary.
    shown = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True)
    print(shown.stdout.strip())
    tag = re.search(r'platform tag:\s*"(manylinux_(\d+)_(\d+)_x86_64)"', " ".join(shown.stdout.split()))
    if shown.returncode != 0 or not tag:
        problems.append(f"auditwheel show found no manylinux tag: {shown.stdout} {shown.stderr}")
    else:
        glibc = (int(tag.group(2)), int(tag.group(3)))
        if glibc > MAX_GLIBC:
            problems.append(f"the wheel needs glibc {glibc[0]}.{glibc[1]}, newer than {MAX_GLIBC}")
        if tag.group(1) not in wheel.name and not (glibc == (2, 17) and "manylinux2014" in wheel.name):
            problems.append(f"the file name does not carry the tag {tag.group(1)}")

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        modules = [n for n in names if n.endswith(".so")]
        if len(modules) != 1:
            problems.append(f"expected one extension module, found {modules}")
        else:
            so = z.read(modules[0])
            sections = elf_section_names(so)
            unstripped = [s for s in sections if s == ".symtab" or s.startswith(".debug")]
            print(f"{modules[0]}: {len(so) / 1e6:.1f} MB, sections {len(sections)}")
            if unstripped:
                problems.append(f"{modules[0]} is not stripped: it has {unstripped}")
        if not any(re.search(r"\.dist-info/(licenses/)?LICENSE$", n) for n in names):
            problems.append("no LICENSE in the wheel's .dist-info")
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(z.read(metadata_name))
    with tarfile.open(sdist) as t:
        if not any(re.fullmatch(r"[^/]+/LICENSE", m) for m in t.getnames()):
            problems.append("no LICENSE at the top of the sdist")

    classifiers = metadata.get_all("Classifier") or []
    wanted = ["License :: OSI Approved :: MIT License", "Operating System :: POSIX :: Linux"]
    wanted += [f"Programming Language :: Python :: {v}" for v in PYTHONS]
    problems += [f"classifier missing: {c}" for c in wanted if c not in classifiers]
    if not any(c.startswith("Development Status ::") for c in classifiers):
        problems.append("no Development Status classifier")
    if not metadata.get_all("Project-URL"):
        problems.append("no project URLs")
    if not metadata.get("Keywords"):
        problems.append("no keywords")
    extras = set(metadata.get_all("Provides-Extra") or [])
    # User-facing extras only (test and bench tools are dependency groups, not extras).
    if extras != {"notebook", "pandas", "polars"}:
        problems.append(f"user-facing extras are {sorted(extras)}, expected notebook, pandas and polars only")

    # A fresh virtualenv, as a user gets it.
    with tempfile.TemporaryDirectory(prefix="wheel-check-") as tmp:
        venv = Path(tmp) / "venv"
        python = venv / "bin" / "python"
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", str(wheel), "openai"],
            [str(python), "-c", SMOKE],
            [str(venv / "bin" / "fastrouter-batch"), "--help"],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, cwd=tmp, timeout=600)
            if done.returncode != 0:
                problems.append(f"{' '.join(step[:3])}... failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
                break
            if step[-1] == SMOKE:
                where = done.stdout.strip()
                if not where.startswith(str(venv)):
                    problems.append(f"imported fastrouter_batch from {where}, not from the fresh virtualenv")
                else:
                    print(f"fresh virtualenv: installed, imported from {where}, ran a batch, CLI answers")
    return problems


if __name__ == "__main__":
    found = main(Path(sys.argv[1] if len(sys.argv) > 1 else "dist"))
    for p in found:
        print(f"wheel check: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)
