"""Reading one table of a TOML config, with errors that name the file and the key.

Shared by :mod:`actornet.config` and :mod:`actornet.access`: every mistake is
a :class:`ConfigError` such as ``cluster.toml: actor[2].instances: expected a
positive integer, got 0``.
"""

import importlib
import sys

import attrs


class ConfigError(ValueError):
    """The config cannot be used; the message names the file and the key."""


class Reader:
    """Reads one table, remembering where it is for error messages.

    ``keys`` are the keys the table may hold: any other is reported first, so a
    typo is named as one rather than as the required key it was meant to be.
    """

    def __init__(self, path, where, table, keys):
        self.path = path
        self.where = where
        if not isinstance(table, dict):
            self.fail(None, f"expected a table, got {type(table).__name__}")
        self.table = table
        unknown = sorted(set(table) - set(keys))
        if unknown:
            self.fail(unknown[0], "unknown key (a typo?)")

    def fail(self, key, problem):
        place = f"{self.where}.{key}" if key else self.where
        raise ConfigError(f"{self.path}: {place}: {problem}")

    def get(self, key, kind, default=attrs.NOTHING, check=None, expect=None):
        if key not in self.table:
            if default is attrs.NOTHING:
                self.fail(key, "is required")
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(key, f"expected {expect or kind.__name__}, got {value!r}")
        if check is not None and not check(value):
            self.fail(key, f"expected {expect}, got {value!r}")
        return value

    def text_list(self, key, default=attrs.NOTHING):
        value = self.get(key, (list, str), default, expect="text or a list of text")
        if isinstance(value, str):
            value = [value]
        if value is not default and not all(isinstance(v, str) and v for v in value):
            self.fail(key, f"expected non-empty text items, got {value!r}")
        return tuple(value) if value is not None else None

    def endpoint(self, key, description, parse):
        """Parse an endpoint string now (nothing listens or connects yet), so a
        typo is a config error naming the file and key, not a traceback at start."""
        try:
            parse(None, description)
        except (ValueError, TypeError, OSError) as e:
            self.fail(key, f"{description!r} is not a usable endpoint: {e}")

    def import_class(self, spec, search):
        """The object ``spec`` ("package.module:Class") names, importing its module
        with ``search`` (the config file's folder) on the path first, so modules
        beside the config are found.

        @raise ConfigError: naming this table's ``class`` key when the module
            cannot be imported or has no such name.
        """
        module_name, _, class_name = spec.partition(":")
        if search not in sys.path:
            sys.path.insert(0, search)
        try:
            module = importlib.import_module(module_name)
        except Exception as e:
            self.fail("class", f"cannot import {module_name!r}: {type(e).__name__}: {e}")
        found = getattr(module, class_name, None)
        if found is None:
            self.fail("class", f"{spec!r}: module {module_name} has no {class_name}")
        return found
