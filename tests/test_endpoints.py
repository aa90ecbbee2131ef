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
        tcp_port, _, ssl_port = (port.getHost() for port in service.ports)
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
