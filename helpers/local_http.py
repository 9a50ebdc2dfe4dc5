"""A local web server with a fixed delay per request.

The lecture notes' I/O-bound example downloads real web sites. Lecture 04
serves its "web sites" from this server instead: it listens on 127.0.0.1 (a
free port chosen by the OS), so it works without internet, and every response
waits exactly ``delay`` seconds, so comparisons of sequential, pool and thread
fetching are reproducible.

Usage::

    with DelayServer(delay=0.05) as server:
        urls = [server.url(f"/site{i}") for i in range(6)]
        ...  # fetch them from pool workers

The function that fetches a page is lecture 04's own worker (``fetch`` in its
``%%writefile pool_workers.py`` cell): it is the code being taught, so it is on
the page, not here.

The server runs in a background thread of the process that starts it (one
thread per request, so concurrent requests wait their delays at the same time)
and is stopped when the ``with`` block ends.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _DelayHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - name fixed by http.server
        server = self.server
        with server.count_lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            server.requests += 1
        try:
            time.sleep(server.delay)
        finally:
            with server.count_lock:
                server.in_flight -= 1
        body = f"page {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep notebook output clean: no access log on stderr


class DelayServer:
    """HTTP server on 127.0.0.1 that answers every GET after ``delay`` seconds."""

    def __init__(self, delay: float = 0.05, host: str = "127.0.0.1"):
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self.delay = delay
        self.host = host
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        return self._httpd.server_address[1]

    @property
    def requests(self) -> int:
        """Requests served so far."""
        return self._httpd.requests if self._httpd else 0

    @property
    def max_in_flight(self) -> int:
        """The most requests this server was serving at one moment."""
        return self._httpd.max_in_flight if self._httpd else 0

    def reset_counts(self) -> None:
        """Zero ``requests`` and ``max_in_flight`` (between two measurements)."""
        with self._httpd.count_lock:
            self._httpd.requests = self._httpd.max_in_flight = 0

    def url(self, path: str = "/") -> str:
        """Full URL of ``path`` on this server."""
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{self.host}:{self.port}{path}"

    def start(self) -> DelayServer:
        if self._httpd is not None:
            raise RuntimeError("server already running")
        httpd = ThreadingHTTPServer((self.host, 0), _DelayHandler)
        httpd.daemon_threads = True
        httpd.delay = self.delay
        # Counters read by the notebook: how many requests arrived, and the most
        # that were being served at the same moment.
        httpd.count_lock = threading.Lock()
        httpd.in_flight = httpd.max_in_flight = httpd.requests = 0
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="DelayServer", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (safe to call twice)."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> DelayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
