"""Starts a real toolgate (clients/testserver.sh) once for the test session."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CLIENTS = Path(__file__).resolve().parents[2]
CONFORMANCE: dict[str, Any] = json.loads((CLIENTS / "conformance.json").read_text(encoding="utf-8"))
START_TIMEOUT_S = 300.0  # generous: testserver.sh builds the binary when it is missing


class Server:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="toolgate-python-test-")
        env = dict(os.environ, TOOLGATE_API_KEY=CONFORMANCE["keys"]["operator"])
        self.proc = subprocess.Popen(
            [str(CLIENTS / "testserver.sh"), str(Path(self.dir) / "toolgate.toml")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.log: deque[str] = deque(maxlen=200)
        self._addr: queue.Queue[str | None] = queue.Queue()
        # Keep draining stderr, so that the server never blocks writing its log.
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            addr = self._addr.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            addr = None
        if addr is None:
            self.stop()
            raise RuntimeError("toolgate did not start:\n" + "\n".join(self.log))
        self.base_url = f"http://{addr}"

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log.append(line)
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("msg") == "listening" and doc.get("addr"):
                self._addr.put(str(doc["addr"]))
        self._addr.put(None)  # the server exited

    def stop(self) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            return self.proc.returncode
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    srv = Server()
    yield srv.base_url
    code = srv.stop()
    assert code == 0, "toolgate exited with %d:\n%s" % (code, "\n".join(srv.log))
