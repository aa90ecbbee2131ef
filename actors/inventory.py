"""The inventory service: per-actor settings kept in files, served over the network.

Actors whose ``inventory`` option (or ``inventory_service`` attribute) names
this service fetch their ``self.inventory`` from it before they serve anything,
and fetch it again after every reload (see :meth:`Actor.prepare`).  Settings
then live in one place that can change without restarting the actors.

An inventory file (YAML or TOML, same shape) has three optional sections::

    common:                     # every actor
      site: lab-1
    services:                   # actors serving the named service
      math: {precision: 10}
    actors:                     # actors whose name matches the fnmatch pattern
      "math-*": {pool: a}
      math-2: {pool: b}

The files are first merged into one document, in the order the ``files``
option lists them (a later file wins).  An actor's inventory is then built
from that document: ``common``, then the sections of its services in the
order it asked for them, then every matching ``actors`` pattern in file order;
so a more specific section always beats a more general one, whichever file it
came from.  Maps are merged key by key at every depth, anything else (lists
included) is replaced by the later value.
"""

import copy
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from actornet.actors.actor import Actor, handler
from actornet.protocols.codes import INVENTORY_RELOADED

SECTIONS = ("common", "services", "actors")
_PLAIN = (str, int, float, bool, bytes, type(None))


class InventoryError(ValueError):
    """An inventory file is missing, unparsable or of the wrong shape.

    The message starts with the file as the ``files`` option names it, then
    the key at fault when there is one: ``inv.yaml: actors.math-*: ...``.
    """


