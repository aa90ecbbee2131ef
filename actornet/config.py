"""Reading a network's TOML config into checked records.

Every mistake is reported as a :class:`ConfigError` naming the file, the key
and what is wrong, e.g. ``cluster.toml: actor[2].instances: expected a
positive integer, got 0``, so that ``twistd actornet`` can exit at once with a
message a user can act on.

An actor's ``class`` is imported while the config is read (a typo is a config
error, not a crash after the network started), and the certificates of
``[dispatcher.tls]`` are read (see :mod:`actornet.access`).  The config file's
own directory is searched first, so actor modules can live beside the config.
"""

import os
import tomllib
from pathlib import Path

import attrs
from twisted.internet import endpoints

from actornet.access import TLS_KEYS, TLSConfig, read_identities, read_tls
from actornet.actors.actor import Actor
from actornet.actors.link import LinkSettings
from actornet.actors.supervisor import RestartPolicy
from actornet.dispatcher.settings import CONFIG_KEYS, DispatcherSettings
from actornet.federation_config import FederationConfig, read_federation
from actornet.gateway.settings import GatewayConfig, read_gateway
from actornet.registration_config import read_registrations
from actornet.tables import ConfigError, Reader

DEFAULT_CONNECTION_FILE = "~/.actornet/connection.json"


@attrs.frozen
class DispatcherConfig:
    """A ``[dispatcher]`` table: where to listen, and the dispatcher's own settings.

    ``http``: the monitoring endpoint (/metrics, /status), or None for none.
    ``connection_file``: where to write the connection-info file: "" for the
    default place, None for none.
    ``tls``: a :class:`TLSConfig`, or None for no TLS listener.
    ``gateway``: the WebSocket gateway's
    :class:`~actornet.gateway.settings.GatewayConfig`, or None for none.
    ``health``: ``(host, port)`` of the health endpoint (/status and /metrics
    served from a thread of its own), or None for none.
    ``http_token``: whether the monitoring endpoints require the token; None
    for the default (see :meth:`monitoring_token`).
    """

    listen: tuple
    settings: DispatcherSettings = DispatcherSettings()
    connection_file: str | None = ""
    http: str | None = None
    tls: TLSConfig | None = None
    federation: FederationConfig | None = None
    gateway: GatewayConfig | None = None
    health: tuple | None = None
    http_token: bool | None = None

    def monitoring_token(self, loopback):
        """The token a monitoring endpoint requires, or None for none.

        ``http_token`` decides when set; by default an endpoint on loopback
        (``loopback``) is open, and one that listens elsewhere requires the
        dispatcher's token, when it has one."""
        required = self.http_token if self.http_token is not None else not loopback
        return self.settings.token if required else None

    @property
    def link_settings(self):
        """What the actors beside this dispatcher connect with."""
        return LinkSettings(self.settings.token, self.settings.keepalive_multiplier,
                            self.settings.max_frame_bytes)


@attrs.frozen
class JoinConfig:
    """A ``[join]`` table: the dispatcher endpoints to try, in order, and the token."""

    connect: tuple
    token: str | None = None


@attrs.frozen
class ActorConfig:
    cls: type
    name: str
    services: tuple
    options: dict = attrs.field(factory=dict)
    base_dir: str = "."
    restart: RestartPolicy = RestartPolicy()

    def build(self, clock=None):
        """A new instance of the configured actor; relative paths in its options
        are meant relative to ``actor.config_dir``, the config file's folder."""
        actor = self.cls(name=self.name, services=self.services, options=self.options,
                         clock=clock)
        actor.config_dir = Path(self.base_dir)
        return actor


@attrs.frozen
class Config:
    path: str
    dispatcher: DispatcherConfig | None
    join: JoinConfig | None
    actors: tuple
    registrations: tuple = ()
    """The :class:`~actornet.registration.Hook` of each ``[[registration]]`` table."""

    @property
    def token(self):
        """The token actors present: the dispatcher's own, or the joined one's."""
        if self.join is not None:
            return self.join.token
        return self.dispatcher.settings.token if self.dispatcher is not None else None


def _positive(value):
    return value > 0


