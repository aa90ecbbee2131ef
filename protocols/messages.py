"""One constructor per message kind: the only place envelopes are built.

An envelope stays a plain dict (building an object per message would cost the
dispatcher on every frame; see :mod:`actornet.protocols.envelope` for its keys),
but nobody writes one by hand: every sender calls one of these, so a kind's
keys are spelled in one place and a test can build exactly what a peer sends.
Optional keys are left out rather than sent empty.
"""

from actornet.protocols.codes import Kind, Status


def register(name, services=(), token=None):
    """A peer's first frame: its unique name, the services it serves, the token."""
    envelope = {"k": Kind.REGISTER, "name": name, "svcs": list(services)}
    if token:
        envelope["tok"] = token
    return envelope


def ready(connection_id, name, keepalive_interval, max_frame):
    """The dispatcher accepted a REGISTER; ``ka`` tells the peer how often to speak,
    ``mf`` the largest frame it accepts (as NATS's INFO announces max_payload)."""
    return {"k": Kind.READY, "id": connection_id, "name": name, "ka": keepalive_interval,
            "mf": max_frame}


def refused(status, message):
    """The dispatcher refused a connection (at registration, or a frame it could not
    read) and is hanging up."""
    return {"k": Kind.REFUSED, "st": status, "err": [Status(status).label, message]}


def request(request_id, service, method, route, *, target="any", ttl=None, idempotent=False,
            forwarding=None):
    """An ask: the answer comes back with ``request_id``.

    ``forwarding`` is the id of the request (being handled by the sender) whose
    answer this one will give, so the final answer goes to the original asker.
    """
    envelope = {"k": Kind.REQUEST, "id": request_id, "svc": service, "m": method,
                "tgt": target, "r": route}
    if ttl is not None:
        envelope["ttl"] = ttl
    if idempotent:
        envelope["idem"] = True
    if forwarding is not None:
        envelope["fwd"] = forwarding
    return envelope


def progress(request_id, route=None):
    """A report on request ``request_id`` while its handler works (the body is the
    report's data); the dispatcher passes it to the asker, ahead of the answer."""
    envelope = {"k": Kind.PROGRESS, "id": request_id}
    if route is not None:
        envelope["r"] = route
    return envelope


def cancel(request_id):
    """The asker of ``request_id`` no longer wants its answer; sent on to the
    worker under the id the worker knows, so its handler stops."""
    return {"k": Kind.CANCEL, "id": request_id}


def tell(service, method, route, *, target="any"):
    """A request that wants no answer; a refusal comes back as an ERROR."""
    return {"k": Kind.REQUEST, "id": 0, "nr": True, "svc": service, "m": method,
            "tgt": target, "r": route}


def response(request_id, route=None, *, status=Status.SUCCESS, sender=None, error=None):
    """The answer to request ``request_id``; ``error`` is ``[type, message]`` when it failed."""
    envelope = {"k": Kind.RESPONSE, "id": request_id, "st": status}
    if route is not None:
        envelope["r"] = route
    if sender is not None:
        envelope["src"] = sender
    if error is not None:
        envelope["err"] = error
    return envelope


def failure(request_id, status, message, *, sender=None, route=None):
    """A failed answer whose type is the status itself (the dispatcher's own errors)."""
    return response(request_id, route, status=status, sender=sender,
                    error=[Status(status).label, message])


def tell_failed(status, message):
    """A tell could not be delivered (nobody serves it, ...): there is no asker
    waiting, so this is for the sender's log."""
    return {"k": Kind.ERROR, "id": 0, "st": status, "err": [Status(status).label, message]}


def event(topic, route, sender=None):
    """An event for every subscriber of ``topic``."""
    envelope = {"k": Kind.EVENT, "top": topic, "r": route}
    if sender is not None:
        envelope["src"] = sender
    return envelope


def subscribe(topic):
    return {"k": Kind.SUBSCRIBE, "top": topic}


def unsubscribe(topic):
    return {"k": Kind.UNSUBSCRIBE, "top": topic}


def keepalive():
    """Sent on a link that has been quiet for an interval."""
    return {"k": Kind.KEEPALIVE}


def disconnect():
    """Said before closing, so the other end logs a departure rather than a loss."""
    return {"k": Kind.DISCONNECT}
