"""The ``[[registration]]`` tables: hooks that tell other systems about the network.

    [[registration]]
    class = "consul_hook:ConsulRegistration"   # beside the config, or installed
    name = "consul"                            # for the log; the class by default
    options = { url = "http://127.0.0.1:8500", check_interval = 10 }
    required = false                           # true: no network without it
    timeout = 10                               # seconds per register/deregister

The class is called with the options as keyword arguments while the config is
read, so a misspelt option is a config error before anything listens; the
object it makes must provide :class:`~actornet.registration.IRegistration`.
"""

from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from actornet.registration import DEFAULT_TIMEOUT, Hook, IRegistration
from actornet.tables import Reader

KEYS = ("class", "name", "options", "required", "timeout")


def read_registrations(path, tables, search):
    """The :class:`~actornet.registration.Hook` of each ``[[registration]]`` table.

    @param search: the config file's folder, searched first for the class's module.
    @raise ConfigError: naming the table and the key.
    """
    hooks = [_hook(Reader(path, f"registration[{index}]", table, KEYS), search)
             for index, table in enumerate(tables)]
    names = [hook.name for hook in hooks]
    for name in names:
        if names.count(name) > 1:
            Reader(path, "registration", {}, ()).fail(
                None, f"the name {name!r} is used more than once: give each a name")
    return tuple(hooks)


def _hook(reader, search):
    spec = reader.get("class", str, check=lambda v: ":" in v, expect="'package.module:Class'")
    cls = reader.import_class(spec, search)
    if not callable(cls):
        reader.fail("class", f"{spec!r} is not a class")
    name = reader.get("name", str, spec, bool, "non-empty text")
    options = reader.get("options", dict, {}, expect="a table")
    required = reader.get("required", bool, False, expect="true or false")
    timeout = reader.get("timeout", float, DEFAULT_TIMEOUT, lambda v: v > 0,
                         "a positive number of seconds")
    try:
        hook = cls(**options)
    except (TypeError, ValueError) as e:
        reader.fail("options", f"{spec} refused them: {e}")
    try:
        verifyObject(IRegistration, hook)
    except Invalid as e:
        reader.fail("class", f"{spec!r} does not provide actornet.registration.IRegistration "
                             f"(register(info) and deregister(info), declared with "
                             f"@implementer(IRegistration)): {_first_line(e)}")
    return Hook(name, hook, required, timeout)


def _first_line(error):
    return str(error).strip().splitlines()[0]
