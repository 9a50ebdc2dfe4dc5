"""Not submissions: misbehaving serve() functions for the tests of helpers/tcpcheck.py."""

def never_ready(address, workers, stop, ready, idle_timeout=5.0):
    stop.wait(60)


def raises(address, workers, stop, ready, idle_timeout=5.0):
    raise RuntimeError("boom in serve")


def not_implemented(address, workers, stop, ready, idle_timeout=5.0):
    raise NotImplementedError()


def bad_ready(address, workers, stop, ready, idle_timeout=5.0):
    ready.put("127.0.0.1:1234")
    stop.wait(60)
