"""Who may join: the checks a REGISTER must pass before a peer gets READY.

A pure function of the envelope, the dispatcher's settings, the registry and
the peer's TLS certificate, so every refusal can be tested with plain values.
The checks run in this order, and the first that fails is the answer:

1. who the peer is: the common name of its client certificate, else the
   identity whose token it presents, else the shared token (UNAUTHORIZED);
2. whether its name and services are well formed: text of sane length with
   no control characters (a newline or an ANSI escape in a name would forge
   log lines and terminal output), and at most :data:`MAX_SERVICES` services
   (MALFORMED_ENVELOPE);
3. whether they are the dispatcher's alone, then whether its identity may
   register the name and serve the services (UNAUTHORIZED);
4. whether the network has room for the services it has never seen
   (:data:`MAX_KNOWN_SERVICES`: the registry remembers every service ever
   served, so that set must not grow without bound);
5. whether the name is free (NAME_TAKEN).

Permissions come before the name's owner, so an identity that may not have a
name does not even learn whether it is taken.  Tokens are compared in
constant time.
"""

import hmac
import unicodedata

import attrs
from cryptography.x509.oid import NameOID

from actornet.dispatcher.identity import SHARED, reserved
from actornet.dispatcher.remote import RemoteActor
from actornet.protocols.codes import Status

MAX_NAME = 200
MAX_SERVICES = 64
"""Services one actor may serve."""
MAX_KNOWN_SERVICES = 10_000
"""Distinct services a dispatcher learns; a REGISTER that would add more is refused."""


@attrs.frozen
class Refusal:
    """Why a peer is refused; ``counter`` names the statistic it is counted under."""

    status: Status
    message: str
    counter: str | None = None


def admit(envelope, settings, registry, peer=None):
    """The :class:`~actornet.dispatcher.identity.Identity` a REGISTER ``envelope``
    is admitted as, or the :class:`Refusal` that turns it away.

    @param settings: the dispatcher's
        :class:`~actornet.dispatcher.settings.DispatcherSettings` (its name,
        shared ``token`` and ``identities``).
    @param peer: the registering peer; its ``protocol.transport`` tells the
        certificate it presented over TLS, if any.
    """
    identity = authenticate(envelope, settings, peer)
    if type(identity) is Refusal:
        return identity
    name = envelope["name"]
    services = envelope.get("svcs", [])
    problem = malformed(name, services)
    if problem is not None:
        return Refusal(Status.MALFORMED_ENVELOPE, problem, "malformed")
    services = list(dict.fromkeys(services))
    problem = forbidden(identity, name, services, settings.name)
    if problem is not None:
        return Refusal(Status.UNAUTHORIZED, problem, "forbidden")
    new = [service for service in services if service not in registry.known_services]
    if new and len(registry.known_services) + len(new) > MAX_KNOWN_SERVICES:
        return Refusal(Status.UNAUTHORIZED,
                       f"this network already knows {len(registry.known_services)} services "
                       f"(at most {MAX_KNOWN_SERVICES}); {new[0]!r} would be one more",
                       "too_many_services")
    holder = registry.by_name.get(name)
    if holder is not None:
        where = (f"an actor on dispatcher {holder.dispatcher}"
                 if isinstance(holder, RemoteActor) else f"connection {holder.conn_id}")
        return Refusal(Status.NAME_TAKEN, f"the name {name!r} is taken by {where}", "name_taken")
    return identity


def authenticate(envelope, settings, peer=None):
    """The identity a peer proves, or an UNAUTHORIZED :class:`Refusal`.

    A client certificate (only ever present when the dispatcher's TLS listener
    verified it against its authority) names the identity by its common name.
    Otherwise the REGISTER's token is matched against every identity's token,
    then the shared token, which admits as
    :data:`~actornet.dispatcher.identity.SHARED`.  A dispatcher with neither a
    shared token nor identities admits everyone as SHARED.
    """
    certificate = peer_certificate(peer)
    if certificate is not None:
        return _by_certificate(certificate, settings.identities)
    if settings.token is None and not settings.identities:
        return SHARED
    offered = envelope.get("tok", "").encode()
    admitted = None
    for identity in settings.identities:
        if identity.token is not None and hmac.compare_digest(offered, identity.token.encode()):
            admitted = identity
    if admitted is None and settings.token is not None and hmac.compare_digest(
            offered, settings.token.encode()):
        admitted = SHARED
    if admitted is not None:
        return admitted
    if offered:
        message = "missing or wrong token"
    elif settings.identities:
        message = "a client certificate or a token is required"
    else:
        message = "a token is required"
    return Refusal(Status.UNAUTHORIZED, message, "unauthorized")


def _by_certificate(certificate, identities):
    subject = certificate.to_cryptography().subject
    names = [attribute.value for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(names) != 1:
        return Refusal(Status.UNAUTHORIZED,
                       "a client certificate names its identity in exactly one common name",
                       "unauthorized")
    for identity in identities:
        if identity.name == names[0]:
            return identity
    return Refusal(Status.UNAUTHORIZED,
                   f"the client certificate's identity {names[0]!r} is not one of this "
                   "network's identities", "unauthorized")


def peer_certificate(peer):
    """The certificate ``peer`` presented over TLS (pyOpenSSL's X509), or None."""
    if peer is None:
        return None
    get = getattr(peer.protocol.transport, "getPeerCertificate", None)
    return get() if get is not None else None


def malformed(name, services):
    """What is wrong with a REGISTER's ``name`` and ``services``, or None."""
    if not 0 < len(name) <= MAX_NAME or not all(
            isinstance(service, str) and 0 < len(service) <= MAX_NAME for service in services):
        return f"a name and each service are text of 1 to {MAX_NAME} characters"
    for kind, text in (("name", name), *(("service", service) for service in services)):
        if has_control(text):
            return f"the {kind} {text!r} holds control characters"
    count = len(set(services))
    if count > MAX_SERVICES:
        return f"an actor serves at most {MAX_SERVICES} services, not {count}"
    return None


def has_control(text):
    """Whether ``text`` holds a control, format or unassigned character (Unicode
    category C*): newlines, escapes, bidi overrides."""
    return any(unicodedata.category(ch).startswith("C") for ch in text)


def forbidden(identity, name, services, dispatcher):
    """Why ``identity`` may not register ``name`` serving ``services``, or None."""
    for action, value in (("register", name), *(("serve", service) for service in services)):
        problem = reserved(action, value, dispatcher)
        if problem is None and not identity.may(action, value):
            problem = identity.refusal(action, value)
        if problem is not None:
            return problem
    return None
