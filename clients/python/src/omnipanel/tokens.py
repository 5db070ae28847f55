"""Credentials a script presents: scope names, the owner credential (only
when asked for), and the cache of tokens granted through the admission
flow.

The cache is `$XDG_CONFIG_HOME/omnipanel/python-tokens.json`, mode 0600 in
a 0700 folder, keyed by agent (its socket path or address) and client name.
Why there: it is per user like the agent, survives reboots (unlike the
runtime dir), and that folder is one of the agent's own places, which no
project may contain or touch, so another client cannot read the tokens out
through the agent's file API. The file holds bearer tokens: treat it like
an SSH key; `omnipanel clients revoke` makes a leaked one useless."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from .errors import ConfigError
from .location import config_home
from .v1 import access_pb2

OWNER_CREDENTIAL_FILE = "owner-credential"

SCOPES = {
    "status": access_pb2.SCOPE_STATUS,
    "read": access_pb2.SCOPE_READ,
    "infer": access_pb2.SCOPE_INFER,
    "write": access_pb2.SCOPE_WRITE,
    "admin": access_pb2.SCOPE_ADMIN,
}
# What each scope includes, as the agent counts them (write ⊇ read,
# admin ⊇ everything).
_IMPLIED = {
    "write": {"write", "read"},
    "admin": set(SCOPES),
}


def scope_numbers(names: Iterable[str]) -> List["access_pb2.Scope.ValueType"]:
    """`["read", "infer"]` -> the Scope enum values; an unknown name is a
    ConfigError naming the known ones."""
    if isinstance(names, str):
        names = [names]
    numbers = []
    for name in names:
        key = str(name).strip().lower()
        if key.startswith("scope_"):
            key = key[len("scope_"):]
        if key not in SCOPES:
            raise ConfigError(f"unknown scope {name!r}: use one of {', '.join(SCOPES)}")
        numbers.append(SCOPES[key])
    return numbers


def scope_names(numbers: Iterable[int]) -> List[str]:
    by_number: Dict[int, str] = {int(number): name for name, number in SCOPES.items()}
    return [by_number[n] for n in numbers if n in by_number]


def covers(held: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether scopes `held` include every scope in `wanted`."""
    effective = {"status"}
    for scope in held:
        effective |= _IMPLIED.get(scope, {scope})
    return set(wanted) <= effective


def owner_credential(data_dir: str) -> Optional[str]:
    """The owner credential of the agent whose data folder is `data_dir`,
    when this user can read it."""
    if not data_dir:
        return None
    try:
        secret = (Path(data_dir) / OWNER_CREDENTIAL_FILE).read_text().strip()
    except OSError:
        return None
    return secret or None


def default_client_name() -> str:
    """`Python: <script>`, so the user sees which script asks."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    script = os.path.basename(argv0)
    if script == "__main__.py":  # `python -m package`: name the package
        script = os.path.basename(os.path.dirname(argv0))
    if not script or script in ("-c", "-m", "python", "python3"):
        return "Python script"
    return f"Python: {script}"


class TokenCache:
    """Tokens granted to this user's scripts, per agent and client name."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path or config_home() / "omnipanel" / "python-tokens.json"

    def _load(self) -> Dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            # A damaged cache costs one more access request, not a crash.
            print(f"omnipanel: ignoring the unreadable token cache {self.path}: {err}", file=sys.stderr)
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, agent: str, client_name: str) -> Optional[Dict[str, Any]]:
        entry = self._load().get(agent, {}).get(client_name)
        if isinstance(entry, dict) and isinstance(entry.get("token"), str) and entry["token"]:
            return entry
        return None

    def put(self, agent: str, client_name: str, token: str, scopes: List[str], client_id: str) -> None:
        data = self._load()
        data.setdefault(agent, {})[client_name] = {"token": token, "scopes": scopes, "client_id": client_id}
        self._write(data)

    def forget(self, agent: str, client_name: str) -> None:
        data = self._load()
        if data.get(agent, {}).pop(client_name, None) is not None:
            self._write(data)

    def _write(self, data: Dict[str, Any]) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written beside and renamed, created 0600 from the start, so the
        # tokens are never readable by others, not even for a moment.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".python-tokens-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(data, out, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