def load(path):
    """Read and check the config at ``path``.

    @raise ConfigError: naming the file, the key and the problem.
    """
    path = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    top = Reader(path, "(top level)", raw,
                 ("dispatcher", "join", "actor", "identities", "federation", "registration",
                  "gateway"))
    dispatcher = join = None
    identities = read_identities(path, top.get("identities", dict, {},
                                               expect="[identities.NAME] tables"))
    if "dispatcher" in raw:
        dispatcher = _dispatcher(Reader(path, "dispatcher", top.get("dispatcher", dict),
                                        DISPATCHER_KEYS), identities)
    if "federation" in raw:
        if dispatcher is None:
            raise ConfigError(f"{path}: [federation] joins a dispatcher to others: it belongs "
                              "in the config with the [dispatcher] table")
        named = raw["dispatcher"].get("name")
        dispatcher = attrs.evolve(dispatcher, federation=read_federation(
            path, top.get("federation", dict, expect="a [federation] table"),
            named if isinstance(named, str) else None))
    if "gateway" in raw:
        if dispatcher is None:
            raise ConfigError(f"{path}: [gateway] is the front door of a dispatcher: it "
                              "belongs in the config with the [dispatcher] table")
        dispatcher = attrs.evolve(dispatcher, gateway=read_gateway(
            path, top.get("gateway", dict, expect="a [gateway] table"),
            dispatcher.settings.token, identities))
    if "join" in raw:
        join = _join(Reader(path, "join", top.get("join", dict), ("connect", "token")))
    actor_tables = top.get("actor", list, default=[], expect="an array of [[actor]] tables")
    if dispatcher is None and join is None:
        raise ConfigError(f"{path}: needs a [dispatcher] table (to run one) "
                          "or a [join] table (to join one elsewhere)")
    if dispatcher is not None and join is not None:
        raise ConfigError(f"{path}: has both [dispatcher] and [join]; actors in a file with "
                          "a dispatcher join that dispatcher, so drop one of them")
    if dispatcher is None and not actor_tables:
        raise ConfigError(f"{path}: [join] without any [[actor]] runs nothing")
    if identities and dispatcher is None:
        raise ConfigError(f"{path}: [identities] say who may join a dispatcher: they belong "
                          "in the config with the [dispatcher] table")
    if identities and actor_tables and dispatcher.settings.token is None:
        raise ConfigError(f"{path}: the [[actor]] tables beside a dispatcher with "
                          "[identities] register with its shared token: set dispatcher.token")
    search = str(Path(path).resolve().parent)
    registration_tables = top.get("registration", list, [],
                                  expect="an array of [[registration]] tables")
    if registration_tables and dispatcher is None:
        raise ConfigError(f"{path}: [[registration]] tells others where a dispatcher listens: "
                          "it belongs in the config with the [dispatcher] table")
    registrations = read_registrations(path, registration_tables, search)
    actors = []
    for index, table in enumerate(actor_tables):
        actors.extend(_actors(Reader(path, f"actor[{index}]", table, ACTOR_KEYS), search))
    names = [actor.name for actor in actors]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{path}: the actor name {name!r} is used more than once")
    return Config(path, dispatcher, join, tuple(actors), registrations)


DISPATCHER_KEYS = ("listen", "connection_file", "http", "health", "http_token", "tls",
                   *CONFIG_KEYS)

ACTOR_KEYS = ("class", "name", "services", "instances", "options", "max_restarts",
              "restart_window")


LIMITS = (
    ("max_envelope_bytes", int, lambda n: n >= 1024, "an integer of 1024 or more"),
    ("unregistered_max_frame_bytes", int, lambda n: n >= 256, "an integer of 256 or more"),
    ("register_timeout", float, _positive, "a positive number of seconds"),
    ("max_targets", int, _positive, "a positive integer"),
    ("max_in_flight_per_asker", int, _positive, "a positive integer"),
    ("max_retry_body_bytes", int, lambda n: n >= 0, "0 or more bytes"),
    ("slow_consumer_seconds", float, _positive, "a positive number of seconds"),
)
"""The limits against hostile or broken peers a ``[dispatcher]`` table may set."""


def _dispatcher(reader, identities):
    defaults = DispatcherSettings()
    settings = DispatcherSettings(
        identities=identities,
        token=reader.get("token", str, None, lambda t: t != "", "non-empty text"),
        name=reader.get("name", str, defaults.name, bool, "non-empty text"),
        max_frame_bytes=reader.get("max_frame_bytes", int, defaults.max_frame_bytes,
                                   lambda n: 1024 <= n <= 2**32 - 1,
                                   "an integer from 1024 to 4294967295"),
        hop_limit=reader.get("hop_limit", int, defaults.hop_limit, _positive,
                             "a positive integer"),
        request_timeout=reader.get("request_timeout", float, defaults.request_timeout,
                                   _positive, "a positive number of seconds"),
        keepalive_interval=reader.get("keepalive_interval", float, defaults.keepalive_interval,
                                      _positive, "a positive number of seconds"),
        keepalive_multiplier=reader.get("keepalive_multiplier", int,
                                        defaults.keepalive_multiplier, _positive,
                                        "a positive integer"),
        outbound_limit_bytes=reader.get("outbound_limit_bytes", int,
                                        defaults.outbound_limit_bytes, _positive,
                                        "a positive integer"),
        drain_seconds=reader.get("drain_seconds", float, defaults.drain_seconds,
                                 lambda v: v >= 0, "0 or more seconds"),
        **{key: reader.get(key, kind, getattr(defaults, key), check, expect)
           for key, kind, check, expect in LIMITS},
        **_journal(reader, defaults),
    )
    listen = reader.text_list("listen")
    if not listen:
        reader.fail("listen", "needs at least one endpoint string")
    for description in listen:
        reader.endpoint("listen", description, endpoints.serverFromString)
    connection_file = reader.get("connection_file", (str, bool), "",
                                 lambda v: v is not True, "a path, or false for none")
    http = reader.get("http", str, None, bool, "an endpoint string")
    if http is not None:
        reader.endpoint("http", http, endpoints.serverFromString)
    health = _health(reader)
    http_token = reader.get("http_token", bool, None, expect="true or false")
    if http_token and settings.token is None:
        reader.fail("http_token", "true needs a token to check: set dispatcher.token")
    tls = None
    if "tls" in reader.table:
        table = reader.get("tls", dict, expect="a [dispatcher.tls] table")
        if not identities:
            reader.fail("tls", "needs [identities.NAME] tables: a client certificate's "
                               "common name must name one of them")
        tls = read_tls(Reader(reader.path, "dispatcher.tls", table, TLS_KEYS))
    if any(identity.token == settings.token for identity in identities if identity.token):
        reader.fail("token", "the same as an identity's token: the shared token must be "
                             "a secret of its own")
    return DispatcherConfig(
        listen=listen, settings=settings,
        connection_file=None if connection_file is False else connection_file, http=http,
        tls=tls, health=health, http_token=http_token)


