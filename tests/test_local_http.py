"""Tests of the local delay server (helpers/local_http.py), fetched from with the
tests' stand-in for lecture 04's fetch worker."""

import threading
import urllib.error

import pytest
from pool_test_workers import fetch

from helpers.local_http import DelayServer
from helpers.timing import now


@pytest.mark.start_method_independent
def test_serves_pages_on_loopback_after_the_delay():
    with DelayServer(delay=0.05) as server:
        url = server.url("/site1")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/site1")
        start = now()
        got_url, status, body = fetch(url)
        assert now() - start >= 0.05
        assert (got_url, status, body) == (url, 200, "page /site1\n")
        assert server.requests == 1


@pytest.mark.start_method_independent
def test_url_adds_the_leading_slash():
    with DelayServer(delay=0) as server:
        assert server.url("x") == server.url("/x")


@pytest.mark.start_method_independent
def test_requests_are_served_concurrently():
    # Four requests sent at once, each held 0.3 s by the server: a threaded
    # server has more than one in flight at the same moment.
    with DelayServer(delay=0.3) as server:
        threads = [threading.Thread(target=fetch, args=(server.url(f"/{i}"),)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert server.requests == 4
        assert server.max_in_flight > 1
        server.reset_counts()
        assert server.requests == 0 and server.max_in_flight == 0


@pytest.mark.start_method_independent
def test_stop_closes_the_port_and_can_be_called_twice():
    server = DelayServer(delay=0).start()
    url = server.url("/")
    server.stop()
    server.stop()
    with pytest.raises(urllib.error.URLError):
        fetch(url, timeout=5)
    with pytest.raises(RuntimeError):
        _ = server.port


@pytest.mark.start_method_independent
def test_start_twice_and_negative_delay_are_errors():
    with pytest.raises(ValueError):
        DelayServer(delay=-1)
    with DelayServer(delay=0) as server:
        with pytest.raises(RuntimeError):
            server.start()


