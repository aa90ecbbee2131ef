"""The ``[federation]`` table: joining other dispatchers over NATS.

    [federation]
    servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    network = "prod"          # networks sharing one NATS cluster stay apart
    token = "..."             # or user = "...", password = "..."
    # tls_ca, tls_certificate, tls_key: for tls:// servers

A federated dispatcher needs a ``name`` of its own in ``[dispatcher]`` (it is
how the others, the route stamps and ``actornet dispatchers`` name it) and
Twisted's asyncio reactor (``twistd --reactor=asyncio actornet ...``).
"""

import re
import ssl
from urllib.parse import urlsplit

import attrs

from actornet.tables import Reader

KEYS = ("servers", "network", "token", "user", "password", "replicas", "tls_ca",
        "tls_certificate", "tls_key")
SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


@attrs.frozen
class FederationConfig:
    """``replicas``: copies JetStream keeps of the network's names (1 to 5)."""

    servers: tuple
    network: str = "actornet"
    token: str | None = attrs.field(default=None, repr=False)
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    replicas: int = 1
    tls: ssl.SSLContext | None = None


def read_federation(path, table, dispatcher_name):
    """The checked ``[federation]`` table; ``dispatcher_name`` is the
    ``[dispatcher]``'s name, or None when the table did not set one."""
    reader = Reader(path, "federation", table, KEYS)
    servers = reader.text_list("servers")
    if not servers:
        reader.fail("servers", "needs at least one nats:// URL")
    for index, url in enumerate(servers):
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("nats", "tls") or not parts.hostname or port is None:
            reader.fail(f"servers[{index}]", f"expected nats://HOST:PORT or tls://HOST:PORT, "
                                             f"got {url!r}")
    network = reader.get("network", str, "actornet", SUBJECT_TOKEN.fullmatch,
                         "letters, digits, '-' and '_'")
    if dispatcher_name is None:
        Reader(path, "dispatcher", {}, ()).fail(
            "name", "is required with [federation]: each dispatcher of a network needs a "
                    "name of its own")
    if not SUBJECT_TOKEN.fullmatch(dispatcher_name):
        Reader(path, "dispatcher", {}, ()).fail(
            "name", f"with [federation], letters, digits, '-' and '_' only, got "
                    f"{dispatcher_name!r}")
    text = {"check": bool, "expect": "non-empty text"}
    token = reader.get("token", str, None, **text)
    user = reader.get("user", str, None, **text)
    password = reader.get("password", str, None, **text)
    if (user is None) != (password is None):
        reader.fail("user" if user is None else "password", "user and password go together")
    if token is not None and user is not None:
        reader.fail("token", "use a token or a user and password, not both")
    replicas = reader.get("replicas", int, min(3, len(servers)), lambda n: 1 <= n <= 5,
                          "an integer from 1 to 5")
    return FederationConfig(servers, network, token, user, password, replicas,
                            _tls(reader, servers))


def _tls(reader, servers):
    files = {key: reader.get(key, str, None, bool, "a file path")
             for key in ("tls_ca", "tls_certificate", "tls_key")}
    if not any(url.startswith("tls://") for url in servers) and not any(files.values()):
        return None
    if (files["tls_certificate"] is None) != (files["tls_key"] is None):
        reader.fail("tls_key", "tls_certificate and tls_key go together")
    try:
        context = ssl.create_default_context(cafile=files["tls_ca"])
        if files["tls_certificate"] is not None:
            context.load_cert_chain(files["tls_certificate"], files["tls_key"])
    except (OSError, ssl.SSLError) as e:
        reader.fail("tls_ca", f"cannot read the TLS files: {e}")
    return context
