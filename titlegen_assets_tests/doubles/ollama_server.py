"""A double of the Ollama server for tests on machines where Ollama cannot be installed.

Stands for: the Ollama REST API as the official ``ollama`` Python client (>= 0.4.6) speaks it —
``GET /api/version``; ``HEAD``/``POST /api/blobs/sha256:<hex>`` (the upload's sha256 is verified, chunked bodies
accepted); ``POST /api/create`` with ``model``, ``files``, ``template``, ``system``, ``parameters``, ``quantize``
(every file digest must have been uploaded), streamed as NDJSON progress or one object; ``POST /api/generate``,
streamed or not, whose final object carries ``total_duration``, ``load_duration``, ``prompt_eval_count``,
``prompt_eval_duration``, ``eval_count`` and ``eval_duration`` in nanoseconds, and ``done_reason`` ("stop" at a stop
sequence or end of generation, "length" at ``num_predict``); ``GET /api/tags``; ``POST /api/show``, whose
``modelfile`` names the weights as ``FROM <models>/blobs/sha256-<hex>`` the way ``server/routes.go`` formats it.

``/api/create`` follows ``server/create.go`` of the 0.12 releases (read from ollama/ollama): the files are a GGUF
(by the ``.gguf`` name or the ``GGUF`` magic) or a safetensors folder (converted to an F16 GGUF); ``quantize`` is
upper-cased and parsed like ``ggml.ParseFileType`` (F32, F16, Q4_K_S, Q4_K_M, Q8_0, BF16), and only an F16 or F32
model may be quantized: a quantized or BF16 GGUF gets "quantization is only supported for F16 and F32 models".
Failures after the request is accepted arrive as an ``{"error": ...}`` line of the stream, as Ollama sends them.

It renders the created TEMPLATE the way Ollama does for a single request (``{{ .System }}`` and ``{{ .Prompt }}``
substituted; nothing else is supported) and keeps that text in ``rendered`` so tests can compare it with the training
prompt. It answers from llama.cpp's llama-server running the created model's GGUF blob (the runtime Ollama used for
GGUF models before its own engine), with the model's PARAMETERs (temperature, top_k, num_predict, stop), overridden
by the request's ``options`` as Ollama merges them. So a check that scores the model through Ollama's API here scores
the real file; Ollama's own engine is checked wherever a real server runs (README).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OllamaDouble:
    def __init__(self, version: str = "0.12.6", delay_s: float = 0.005, fail_create_with: str | None = None,
                 bind: tuple[str, int] = ("127.0.0.1", 0), answer_filter=None):
        """``answer_filter`` (text -> text) stands for an engine that answers otherwise than llama.cpp (Ollama runs
        some architectures on its own): what the served check must catch."""
        self.version = version
        self.answer_filter = answer_filter or (lambda text: text)
        self.delay_s = delay_s
        self.fail_create_with = fail_create_with
        self.blobs: dict[str, int] = {}
        self._blob_dir = tempfile.TemporaryDirectory(prefix="ollama-double-blobs-")
        self.models: dict[str, dict] = {}
        self.rendered: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self._runners: dict = {}  # blob digest -> a started LlamaServer
        self._runners_lock = threading.Lock()
        self._server = ThreadingHTTPServer(bind, self._handler())
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
        for runner in self._runners.values():
            runner.__exit__(None, None, None)
        self._blob_dir.cleanup()

    def runner(self, digest: str):
        """llama-server on the blob, started on first use (Ollama loads a model on its first request)."""
        from titlegen_assets.evaluation.llama_server import LlamaServer

        with self._runners_lock:
            if digest not in self._runners:
                self._runners[digest] = LlamaServer(self.blob_path(digest), start_timeout_s=300).__enter__()
            return self._runners[digest]

    def model_blob(self, model: dict) -> str:
        """The digest of the created model's GGUF file."""
        return next(digest for name, digest in model["files"].items()
                    if name.endswith(".gguf") or self.blob_path(digest).open("rb").read(4) == b"GGUF")

    def blob_path(self, digest: str):
        from pathlib import Path

        return Path(self._blob_dir.name) / digest.replace(":", "-")

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
                         "details": {"format": "gguf", "family": "gemma3n", "quantization_level": m["file_type"]}}
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
                    double.blob_path(digest).write_bytes(body)
                    self.send_response(201)
                    self.end_headers()
                    return None
                request = json.loads(body or b"{}")
                if self.path == "/api/create":
                    return self._create(request)
                if self.path == "/api/generate":
                    return self._generate(request)
                if self.path == "/api/show":
                    return self._show(request)
                return self._json(404, {"error": f"unknown path {self.path}"})

            def _create(self, request):
                if double.fail_create_with:
                    return self._json(500, {"error": double.fail_create_with})
                files = request.get("files") or {}
                missing = [name for name, digest in files.items() if digest not in double.blobs]
                if missing or not files:
                    return self._json(400, {"error": f"file(s) not uploaded: {missing}"})
                ggufs = [double.blob_path(digest) for name, digest in files.items()
                         if name.endswith(".gguf") or double.blob_path(digest).open("rb").read(4) == b"GGUF"]
                if ggufs:
                    statuses, file_type = ["parsing GGUF"], gguf_file_type(ggufs[0])
                else:
                    statuses, file_type = ["converting model"], "F16"
                quantize = (request.get("quantize") or "").upper()
                error = None
                if quantize and quantize not in PARSED_FILE_TYPES:
                    error = (f"unsupported quantization type {quantize} - supported types are "
                             "F32, F16, Q4_K_S, Q4_K_M, Q8_0")
                elif quantize and file_type not in ("F16", "F32"):
                    error = "quantization is only supported for F16 and F32 models"
                elif quantize and quantize != file_type:
                    statuses.append(f"quantizing {file_type} model to {quantize}")
                    file_type = quantize
                if error is None:
                    name = request["model"] if ":" in request["model"] else request["model"] + ":latest"
                    manifest = json.dumps(request, sort_keys=True).encode()
                    double.models[name] = {**request, "digest": hashlib.sha256(manifest).hexdigest(),
                                           "file_type": file_type}
                    statuses += ["writing manifest", "success"]
                progress = [{"status": s} for s in statuses] + ([{"error": error}] if error else [])
                if request.get("stream", True):
                    return self._stream(progress)
                return self._json(500 if error else 200, progress[-1])

            def _show(self, request):
                name = request["model"] if ":" in request["model"] else request["model"] + ":latest"
                if name not in double.models:
                    return self._json(404, {"error": f"model '{request['model']}' not found"})
                model = double.models[name]
                blob = double.model_blob(model).replace(":", "-")
                modelfile = (f'# Modelfile generated by "ollama show"\nFROM /root/.ollama/models/blobs/{blob}\n'
                             f'TEMPLATE """{model["template"]}"""\n')
                return self._json(200, {"modelfile": modelfile, "template": model["template"],
                                        "parameters": "", "details": {"format": "gguf"},
                                        "model_info": {"general.file_type": model["file_type"]},
                                        "modified_at": datetime.now(timezone.utc).isoformat()})

            def _generate(self, request):
                name = request["model"] if ":" in request["model"] else request["model"] + ":latest"
                if name not in double.models:
                    return self._json(404, {"error": f"model '{request['model']}' not found"})
                model = double.models[name]
                rendered = model["template"].replace("{{ .System }}", request.get("system") or model.get("system") or "")
                rendered = rendered.replace("{{ .Prompt }}", request.get("prompt", ""))
                double.rendered.append(rendered)
                options = {**(model.get("parameters") or {}), **(request.get("options") or {})}
                time.sleep(double.delay_s)
                started = time.perf_counter_ns()
                answer = double.runner(double.model_blob(model)).complete(
                    rendered, options.get("num_predict", -1), timeout_s=600,
                    sampling={key: options[key] for key in ("temperature", "top_k", "repeat_penalty", "stop")
                              if key in options})
                total = time.perf_counter_ns() - started
                timings = answer.get("timings", {})
                final = {"model": name, "created_at": datetime.now(timezone.utc).isoformat(), "response": "",
                         "done": True, "done_reason": "stop" if answer.get("stop_type") in ("eos", "word") else "length",
                         "total_duration": total, "load_duration": 0,
                         "prompt_eval_count": timings.get("prompt_n", 0),
                         "prompt_eval_duration": int(timings.get("prompt_ms", 0) * 1e6),
                         "eval_count": timings.get("predicted_n", 0),
                         "eval_duration": int(timings.get("predicted_ms", 0) * 1e6)}
                text = double.answer_filter(answer["content"])
                if request.get("stream", True):
                    pieces = [{"model": name, "created_at": final["created_at"], "response": ch, "done": False}
                              for ch in text]
                    return self._stream([*pieces, final])
                return self._json(200, {**final, "response": text})

        return Handler


#: ``ggml.ParseFileType``'s names (what ``quantize`` may say, upper-cased).
PARSED_FILE_TYPES = ("F32", "F16", "Q4_K_S", "Q4_K_M", "Q8_0", "BF16")


def gguf_file_type(path) -> str:
    """``general.file_type`` of a GGUF as Ollama names it (``Q4_K_M``, ``BF16``...), read with the ``gguf`` package."""
    from gguf import GGUFReader, LlamaFileType

    field = GGUFReader(path).fields.get("general.file_type")
    return LlamaFileType(field.contents()).name.split("_", 1)[1] if field else "F32"  # ALL_F32, MOSTLY_Q4_K_M


def main() -> None:
    """Serves the double until stopped: ``python ollama_server.py --host 0.0.0.0 --port 11434`` (the Docker suite
    runs it as a service on the stack's network, titlegen_assets_tests/compose.ollama-double.yaml)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    args = parser.parse_args()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with OllamaDouble(bind=(args.host, args.port)) as double:
        print(f"Ollama double {double.version} listening on {args.host}:{args.port}", flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
