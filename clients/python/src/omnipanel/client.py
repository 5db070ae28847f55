"""The blocking client: :func:`connect` finds and dials the agent, checks
the protocol version, picks the credential (and runs the admission flow
when asked), and returns a :class:`Client` with one attribute per service
plus the streaming helpers (pull, chat, watch, events)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Protocol, Sequence, Tuple, Union

import grpc
from google.protobuf.message import Message

from . import calls
from .calls import PROTOCOL_VERSION, Credentials, MethodInfo
from .errors import (
    AccessDenied,
    ConfigError,
    ConfirmationRequired,
    OmniPanelError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    VersionMismatch,
    from_rpc_error,
)
from .location import CA_CERT_ENV, TOKEN_ENV, Target, resolve_target
from .tokens import TokenCache, covers, default_client_name, owner_credential, scope_names, scope_numbers
from .v1 import access_pb2, agent_pb2, events_pb2, files_pb2, models_pb2

PendingCallback = Callable[[access_pb2.AccessRequest], None]


def print_pending(request: access_pb2.AccessRequest) -> None:
    """The default way to show a pending access request: on stderr, with
    the code the user compares and how to approve it."""
    print(
        f"OmniPanel: {request.client_name!r} asks for access "
        f"({', '.join(n for n in scope_names(request.scopes) if n != 'status') or 'status'}).\n"
        f"  Code: {request.code}\n"
        "  Check that the tray, the panel or `omnipanel clients pending` shows the same code, and approve\n"
        f"  it there, or run: omnipanel clients approve {request.id}\n"
        "  Waiting for your answer...",
        file=sys.stderr,
        flush=True,
    )


class Stream:
    """A server stream: iterate it for the messages; errors become
    :class:`OmniPanelError` subclasses. ``cancel()`` (or leaving a ``with``
    block) stops it."""

    def __init__(self, call: Any, target: str, retry: Optional[Callable[[str], Any]] = None) -> None:
        self._call = call
        self._target = target
        self._retry = retry

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as err:
            raise _translate(err, self._target, self._retry) from None

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def _translate(err: grpc.RpcError, target: str, retry: Optional[Callable[[str], Any]]) -> OmniPanelError:
    error = from_rpc_error(err, target)
    if isinstance(error, ConfirmationRequired):
        error._retry = retry
    return error


class Connection(Protocol):
    """What a service's methods need of their client: the channel, where it
    leads, and the credentials to present (the blocking Client and
    omnipanel.aio's both have them)."""

    _channel: Any
    target: Target
    _credentials: Credentials


class Method:
    """One RPC of a service. Call it with the request message or with its
    fields as keyword arguments; keyword-only extras: ``timeout`` (seconds),
    ``confirmation`` (an id the user allowed), ``metadata`` (more pairs).
    Unary RPCs return the response; streaming ones a :class:`Stream`."""

    def __init__(self, client: Connection, info: MethodInfo) -> None:
        self._client = client
        self.info = info
        factory = client._channel.unary_stream if info.server_streaming else client._channel.unary_unary
        self._call: Any = factory(
            info.path,
            request_serializer=info.request.SerializeToString,
            response_deserializer=info.response.FromString,
        )

    def __call__(
        self,
        request: Optional[Message] = None,
        *,
        timeout: Optional[float] = None,
        confirmation: Optional[str] = None,
        metadata: Sequence[Tuple[str, str]] = (),
        **fields: Any,
    ) -> Any:
        message = calls.build_request(self.info, request, fields)
        target = str(self._client.target)

        def again(confirmation_id: str) -> Any:
            return self(message, timeout=timeout, confirmation=confirmation_id, metadata=metadata)

        md = self._client._credentials.metadata(confirmation, metadata)
        if self.info.server_streaming:
            return self._stream(self._call(message, timeout=timeout, metadata=md), target, again)
        return self._unary(message, timeout, md, target, again)

    # The two hooks omnipanel.aio's Method overrides: everything else about
    # a call is the same with and without asyncio.
    _stream: Callable[..., Any] = Stream

    def _unary(self, message: Message, timeout: Optional[float], md: Any, target: str, again: Any) -> Any:
        try:
            return self._call(message, timeout=timeout, metadata=md)
        except grpc.RpcError as err:
            raise _translate(err, target, again) from None


class Service:
    """The methods of one service, by proto name (``GetInfo``) or Python
    name (``get_info``)."""

    _method_class: Callable[..., Method] = Method

    def __init__(self, client: Connection, key: str) -> None:
        self._client = client
        self._key = key
        self._methods = calls.methods_of(key)
        self._bound: Dict[str, Method] = {}

    def __getattr__(self, name: str) -> Method:
        info = self.__dict__["_methods"].get(name)
        if info is None:
            raise AttributeError(f"the {self._key} service has no method {name!r}")
        method = self._bound.get(info.name)
        if method is None:
            method = self._bound[info.name] = self._method_class(self._client, info)
        return method

    def __dir__(self) -> List[str]:
        return sorted(self._methods)


def check_protocol(info: agent_pb2.GetInfoResponse, target: str) -> None:
    """Refuse an agent speaking another protocol version."""
    if info.protocol_version != PROTOCOL_VERSION:
        raise VersionMismatch(info.version or "(unknown version)", info.protocol_version, PROTOCOL_VERSION, target)


def _open_channel(target: Target, ca_certificate: Optional[str]) -> grpc.Channel:
    options = calls.channel_options(target.is_socket)
    if target.tls:
        pem = calls.read_ca(ca_certificate or os.environ.get(CA_CERT_ENV) or None)
        return grpc.secure_channel(target.grpc_target(), grpc.ssl_channel_credentials(root_certificates=pem), options)
    return grpc.insecure_channel(target.grpc_target(), options)


class Client:
    """A connection to the agent. Attributes: ``agent``, ``models``,
    ``projects``, ``files``, ``git``, ``system``, ``updates`` (services),
    ``info`` (GetInfo's answer at connect), ``target``, ``scopes`` (what
    this client holds), ``is_owner``. Use it as a context manager, or call
    :meth:`close`."""

    agent: Service
    models: Service
    projects: Service
    files: Service
    git: Service
    system: Service
    updates: Service

    def __init__(self, channel: grpc.Channel, target: Target, credentials: Credentials) -> None:
        self._channel = channel
        self.target = target
        self._credentials = credentials
        for key in calls.SERVICES:
            setattr(self, key, Service(self, key))
        self.info = agent_pb2.GetInfoResponse()

    @property
    def scopes(self) -> List[str]:
        return scope_names(self.info.caller_scopes)

    @property
    def is_owner(self) -> bool:
        return bool(self.info.caller_is_owner)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_info(self, timeout: Optional[float]) -> agent_pb2.GetInfoResponse:
        info: agent_pb2.GetInfoResponse = self.agent.GetInfo(timeout=timeout)
        self.info = info
        return info

    # Streaming helpers ------------------------------------------------

    def pull(self, model: str, provider: str = "") -> Iterator[models_pb2.PullProgress]:
        """Pull `model`, yielding its progress (``completed_bytes``,
        ``total_bytes``, ``status``, ``state``...) until it is done. Raises
        OmniPanelError when the pull fails."""
        last: Optional[models_pb2.PullProgress] = None
        with self.models.PullModel(model=model, provider=provider) as stream:
            for update in stream:
                if update.HasField("progress"):
                    last = update.progress
                    yield update.progress
        if last is not None and last.state == models_pb2.PULL_STATE_FAILED:
            raise OmniPanelError(f"pulling {model} failed: {last.error or 'no reason given'}", target=str(self.target))

    def chat(self, model: str, messages: Any, **fields: Any) -> Iterator[str]:
        """Chat with `model` (empty: the default model), yielding the reply's
        text as it streams. `messages`: a string (one user message), dicts
        with role and content, or ChatMessage messages; more ChatRequest
        fields (``options_json``, ``format``...) as keyword arguments."""
        request = calls.chat_request(model, messages, fields)
        with self.models.Chat(request) as stream:
            for piece in stream:
                if piece.content:
                    yield piece.content

    def watch(self, project: str, after_sequence: Optional[int] = None) -> Iterator[files_pb2.WatchResponse]:
        """Follow a project's file changes: yields WatchResponse items
        (``batch`` of changes, ``repository_changed``, ``rescan_needed``,
        ``gap``); the replay's ``caught_up`` marker is skipped."""
        request = files_pb2.WatchRequest(project=project)
        if after_sequence is not None:
            request.after_sequence = after_sequence
        with self.files.Watch(request) as stream:
            for item in stream:
                if item.WhichOneof("item") != "caught_up":
                    yield item

    def events(
        self,
        topics: Iterable[str] = (),
        *,
        after_sequence: Optional[int] = None,
        instance_id: int = 0,
        give_up_after: Optional[float] = None,
    ) -> Iterator[Union[events_pb2.Event, agent_pb2.EventGap]]:
        """Follow the agent's events, yielding each Event, and an EventGap
        when some were lost (re-read what you mirror). When the connection
        drops (the agent restarts, is upgraded) it reconnects with back-off
        and resumes after the last event seen; `give_up_after` seconds
        without the agent raise AgentNotRunning (default: wait forever)."""
        cursor, instance = after_sequence, instance_id
        delay = 0.1
        down_since: Optional[float] = None
        topic_list = list(topics)
        while True:
            request = agent_pb2.WatchEventsRequest(topics=topic_list, instance_id=instance)
            if cursor is not None:
                request.after_sequence = cursor
            try:
                with self.agent.WatchEvents(request) as stream:
                    for item in stream:
                        delay, down_since = 0.1, None
                        kind = item.WhichOneof("item")
                        if kind == "event":
                            cursor, instance = item.event.sequence, item.event.instance_id
                            yield item.event
                        elif kind == "gap":
                            cursor, instance = max(item.gap.resume_sequence - 1, 0), item.gap.instance_id
                            yield item.gap
                        elif kind == "caught_up" and cursor is None:
                            cursor, instance = item.caught_up.last_sequence, item.caught_up.instance_id
            except Unavailable:
                now = time.monotonic()
                down_since = down_since or now
                if give_up_after is not None and now - down_since > give_up_after:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def ask_for_access(
    client: Client,
    scopes: Sequence[str],
    *,
    client_name: str,
    reason: str = "",
    projects: Sequence[str] = (),
    on_pending: Optional[PendingCallback] = None,
) -> Tuple[str, access_pb2.Client]:
    """Run the admission flow on `client`'s connection: ask, show the code
    (``on_pending``, default :func:`print_pending`), wait for the user's
    answer. Returns (token, grant); raises AccessDenied when refused."""
    show = on_pending or print_pending
    asking = Credentials(None)
    saved, client._credentials = client._credentials, asking
    try:
        stream = client.agent.RequestAccess(
            client_name=client_name,
            scopes=scope_numbers(scopes),
            projects=[os.path.abspath(p) for p in projects],
            reason=reason,
        )
    finally:
        client._credentials = saved
    with stream:
        for update in stream:
            state = update.request.state
            if state == access_pb2.ACCESS_REQUEST_STATE_PENDING:
                show(update.request)
            elif state == access_pb2.ACCESS_REQUEST_STATE_APPROVED and update.token:
                return update.token, update.client
            elif state != access_pb2.ACCESS_REQUEST_STATE_UNSPECIFIED:
                name = access_pb2.AccessRequestState.Name(state).replace("ACCESS_REQUEST_STATE_", "")
                raise AccessDenied(
                    f"the access request of {client_name!r} ended {name.lower()}: "
                    + ("the user refused it" if name == "DENIED" else "nobody approved it in time"),
                    name,
                    str(client.target),
                )
    raise AccessDenied("the agent closed the access request without an answer", "UNANSWERED", str(client.target))


def connect(
    socket: "Optional[str | os.PathLike[str]]" = None,
    address: Optional[str] = None,
    token: Optional[str] = None,
    ca_certificate: Optional[str] = None,
    client_name: Optional[str] = None,
    request_access: Optional[Sequence[str]] = None,
    reason: str = "",
    projects: Sequence[str] = (),
    owner: bool = False,
    timeout: float = 10.0,
    on_pending: Optional[PendingCallback] = None,
    token_cache: Optional[TokenCache] = None,
) -> Client:
    """Connect to the agent and return a :class:`Client`.

    Where: `socket` or `address` (``host:port``, ``https://host:port``;
    `ca_certificate` is a PEM file for TLS), else ``OMNIPANEL_ADDR``, else
    the socket the agent uses (``OMNIPANEL_SOCKET``, else
    ``$XDG_RUNTIME_DIR/omnipanel/agent.sock``, else
    ``/tmp/omnipanel-$UID/agent.sock``).

    Credential, first found: `token`, ``OMNIPANEL_TOKEN``, the token this
    script was granted before (cached per user, agent and `client_name`),
    and with ``owner=True`` on the socket the agent's owner credential when
    this user can read it. A script is a client of its own, not the user's
    CLI: without ``owner=True`` it never borrows the owner credential, so
    the user sees and approves what it may do.

    ``request_access=["read", "infer"]`` (with `reason`, and `projects` to
    limit it to some folders) asks the user when the credential does not
    hold those scopes: the code and how to approve are printed on stderr
    (or given to `on_pending`), the call waits for the answer, and the
    token is cached so the script asks once; a cached token the agent
    refuses is dropped and asked for again.

    Raises AgentNotRunning, VersionMismatch, AccessDenied, Unauthenticated,
    ConfigError."""
    target = resolve_target(socket, address)
    name = client_name or default_client_name()
    wanted = [s.strip().lower() for s in ([request_access] if isinstance(request_access, str) else request_access or [])]
    scope_numbers(wanted)  # a bad scope name fails before anything is dialled
    cache = token_cache or TokenCache()
    explicit = token or (os.environ.get(TOKEN_ENV, "").strip() or None)
    cached = None if explicit else cache.get(str(target), name)
    secret = explicit or (cached["token"] if cached else None)

    channel = _open_channel(target, ca_certificate)
    client = Client(channel, target, Credentials(secret))
    try:
        try:
            info = client._get_info(timeout)
        except Unauthenticated:
            if not cached:
                raise
            # Revoked or expired: forget it and go on without it.
            cache.forget(str(target), name)
            cached, secret = None, None
            client._credentials = Credentials(None)
            info = client._get_info(timeout)
        check_protocol(info, str(target))
        if secret is None and owner and target.is_socket:
            credential = owner_credential(info.data_dir)
            if credential:
                client._credentials = Credentials(credential)
                client._get_info(timeout)
        if wanted and not covers(client.scopes, wanted):
            if explicit:
                raise PermissionDenied(
                    f"the token given holds {', '.join(client.scopes)}, not {', '.join(wanted)}",
                    code=grpc.StatusCode.PERMISSION_DENIED,
                    reason="SCOPE_TOO_LOW",
                    target=str(target),
                )
            new_token, grant = ask_for_access(
                client, wanted, client_name=name, reason=reason, projects=projects, on_pending=on_pending
            )
            cache.put(str(target), name, new_token, scope_names(grant.scopes), grant.id)
            client._credentials = Credentials(new_token)
            client._get_info(timeout)
        return client
    except BaseException:
        client.close()
        raise


