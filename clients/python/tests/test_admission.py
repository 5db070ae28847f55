"""The admission flow against the real agent, approved through the real
CLI: the token is cached 0600 and reused, and asked for again once the
user revokes it. Then the confirmation flow of a destructive act."""

import stat

import pytest

import omnipanel
from omnipanel.tokens import TokenCache

from conftest import Sandbox, admit


def _refuse_to_ask(request: object) -> None:
    raise AssertionError("asked for access although a cached token was valid")


def test_admission_caches_and_reuses_the_token(agent: Sandbox) -> None:
    with admit(agent, ["read", "infer"], client_name="cache test") as op:
        assert set(op.scopes) >= {"read", "infer"} and not op.is_owner
    cache = TokenCache()
    assert cache.path == agent.root / "config/omnipanel/python-tokens.json"
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    entry = cache.get(str(agent.socket), "cache test")
    assert entry is not None and entry["token"].startswith("omp_")

    with omnipanel.connect(request_access=["read"], client_name="cache test", on_pending=_refuse_to_ask) as op:
        assert "read" in op.scopes
        op.files  # the service attributes exist
    # Without request_access the cached token is presented too.
    with omnipanel.connect(client_name="cache test") as op:
        assert "infer" in op.scopes

    # The user revokes it: the next connect asks again.
    agent.cli("clients", "revoke", entry["client_id"])
    with admit(agent, ["read"], client_name="cache test") as op:
        assert "read" in op.scopes
    renewed = cache.get(str(agent.socket), "cache test")
    assert renewed is not None and renewed["token"] != entry["token"]


def test_denied_request(agent: Sandbox) -> None:
    import queue
    import threading

    codes: "queue.Queue[str]" = queue.Queue()
    errors: "queue.Queue[BaseException]" = queue.Queue()

    def run() -> None:
        try:
            omnipanel.connect(request_access=["write"], client_name="denied", on_pending=lambda r: codes.put(r.id))
        except BaseException as err:
            errors.put(err)

    threading.Thread(target=run, daemon=True).start()
    agent.cli("clients", "deny", codes.get(timeout=60))
    err = errors.get(timeout=60)
    assert isinstance(err, omnipanel.AccessDenied) and err.state == "DENIED"
    assert TokenCache().get(str(agent.socket), "denied") is None


def test_confirmation_flow(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as owner:
        for _ in owner.pull("test-small:latest"):
            pass
    with admit(agent, ["write"], client_name="deleter") as op:
        with pytest.raises(omnipanel.ConfirmationRequired) as asked:
            op.models.DeleteModel(model="test-small:latest")
        err = asked.value
        assert err.reason == "CONFIRMATION_REQUIRED" and err.confirmation_id
        assert f"omnipanel confirmations allow {err.confirmation_id}" in str(err)
        # Not answered yet: the retry is refused, nothing is deleted.
        with pytest.raises(omnipanel.FailedPrecondition) as pending:
            err.retry()
        assert pending.value.reason == "CONFIRMATION_PENDING"
        agent.cli("confirmations", "allow", err.confirmation_id)
        err.retry()
        names = [m.name for m in op.models.ListModels().models]
        assert "test-small:latest" not in names
