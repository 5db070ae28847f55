"""Test fixtures: a real `omnipanel-agent` in temporary XDG folders with
the Ollama test double configured (the recipe of tests/lib.rs), the CLI to
answer its access requests and confirmations, and the environment pointing
the package at it. Binaries come from $OMNIPANEL_BIN_DIR."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

import omnipanel

BIN_DIR = Path(os.environ.get("OMNIPANEL_BIN_DIR", "")).resolve() if os.environ.get("OMNIPANEL_BIN_DIR") else None
# Generous: the point is never hanging, not speed.
PATIENCE = 60.0
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def binary(name: str) -> Path:
    if BIN_DIR is None:
        pytest.fail("set OMNIPANEL_BIN_DIR to the folder holding omnipanel-agent, omnipanel and fake-ollama")
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing (build the workspace's binaries first)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    """An agent's whole world in one temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("runtime", "config/omnipanel", "data", "state", "home", "ollama-models", "projects"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "runtime").chmod(0o700)
        port = free_port()
        (root / "config/omnipanel/config.toml").write_text(
            "[ollama]\n"
            f'binary = "{binary("fake-ollama")}"\n'
            f'host = "127.0.0.1:{port}"\n'
            f'registry = "http://127.0.0.1:{port}"\n'
            f'models_dir = "{root / "ollama-models"}"\n'
            'health_interval = "200ms"\nhealth_timeout = "1s"\nstop_timeout = "5s"\n'
        )
        self.agent: Optional[subprocess.Popen[bytes]] = None
        self.idle_port = free_port()

    def add_config(self, text: str) -> None:
        """Append a section to config.toml (before the agent starts)."""
        path = self.root / "config/omnipanel/config.toml"
        path.write_text(path.read_text() + text)

    @property
    def socket(self) -> Path:
        return self.root / "runtime/omnipanel/agent.sock"

    def env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIPANEL_") or k == "OMNIPANEL_BIN_DIR"}
        env.pop("OLLAMA_HOST", None)
        env.update(
            XDG_RUNTIME_DIR=str(self.root / "runtime"),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_DATA_HOME=str(self.root / "data"),
            XDG_STATE_HOME=str(self.root / "state"),
            HOME=str(self.root / "home"),
            OLLAMA_HOST=f"127.0.0.1:{self.idle_port}",
            OLLAMA_MODELS=str(self.root / "ollama-models"),
        )
        return env

    def start(self) -> None:
        log = open(self.root / f"agent-stderr-{time.monotonic_ns()}.log", "wb")
        self.agent = subprocess.Popen(
            [str(binary("omnipanel-agent"))], env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )
        deadline = time.monotonic() + PATIENCE
        while True:
            if self.agent.poll() is not None:
                pytest.fail(f"the agent exited with {self.agent.returncode}; see {log.name}")
            try:
                omnipanel.connect(socket=self.socket, timeout=5).close()
                return
            except omnipanel.AgentNotRunning:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def wait_ollama(self) -> None:
        """Until the supervised fake Ollama answers."""
        from omnipanel.v1 import models_pb2

        deadline = time.monotonic() + PATIENCE
        with omnipanel.connect(socket=self.socket) as op:
            while op.models.GetServerStatus().status.state != models_pb2.SERVER_STATE_RUNNING:
                if time.monotonic() > deadline:
                    pytest.fail("the fake Ollama never came up")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()
            try:
                self.agent.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary("omnipanel")), *args], env=self.env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=PATIENCE,
        )
        if check and result.returncode != 0:
            pytest.fail(f"omnipanel {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def run_example(self, name: str, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
        import sys

        full = {**self.env(), **(env or {})}
        return subprocess.run(
            [sys.executable, str(EXAMPLES / name), *args], env=full, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=PATIENCE,
        )


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A stopped agent's folders, with this process's environment pointing
    at them (so `omnipanel.connect()` with no arguments finds it)."""
    box = Sandbox(tmp_path)
    for key in list(os.environ):
        if key.startswith("OMNIPANEL_") and key != "OMNIPANEL_BIN_DIR":
            monkeypatch.delenv(key)
    for key, value in box.env().items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    yield box
    box.stop()


@pytest.fixture
def agent(sandbox: Sandbox) -> Sandbox:
    """A running agent."""
    sandbox.start()
    sandbox.wait_ollama()
    return sandbox


def admit(box: Sandbox, scopes: List[str], client_name: str = "pytest client", **kwargs: object) -> omnipanel.Client:
    """connect(request_access=scopes) with the user approving through the
    real CLI: the request, as the package shows it, is approved with
    `omnipanel clients approve ID`."""
    import queue
    import threading

    codes: "queue.Queue[str]" = queue.Queue()
    result: Dict[str, object] = {}

    def run() -> None:
        try:
            result["client"] = omnipanel.connect(
                socket=box.socket, request_access=scopes, client_name=client_name,
                on_pending=lambda request: codes.put(request.id), **kwargs,  # type: ignore[arg-type]
            )
        except BaseException as err:  # handed to the test thread
            result["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    code = codes.get(timeout=PATIENCE)
    box.cli("clients", "approve", code)
    thread.join(PATIENCE)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    client = result["client"]
    assert isinstance(client, omnipanel.Client)
    return client