def _health(reader):
    """``health = "host:port"`` as ``(host, port)``; an IPv6 host is written in
    brackets (``"[::1]:5574"``), and port 0 picks a free port."""
    text = reader.get("health", str, None, expect='"host:port", e.g. "127.0.0.1:5574"')
    if text is None:
        return None
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not (colon and host and port.isdigit() and int(port) <= 65535):
        reader.fail("health", f'expected "host:port" with a port from 0 to 65535, '
                              f'e.g. "127.0.0.1:5574", got {text!r}')
    return host, int(port)


def _journal(reader, defaults):
    """The journal's settings: its file (relative to the config's folder), which
    must be in an existing folder, and its bounds."""
    path = reader.get("journal", str, None, bool, "a file path")
    if path is not None:
        path = Path(reader.path).resolve().parent / Path(path).expanduser()
        if not path.parent.is_dir():
            reader.fail("journal", f"the folder {str(path.parent)!r} does not exist")
        path = str(path)
    return {
        "journal": path,
        "journal_max_bytes": reader.get("journal_max_bytes", int, defaults.journal_max_bytes,
                                        lambda n: n >= 1024 * 1024,
                                        "an integer of 1048576 (1 MiB) or more"),
        "journal_max_age": reader.get("journal_max_age", float, defaults.journal_max_age,
                                      _positive, "a positive number of seconds"),
    }


def _join(reader):
    connect = reader.get("connect", (str, list), expect="an endpoint string or a list of them")
    if isinstance(connect, str):
        _connect_endpoint(reader, "connect", connect)
        connect = [connect]
    elif not connect:
        reader.fail("connect", "needs at least one endpoint string")
    else:
        for index, description in enumerate(connect):
            _connect_endpoint(reader, f"connect[{index}]", description)
    return JoinConfig(
        connect=tuple(connect),
        token=reader.get("token", str, None, lambda t: t != "", "non-empty text"),
    )


def _connect_endpoint(reader, key, description):
    if not (isinstance(description, str) and description):
        reader.fail(key, f"expected an endpoint string, got {description!r}")
    reader.endpoint(key, description, endpoints.clientFromString)


def _actors(reader, search):
    cls = _import_actor(reader, reader.get("class", str, check=lambda v: ":" in v,
                                           expect="'package.module:Class'"), search)
    name = reader.get("name", str, cls.__name__.lower(), bool, "non-empty text")
    services = reader.text_list("services", None)
    if services is None:
        services = tuple(cls.services)
    instances = reader.get("instances", int, 1, _positive, "a positive integer")
    options = reader.get("options", dict, {}, expect="a table")
    defaults = RestartPolicy()
    restart = RestartPolicy(
        max_restarts=reader.get("max_restarts", int, defaults.max_restarts, lambda n: n >= 0,
                                "an integer of 0 or more"),
        window=reader.get("restart_window", float, defaults.window, _positive,
                          "a positive number of seconds"))
    names = [name] if instances == 1 else [f"{name}-{i}" for i in range(1, instances + 1)]
    return [ActorConfig(cls, each, services, dict(options), search, restart)
            for each in names]


def _import_actor(reader, spec, search):
    try:
        cls = reader.import_class(spec, search)
    except ConfigError:
        _renamed(reader, spec)
        raise
    if not (isinstance(cls, type) and issubclass(cls, Actor)):
        reader.fail("class", f"{spec!r} is not an Actor subclass")
    return cls


def _renamed(reader, spec):
    """The built-in actors moved into the ``actornet`` package: name the new spelling."""
    if spec.startswith("actors.") and spec[len("actors."):] in BUILT_IN_ACTORS:
        reader.fail("class", f"{spec!r} is now spelled 'actornet.{spec}'")


BUILT_IN_ACTORS = frozenset({"keepalive:Keepalive", "fileshare:FileShare",
                             "inventory:Inventory"})


def connection_file_path(path=None):
    """Where the connection-info file is: ``path``, $ACTORNET_CONNECTION_FILE, or the default."""
    chosen = path or os.environ.get("ACTORNET_CONNECTION_FILE") or DEFAULT_CONNECTION_FILE
    return Path(chosen).expanduser()
