#!/usr/bin/env python3
"""The abuse suite at full size, against the release build: what one client or one
low-privilege key can do to toolgate, and what toolgate does about it.

127.0.0.1 only, standard library only, every phase bounded in count and time; the
server is started here (target/release/toolgate, bench/abuse/toolgate.toml) and
stopped at the end. For each attack it prints the server's RSS before and after, the
operator key's latency (median and worst of /api/v1/tools/echo calls made during the
attack) and what the attack got. The figures go into docs/security.md.

    python3 bench/abuse/abuse.py [attack ...]     # default: all of them
"""

import asyncio
import base64
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("BENCH_TOOLGATE", ROOT / "target" / "release" / "toolgate"))
CONFIG = Path(__file__).with_name("toolgate.toml")
HOST, PORT = "127.0.0.1", 18095
OPERATOR = "abuse-operator-key-0123456789abcdef"
# The low-privilege key of toolgate.toml (its hash is there).
LOW = "abuse-low-privilege-key-0123456789"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def request(method: str, path: str, key: str | None, body: bytes = b"",
                  timeout: float = 10.0, source: str | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 request on its own connection (from `source`): status and body."""
    local = (source, 0) if source else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(HOST, PORT, local_addr=local), timeout)
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n"
    if key is not None:
        head += f"X-Tool-API-Key: {key}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    try:
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


class Probe:
    """Calls `echo` with the operator key every 100 ms while an attack runs, from
    127.0.0.2: the attacker's address (127.0.0.1) may be throttled, the operator's not."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures = 0
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            try:
                status, _ = await request("POST", "/api/v1/tools/echo", OPERATOR, b"{}", 10,
                                          source="127.0.0.2")
                if status == 200:
                    self.latencies.append((time.perf_counter() - start) * 1000)
                else:
                    self.failures += 1
            except (OSError, asyncio.TimeoutError):
                self.failures += 1
            await asyncio.sleep(0.1)

    def __enter__(self) -> "Probe":
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        if self.task:
            self.task.cancel()

    def summary(self) -> str:
        if not self.latencies:
            return f"operator: no call answered ({self.failures} failed)"
        return (f"operator: {len(self.latencies)} calls ok, {self.failures} failed, "
                f"p50 {statistics.median(self.latencies):.1f} ms, "
                f"max {max(self.latencies):.1f} ms")


async def slowloris(pid: int) -> str:
    conns = []
    for _ in range(2000):
        try:
            r, w = await asyncio.open_connection(HOST, PORT)
            w.write(b"GET /api/v1/tools HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            conns.append((r, w))
        except OSError:
            break
    await asyncio.sleep(12)
    open_after = 0
    for r, _ in conns:
        try:
            data = await asyncio.wait_for(r.read(1), 0.01)
            open_after += 0 if data == b"" else 1
        except asyncio.TimeoutError:
            open_after += 1
        except OSError:
            pass
    for _, w in conns:
        w.close()
    return f"{len(conns)} slowloris connections; still open after 12 s: {open_after}"


async def idle_flood(pid: int) -> str:
    # As many as this process may open, less room for the probes (the server's own
    # limit is the same here, so its default cap is below it).
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200
    conns, refused = [], 0
    deadline = time.monotonic() + 20
    for _ in range(min(20000, limit)):
        if time.monotonic() > deadline:
            break
        try:
            conns.append(await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 1))
        except (OSError, asyncio.TimeoutError):
            refused += 1
    health, _ = await request("GET", "/healthz", None, timeout=5)
    admin, _ = await admin_health()
    for _, w in conns:
        w.close()
    return (f"{len(conns)} idle connections opened ({refused} waited or failed); "
            f"/healthz {health}, admin /healthz {admin}")


async def admin_health() -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(HOST, PORT + 1)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return int(data.split(b" ", 2)[1]), data


async def trickle(pid: int) -> str:
    async def one() -> tuple[int, float]:
        r, w = await asyncio.open_connection(HOST, PORT)
        w.write((f"POST /api/v1/tools/echo HTTP/1.1\r\nHost: x\r\nX-Tool-API-Key: {LOW}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{").encode())
        start = time.monotonic()
        answer = asyncio.ensure_future(r.read(64))
        try:
            while not answer.done() and time.monotonic() - start < 40:
                w.write(b" ")
                await asyncio.wait({answer}, timeout=1)
            data = answer.result() if answer.done() else b""
            code = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0
        except (OSError, ValueError, IndexError):
            code = 0
        finally:
            answer.cancel()
            w.close()
        return code, time.monotonic() - start

    results = await asyncio.gather(*[one() for _ in range(256)])
    answers: dict[int, int] = {}
    for code, _ in results:
        answers[code] = answers.get(code, 0) + 1
    cut = max(t for _, t in results)
    return (f"256 bodies trickled 1 byte/s by the low key: answers {answers}, "
            f"the last cut off after {cut:.1f} s")


async def huge_sql(pid: int) -> str:
    query = ("SELECT " + ", ".join(f"zeroblob(16000000) AS c{i}" for i in range(8)))
    body = json.dumps({"query": query}).encode()
    results = await asyncio.gather(*[
        request("POST", "/api/v1/tools/run_database_query", LOW, body, 30) for _ in range(8)])
    sizes = [len(b) for _, b in results]
    reasons = {json.loads(b)["output"].get("truncated_reason") for s, b in results if s == 200}
    return f"8 x SELECT zeroblob(16e6) x 8: statuses {[s for s, _ in results]}, largest answer {max(sizes)} bytes, cut by {reasons}"


async def batch_amplification(pid: int) -> str:
    body = ('{"calls": [' + ",".join(["1"] * 500_000) + "]}").encode()
    results = await asyncio.gather(*[
        request("POST", "/api/v1/tools/execute", LOW, body, 30) for _ in range(6)])
    return (f"6 x {len(body)} byte batch bodies of 1,1,1...: statuses "
            f"{[s for s, _ in results]}, largest answer {max(len(b) for _, b in results)} bytes")


def ws_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def ws_never_reads(pid: int) -> str:
    reader, writer = await asyncio.open_connection(HOST, PORT)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nX-Tool-API-Key: {LOW}\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    ping = ws_frame(0x9, b"p" * 125)
    sent, end = 0, time.monotonic() + 30
    closed = False
    while time.monotonic() < end:
        try:
            writer.write(ping * 64)
            await asyncio.wait_for(writer.drain(), 2)
            sent += 64
        except (OSError, asyncio.TimeoutError):
            closed = True
            break
    writer.close()
    return f"{sent} pings in 30 s without reading; closed by the server: {closed}"


async def mcp_flood(pid: int) -> str:
    init = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "flood", "version": "1"}}}).encode()

    async def one(key: str) -> int:
        reader, writer = await asyncio.open_connection(HOST, PORT)
        writer.write((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      f"X-Tool-API-Key: {key}\r\nAccept: application/json, text/event-stream\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(init)}\r\n\r\n").encode() + init)
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return int(data.split(b" ", 2)[1])

    counts: dict[int, int] = {}
    for start in range(0, 10001, 100):
        for code in await asyncio.gather(*[one(LOW) for _ in range(min(100, 10001 - start))]):
            counts[code] = counts.get(code, 0) + 1
    operator = await one(OPERATOR)
    return f"10001 initialize by the low key: {counts}; the operator's initialize: {operator}"


