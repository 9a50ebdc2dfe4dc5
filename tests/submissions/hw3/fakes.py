"""Not submissions: misbehaving server functions for the tests of hwcheck/tcpcheck.py and
hwcheck/tcpserver_harness.py."""

def never_ready(address, workers, stop, ready, idle_timeout=5.0):
    stop.wait(60)


def raises(address, workers, stop, ready, idle_timeout=5.0):
    raise RuntimeError("boom in serve")


def not_implemented(address, workers, stop, ready, idle_timeout=5.0):
    raise NotImplementedError()


def bad_ready(address, workers, stop, ready, idle_timeout=5.0):
    ready.put("127.0.0.1:1234")
    stop.wait(60)


def answer_buffer_at_once(conn, stop, idle_timeout):
    """A handle_client that keeps a buffer but answers it only when it ends with b"\\n",
    as one line: several lines that arrive together get one answer."""
    conn.settimeout(0.1)
    buffer = b""
    while not stop.is_set():
        try:
            data = conn.recv(65536)
        except TimeoutError:
            continue
        if not data:
            return
        buffer += data
        if buffer.endswith(b"\n"):
            conn.sendall(buffer[:-1].decode("utf-8", "replace").upper().encode() + b"\n")
            buffer = b""
