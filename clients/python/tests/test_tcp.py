"""The agent's TCP listener with TLS and a token: connect(address=...,
token=..., ca_certificate=...), and plain HTTP sent to it failing as a
connection problem, not as "the agent is not running"."""

import json
import shutil
import subprocess

import pytest

import omnipanel

from conftest import Sandbox


def _tls_agent(sandbox: Sandbox) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate (apt-get install openssl)")
    cert, key = sandbox.root / "cert.pem", sandbox.root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:FALSE", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    sandbox.add_config(f'[server]\ntcp = "127.0.0.1:0"\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    sandbox.start()


def test_tls_with_a_token(sandbox: Sandbox) -> None:
    _tls_agent(sandbox)
    with omnipanel.connect(owner=True) as local:
        address = local.info.tcp_address
    assert address
    made = json.loads(sandbox.cli("--json", "token", "create", "--scopes", "read", "python-tls").stdout)
    token = made.get("token") or made.get("secret")
    assert token, made
    ca = str(sandbox.root / "cert.pem")
    with omnipanel.connect(address=f"https://{address}", token=token, ca_certificate=ca) as remote:
        assert remote.scopes == ["read"] or "read" in remote.scopes
        assert remote.info.protocol_version == omnipanel.PROTOCOL_VERSION
    # The same through the environment, as the Rust client reads it.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMNIPANEL_ADDR", f"https://{address}")
        env.setenv("OMNIPANEL_TOKEN", token)
        env.setenv("OMNIPANEL_CA_CERT", ca)
        with omnipanel.connect() as remote:
            assert "read" in remote.scopes
    # A proxy in the environment is never used for the agent (nothing
    # listens on port 9: a proxied call would fail).
    with pytest.MonkeyPatch.context() as env:
        for var in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.setenv(var, "http://127.0.0.1:9")
        env.delenv("no_proxy", raising=False)
        env.delenv("NO_PROXY", raising=False)
        with omnipanel.connect(address=f"https://{address}", token=token, ca_certificate=ca) as proxied:
            assert "read" in proxied.scopes
    # Without a token: the status scope only.
    with omnipanel.connect(address=f"https://{address}", ca_certificate=ca) as anonymous:
        with pytest.raises(omnipanel.OmniPanelError) as refused:
            anonymous.files.ListDirectory(project="x")
        assert refused.value.reason in ("TOKEN_MISSING", "NOT_ADMITTED")
    with pytest.raises(omnipanel.ConnectionFailed) as plain:
        omnipanel.connect(address=address, token=token, timeout=10)
    assert not isinstance(plain.value, omnipanel.AgentNotRunning)
    assert "https://" in str(plain.value), plain.value
    with pytest.raises(omnipanel.ConfigError, match="cannot read the CA certificate"):
        omnipanel.connect(address=f"https://{address}", token=token, ca_certificate=str(sandbox.root / "nope.pem"))
