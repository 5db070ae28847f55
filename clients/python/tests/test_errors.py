"""How a failed call's status becomes an exception, without an agent: the
hint about OMNIPANEL_TOKEN goes only with the agent refusing this client,
never with a git remote refusing its own login (reason GIT_AUTH)."""

from typing import Tuple, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from omnipanel import errors


class FakeCall:
    """What a failed call raises, as far as the classification reads it: a
    grpc.RpcError that is also a grpc.Call."""

    def __init__(self, code: grpc.StatusCode, details: str, reason: str) -> None:
        self._code = code
        self._details = details
        info = error_details_pb2.ErrorInfo(reason=reason, domain=errors.ERROR_DOMAIN)
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(code=code.value[0], message=details, details=[detail])
        self._trailers: Tuple[Tuple[str, bytes], ...] = ((errors.STATUS_DETAILS_KEY, status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Tuple[Tuple[str, bytes], ...]:
        return self._trailers


def test_the_agent_refusing_this_client_points_at_the_token() -> None:
    call = FakeCall(grpc.StatusCode.UNAUTHENTICATED, "the token is not valid", "TOKEN_INVALID")
    err = errors.from_rpc_error(cast(grpc.RpcError, call), "/run/agent.sock")
    assert "OMNIPANEL_TOKEN" in str(err)


def test_a_git_remote_refusing_its_login_does_not() -> None:
    call = FakeCall(grpc.StatusCode.UNAUTHENTICATED, "fetching from origin: authentication failed", "GIT_AUTH")
    err = errors.from_rpc_error(cast(grpc.RpcError, call), "/run/agent.sock")
    assert "OMNIPANEL_TOKEN" not in str(err)
    assert "fetching from origin" in str(err)
    assert err.reason == "GIT_AUTH"