async def auth_flood(pid: int) -> str:
    counts: dict[int, int] = {}
    start = time.perf_counter()
    for batch in range(120):
        for code, _ in await asyncio.gather(*[
                request("POST", "/api/v1/tools/echo", f"wrong-{batch}-{i}", b"{}")
                for i in range(100)]):
            counts[code] = counts.get(code, 0) + 1
    return f"12000 wrong keys in {time.perf_counter() - start:.1f} s: {counts}"


ATTACKS = {
    "slowloris": slowloris,
    "idle_flood": idle_flood,
    "trickle": trickle,
    "huge_sql": huge_sql,
    "batch_amplification": batch_amplification,
    "ws_never_reads": ws_never_reads,
    "mcp_flood": mcp_flood,
    "auth_flood": auth_flood,
}


async def main(names: list[str]) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = dict(os.environ, TOOLGATE_API_KEY=OPERATOR, TOOLGATE_LOG="error")
    server = subprocess.Popen([str(BIN), "serve", "--config", str(CONFIG)], env=env,
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if (await request("GET", "/healthz", None, timeout=1))[0] == 200:
                    break
            except OSError:
                await asyncio.sleep(0.1)
        for name in names:
            before = rss_mib(server.pid)
            with Probe() as probe:
                outcome = await asyncio.wait_for(ATTACKS[name](server.pid), 300)
                peak = rss_mib(server.pid)
            await asyncio.sleep(2)
            alive = server.poll() is None
            print(f"## {name}\n{outcome}\nRSS {before:.0f} -> {peak:.0f} MiB "
                  f"(after 2 s: {rss_mib(server.pid) if alive else 0:.0f}); {probe.summary()}; "
                  f"server {'up' if alive else 'DOWN'}\n", flush=True)
            if not alive:
                return 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(ATTACKS)
    unknown = [n for n in chosen if n not in ATTACKS]
    if unknown:
        sys.exit(f"unknown attack(s) {unknown}; choose from {list(ATTACKS)}")
    sys.exit(asyncio.run(main(chosen)))
