"""Request handlers: the ``@handler`` mark, an actor's table of them, and calling one.

As AMP's ``CommandLocator`` turns a command's name into a responder, this turns
a request's method into a call of the actor's marked method.  A handler gets
the request's :class:`~actornet.protocols.databag.DataBag` and may return a
value, a Deferred, or be ``async def``; an exception becomes an error at the
asker carrying the exception's type and message.  A synchronous handler is
called directly and its answer sent at once, with no Deferred in between.
"""

from inspect import iscoroutine

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from actornet.actors.requests import bag_of
from actornet.protocols.codes import Status
from actornet.protocols.databag import MissingField
from actornet.protocols.errors import ActornetError, DownstreamTimeout, RequestTimeout

_MARK = "_actornet_handler"


def handler(method=None, *, name=None):
    """Mark a method as a request handler, served under its own name or ``name``.

    Use as ``@handler`` or ``@handler(name="other-name")``.
    """
    def mark(function):
        setattr(function, _MARK, name or function.__name__)
        return function
    return mark(method) if method is not None else mark


def handlers_of(actor, reserved=frozenset()):
    """``{served name: bound method}`` for every marked method of ``actor``'s class.

    Methods are looked up on the class, so an instance attribute of the same
    name (``self.received = ...``) never hides a handler.

    @param reserved: method names of the framework's own API (``ask``, ``tell``, ...).
    @raise TypeError: a handler method named like one of them would hide it.
    """
    klass = type(actor)
    table = {}
    for base in reversed(klass.__mro__):
        for attribute, value in vars(base).items():
            served = getattr(value, _MARK, None)
            if served is None:
                continue
            if attribute in reserved:
                raise TypeError(
                    f"{base.__name__}.{attribute}: a handler method named {attribute!r} would "
                    f"hide Actor.{attribute}; name the method otherwise and serve it with "
                    f"@handler(name={attribute!r})")
            table[served] = getattr(klass, attribute).__get__(actor, klass)
    return table


class Handlers:
    """An actor's handler table and the code that runs a request through it.

    ``methods`` maps each served name to its bound method; answers and errors
    go back through ``session``.
    """

    log = Logger()

    def __init__(self, actor, session, reserved=frozenset()):
        self.methods = handlers_of(actor, reserved)
        self._session = session

    def serve(self, request, body):
        """Run the handler for ``request`` and send its answer (or error) when it comes.

        A handler still at work (its Deferred, or its coroutine run as one) is
        cancelled when the asker cancels: a coroutine gets CancelledError where
        it awaits.  A request cancelled before its turn (held while the actor
        prepares) is not run at all.
        """
        if request.cancelled:
            return
        method = self.methods.get(request.method)
        session = self._session
        if method is None:
            known = ", ".join(sorted(self.methods)) or "none"
            session.reply_error(request, Status.UNKNOWN_METHOD, "UnknownMethod",
                                f"{session.name} has no method {request.method!r} "
                                f"(it has: {known})")
            return
        try:
            bag = bag_of(body, request.route, request.sender)
        except ActornetError as e:
            session.reply_error(request, e.status, "MalformedBody", e.message)
            return
        bag._request = request
        try:
            result = method(bag)
        except Exception:
            self._failed(Failure(), request)
            return
        if not isinstance(result, dict) and (isinstance(result, Deferred)
                                             or iscoroutine(result)):
            request.running = maybeDeferred(lambda: result)
            request.running.addCallbacks(
                session.reply, self._failed, callbackArgs=(request,), errbackArgs=(request,))
        else:
            session.reply(result, request)

    def _failed(self, failure, request):
        if request.cancelled:
            return
        error = failure.value
        status = error.status if isinstance(error, ActornetError) else Status.FAILURE
        kind = getattr(error, "remote_type", None) or type(error).__name__
        message = error.message if isinstance(error, ActornetError) else str(error)
        if isinstance(error, MissingField):
            message = f"{request.service}.{request.method} needs a field: {error}"
        elif isinstance(error, RequestTimeout):
            kind = DownstreamTimeout.remote_name
            message = (f"{request.service}.{request.method} timed out waiting for another "
                       f"service: {message}")
        self.log.info("{actor}: {service}.{method} raised {kind}: {message}",
                      actor=self._session.name, service=request.service,
                      method=request.method, kind=kind, message=message)
        self._session.reply_error(request, status, kind, message)
