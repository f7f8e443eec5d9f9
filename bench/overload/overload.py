#!/usr/bin/env python3
"""Drive toolgate at twice its capacity and check that it sheds load honestly.

Bounded (a few seconds per phase), 127.0.0.1 only, standard library only. Starts
target/release/toolgate with bench/overload/toolgate.toml, then:

1. unloaded: CAPACITY/4 calls per second for PHASE seconds -> p50/p99 of 200s;
2. overload: 2 x CAPACITY calls per second (open loop: arrivals do not wait for
   answers) -> p99 of admitted calls, latency of shed answers (429/503), and
   that every request got an answer: sent = 2xx + 429 + 503.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "toolgate"
CONFIG = Path(__file__).with_name("toolgate.toml")
HOST, PORT = "127.0.0.1", 18090
KEY = "bench-operator-key-0123456789abcdef"
CAPACITY = 400  # calls/s, from the config: 20 slots / 50 ms
PHASE = float(os.environ.get("PHASE_SECONDS", "8"))
BODY = json.dumps({"ms": 50}).encode()
REQUEST = (
    f"POST /api/v1/tools/work HTTP/1.1\r\nHost: {HOST}\r\nX-Tool-API-Key: {KEY}\r\n"
    f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
).encode() + BODY


async def one_call():
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 10)
        writer.write(REQUEST)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        await reader.read()
        writer.close()
        status = int(status_line.split()[1])
    except (OSError, asyncio.TimeoutError, IndexError, ValueError):
        status = 0  # no answer
    return status, (time.perf_counter() - start) * 1000.0


async def drive(rate, seconds):
    tasks = []
    interval = 1.0 / rate
    t0 = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        delay = t0 + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_call()))
    return await asyncio.gather(*tasks)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def summarize(name, results):
    by = {}
    for status, ms in results:
        by.setdefault(status, []).append(ms)
    ok = by.get(200, [])
    shed = by.get(429, []) + by.get(503, [])
    print(f"\n{name}: sent {len(results)}")
    print(f"  answered: 200={len(ok)} 429={len(by.get(429, []))} 503={len(by.get(503, []))} "
          f"other={sum(len(v) for k, v in by.items() if k not in (200, 429, 503))}")
    print(f"  admitted latency ms: p50={pct(ok, 50):.1f} p99={pct(ok, 99):.1f}")
    if shed:
        print(f"  shed latency ms:     p50={pct(shed, 50):.1f} p99={pct(shed, 99):.1f}")
    return by


async def main():
    if not BIN.exists():
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "toolgate"], cwd=ROOT, check=True)
    env = dict(os.environ, TOOLGATE_API_KEY=KEY)
    server = subprocess.Popen([str(BIN), "serve", "--config", str(CONFIG)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                _, w = await asyncio.open_connection(HOST, PORT)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        base = summarize("unloaded (capacity/4)", await drive(CAPACITY / 4, PHASE))
        over = summarize("overload (2 x capacity)", await drive(CAPACITY * 2, PHASE))
        sent = sum(len(v) for v in over.values())
        answered = sum(len(over.get(k, [])) for k in (200, 429, 503))
        print(f"\nunloaded p99 {pct(base.get(200, []), 99):.1f} ms vs admitted p99 under overload "
              f"{pct(over.get(200, []), 99):.1f} ms; server peak RSS {rss_kib(server.pid) / 1024:.1f} MiB")
        print(f"every request answered: {answered == sent} ({answered}/{sent})")
        return 0 if answered == sent else 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
