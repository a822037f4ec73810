"""A real HTTP server on 127.0.0.1 that answers like an OpenAI-compatible chat endpoint.

The only stand-in in the suggestion tests: it plays the outside AI service. Script replies
with `answer(...)`, `failing(...)` or `Reply(...)`; read what it received in `requests`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    hang: threading.Event | None = None  # answer only once this is set (or after `hang_for`)
    hang_for: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user_message(self) -> dict[str, Any]:
        """The JSON the worker sent as the user's message (the world excerpt)."""
        messages = self.body["messages"]
        return dict(json.loads(next(m["content"] for m in messages if m["role"] == "user")))

    @property
    def system_message(self) -> str:
        return str(next(m["content"] for m in self.body["messages"] if m["role"] == "system"))


def completion(edits: list[Any], flags: Sequence[Any] = (), model: str = "fake-model-1") -> bytes:
    content = json.dumps({"edits": edits, "flags": list(flags)})
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375},
        }
    ).encode()


def answer(edits: list[Any], flags: Sequence[Any] = ()) -> Reply:
    return Reply(200, completion(edits, flags))


def failing(status: int = 500) -> Reply:
    return Reply(status, json.dumps({"error": {"message": f"fake failure {status}"}}).encode())


@dataclass
class FakeOpenAI:
    """Replies in the order scripted; `default` once the script is used up."""

    default: Reply = field(default_factory=lambda: answer([]))
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with fake._lock:
                    fake.requests.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw or b"{}"))
                    )
                    reply = fake.replies.popleft() if fake.replies else fake.default
                if reply.hang is not None:
                    reply.hang.wait(reply.hang_for)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the worker went away while we hung: nobody to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.clear()
            self.replies.extend(replies)
            self.requests.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
