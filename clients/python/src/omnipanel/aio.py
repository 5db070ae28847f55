"""The asyncio client (grpc.aio), with the same surface as the blocking
one: ``await omnipanel.aio.connect(...)`` returns a :class:`Client` whose
service methods are coroutines (unary) or async iterators (streams), and
whose helpers ``pull``, ``chat``, ``watch`` and ``events`` are async
iterators."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, AsyncIterator, Callable, Iterable, List, Optional, Sequence, Tuple, Union

import grpc
import grpc.aio
from google.protobuf.message import Message

from . import calls
from . import client as client_module
from .calls import Credentials
from .client import PendingCallback, _translate, check_protocol, print_pending
from .errors import (
    AccessDenied,
    OmniPanelError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from .location import CA_CERT_ENV, TOKEN_ENV, Target, resolve_target
from .tokens import TokenCache, covers, default_client_name, owner_credential, scope_names, scope_numbers
from .v1 import access_pb2, agent_pb2, events_pb2, files_pb2, models_pb2


class Stream:
    """A server stream: ``async for`` over it; ``cancel()`` stops it."""

    def __init__(self, call: Any, target: str, retry: Optional[Callable[[str], Any]]) -> None:
        self._call = call
        self._target = target
        self._retry = retry
        self._iter: Any = None

    def __aiter__(self) -> "Stream":
        return self

    async def __anext__(self) -> Any:
        if self._iter is None:
            self._iter = self._call.__aiter__()
        try:
            return await self._iter.__anext__()
        except grpc.RpcError as err:
            raise _translate(err, self._target, self._retry) from None

    def cancel(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()


class Method(client_module.Method):
    """One RPC; see :class:`omnipanel.Method`. Unary calls are awaited;
    streaming ones return a :class:`Stream` at once."""

    _stream = Stream

    async def _unary(self, message: Message, timeout: Optional[float], md: Any, target: str, again: Any) -> Any:
        try:
            return await self._call(message, timeout=timeout, metadata=md)
        except grpc.RpcError as err:
            raise _translate(err, target, again) from None


class Service(client_module.Service):
    """The methods of one service, by proto or Python name."""

    _method_class = Method


class Client:
    """An asyncio connection to the agent; see :class:`omnipanel.Client`.
    Use ``async with`` or ``await close()``."""

    agent: Service
    models: Service
    projects: Service
    files: Service
    git: Service
    system: Service
    updates: Service

    def __init__(self, channel: grpc.aio.Channel, target: Target, credentials: Credentials) -> None:
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

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _get_info(self, timeout: Optional[float]) -> agent_pb2.GetInfoResponse:
        info: agent_pb2.GetInfoResponse = await self.agent.GetInfo(timeout=timeout)
        self.info = info
        return info

    async def pull(self, model: str, provider: str = "") -> AsyncIterator[models_pb2.PullProgress]:
        """Pull `model`, yielding its progress; raises when it fails."""
        last: Optional[models_pb2.PullProgress] = None
        async with self.models.PullModel(model=model, provider=provider) as stream:
            async for update in stream:
                if update.HasField("progress"):
                    last = update.progress
                    yield update.progress
        if last is not None and last.state == models_pb2.PULL_STATE_FAILED:
            raise OmniPanelError(f"pulling {model} failed: {last.error or 'no reason given'}", target=str(self.target))

    async def chat(self, model: str, messages: Any, **fields: Any) -> AsyncIterator[str]:
        """Chat with `model`, yielding the reply's text as it streams."""
        request = calls.chat_request(model, messages, fields)
        async with self.models.Chat(request) as stream:
            async for piece in stream:
                if piece.content:
                    yield piece.content

    async def watch(self, project: str, after_sequence: Optional[int] = None) -> AsyncIterator[files_pb2.WatchResponse]:
        """Follow a project's file changes (``caught_up`` skipped)."""
        request = files_pb2.WatchRequest(project=project)
        if after_sequence is not None:
            request.after_sequence = after_sequence
        async with self.files.Watch(request) as stream:
            async for item in stream:
                if item.WhichOneof("item") != "caught_up":
                    yield item

    async def events(
        self,
        topics: Iterable[str] = (),
        *,
        after_sequence: Optional[int] = None,
        instance_id: int = 0,
        give_up_after: Optional[float] = None,
    ) -> AsyncIterator[Union[events_pb2.Event, agent_pb2.EventGap]]:
        """Follow the agent's events, resuming after a reconnect; see
        :meth:`omnipanel.Client.events`."""
        cursor, instance = after_sequence, instance_id
        delay = 0.1
        down_since: Optional[float] = None
        topic_list = list(topics)
        while True:
            request = agent_pb2.WatchEventsRequest(topics=topic_list, instance_id=instance)
            if cursor is not None:
                request.after_sequence = cursor
            try:
                async with self.agent.WatchEvents(request) as stream:
                    async for item in stream:
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
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def ask_for_access(
    client: Client,
    scopes: Sequence[str],
    *,
    client_name: str,
    reason: str = "",
    projects: Sequence[str] = (),
    on_pending: Optional[PendingCallback] = None,
) -> Tuple[str, access_pb2.Client]:
    """The admission flow; see :func:`omnipanel.ask_for_access`."""
    show = on_pending or print_pending
    saved, client._credentials = client._credentials, Credentials(None)
    try:
        stream = client.agent.RequestAccess(
            client_name=client_name,
            scopes=scope_numbers(scopes),
            projects=[os.path.abspath(p) for p in projects],
            reason=reason,
        )
    finally:
        client._credentials = saved
    async with stream:
        async for update in stream:
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


