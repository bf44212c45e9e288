"""A double of the Ollama server for tests on machines where Ollama cannot be installed.

Stands for: the Ollama REST API as the official ``ollama`` Python client (>= 0.4.6) speaks it —
``GET /api/version``; ``HEAD``/``POST /api/blobs/sha256:<hex>`` (the upload's sha256 is verified, chunked bodies
accepted); ``POST /api/create`` with ``model``, ``files``, ``template``, ``system``, ``parameters``, ``quantize``
(every file digest must have been uploaded), streamed as NDJSON progress or one object; ``POST /api/generate``,
streamed or not, whose final object carries ``total_duration``, ``load_duration``, ``prompt_eval_count``,
``prompt_eval_duration``, ``eval_count`` and ``eval_duration`` in nanoseconds; ``GET /api/tags``.

It is not a model: it renders the created TEMPLATE the way Ollama does for a single request (``{{ .System }}`` and
``{{ .Prompt }}`` substituted; nothing else is supported) and keeps that text in ``rendered`` so tests can compare
it with the training prompt; its answer is the first characters of the article.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OllamaDouble:
    def __init__(self, version: str = "0.12.6", delay_s: float = 0.005, fail_create_with: str | None = None):
        self.version = version
        self.delay_s = delay_s
        self.fail_create_with = fail_create_with
        self.blobs: dict[str, int] = {}
        self.models: dict[str, dict] = {}
        self.rendered: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OllamaDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _json(self, status: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, objects) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.end_headers()
                for obj in objects:
                    self.wfile.write(json.dumps(obj).encode() + b"\n")
                    self.wfile.flush()

            def do_HEAD(self):
                double.requests.append(("HEAD", self.path))
                digest = self.path.rsplit("/", 1)[-1]
                self.send_response(200 if self.path.startswith("/api/blobs/") and digest in double.blobs else 404)
                self.end_headers()

            def do_GET(self):
                double.requests.append(("GET", self.path))
                if self.path == "/api/version":
                    return self._json(200, {"version": double.version})
                if self.path == "/api/tags":
                    now = datetime.now(timezone.utc).isoformat()
                    return self._json(200, {"models": [
                        {"name": n, "model": n, "modified_at": now, "size": 1, "digest": m["digest"],
                         "details": {"format": "safetensors", "family": "gemma3n",
                                     "quantization_level": (m.get("quantize") or "BF16").upper()}}
                        for n, m in double.models.items()]})
                return self._json(404, {"error": f"unknown path {self.path}"})

            def do_POST(self):
                double.requests.append(("POST", self.path))
                body = self._body()
                if self.path.startswith("/api/blobs/"):
                    digest = self.path.rsplit("/", 1)[-1]
                    if digest != "sha256:" + hashlib.sha256(body).hexdigest():
                        return self._json(400, {"error": "digest mismatch"})
                    double.blobs[digest] = len(body)
                    self.send_response(201)
                    self.end_headers()
                    return None
                request = json.loads(body or b"{}")
                if self.path == "/api/create":
                    return self._create(request)
                if self.path == "/api/generate":
                    return self._generate(request)
                return self._json(404, {"error": f"unknown path {self.path}"})

            def _create(self, request):
                if double.fail_create_with:
                    return self._json(500, {"error": double.fail_create_with})
                missing = [name for name, digest in (request.get("files") or {}).items() if digest not in double.blobs]
                if missing or not request.get("files"):
                    return self._json(400, {"error": f"file(s) not uploaded: {missing}"})
                name = request["model"] if ":" in request["model"] else request["model"] + ":latest"
                manifest = json.dumps(request, sort_keys=True).encode()
                double.models[name] = {**request, "digest": hashlib.sha256(manifest).hexdigest()}
                statuses = ["parsing safetensors", "converting model"]
                if request.get("quantize"):
                    statuses.append(f"quantizing BF16 model to {request['quantize'].upper()}")
                statuses += ["writing manifest", "success"]
                if request.get("stream", True):
                    return self._stream({"status": s} for s in statuses)
                return self._json(200, {"status": "success"})

            def _generate(self, request):
                name = request["model"] if ":" in request["model"] else request["model"] + ":latest"
                if name not in double.models:
                    return self._json(404, {"error": f"model '{request['model']}' not found"})
                model = double.models[name]
                started = time.perf_counter_ns()
                rendered = model["template"].replace("{{ .System }}", request.get("system") or model.get("system") or "")
                rendered = rendered.replace("{{ .Prompt }}", request.get("prompt", ""))
                double.rendered.append(rendered)
                time.sleep(double.delay_s)
                answer = request.get("prompt", "")[:12]
                total = time.perf_counter_ns() - started
                final = {"model": name, "created_at": datetime.now(timezone.utc).isoformat(), "response": "",
                         "done": True, "done_reason": "stop", "total_duration": total, "load_duration": total // 10,
                         "prompt_eval_count": len(rendered), "prompt_eval_duration": total // 5,
                         "eval_count": len(answer), "eval_duration": total // 2}
                if request.get("stream", True):
                    pieces = [{"model": name, "created_at": final["created_at"], "response": ch, "done": False}
                              for ch in answer]
                    return self._stream([*pieces, final])
                return self._json(200, {**final, "response": answer})

        return Handler
