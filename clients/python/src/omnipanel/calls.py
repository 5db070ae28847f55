"""The agent's RPCs described from the generated descriptors: for each
service attribute of a client (`agent`, `models`...) the methods with their
request and response classes and whether they stream, the request built
from keyword arguments or given as a message, and the metadata every call
carries (bearer token, confirmation). Shared by the blocking client and
`omnipanel.aio`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type

from google.protobuf.message import Message
from google.protobuf import message_factory

from .errors import ConfigError
from .location import CONFIRMATION_ENV
from .v1 import agent_pb2, files_pb2, git_pb2, models_pb2, projects_pb2, system_pb2, update_pb2

PROTOCOL_VERSION = 1
CONFIRMATION_HEADER = "omnipanel-confirmation"
# Files and diffs can be large (the agent allows 64 MiB writes).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024 + 64 * 1024

SERVICES: Dict[str, Tuple[ModuleType, str]] = {
    "agent": (agent_pb2, "AgentService"),
    "models": (models_pb2, "ModelService"),
    "projects": (projects_pb2, "ProjectService"),
    "files": (files_pb2, "FileService"),
    "git": (git_pb2, "GitService"),
    "system": (system_pb2, "SystemService"),
    "updates": (update_pb2, "UpdateService"),
}


@dataclass(frozen=True)
class MethodInfo:
    """One RPC: `/omnipanel.v1.ModelService/PullModel` and its types."""

    name: str
    path: str
    request: Type[Message]
    response: Type[Message]
    server_streaming: bool


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def methods_of(key: str) -> Dict[str, MethodInfo]:
    """The methods of service `key`, under their proto name (`GetInfo`) and
    their Python name (`get_info`)."""
    module, service_name = SERVICES[key]
    service = module.DESCRIPTOR.services_by_name[service_name]
    table: Dict[str, MethodInfo] = {}
    for method in service.methods:
        info = MethodInfo(
            name=method.name,
            path=f"/{service.full_name}/{method.name}",
            request=message_factory.GetMessageClass(method.input_type),
            response=message_factory.GetMessageClass(method.output_type),
            server_streaming=method.server_streaming,
        )
        table[method.name] = info
        table[_snake(method.name)] = info
    return table


def build_request(info: MethodInfo, request: Optional[Message], fields: Mapping[str, Any]) -> Message:
    """The request message: `request` as given, or built from `fields`."""
    if request is not None:
        if fields:
            raise ConfigError(f"{info.name}: give either a request message or keyword arguments, not both")
        if not isinstance(request, info.request):
            raise ConfigError(
                f"{info.name} takes a {info.request.DESCRIPTOR.full_name}, not a {type(request).__name__}"
            )
        return request
    try:
        return info.request(**fields)
    except (TypeError, ValueError) as err:
        known = ", ".join(f.name for f in info.request.DESCRIPTOR.fields) or "none"
        raise ConfigError(f"{info.name}: bad arguments ({err}); its fields are: {known}") from err


class Credentials:
    """What every call presents: the bearer token and, when the user
    allowed an act from the shell (`OMNIPANEL_CONFIRMATION`), its
    confirmation id."""

    def __init__(self, token: Optional[str]) -> None:
        if token is not None and (not token.strip() or any(ord(c) < 0x20 or ord(c) > 0x7E for c in token)):
            raise ConfigError("the token is empty or contains characters that cannot be sent in a header")
        self.token = token.strip() if token else None
        env_confirmation = os.environ.get(CONFIRMATION_ENV, "").strip()
        self.confirmation = env_confirmation or None

    def metadata(
        self, confirmation: Optional[str] = None, extra: Sequence[Tuple[str, str]] = ()
    ) -> Tuple[Tuple[str, str], ...]:
        pairs: List[Tuple[str, str]] = []
        if self.token:
            pairs.append(("authorization", f"Bearer {self.token}"))
        chosen = confirmation or self.confirmation
        if chosen:
            pairs.append((CONFIRMATION_HEADER, chosen))
        pairs.extend(extra)
        return tuple(pairs)


def channel_options(on_socket: bool) -> List[Tuple[str, Any]]:
    from . import __version__

    options: List[Tuple[str, Any]] = [
        # A proxy must never see calls to the local agent (or its token).
        ("grpc.enable_http_proxy", 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.primary_user_agent", f"omnipanel-python/{__version__}"),
        # Come back quickly after an agent restart (the default backoff
        # grows to two minutes). Not grpc.min_reconnect_backoff_ms: grpc-core
        # also takes it as the connect timeout, and a busy machine needs
        # more than that for the HTTP/2 handshake.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5000),
    ]
    if on_socket:
        # The agent's HTTP/2 layer expects a host name, not a socket path.
        options.append(("grpc.default_authority", "localhost"))
    return options


def read_ca(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    try:
        with open(path, "rb") as pem:
            return pem.read()
    except OSError as err:
        raise ConfigError(f"cannot read the CA certificate {path}: {err.strerror}") from err


def chat_request(model: str, messages: Any, fields: Mapping[str, Any]) -> models_pb2.ChatRequest:
    """A ChatRequest; bad extra fields are a ConfigError naming them."""
    try:
        return models_pb2.ChatRequest(model=model, messages=chat_messages(messages), **fields)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"chat: bad arguments ({err})") from err


def chat_messages(messages: Any) -> List[models_pb2.ChatMessage]:
    """A conversation from a string (one user message), dicts with `role`
    and `content`, ChatMessage messages, or (role, content) pairs."""
    if isinstance(messages, str):
        return [models_pb2.ChatMessage(role="user", content=messages)]
    out = []
    for item in messages:
        if isinstance(item, models_pb2.ChatMessage):
            out.append(item)
        elif isinstance(item, Mapping):
            try:
                out.append(models_pb2.ChatMessage(**item))
            except (TypeError, ValueError) as err:
                raise ConfigError(f"bad chat message {item!r}: {err} (use role and content)") from err
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(models_pb2.ChatMessage(role=str(item[0]), content=str(item[1])))
        else:
            raise ConfigError(f"bad chat message {item!r}: use a dict with role and content")
    if not out:
        raise ConfigError("chat needs at least one message")
    return out