async def connect(
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
    """Connect to the agent; the same rules and arguments as
    :func:`omnipanel.connect` (read its documentation)."""
    target = resolve_target(socket, address)
    name = client_name or default_client_name()
    wanted = [s.strip().lower() for s in ([request_access] if isinstance(request_access, str) else request_access or [])]
    scope_numbers(wanted)
    cache = token_cache or TokenCache()
    explicit = token or (os.environ.get(TOKEN_ENV, "").strip() or None)
    cached = None if explicit else cache.get(str(target), name)
    secret = explicit or (cached["token"] if cached else None)

    options = calls.channel_options(target.is_socket)
    if target.tls:
        pem = calls.read_ca(ca_certificate or os.environ.get(CA_CERT_ENV) or None)
        channel = grpc.aio.secure_channel(target.grpc_target(), grpc.ssl_channel_credentials(root_certificates=pem), options)
    else:
        channel = grpc.aio.insecure_channel(target.grpc_target(), options)
    client = Client(channel, target, Credentials(secret))
    try:
        try:
            info = await client._get_info(timeout)
        except Unauthenticated:
            if not cached:
                raise
            cache.forget(str(target), name)
            cached, secret = None, None
            client._credentials = Credentials(None)
            info = await client._get_info(timeout)
        check_protocol(info, str(target))
        if secret is None and owner and target.is_socket:
            credential = owner_credential(info.data_dir)
            if credential:
                client._credentials = Credentials(credential)
                await client._get_info(timeout)
        if wanted and not covers(client.scopes, wanted):
            if explicit:
                raise PermissionDenied(
                    f"the token given holds {', '.join(client.scopes)}, not {', '.join(wanted)}",
                    code=grpc.StatusCode.PERMISSION_DENIED,
                    reason="SCOPE_TOO_LOW",
                    target=str(target),
                )
            new_token, grant = await ask_for_access(
                client, wanted, client_name=name, reason=reason, projects=projects, on_pending=on_pending
            )
            cache.put(str(target), name, new_token, scope_names(grant.scopes), grant.id)
            client._credentials = Credentials(new_token)
            await client._get_info(timeout)
        return client
    except BaseException:
        await client.close()
        raise
