"""The record ``run`` keeps of what it has submitted, so ``resume`` never submits twice.

Each part carries an idempotency key chosen before its batch is created: a crash between
"create" and "record the batch id" is resumed by creating again with the same key, which
the service answers with the batch already made.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1


@dataclass
class Part:
    path: str
    lines: int
    bytes: int
    idempotency_key: str = field(default_factory=lambda: f"fastrouter-batch-run-{uuid.uuid4()}")
    file_id: str | None = None
    batch_id: str | None = None


@dataclass
class Manifest:
    path: Path
    endpoint: str
    metadata: dict[str, str] | None
    work_dir: str
    parts: list[Part]
    created_at: float = field(default_factory=time.time)
    #: A temporary work directory (no manifest path given): removed with the results.
    owns_work_dir: bool = False

    def save(self) -> None:
        """Atomically: a crash leaves the previous version or this one, never half."""
        data: dict[str, Any] = {
            "version": VERSION,
            "endpoint": self.endpoint,
            "metadata": self.metadata,
            "work_dir": self.work_dir,
            "created_at": self.created_at,
            "parts": [asdict(p) for p in self.parts],
        }
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            # Not even a half-written copy aside: the previous version stays as it was.
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a fastrouter-batch manifest ({e})") from None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("parts"), list):
            raise ValueError(f"{path}: not a fastrouter-batch manifest (version {VERSION})")
        try:
            parts = [Part(**p) for p in data["parts"]]
            return cls(
                path=path,
                endpoint=data["endpoint"],
                metadata=data.get("metadata"),
                work_dir=data["work_dir"],
                parts=parts,
                created_at=data.get("created_at", time.time()),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a fastrouter-batch manifest (bad or missing field: {e})") from None
