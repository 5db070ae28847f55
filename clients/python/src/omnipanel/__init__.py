"""omnipanel: a Python client for the OmniPanel agent's gRPC API.

    import omnipanel
    with omnipanel.connect(request_access=["read", "infer"], reason="summarise my notes") as op:
        print(op.info.version)
        for token in op.chat("", "Hello"):
            print(token, end="", flush=True)

The generated messages and stubs are in ``omnipanel.v1`` (``models_pb2``,
``agent_pb2``...); ``omnipanel.aio`` has the same API for asyncio."""

__version__ = "0.1.0"

from .calls import PROTOCOL_VERSION
from .client import Client, Method, Service, Stream, ask_for_access, check_protocol, connect, print_pending
from .errors import (
    Aborted,
    AccessDenied,
    AgentNotRunning,
    AlreadyExists,
    Cancelled,
    ConfigError,
    ConfirmationRequired,
    ConnectionFailed,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OmniPanelError,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    VersionMismatch,
)
from .location import Target, socket_path
from .tokens import TokenCache

__all__ = [
    "PROTOCOL_VERSION",
    "Aborted",
    "AccessDenied",
    "AgentNotRunning",
    "AlreadyExists",
    "Cancelled",
    "Client",
    "ConfigError",
    "ConfirmationRequired",
    "ConnectionFailed",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "Method",
    "NotFound",
    "OmniPanelError",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "Service",
    "Stream",
    "Target",
    "TokenCache",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "VersionMismatch",
    "__version__",
    "ask_for_access",
    "check_protocol",
    "connect",
    "print_pending",
    "socket_path",
]
