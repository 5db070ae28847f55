"""Finding the agent without one running: the socket rules shared with the
Rust client, addresses, the protocol check, bad input."""

import os
from pathlib import Path

import pytest

import omnipanel
from omnipanel.location import resolve_target, runtime_dir, socket_path
from omnipanel.v1 import agent_pb2


def test_socket_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIPANEL_SOCKET", "/some/where.sock")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1")
    assert socket_path() == Path("/some/where.sock")


def test_runtime_dir_then_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIPANEL_SOCKET", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1")
    assert socket_path() == Path("/run/user/1/omnipanel/agent.sock")
    # A relative runtime dir is invalid (XDG spec), as is an empty socket.
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative")
    monkeypatch.setenv("OMNIPANEL_SOCKET", "")
    assert runtime_dir().name == f"omnipanel-{os.getuid()}"
    assert socket_path() == runtime_dir() / "agent.sock"


def test_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIPANEL_SOCKET", raising=False)
    monkeypatch.setenv("OMNIPANEL_ADDR", "127.0.0.1:7878")
    assert resolve_target(None, None).url == "http://127.0.0.1:7878"
    assert resolve_target(None, "https://box:7878").tls
    for bad in ("", "ftp://x:1", "nohost", "http://x:1/path"):
        with pytest.raises(omnipanel.ConfigError):
            resolve_target(None, bad)
    with pytest.raises(omnipanel.ConfigError, match="not both"):
        resolve_target("/s.sock", "x:1")


def test_protocol_mismatch_is_refused() -> None:
    omnipanel.check_protocol(agent_pb2.GetInfoResponse(protocol_version=omnipanel.PROTOCOL_VERSION), "t")
    with pytest.raises(omnipanel.VersionMismatch) as err:
        omnipanel.check_protocol(agent_pb2.GetInfoResponse(protocol_version=2, version="9.0.0"), "/x.sock")
    assert err.value.agent_protocol == 2 and err.value.client_protocol == 1
    assert "agent 9.0.0" in str(err.value) and "protocol 2" in str(err.value)


def test_not_running(tmp_path: Path) -> None:
    with pytest.raises(omnipanel.AgentNotRunning, match="omnipanel-agent"):
        omnipanel.connect(socket=tmp_path / "none.sock", timeout=5)
    # A socket file left behind by a dead agent: nobody listens.
    import socket as sockets

    stale = tmp_path / "stale.sock"
    listener = sockets.socket(sockets.AF_UNIX)
    listener.bind(str(stale))
    listener.close()
    with pytest.raises(omnipanel.AgentNotRunning):
        omnipanel.connect(socket=stale, timeout=5)


def test_bad_scope_names_fail_before_dialling(tmp_path: Path) -> None:
    with pytest.raises(omnipanel.ConfigError, match="unknown scope 'reed'"):
        omnipanel.connect(socket=tmp_path / "none.sock", request_access=["reed"])
