"""Shared fixtures for provider tests: requests, tiny real scripts, and a local Responses stub."""

from __future__ import annotations

import json
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vsm_actors.core.model.node import ModelSpec
from vsm_actors.providers import ModelRequest

CANNED_RESPONSE = {
    "id": "resp_stub_1",
    "object": "response",
    "created_at": 1767225600,
    "status": "completed",
    "model": "gpt-5.5",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "content": [
                {"type": "output_text", "text": "stub says hello", "annotations": []},
                {"type": "output_text", "text": "second part", "annotations": []},
            ],
        },
    ],
    "usage": {"input_tokens": 42, "output_tokens": 7, "total_tokens": 49},
}


def make_request(*, task_id: str = "task-1", node_id: str = "coder", model: ModelSpec | None = None,
                 **metadata: str) -> ModelRequest:
    """A request shaped like the prompt builder's: node and task ids in the metadata."""
    return ModelRequest(
        model=model or ModelSpec(provider="test", model="unbound"),
        instructions="You are an operational leaf.\nDo the task.",
        input='{\n  "id": "%s",\n  "title": "Fix the bug"\n}' % task_id,
        metadata={"node_id": node_id, "node_name": node_id.title(), "task_id": task_id, **metadata},
    )


def write_script(directory: Path, name: str, body: str) -> Path:
    """Write an executable Python script whose shebang is this interpreter."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a killed orphan waits as a zombie for init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


class ResponsesStub:
    """A local Responses API: queue (status, body) replies; records every request."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.requests: list[dict[str, object]] = []
        self.replies: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def reply(self, status: int, body: object) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        with self.lock:
            self.replies.append((status, text))

    def next_reply(self) -> tuple[int, str]:
        with self.lock:
            return self.replies.pop(0) if self.replies else (200, json.dumps(CANNED_RESPONSE))


def _handler(stub_ref: list[ResponsesStub]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            stub = stub_ref[0]
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            stub.requests.append({
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "json": json.loads(body or b"null"),
            })
            status, text = (404, '{"error": "not found"}') if self.path != "/v1/responses" else stub.next_reply()
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep test output clean

    return Handler


@pytest.fixture
def responses_stub() -> Iterator[ResponsesStub]:
    """Serve a canned Responses API on 127.0.0.1 (an OS-chosen port) for one test."""
    ref: list[ResponsesStub] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    server.daemon_threads = True
    ref.append(ResponsesStub(server))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield ref[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # An inherited HTTP(S)_PROXY would send the stub's loopback traffic elsewhere.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


FAKE_CODEX = r'''
import json, os, sys
prompt = sys.stdin.read()
record = os.environ.get("FAKE_CODEX_RECORD")
if record:
    with open(record, "w") as fh:
        json.dump({"argv": sys.argv[1:], "stdin": prompt, "cwd": os.getcwd(),
                   "codex_api_key": os.environ.get("CODEX_API_KEY")}, fh)
key = os.environ.get("CODEX_API_KEY", "")
def emit(event):
    print(json.dumps(event), flush=True)
print("codex 0.0-fake starting (not json)")
emit({"type": "thread.started", "thread_id": "th_1"})
emit({"type": "turn.started"})
if "MODE=turn_failed" in prompt:
    emit({"type": "turn.failed", "error": {"message": "model refused: " + key}})
    sys.exit(0)
if "MODE=exit_error" in prompt:
    sys.stderr.write("fatal: sandbox setup failed; key=" + key + "\n")
    sys.exit(2)
if "MODE=plain" in prompt:
    print("plain final answer")
    sys.exit(0)
emit({"type": "item.completed", "item": {"id": "i0", "type": "reasoning", "text": "thinking"}})
emit({"type": "item.completed", "item": {"id": "i1", "type": "command_execution",
      "command": "pytest", "exit_code": 0, "path": "not/a/file/item"}})
emit({"type": "item.completed", "item": {"id": "i2", "type": "file_change", "status": "completed",
      "changes": [{"path": "src/b.py", "kind": "update"}, {"path": "src/a.py", "kind": "add"},
                  {"path": "src/b.py", "kind": "update"}]}})
emit({"type": "item.completed", "item": {"id": "i3", "type": "agent_message", "text": "Done: fixed the bug."}})
if "MODE=no_usage" not in prompt:
    emit({"type": "turn.completed", "usage": {"input_tokens": 1200, "cached_input_tokens": 1000,
          "output_tokens": 300, "reasoning_output_tokens": 50}})
sys.stderr.write("warning: something harmless; key=" + key + "\n")
'''


@pytest.fixture
def fake_codex(tmp_path: Path) -> Path:
    """A stand-in `codex` executable that records argv/stdin/env and prints canned JSONL events."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return write_script(bin_dir, "codex", FAKE_CODEX)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


__all__ = ["CANNED_RESPONSE", "ResponsesStub", "is_running", "make_request", "write_script"]
