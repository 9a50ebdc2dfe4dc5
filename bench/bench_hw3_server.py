"""Homework 3's reference server (a process pool) against socketserver.ThreadingTCPServer
and an asyncio server doing the same work, side by side in one run.

    .venv/bin/python bench/bench_hw3_server.py [--duration 2] [--levels 1 4 16 64]

Every server speaks the homework's line protocol and is started the same way (in
its own process, through hwcheck.tcpserver_harness.running_server). The load comes from one
separate client process running asyncio clients, N at a time (closed loop: each
client sends its next request when the previous answer arrived), for --duration
seconds after a short warm-up. Two workloads:

* ``connection per request``: connect, send one line, read the answer, close (the
  notes' homework: "a client connects, sends some data, gets it back upper-cased");
* ``persistent``: each client keeps one connection open and sends line after line.

Printed: requests/s, p50 and p99 latency, and how many of the N clients got at
least one answer. Saved: bench/results/hw3_server.{json,png}. The reference solution
is read from source/hw3/hw3.ipynb (the instructor's answer cell).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socketserver
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.timing import machine_summary  # noqa: E402
from hwcheck import context  # noqa: E402
from hwcheck.tcpserver_harness import running_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LINE = "hello, world: 你好世界 straße\n".encode()
EXPECTED = LINE.decode().upper().encode()


def load_reference():
    """Import the reference solution from the source notebook's %%writefile cell."""
    nb = json.loads((ROOT / "source" / "hw3" / "hw3.ipynb").read_text())
    (text,) = [
        "".join(c["source"])
        for c in nb["cells"]
        if "".join(c["source"]).startswith("%%writefile hw3_server.py")
    ]
    folder = Path(tempfile.mkdtemp(prefix="hw3_bench_"))
    (folder / "hw3_reference.py").write_text(text.split("\n", 1)[1])
    sys.path.insert(0, str(folder))  # spawn/forkserver children inherit sys.path
    import hw3_reference

    return hw3_reference


def _respond(line: bytes) -> bytes:
    try:
        return line.decode("utf-8").upper().encode("utf-8") + b"\n"
    except UnicodeDecodeError:
        return b"ERROR invalid UTF-8\n"


# ------------------------------------------------------------------ comparison servers


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            for line in self.rfile:
                self.wfile.write(_respond(line.rstrip(b"\n")))
        except OSError:
            pass


class _Threading(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve_threads(address, workers, stop, ready, idle_timeout=5.0):
    """socketserver.ThreadingTCPServer: one thread per connection (``workers`` unused)."""
    with _Threading(address, _Handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
        thread.start()
        ready.put(server.server_address[:2])
        stop.wait()
        server.shutdown()
        thread.join(10)


def serve_asyncio(address, workers, stop, ready, idle_timeout=5.0):
    """asyncio.start_server: one thread, one event loop (``workers`` unused)."""

    async def handle(reader, writer):
        try:
            while line := await reader.readline():
                writer.write(_respond(line.rstrip(b"\n")))
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, *address, backlog=128)
        ready.put(server.sockets[0].getsockname()[:2])
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        server.close()

    asyncio.run(main())


# ------------------------------------------------------------------ the load


async def _client(address, mode, t_start, t_end, latencies, served, index):
    timeout = 5.0
    if mode == "persistent":
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
        except (OSError, asyncio.TimeoutError):
            return
        try:
            while (t0 := time.perf_counter()) < t_end:
                writer.write(LINE)
                try:
                    answer = await asyncio.wait_for(reader.readline(), t_end - t0)
                except asyncio.TimeoutError:
                    return  # no answer before the end: counted as not served
                if answer != EXPECTED:
                    return
                served.add(index)
                if t0 >= t_start:
                    latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()
    else:
        while (t0 := time.perf_counter()) < t_end:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), timeout)
                writer.write(LINE)
                answer = await asyncio.wait_for(reader.readline(), timeout)
                writer.close()
            except (OSError, asyncio.TimeoutError):
                continue
            if answer == EXPECTED and time.perf_counter() <= t_end:
                served.add(index)
                if t0 >= t_start:
                    latencies.append(time.perf_counter() - t0)


def client_main(address, concurrency, mode, warmup, duration, results):
    async def run():
        latencies, served = [], set()
        t_start = time.perf_counter() + warmup
        t_end = t_start + duration
        await asyncio.gather(
            *(
                _client(address, mode, t_start, t_end, latencies, served, i)
                for i in range(concurrency)
            )
        )
        return latencies, len(served)

    latencies, served = asyncio.run(run())
    results.put((latencies, served))


def measure(serve, workers, concurrency, mode, warmup, duration):
    ctx = context()
    with running_server(serve, workers, idle_timeout=60.0) as server:
        results = ctx.Queue()
        client = ctx.Process(
            target=client_main,
            args=(server.address, concurrency, mode, warmup, duration, results),
        )
        client.start()
        latencies, served = results.get(timeout=warmup + duration + 60)
        client.join(30)
        results.close()
        results.join_thread()
    return latencies, served


