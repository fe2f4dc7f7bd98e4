"""A fake OpenAI-compatible chat endpoint on loopback, for the judge tests and the judged tasks' tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def user_text(body: dict[str, Any]) -> str:
    """The text of the request's user turn (a plain string, or the text parts of a content list)."""
    content = next(m for m in body["messages"] if m["role"] == "user")["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part["type"] == "text")


def user_images(body: dict[str, Any]) -> list[str]:
    """The data URLs of the user turn's ``image_url`` parts, in order."""
    content = next(m for m in body["messages"] if m["role"] == "user")["content"]
    if isinstance(content, str):
        return []
    return [part["image_url"]["url"] for part in content if part["type"] == "image_url"]


class FakeServer:
    """Answers /chat/completions with ``reply(prompt)`` (the user turn's text, also when it comes as content
    parts with images); ``mode`` switches to failures; ``fail_next`` lists HTTP statuses to answer first, one
    per call; ``delay_s`` waits before answering; ``bodies`` keeps every request body."""

    def __init__(self):
        self.calls = 0
        self.bodies: list[dict] = []
        self.mode = "ok"
        self.reply = lambda prompt: "B"
        self.auth = []
        self.fail_next: list[int] = []
        self.delay_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.calls += 1
                outer.auth.append(self.headers.get("Authorization"))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                if outer.mode == "error" or outer.fail_next:
                    self.send_response(outer.fail_next.pop(0) if outer.fail_next else 500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if outer.mode == "slow":
                    time.sleep(0.5)
                time.sleep(outer.delay_s)
                text = outer.reply(user_text(body))
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}],
                                   "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
