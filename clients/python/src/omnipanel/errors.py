"""The exceptions a call to the agent raises: one class per gRPC status code
under :class:`OmniPanelError`, each carrying the code, the agent's message
and the `reason` and metadata of the `google.rpc.ErrorInfo` the agent puts
in every error (clients branch on the reason, never on the message), plus
the failures of the connection itself (agent not running, version
mismatch, bad configuration)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import grpc
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "omnipanel.v1"
CONFIRMATION_ID_KEY = "confirmation_id"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class OmniPanelError(Exception):
    """Base of every error this package raises.

    Attributes: ``code`` (a :class:`grpc.StatusCode`, or ``None`` when the
    failure is not a gRPC status), ``message`` (the agent's words),
    ``reason`` (the ErrorInfo reason, e.g. ``"MODEL_NOT_FOUND"``; ``None``
    when the agent gave none), ``metadata`` (the ErrorInfo metadata) and
    ``target`` (where we talked to)."""

    def __init__(
        self,
        message: str,
        *,
        code: Optional[grpc.StatusCode] = None,
        reason: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        target: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata: Dict[str, str] = dict(metadata or {})
        self.target = target

    def __str__(self) -> str:
        text = self.message
        if self.reason:
            text = f"{text} [{self.reason}]"
        return text


class ConfigError(OmniPanelError, ValueError):
    """The client was given something unusable (an empty address, an
    unreadable CA file, an unknown scope name...)."""


class VersionMismatch(OmniPanelError):
    """The agent speaks another protocol version than this package."""

    def __init__(self, agent_version: str, agent_protocol: int, client_protocol: int, target: str) -> None:
        super().__init__(
            f"protocol version mismatch: the agent {agent_version} at {target} speaks protocol "
            f"{agent_protocol}, this omnipanel package speaks {client_protocol}; install matching "
            "versions of OmniPanel and the omnipanel Python package",
            target=target,
        )
        self.agent_version = agent_version
        self.agent_protocol = agent_protocol
        self.client_protocol = client_protocol


class Cancelled(OmniPanelError):
    """CANCELLED."""


class Unknown(OmniPanelError):
    """UNKNOWN."""


class InvalidArgument(OmniPanelError):
    """INVALID_ARGUMENT: fix the named field; retrying unchanged fails again."""


class DeadlineExceeded(OmniPanelError):
    """DEADLINE_EXCEEDED: the call's timeout passed."""


class NotFound(OmniPanelError):
    """NOT_FOUND (reasons such as MODEL_NOT_FOUND, PROJECT_NOT_FOUND)."""


class AlreadyExists(OmniPanelError):
    """ALREADY_EXISTS."""


class PermissionDenied(OmniPanelError):
    """PERMISSION_DENIED (reasons such as NOT_ADMITTED, SCOPE_TOO_LOW,
    PROJECT_NOT_GRANTED, OWNER_ONLY)."""


class AccessDenied(PermissionDenied):
    """The user denied the access request, or nobody answered in time.
    ``state`` is the request's final state (``"DENIED"``, ``"EXPIRED"``...)."""

    def __init__(self, message: str, state: str, target: str) -> None:
        super().__init__(message, code=grpc.StatusCode.PERMISSION_DENIED, reason="ACCESS_DENIED", target=target)
        self.state = state


class ResourceExhausted(OmniPanelError):
    """RESOURCE_EXHAUSTED: a limit was hit; ask for less or retry later."""


class FailedPrecondition(OmniPanelError):
    """FAILED_PRECONDITION: the agent's state does not allow the call."""


class ConfirmationRequired(FailedPrecondition):
    """A destructive act needs the user's confirmation; nothing was changed.

    ``confirmation_id`` names it: the user answers in the tray, the panel or
    with ``omnipanel confirmations allow ID``; then :meth:`retry` repeats the
    very same call with the confirmation attached (or pass
    ``confirmation=ID`` to the method yourself)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirmation_id = self.metadata.get(CONFIRMATION_ID_KEY, "")
        self._retry: Optional[Callable[[str], Any]] = None

    def __str__(self) -> str:
        return (
            f"{super().__str__()}: ask the user to allow it in the OmniPanel tray or panel, or with "
            f"`omnipanel confirmations allow {self.confirmation_id}`, then call .retry()"
        )

    def retry(self) -> Any:
        """Repeat the call that raised this, presenting the confirmation.
        Raises FailedPrecondition (reason CONFIRMATION_PENDING) while the
        user has not answered, PermissionDenied-like CONFIRMATION_DENIED
        errors when they refused. In `omnipanel.aio` it returns an
        awaitable."""
        if self._retry is None:
            raise ConfigError("this error was not raised by a call that can be retried")
        return self._retry(self.confirmation_id)


class Aborted(OmniPanelError):
    """ABORTED: a concurrent change won; read again and retry."""


class OutOfRange(OmniPanelError):
    """OUT_OF_RANGE."""


class Unimplemented(OmniPanelError):
    """UNIMPLEMENTED: not available in this agent build or platform."""


class Internal(OmniPanelError):
    """INTERNAL: a bug or an unexpected OS failure; the agent logged it."""


class Unavailable(OmniPanelError):
    """UNAVAILABLE: a dependency is down (e.g. OLLAMA_DOWN); retry later."""


class AgentNotRunning(Unavailable):
    """Nothing answers where the agent should be."""

    def __init__(self, target: str, detail: str = "") -> None:
        super().__init__(
            f"the OmniPanel agent is not running (nothing answers at {target}); start it with "
            "`omnipanel-agent` (or `systemctl --user start omnipanel-agent` where the service is "
            "installed), or point OMNIPANEL_SOCKET / OMNIPANEL_ADDR at the running one",
            code=grpc.StatusCode.UNAVAILABLE,
            target=target,
        )
        self.detail = detail


class ConnectionFailed(Unavailable):
    """Something answered, but the connection could not be set up: TLS
    failed (an ``https`` address for a plain listener or the reverse, an
    untrusted certificate), or HTTP/2 failed. Retrying will not help; the
    address or TLS setup needs fixing."""


class DataLoss(OmniPanelError):
    """DATA_LOSS."""


class Unauthenticated(OmniPanelError):
    """UNAUTHENTICATED (reasons TOKEN_MISSING, TOKEN_INVALID): the token is
    missing, unknown, revoked or expired."""


_BY_CODE = {
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNKNOWN: Unknown,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DATA_LOSS: DataLoss,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}


def error_info(trailers: Optional[Sequence[Tuple[str, Any]]]) -> Tuple[Optional[str], Dict[str, str]]:
    """The ErrorInfo (reason, metadata) in `grpc-status-details-bin`, when
    the agent sent one in our domain (or any ErrorInfo otherwise)."""
    found: Tuple[Optional[str], Dict[str, str]] = (None, {})
    for key, value in trailers or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, (bytes, bytearray)):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(bytes(value))
        except Exception:  # a garbled trailer must not hide the real error
            continue
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                found = (info.reason, dict(info.metadata))
                if info.domain == ERROR_DOMAIN:
                    return found
    return found


# What grpc-core says when nothing is there at all: no socket file, or
# nobody listening. Any other failure to connect means something answered.
_NOTHING_THERE = ("connection refused", "no such file or directory")
_CONNECT_FAILED = ("failed to connect to all addresses", "socket closed", "handshake", "ssl", "tls")


def from_rpc_error(err: grpc.RpcError, target: str) -> OmniPanelError:
    """Classify a failed call: the agent's own errors by status code (with
    the ErrorInfo reason), the connection's failures by what they mean for
    the user."""
    # grpc.RpcError declares nothing; the errors raised by calls are also
    # grpc.Call (or grpc.aio.AioRpcError) with these methods.
    call: Any = err
    code: grpc.StatusCode = call.code()
    details: str = call.details() or ""
    try:
        trailers = call.trailing_metadata()
    except Exception:
        trailers = None
    reason, metadata = error_info(list(trailers) if trailers else None)
    lowered = details.lower()
    if reason is None and code == grpc.StatusCode.UNAVAILABLE:
        if "permission denied" in lowered:
            return PermissionDenied(
                f"cannot open the agent's socket {target}: permission denied; the socket belongs "
                "to another user or its permissions were changed",
                code=code,
                target=target,
            )
        if any(failure in lowered for failure in _NOTHING_THERE):
            return AgentNotRunning(target, details)
        if any(failure in lowered for failure in _CONNECT_FAILED):
            hint = ""
            if target.startswith("http://"):
                hint = "; if the agent's listener uses TLS, use an https:// address"
            elif target.startswith("https://"):
                hint = "; check that the listener uses TLS and that its certificate is trusted (OMNIPANEL_CA_CERT)"
            return ConnectionFailed(
                f"cannot talk to the agent at {target}: {details}{hint}", code=code, target=target
            )
    if reason == "CONFIRMATION_REQUIRED":
        return ConfirmationRequired(details, code=code, reason=reason, metadata=metadata, target=target)
    cls = _BY_CODE.get(code, OmniPanelError)
    message = details or f"the agent at {target} answered {code.name}"
    # A git remote refusing its login (GIT_AUTH) is not about this client's
    # access to the agent.
    if code == grpc.StatusCode.UNAUTHENTICATED and reason != "GIT_AUTH":
        message += " (ask for access again, or set OMNIPANEL_TOKEN to a token from `omnipanel token create`)"
    return cls(message, code=code, reason=reason, metadata=metadata, target=target)