def read_inventory(path, shown=None):
    """Parse and check one inventory file; returns its data as a dict.

    ``.yaml``/``.yml`` files are read with ``yaml.safe_load``, ``.toml`` with
    tomllib.  An empty file, section or entry (YAML's ``key:`` with nothing
    after it) counts as an empty map.  Values must survive the wire unchanged,
    so unquoted dates and times are refused.
    @param shown: how error messages name the file (default: ``path``).
    @raise InventoryError: naming the file and, for a wrong shape, the key.
    """
    path = Path(path)
    shown = shown or str(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise InventoryError(f"{shown}: unknown format {suffix or '(no extension)'!r}; "
                             f"expected .yaml, .yml or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(f"{shown}: cannot read {path}: {_reason(e)}") from e
    try:
        data = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        kind = "TOML" if suffix == ".toml" else "YAML"
        raise InventoryError(f"{shown}: not valid {kind}: {_one_line(e)}") from e
    data = {} if data is None else data
    _check_shape(data, shown)
    return data


def _check_shape(data, shown):
    if not isinstance(data, dict):
        raise InventoryError(f"{shown}: top level: expected a map, got {_kind(data)}")
    for key, value in data.items():
        if key not in SECTIONS:
            raise InventoryError(f"{shown}: {key}: unknown section "
                                 f"(expected {', '.join(SECTIONS)})")
        if value is None:
            data[key] = value = {}
        if not isinstance(value, dict):
            raise InventoryError(f"{shown}: {key}: expected a map, got {_kind(value)}")
    for section in ("services", "actors"):
        for key, value in data.get(section, {}).items():
            if not isinstance(key, str):
                raise InventoryError(f"{shown}: {section}: key {key!r} is not a string")
            if value is None:
                data[section][key] = value = {}
            if not isinstance(value, dict):
                raise InventoryError(f"{shown}: {section}.{key}: expected a map, "
                                     f"got {_kind(value)}")
    for key, value in data.items():
        _check_values(value, key, shown)


def _check_values(value, where, shown):
    """Refuse what the wire would mangle or refuse: an unquoted YAML or TOML date
    or time (refused by the receiving actor's decoder, or made UTC), a YAML set."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_values(item, f"{where}.{key}", shown)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{where}[{index}]", shown)
    elif not isinstance(value, _PLAIN):
        raise InventoryError(f"{shown}: {where}: a {type(value).__name__} cannot be sent "
                             f"to actors; write it as a string (quoted)")


def merge(base, overlay):
    """``base`` with ``overlay`` merged in: maps at every depth, later wins.

    Neither argument is changed.
    """
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def inventory_for(document, name, services=()):
    """The inventory of the actor called ``name`` serving ``services``.

    @param document: the merged (or a single file's) inventory data.
    @return: a new dict, safe to change.
    """
    result = dict(document.get("common", {}))
    sections = document.get("services", {})
    for service in services:
        result = merge(result, sections.get(service, {}))
    for pattern, settings in document.get("actors", {}).items():
        if name is not None and fnmatchcase(name, pattern):
            result = merge(result, settings)
    return copy.deepcopy(result)


class Inventory(Actor):
    """Serves inventories read from the files in the ``files`` option.

    Paths are relative to ``self.config_dir`` (the config file's folder).
    The files are first read when the actor registers, not in ``__init__``,
    because ``config_dir`` is only set after construction; a bad file then
    logs an error naming the file and the key, and every ``get`` answers with
    that error until a reload succeeds.  A failed reload keeps the inventory
    it had.  ``INVENTORY_RELOADED`` is published after every reload and every
    registration with a loaded inventory.  This actor never fetches an
    inventory of its own.

    @raise InventoryError: from ``__init__`` when ``files`` is not a
        non-empty list of paths.
    """

    services = ("inventory",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        files = self.options.get("files")
        if (not isinstance(files, list) or not files
                or not all(isinstance(f, str) and f for f in files)):
            raise InventoryError(f"{self.name}: option files: expected a non-empty list "
                                 f"of paths, got {files!r}")
        self.files = tuple(files)
        self.loaded = None
        self.document = None
        self.last_error = None

    def load(self):
        """Re-read every file; all or nothing.

        @raise InventoryError: the first problem found; what was loaded before
            is kept.
        """
        try:
            documents = [(shown, read_inventory(Path(self.config_dir) / shown, shown))
                         for shown in self.files]
        except InventoryError as e:
            self.last_error = str(e)
            raise
        document = {}
        for _, data in documents:
            document = merge(document, data)
        self.loaded, self.document, self.last_error = dict(documents), document, None

    async def prepare(self):
        """Read the files on the first registration (again after one that failed),
        then announce the inventory as reloaded.

        The announcement is for actors that asked before this one was
        registered: their ``get`` failed with NO_WORKERS, but they subscribed to
        ``INVENTORY_RELOADED`` before asking, so they fetch again now.
        """
        if self.document is None:
            try:
                self.load()
            except InventoryError as e:
                self.log.error("{actor}: cannot load the inventory, every get fails until "
                               "a reload succeeds: {error}", actor=self.name, error=e)
                return
        self.publish(INVENTORY_RELOADED, {"files": list(self.files)})

    def reload(self):
        """Re-read the files, then tell subscribers of ``INVENTORY_RELOADED``.

        @return: the files read.
        @raise InventoryError: nothing is published and the old data stays.
        """
        self.load()
        self.publish(INVENTORY_RELOADED, {"files": list(self.files)})
        return list(self.files)

    def on_reload_signal(self):
        """SIGHUP: reload, logging (not raising) a bad file."""
        try:
            files = self.reload()
        except InventoryError as e:
            self.log.error("{actor}: reload failed, keeping the previous inventory: {error}",
                           actor=self.name, error=e)
        else:
            self.log.info("{actor}: inventory reloaded from {files}", actor=self.name,
                          files=", ".join(files))

    # -- handlers ------------------------------------------------------------

    @handler
    def get(self, bag):
        """{name?, services?} -> the merged inventory; ``name`` defaults to the asker."""
        name = bag.get("name", bag.sender)
        services = bag.get("services", [])
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise TypeError(f"services must be a list of strings, got {services!r}")
        if self.document is None:
            raise InventoryError(self.last_error or "the inventory is not loaded yet")
        return inventory_for(self.document, name, services)

    @handler(name="reload")
    def reload_request(self, bag):
        """{} -> {"reloaded": true, "files": [...]}, or the file's error."""
        return {"reloaded": True, "files": self.reload()}

    @handler
    def show(self, bag):
        """{} -> the files, each one's data as read, and the last load error."""
        return {"files": list(self.files), "data": copy.deepcopy(self.loaded or {}),
                "last_error": self.last_error}


def _kind(value):
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def _reason(error):
    return getattr(error, "strerror", None) or str(error)


def _one_line(error):
    return " ".join(str(error).split())
