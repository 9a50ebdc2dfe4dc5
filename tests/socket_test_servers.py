"""Servers for tests/test_socket_lecture.py. They live in a module because the
server runs in a child process that imports its target under spawn."""

import socket
import subprocess
import sys
import threading
import time

POLL = 0.05


def _accept_until_stop(listener, stop):
    listener.settimeout(POLL)
    while not stop.is_set():
        try:
            yield listener.accept()[0]
        except TimeoutError:
            continue


def _answer_lines(conn, stop):
    with conn, conn.makefile("rb") as lines:
        conn.settimeout(5)
        for line in lines:
            if stop.is_set():
                return
            conn.sendall(line.upper())


def serve_sequential(address, stop, ready):
    """Upper-cases lines; one client at a time."""
    with socket.create_server(address) as listener:
        ready.put(listener.getsockname()[:2])
        for conn in _accept_until_stop(listener, stop):
            _answer_lines(conn, stop)


def serve_threads(address, stop, ready):
    """Upper-cases lines; a thread per client."""
    threads = []
    with socket.create_server(address, backlog=32) as listener:
        ready.put(listener.getsockname()[:2])
        for conn in _accept_until_stop(listener, stop):
            threads.append(threading.Thread(target=_answer_lines, args=(conn, stop)))
            threads[-1].start()
    for t in threads:
        t.join(timeout=10)


def serve_closing(address, stop, ready):
    """Accepts each client and closes the connection at once, answering nothing."""
    with socket.create_server(address) as listener:
        ready.put(listener.getsockname()[:2])
        for conn in _accept_until_stop(listener, stop):
            conn.close()


def never_ready(address, stop, ready):
    """Returns without telling anyone its address."""


def ignores_stop(address, stop, ready):
    """Reports an address, then does not look at stop."""
    with socket.create_server(address) as listener:
        ready.put(listener.getsockname()[:2])
        time.sleep(60)


def leaves_a_process(address, stop, ready):
    """Stops when asked, but leaves a process it started running."""
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with socket.create_server(address) as listener:
        ready.put(listener.getsockname()[:2])
        stop.wait(30)


def pool_then_late_worker(started, done):
    """Under forkserver: a pool of 1 at once, a second pool of 1 a second later. Until
    then two processes run below this one, its own fork server and the first worker,
    and only one of them is a worker (tests/test_hw3.py, pool_processes)."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(1) as first:
        first.map_async(abs, [0]).get(timeout=30)
        started.set()
        time.sleep(1.0)
        with ctx.Pool(1) as second:
            second.map_async(abs, [0]).get(timeout=30)
            done.wait(60)
