"""The real ``sharpeyes serve`` process, started on a free loopback port for a test.

It runs as the suite's bootstrap admin (``tests/credentials.py``): :meth:`get`, :meth:`post`,
:meth:`delete` and :meth:`wait_for` send its token; loopback cameras are allowed. On exit
its log is checked for the secrets the test process knows (camera passwords, tokens).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from gateway.redact import redact
from tests.credentials import ADMIN_HEADERS, LOOPBACK_ENV, leaked
from tests.peers.ports import free_port

SHARPEYES = Path(sys.executable).with_name("sharpeyes")


class GatewayProcess:
    def __init__(self, workdir: Path, config: str = "", env: dict[str, str] | None = None):
        self.workdir = workdir
        self.config_path = workdir / "sharpeyes.yaml"
        self.config_path.write_text(config)
        self.data = workdir / "data"
        self.log_path = workdir / "gateway.log"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **LOOPBACK_ENV, **(env or {})}
        self.headers = dict(ADMIN_HEADERS)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        argv = [
            str(SHARPEYES),
            "serve",
            "--config",
            str(self.config_path),
            "--port",
            str(self.port),
            "--data",
            str(self.data),
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=self.env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sharpeyes exited with {self.proc.returncode}:\n{self.log}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"sharpeyes did not answer within {timeout} s:\n{self.log}")

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM and wait; true if the gateway shut down cleanly by itself.

        uvicorn re-raises the signal after its graceful shutdown, so a clean exit is
        status 0 or death by that same SIGTERM, after the gateway logged its stop.
        """
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.proc.returncode in (0, -signal.SIGTERM) and "gateway stopped" in self.log

    def kill(self) -> None:
        """SIGKILL: a crash or power loss, as far as the process can tell."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """As the admin; ``headers=`` replaces the admin's (e.g. ``{}``: anonymous)."""
        headers = kwargs.pop("headers", self.headers)
        return httpx.request(  # type: ignore[misc]
            method, self.base_url + path, timeout=20, headers=headers, **kwargs
        )

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def wait_for(self, path: str, predicate: object, timeout: float = 20.0) -> httpx.Response:
        """Poll ``path`` until ``predicate(response)`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.get(path)
            if predicate(response):  # type: ignore[operator]
                return response
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: condition not met in {timeout} s: {response.text}")
            time.sleep(0.2)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                pass
        self.check_log()

    def check_log(self) -> None:
        """Fail if the gateway's own log (as an operator would see it) holds a secret."""
        found = leaked(redact.secrets, [(str(self.log_path), self.log.encode())])
        assert not found, f"a configured secret is in the gateway log {self.log_path}"
