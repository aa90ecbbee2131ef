"""The federation's bus: a NATS connection (nats-py) driven from Twisted.

nats-py is an asyncio library, so a federated dispatcher runs on Twisted's
asyncio reactor (``twistd --reactor=asyncio actornet ...``): Twisted and
nats-py then share one event loop and one thread, and NATS callbacks run
between Twisted's like any other.  This module is the only one that imports
nats; the federation sees ``publish``, ``subscribe``, ``max_payload`` and the
key-value calls of :class:`~actornet.dispatcher.claims.Claims`.

nats-py reconnects by itself (to any server of the cluster); the first
connection is retried here until it succeeds, so a dispatcher started before
NATS serves its own star and joins the network when NATS comes.  Messages
published while disconnected are dropped (counted), never queued: the links
they belonged to are closed when the connection goes (see
:mod:`~actornet.dispatcher.federation`).
"""

import asyncio

import nats
from nats.errors import Error as NatsError
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from twisted.internet.defer import succeed
from twisted.logger import Logger

from actornet.dispatcher.claims import KeyTaken, NoStore, deferred

DEFAULT_MAX_PAYLOAD = 1024 * 1024


class NatsBus:
    """One dispatcher's connection to NATS.

    @param settings: a :class:`~actornet.config.FederationConfig`-like record
        with ``servers``, ``token``, ``user``, ``password``, ``tls`` (an
        ``ssl.SSLContext`` or None), ``replicas`` and ``network``.
    @param client_name: how NATS's monitoring names this connection.
    """

    log = Logger()

    def __init__(self, settings, client_name, stats):
        self.settings = settings
        self.client_name = client_name
        self.stats = stats
        self.max_payload = DEFAULT_MAX_PAYLOAD
        self.connected = False
        self.nc = None
        self.kv = None
        self._subscriptions = []
        self._on_up = self._on_down = None
        self._connecting = None
        self._stopping = False

    def subscribe(self, subject, callback):
        """Call ``callback(subject, data)`` for each message on ``subject`` (made
        at connection time; nats-py keeps subscriptions across reconnects)."""
        self._subscriptions.append((subject, callback))

    def start(self, on_up, on_down):
        """Connect in the background; ``on_up()`` runs at every (re)connection,
        ``on_down(why)`` at every loss."""
        self._on_up, self._on_down = on_up, on_down
        self._connecting = asyncio.ensure_future(self._connect())

    async def _connect(self):
        delay = 0.1
        while not self._stopping:
            try:
                self.nc = await nats.connect(**self._options())
                break
            except (TimeoutError, NatsError, OSError) as e:
                self._on_down(f"cannot connect to {', '.join(self.settings.servers)}: "
                              f"{type(e).__name__}: {e}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        else:
            return
        self.max_payload = self.nc.max_payload or DEFAULT_MAX_PAYLOAD
        for subject, callback in self._subscriptions:
            await self.nc.subscribe(subject, cb=self._deliverer(callback),
                                    pending_bytes_limit=256 * 1024 * 1024)
        await self._open_store()
        self._up()

    def _options(self):
        settings = self.settings
        options = {"servers": list(settings.servers), "name": self.client_name,
                   "no_echo": True, "allow_reconnect": True, "dont_randomize": True,
                   "max_reconnect_attempts": -1, "reconnect_time_wait": 0.25,
                   "connect_timeout": 2,
                   "disconnected_cb": self._disconnected, "reconnected_cb": self._reconnected,
                   "error_cb": self._error, "closed_cb": self._closed}
        for key in ("token", "user", "password"):
            if getattr(settings, key) is not None:
                options[key] = getattr(settings, key)
        if settings.tls is not None:
            options["tls"] = settings.tls
        return options

    async def _open_store(self):
        """The bucket of network-wide names (made by the first dispatcher)."""
        bucket = f"actornet-{self.settings.network}-names"
        js = self.nc.jetstream(timeout=2)
        try:
            try:
                self.kv = await js.key_value(bucket)
            except BucketNotFoundError:
                self.kv = await js.create_key_value(bucket=bucket, history=1,
                                                    replicas=self.settings.replicas)
        except (TimeoutError, NatsError) as e:
            self.kv = None
            self.log.warn("federation: no JetStream key-value store ({why}); names are "
                          "checked against the other dispatchers' hellos only",
                          why=f"{type(e).__name__}: {e}")

    def _deliverer(self, callback):
        async def deliver(msg):
            try:
                callback(msg.subject, msg.data)
            except Exception:
                self.log.failure("federation: a message on {subject} failed",
                                 subject=msg.subject)
        return deliver

    def _up(self):
        self.connected = True
        self.log.info("federation: connected to NATS at {url}",
                      url=self.nc.connected_url.geturl() if self.nc.connected_url else "?")
        self._on_up()

    async def _disconnected(self):
        if self.connected:
            self.connected = False
            self._on_down("disconnected from NATS")

    async def _reconnected(self):
        self._up()

    async def _error(self, error):
        """nats-py's errors; while there is no connection (nats-py retries even the
        first one by itself, a refused token included) the last one says why."""
        self.stats["federation_nats_errors"] += 1
        why = f"{type(error).__name__}: {error}"
        if self.connected:
            self.log.warn("federation: NATS: {error}", error=why)
        elif not self._stopping:
            self._on_down(why)

    async def _closed(self):
        if self.connected:
            self.connected = False
            self._on_down("the NATS connection closed")

    def publish(self, subject, data):
        """Send ``data`` on ``subject`` now; dropped (counted) while disconnected."""
        if not self.connected:
            self.stats["federation_unsent"] += 1
            return
        asyncio.ensure_future(self.nc.publish(subject, data)).add_done_callback(self._sent)

    def _sent(self, future):
        if not future.cancelled() and future.exception() is not None:
            self.stats["federation_unsent"] += 1
            self.log.warn("federation: a NATS publish failed: {why}", why=future.exception())

    def stop(self):
        """Close the connection: after sending what waits when connected, at once
        while it is still trying to (re)connect."""
        self._stopping = True
        self.connected = False
        if self.nc is None or self.nc.is_closed:
            if self._connecting is not None:
                self._connecting.cancel()
            return succeed(None)
        return deferred(self._close())

    async def _close(self):
        if self.nc.is_connected:
            try:
                await self.nc.drain()
                return
            except (NatsError, TimeoutError):
                pass
        await self.nc.close()

    # -- the key-value store (see claims) ----------------------------------------

    def _store(self):
        if self.kv is None or not self.connected:
            raise NoStore("no key-value store")
        return self.kv

    async def create(self, key, value):
        try:
            return await self._store().create(key, value)
        except KeyWrongLastSequenceError as e:
            raise KeyTaken(key) from e
        except (TimeoutError, NatsError) as e:
            raise NoStore(f"{type(e).__name__}: {e}") from e

    async def get(self, key):
        """``(value, revision)``, or None when there is no such key."""
        try:
            entry = await self._store().get(key)
        except KeyNotFoundError:
            return None
        except (TimeoutError, NatsError) as e:
            raise NoStore(f"{type(e).__name__}: {e}") from e
        return entry.value, entry.revision

    async def update(self, key, value, revision):
        try:
            return await self._store().update(key, value, last=revision)
        except KeyWrongLastSequenceError as e:
            raise KeyTaken(key) from e
        except (TimeoutError, NatsError) as e:
            raise NoStore(f"{type(e).__name__}: {e}") from e

    async def delete(self, key, revision):
        try:
            await self._store().delete(key, last=revision)
        except KeyWrongLastSequenceError:
            pass
        except (TimeoutError, NatsError) as e:
            raise NoStore(f"{type(e).__name__}: {e}") from e