def summarise(runs, duration):
    """Median requests/s over the repeats (with min and max); latency percentiles over
    every request of every repeat; the fewest clients served in any repeat."""
    rates = [len(lat) / duration for lat, _ in runs]
    latencies = sorted(x for lat, _ in runs for x in lat)
    n = len(latencies)
    return {
        "requests_per_s": statistics.median(rates),
        "requests_per_s_min": min(rates),
        "requests_per_s_max": max(rates),
        "p50_ms": statistics.median(latencies) * 1e3 if n else None,
        "p99_ms": latencies[min(n - 1, int(0.99 * n))] * 1e3 if n else None,
        "clients_served": min(served for _, served in runs),
        "requests": n,
    }


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 2, 8])
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)

    reference = load_reference()
    servers = {f"pool ({w} workers)": (reference.serve, w) for w in args.workers}
    servers["ThreadingTCPServer"] = (serve_threads, 1)
    servers["asyncio"] = (serve_asyncio, 1)
    modes = ["connection per request", "persistent"]

    print(machine_summary())
    print(
        f"load: one asyncio client process; {args.repeats} x {args.duration} s per cell "
        f"(after {args.warmup} s warm-up each); req/s: median (min-max)"
    )
    rows = []
    for mode in modes:
        for level in args.levels:
            runs = {name: [] for name in servers}
            for rep in range(args.repeats):  # interleaved, so drifting load hits all alike
                names = list(servers)[rep % len(servers) :] + list(servers)[: rep % len(servers)]
                for name in names:
                    serve, workers = servers[name]
                    runs[name].append(
                        measure(serve, workers, level, mode, args.warmup, args.duration)
                    )
            for name in servers:
                r = summarise(runs[name], args.duration)
                rows.append({"mode": mode, "clients": level, "server": name, **r})
                print(
                    f"{mode:<23} {level:>3} clients  {name:<20} "
                    f"{r['requests_per_s']:>7.0f} req/s "
                    f"({r['requests_per_s_min']:>6.0f}-{r['requests_per_s_max']:<6.0f}) "
                    f"p50 {_fmt(r['p50_ms'], '7.2f')} ms  p99 {_fmt(r['p99_ms'], '7.2f')} ms  "
                    f"served {r['clients_served']}/{level}",
                    flush=True,
                )

    print("\nratios (requests/s of the pool with the most workers divided by the other):")
    best_pool = f"pool ({max(args.workers)} workers)"
    for mode in modes:
        for level in args.levels:
            cell = {r["server"]: r for r in rows if r["mode"] == mode and r["clients"] == level}
            pool = cell[best_pool]["requests_per_s"]
            parts = [
                f"vs {other}: {pool / cell[other]['requests_per_s']:.2f}x"
                for other in ("ThreadingTCPServer", "asyncio")
                if cell[other]["requests_per_s"]
            ]
            starved = cell[best_pool]["clients_served"] < level
            note = (
                f"  (the pool answered only {cell[best_pool]['clients_served']}/{level} clients: "
                "one connection per worker at a time)"
                if starved
                else ""
            )
            print(f"  {mode:<23} {level:>3} clients  " + ", ".join(parts) + note)

    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": machine_summary(),
        "duration_s": args.duration,
        "repeats": args.repeats,
        "rows": rows,
    }
    (RESULTS / "hw3_server.json").write_text(json.dumps(meta, indent=2))
    if not args.no_plot:
        plot(rows, modes, args.levels, list(servers), RESULTS / "hw3_server.png")
        print(f"\nsaved {RESULTS / 'hw3_server.png'} and hw3_server.json")


def plot(rows, modes, levels, names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(modes), figsize=(6 * len(modes), 7), squeeze=False)
    for col, mode in enumerate(modes):
        for name in names:
            pts = [r for r in rows if r["mode"] == mode and r["server"] == name]
            xs = [r["clients"] for r in pts]
            med = [r["requests_per_s"] for r in pts]
            err = [
                [r["requests_per_s"] - r["requests_per_s_min"] for r in pts],
                [r["requests_per_s_max"] - r["requests_per_s"] for r in pts],
            ]
            axes[0][col].errorbar(xs, med, yerr=err, marker="o", capsize=3, label=name)
            for r in pts:
                if r["clients_served"] < r["clients"]:
                    axes[0][col].annotate(
                        f"{r['clients_served']}/{r['clients']} served",
                        (r["clients"], r["requests_per_s"]),
                        fontsize=7,
                        textcoords="offset points",
                        xytext=(4, 4),
                    )
            axes[1][col].plot(
                xs,
                [r["p99_ms"] if r["p99_ms"] is not None else float("nan") for r in pts],
                marker="o",
                label=name,
            )
        axes[0][col].set_title(mode)
        axes[0][col].set_ylabel("requests/s (median, bars: min-max)")
        axes[1][col].set_ylabel("p99 latency (ms)")
        axes[1][col].set_yscale("log")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.set_xticks(levels, [str(x) for x in levels])
            ax.set_xlabel("concurrent clients")
            ax.grid(True, alpha=0.3)
        axes[0][col].legend(fontsize=8)
    fig.suptitle(f"Homework 3 servers, same protocol, one run\n{machine_summary()}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
