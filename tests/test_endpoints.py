"""One dispatcher listening on tcp, unix and ssl endpoints at once, built from a config."""

import datetime
import ipaddress
import json
from pathlib import Path

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor

from actornet import config, connect, tap
from actornet.listening import ListenFailed

pytestmark = pytest.mark.timeout(20)


def self_signed(folder):
    """Write key.pem and cert.pem (for 127.0.0.1) into ``folder``; the cert also into ca/."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "ca").mkdir()
    (folder / "ca" / "cert.pem").write_bytes(pem)


@pytest_twisted.ensureDeferred
async def test_tcp_unix_and_ssl_listeners_serve_the_same_network(tmp_path):
    """Clients on tcp, unix and tls endpoints all reach the config's math server."""
    self_signed(tmp_path)
    socket_path = tmp_path / "d.sock"
    connection = tmp_path / "connection.json"
    (tmp_path / "net.toml").write_text(f"""
[dispatcher]
listen = ["tcp:0:interface=127.0.0.1", "unix:{socket_path}",
          "ssl:0:interface=127.0.0.1:privateKey={tmp_path}/key.pem:certKey={tmp_path}/cert.pem"]
token = "tok"
connection_file = "{connection}"

[[actor]]
class = "mathserver:MathServer"
name = "math"
""")
    (tmp_path / "mathserver.py").write_text(
        (Path(__file__).parent.parent / "examples" / "mathserver.py").read_text())
    network = config.load(tmp_path / "net.toml")
    root = tap.build(network, reactor)
    root.startService()
    service = root.services[0]
    try:
        await next(root.actors()).when_attached()
        info = json.loads(connection.read_text())
        tcp_port, _, ssl_port = (each.endpoint.port.getHost() for each in service.listeners)
        assert info == {"endpoint": f"tcp:host=127.0.0.1:port={tcp_port.port}",
                        "token": "tok", "pid": info["pid"]}
        endpoints = [info["endpoint"], f"unix:path={socket_path}",
                     f"tls:127.0.0.1:{ssl_port.port}:trustRoots={tmp_path}/ca"]
        for number, endpoint in enumerate(endpoints):
            client = await connect(endpoint, "tok", reactor=reactor)
            answer = await client.ask("math", "mul", {"a": 6, "b": number})
            assert answer == {"result": 6 * number}
            await client.close()
    finally:
        await root.stopService()
    assert not connection.exists()


def unix_dispatcher(path):
    settings = config.DispatcherConfig(listen=(f"unix:{path}",), connection_file=None)
    return tap.DispatcherService(settings, reactor)


@pytest_twisted.ensureDeferred
async def test_unix_listener_replaces_a_stale_socket_and_refuses_a_live_one(tmp_path):
    """A socket file nobody listens on is replaced; one somebody listens on is not."""
    import socket

    path = tmp_path / "d.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    first = unix_dispatcher(path)
    first.startService()
    try:
        client = await connect(f"unix:path={path}", reactor=reactor)
        await client.close()
        second = unix_dispatcher(path)
        with pytest.raises(ListenFailed) as refused:
            second.privilegedStartService()
        assert str(refused.value) == (f"cannot listen on unix:{path}: another process "
                                      f"is listening on {path}")
        client = await connect(f"unix:path={path}", reactor=reactor)
        await client.close()
    finally:
        await first.stopService()


def test_unix_listener_never_removes_a_file_that_is_not_a_socket(tmp_path):
    """A regular file where the socket should be is left alone and named in the error."""
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(ListenFailed) as refused:
        unix_dispatcher(path).privilegedStartService()
    assert "exists and is not a socket" in str(refused.value)
    assert path.read_text() == "keep me"
