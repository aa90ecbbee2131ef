"""The config's say on who may join a dispatcher: ``[identities.NAME]`` tables
and the ``[dispatcher.tls]`` listener that requires client certificates.

Identities become :class:`~actornet.dispatcher.identity.Identity` records in the
dispatcher's settings, which :mod:`~actornet.dispatcher.admission` checks at
every REGISTER.  Certificates are read while the config is read, so a wrong
path or a key that does not fit its certificate stops ``twistd`` at once with
a one-line config error.
"""

from pathlib import Path

import attrs
from twisted.internet import endpoints

from actornet import certs
from actornet.dispatcher.admission import has_control
from actornet.dispatcher.identity import ACTIONS, Identity
from actornet.tables import Reader

TLS_KEYS = ("listen", "certificate", "key", "ca")
IDENTITY_KEYS = ("token", *ACTIONS)


@attrs.frozen
class TLSConfig:
    """A ``[dispatcher.tls]`` table: endpoints where peers connect over TLS and
    must present a client certificate signed by ``ca``, whose common name is
    their identity.  Paths are absolute (the config gives them relative to its
    own folder).
    """

    listen: tuple
    certificate: str
    key: str
    ca: str

    def options(self):
        """The server's TLS options (see :func:`actornet.certs.server_options`)."""
        return certs.server_options(self.certificate, self.key, self.ca)


def read_tls(reader):
    """A ``[dispatcher.tls]`` table as a :class:`TLSConfig`, its files checked now."""
    listen = reader.text_list("listen")
    if not listen:
        reader.fail("listen", "needs at least one endpoint string")
    for description in listen:
        reader.endpoint("listen", description, endpoints.serverFromString)
    folder = Path(reader.path).resolve().parent
    paths = {key: str(folder / Path(reader.get(key, str, check=bool, expect="a path"))
                      .expanduser()) for key in ("certificate", "key", "ca")}
    for key, read in (("certificate", certs.read_certificate), ("key", certs.read_key),
                      ("ca", certs.read_certificate)):
        try:
            read(paths[key])
        except certs.CertificateError as e:
            reader.fail(key, str(e))
    tls = TLSConfig(listen, **paths)
    try:
        tls.options()
    except certs.CertificateError as e:
        reader.fail("key", str(e))
    return tls


def read_identities(path, tables):
    """The ``[identities.NAME]`` tables as Identity records.

    Every permission list is an allow-list and defaults to nothing, so an
    identity may do exactly what its table says (``"*"`` allows everything),
    and adding a permission never takes another away.
    """
    identities = []
    owners = {}
    for name, table in tables.items():
        reader = Reader(path, f"identities.{name}", table, IDENTITY_KEYS)
        if not name or has_control(name):
            reader.fail(None, "an identity's name is text without control characters")
        token = reader.get("token", str, None, bool, "non-empty text")
        if token is not None and token in owners:
            reader.fail("token", f"the same as identities.{owners[token]}.token: "
                                 "a token names one identity")
        if token is not None:
            owners[token] = name
        identities.append(Identity(
            name, **{action: reader.text_list(action, ()) for action in ACTIONS}, token=token))
    return tuple(identities)
