"""A loopback server answering exactly the shapes FastRouter's API reference documents
(docs.fastrouter.ai, api-reference/batch-processing; /work/shared/CONTRACT.md), and only
those fields: the hosted service as our client will meet it, not as our engine answers.

- Upload (`POST /v1/files`) answers `file_id` (no `id`), `object`, `bytes`, `created_at`,
  `filename`, `purpose`, `num_rows`, `url`.
- Trigger (`POST /v1/batches`) and status (`GET /v1/batches/{id}`) answer `batch_id` (no
  `id`), `object`, `endpoint`, `status`, `created_at`, `input_file_id`, `completion_window`,
  and once known `output_file_id`, `error_file_id`, `request_counts`; a batch that failed
  validation carries `errors` as a bare list (as some OpenAI-compatible servers send it).
- A batch runs `validating` -> `in_progress` -> `completed` over its status checks
  (`polls_to_finish`); its output lines answer every request with a `chat.completion`.
- A file holding the text `FAIL_VALIDATION` makes a batch that ends `failed`.
- `insufficient_credits=True`: every trigger answers 402, FastRouter's error body.
- `GET /v1/batches` (OpenAI-compatible) lists batches whose items carry only `batch_id`.

Runs in a thread on 127.0.0.1; `requests` records (method, path) of every request.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RefServer:
    def __init__(self, *, polls_to_finish: int = 2, insufficient_credits: bool = False, api_key: str = "sk-v1-ref"):
        self.polls_to_finish = polls_to_finish
        self.insufficient_credits = insufficient_credits
        self.api_key = api_key
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> RefServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    # The documented answers.

    def _upload(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{next(self._ids):06d}"
        self.files[file_id] = content
        return {
            "file_id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "num_rows": sum(1 for line in content.splitlines() if line.strip()),
            "url": f"s3://fastrouter-batch-files/{file_id}.jsonl",
        }

    def _trigger(self, body: dict[str, Any]) -> dict[str, Any]:
        batch_id = f"fr_batch-{next(self._ids):06d}"
        self.batches[batch_id] = {
            "batch_id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "status": "validating",
            "created_at": int(time.time()),
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "_polls": 0,
        }
        return self._shown(self.batches[batch_id])

    @staticmethod
    def _shown(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _status(self, batch_id: str) -> dict[str, Any] | None:
        batch = self.batches.get(batch_id)
        if batch is None:
            return None
        if batch["status"] in ("validating", "in_progress"):
            batch["_polls"] += 1
            content = self.files[batch["input_file_id"]]
            lines = [json.loads(x) for x in content.splitlines() if x.strip()]
            if b"FAIL_VALIDATION" in content:
                batch["status"] = "failed"
                batch["errors"] = [{"code": "invalid_request", "line": 1, "message": "FAIL_VALIDATION found"}]
            elif batch["_polls"] >= self.polls_to_finish:
                batch["status"] = "completed"
                batch["output_file_id"] = self._output(batch_id, lines)
                batch["error_file_id"] = None
                batch["request_counts"] = {"total": len(lines), "completed": len(lines), "failed": 0}
            else:
                batch["status"] = "in_progress"
                batch["request_counts"] = {"total": len(lines), "completed": 0, "failed": 0}
        return self._shown(batch)

    def _output(self, batch_id: str, lines: list[dict[str, Any]]) -> str:
        out = []
        for i, line in enumerate(lines):
            text = f"answer to {line['custom_id']}"
            completion = {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": line["body"]["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            }
            out.append(
                json.dumps(
                    {
                        "id": f"batch_req_{i}",
                        "custom_id": line["custom_id"],
                        "response": {"status_code": 200, "request_id": f"req_{i}", "body": completion},
                        "error": None,
                    }
                )
            )
        file_id = f"file-{next(self._ids):06d}"
        self.files[file_id] = ("\n".join(out) + "\n").encode()
        return file_id

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, kind: str, code: str) -> None:
                self._answer(status, {"error": {"message": message, "type": kind, "code": code, "status": status}})

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _route(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                body = self._body() if method == "POST" else b""
                with server._lock:
                    server.requests.append((method, path))
                    if self.headers.get("Authorization") != f"Bearer {server.api_key}":
                        return self._error(401, "Invalid API key", "authentication_error", "invalid_api_key")
                    if method == "POST" and path == "/v1/files":
                        return self._answer(200, server._upload(*_multipart(self.headers, body)))
                    if method == "POST" and path == "/v1/batches":
                        if server.insufficient_credits:
                            return self._error(
                                402, "Insufficient credits: add credits to run batches", "billing_error", "402"
                            )
                        return self._answer(200, server._trigger(json.loads(body)))
                    if method == "GET" and path == "/v1/batches":
                        data = [server._shown(b) for b in reversed(list(server.batches.values()))]
                        return self._answer(200, {"object": "list", "data": data, "has_more": False})
                    m = re.fullmatch(r"/v1/batches/([^/]+)", path)
                    if method == "GET" and m:
                        batch = server._status(m.group(1))
                        if batch is None:
                            return self._error(404, "Batch not found", "invalid_request_error", "404")
                        return self._answer(200, batch)
                    m = re.fullmatch(r"/v1/files/([^/]+)/content", path)
                    if method == "GET" and m and m.group(1) in server.files:
                        return self._answer(200, server.files[m.group(1)], "application/octet-stream")
                    return self._error(404, f"Not found: {method} {path}", "invalid_request_error", "404")

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler


def _multipart(headers: Any, body: bytes) -> tuple[bytes, str, str]:
    """The `file` part's content and filename, and the `purpose` part, of a form."""
    boundary = re.search(r'boundary="?([^";]+)"?', headers["Content-Type"]).group(1).encode()
    content, filename, purpose = b"", "", "batch"
    for part in body.split(b"--" + boundary):
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        value = value[:-2] if value.endswith(b"\r\n") else value
        name = re.search(rb'name="([^"]*)"', head)
        if name and name.group(1) == b"file":
            content = value
            fn = re.search(rb'filename="([^"]*)"', head)
            filename = fn.group(1).decode() if fn else "upload.jsonl"
        elif name and name.group(1) == b"purpose":
            purpose = value.decode()
    return content, filename, purpose
