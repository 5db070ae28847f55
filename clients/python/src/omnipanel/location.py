"""Where the agent is: the socket path and the environment variables that
point a client elsewhere, following exactly the rules of the agent and the
Rust client (`agent/paths/src/lib.rs`), so every client finds the same
agent."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

SOCKET_ENV = "OMNIPANEL_SOCKET"
ADDR_ENV = "OMNIPANEL_ADDR"
TOKEN_ENV = "OMNIPANEL_TOKEN"
CA_CERT_ENV = "OMNIPANEL_CA_CERT"
CONFIRMATION_ENV = "OMNIPANEL_CONFIRMATION"


def runtime_dir() -> Path:
    """`$XDG_RUNTIME_DIR/omnipanel`, or `/tmp/omnipanel-$UID` when no usable
    (absolute) runtime dir is set."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        return Path(runtime) / "omnipanel"
    return Path(tempfile.gettempdir()) / f"omnipanel-{os.getuid()}"


def socket_path() -> Path:
    """`$OMNIPANEL_SOCKET` when set and not empty, else `agent.sock` in
    :func:`runtime_dir`."""
    explicit = os.environ.get(SOCKET_ENV, "")
    if explicit:
        return Path(explicit)
    return runtime_dir() / "agent.sock"


def config_home() -> Path:
    """`$XDG_CONFIG_HOME` when absolute (the spec says to ignore relative
    values), else `~/.config`."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    if config and os.path.isabs(config):
        return Path(config)
    return Path(os.environ.get("HOME") or tempfile.gettempdir()) / ".config"


@dataclass(frozen=True)
class Target:
    """Where to dial: a Unix socket, or a TCP address (`http://` or
    `https://` URL)."""

    socket: Optional[Path] = None
    url: Optional[str] = None

    @property
    def is_socket(self) -> bool:
        return self.socket is not None

    @property
    def tls(self) -> bool:
        return self.url is not None and self.url.startswith("https://")

    def grpc_target(self) -> str:
        if self.socket is not None:
            return "unix:" + os.path.abspath(self.socket)
        assert self.url is not None
        return self.url.split("://", 1)[1]

    def __str__(self) -> str:
        return str(self.socket) if self.socket is not None else str(self.url)


def tcp_target(address: str) -> Target:
    """A TCP target; `address` may omit the scheme (`http://` is assumed,
    as in the Rust client)."""
    from .errors import ConfigError

    address = address.strip()
    if not address:
        raise ConfigError("the agent address is empty (expected host:port or https://host:port)")
    url = address if "://" in address else f"http://{address}"
    scheme, rest = url.split("://", 1)
    if scheme not in ("http", "https"):
        raise ConfigError(f"bad agent address {address!r}: the scheme must be http or https")
    host_port = rest.rstrip("/")
    if not host_port or "/" in host_port or ":" not in host_port:
        raise ConfigError(f"bad agent address {address!r}: expected host:port, e.g. 127.0.0.1:7878")
    return Target(url=f"{scheme}://{host_port}")


def resolve_target(socket: "Optional[str | os.PathLike[str]]", address: Optional[str]) -> Target:
    """The target named by the arguments, else by the environment:
    `OMNIPANEL_ADDR` when set, else the socket."""
    from .errors import ConfigError

    if socket is not None and address is not None:
        raise ConfigError("give either socket= or address=, not both")
    if address is not None:
        return tcp_target(address)
    if socket is not None:
        if not str(socket):
            raise ConfigError("socket= is empty")
        return Target(socket=Path(socket))
    env_addr = os.environ.get(ADDR_ENV, "")
    if env_addr.strip():
        return tcp_target(env_addr)
    return Target(socket=socket_path())
