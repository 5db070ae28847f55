"""Connecting to a real agent: GetInfo through the socket found like the
Rust client does, the owner credential only when asked for, calls by
keyword or message, errors with the agent's reasons."""

from pathlib import Path

import pytest

import omnipanel
from omnipanel.v1 import agent_pb2, models_pb2

from conftest import Sandbox


def test_connect_finds_the_socket_and_checks_info(agent: Sandbox) -> None:
    with omnipanel.connect() as op:  # XDG_RUNTIME_DIR from the sandbox
        assert op.info.protocol_version == omnipanel.PROTOCOL_VERSION
        assert Path(op.info.socket_path) == agent.socket
        assert op.scopes == ["status"] and not op.is_owner
        # By proto name or Python name, with or without a message.
        assert op.agent.get_info().pid == op.agent.GetInfo(agent_pb2.GetInfoRequest()).pid


def test_owner_credential_only_when_asked(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as op:
        assert op.is_owner
        assert op.models.ListModels().models is not None


def test_errors_carry_reasons(agent: Sandbox) -> None:
    with omnipanel.connect() as op:
        with pytest.raises(omnipanel.PermissionDenied) as denied:
            op.files.ListDirectory(project="/nowhere", path="")
        assert denied.value.reason == "NOT_ADMITTED"
        assert denied.value.code is not None and denied.value.code.name == "PERMISSION_DENIED"
    with omnipanel.connect(owner=True) as op:
        with pytest.raises(omnipanel.NotFound) as missing:
            op.models.ShowModel(model="no-such-model:latest")
        assert missing.value.reason == "MODEL_NOT_FOUND"
        with pytest.raises(omnipanel.ConfigError, match="its fields are: model, provider"):
            op.models.ShowModel(modle="typo")
        with pytest.raises(omnipanel.ConfigError, match="takes a omnipanel.v1.ShowModelRequest"):
            op.models.ShowModel(models_pb2.ListModelsRequest())
        with pytest.raises(AttributeError, match="no method 'Nope'"):
            op.models.Nope


def test_token_from_the_environment(agent: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIPANEL_TOKEN", "omp_not-a-real-token")
    with pytest.raises(omnipanel.Unauthenticated) as err:
        omnipanel.connect()
    assert err.value.reason == "TOKEN_INVALID"


def test_chat_arguments_are_checked(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as op:
        with pytest.raises(omnipanel.ConfigError, match="chat: bad arguments"):
            list(op.chat("m", "hi", temperature=0.2))
        with pytest.raises(omnipanel.ConfigError, match="bad chat message"):
            list(op.chat("m", [42]))
        with pytest.raises(omnipanel.ConfigError, match="at least one message"):
            list(op.chat("m", []))
