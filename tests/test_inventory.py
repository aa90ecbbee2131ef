"""The inventory service: merging files, checking them, and serving actors on loopback."""

from pathlib import Path

import pytest
import pytest_twisted

from actornet import Actor, RemoteError, handler
from actornet.actors.inventory import (
    Inventory,
    InventoryError,
    inventory_for,
    merge,
    read_inventory,
)
from actornet.protocols.codes import INVENTORY_RELOADED

pytestmark = pytest.mark.timeout(30)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"

YAML = """\
common:
  site: lab-1
  limits: {cpu: 1, mem: 512}
services:
  math: {precision: 10, limits: {cpu: 2}}
  billing: {currency: EUR, precision: 2}
actors:
  "math-*": {pool: a, tags: [x]}
  math-2: {pool: b, precision: 11}
"""

TOML = """\
[common]
site = "lab-1"
limits = {cpu = 1, mem = 512}

[services.math]
precision = 10
limits = {cpu = 2}

[services.billing]
currency = "EUR"
precision = 2

[actors."math-*"]
pool = "a"
tags = ["x"]

[actors.math-2]
pool = "b"
precision = 11
"""

MATH_2 = {"site": "lab-1", "limits": {"cpu": 2, "mem": 512}, "precision": 11, "pool": "b",
          "tags": ["x"]}


def inventory_actor(tmp_path, files, **contents):
    """An Inventory actor reading ``files`` from ``tmp_path``, after writing ``contents``
    (file name -> text; dots in names are written as ``__``)."""
    for name, text in contents.items():
        (tmp_path / name.replace("__", ".")).write_text(text)
    actor = Inventory("inventory", options={"files": list(files)})
    actor.config_dir = tmp_path
    return actor


def loaded(tmp_path, **contents):
    """The merged document of the given files, in the given order."""
    actor = inventory_actor(tmp_path, [name.replace("__", ".") for name in contents],
                            **contents)
    actor.load()
    return actor.document


class Probe(Actor):
    """Serves ``math`` from an inventory; records every inventory it is given."""

    services = ("math",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def on_inventory(self, inventory):
        self.seen.append(inventory)

    @handler
    def current(self, bag):
        return self.inventory


async def running(cluster, tmp_path, text=YAML, name="inv.yaml"):
    """An Inventory actor on ``cluster`` serving one file of ``text``."""
    (tmp_path / name).write_text(text)
    actor = Inventory("inventory", options={"files": [name]})
    actor.config_dir = tmp_path
    return await cluster.add(actor)


# -- merging -------------------------------------------------------------------


def test_yaml_and_toml_files_give_the_same_inventory(tmp_path):
    """The same inventory written in YAML and in TOML merges to the same result."""
    from_yaml = loaded(tmp_path, inv__yaml=YAML)
    from_toml = loaded(tmp_path, inv__toml=TOML)
    assert from_yaml == from_toml
    for name, services in [("math-2", ["math"]), ("math-1", ["math"]),
                           ("intake", ["billing"]), ("nobody", [])]:
        assert inventory_for(from_yaml, name, services) == inventory_for(
            from_toml, name, services)
    assert inventory_for(from_toml, "math-2", ["math"]) == MATH_2


def test_sections_merge_common_then_services_then_names(tmp_path):
    """Name sections beat service sections, which beat common, at every depth."""
    document = loaded(tmp_path, inv__yaml=YAML)
    assert inventory_for(document, "math-2", ["math"]) == MATH_2
    assert inventory_for(document, "math-1", ["math"])["pool"] == "a"
    assert inventory_for(document, "math-1", ["math"])["precision"] == 10
    assert inventory_for(document, "intake", ["billing"]) == {
        "site": "lab-1", "limits": {"cpu": 1, "mem": 512}, "currency": "EUR",
        "precision": 2}
    assert inventory_for(document, "intake", []) == {
        "site": "lab-1", "limits": {"cpu": 1, "mem": 512}}


def test_service_sections_merge_in_the_order_the_services_are_asked(tmp_path):
    """Only the asked services' sections apply, each later one winning."""
    document = loaded(tmp_path, inv__yaml=YAML)
    assert inventory_for(document, "x", ["math", "billing"])["precision"] == 2
    assert inventory_for(document, "x", ["billing", "math"])["precision"] == 10
    assert "currency" not in inventory_for(document, "x", ["math", "unknown"])


def test_name_patterns_apply_in_file_order(tmp_path):
    """Every matching pattern applies, a later one overriding an earlier one."""
    reversed_order = 'actors:\n  math-2: {pool: b}\n  "math-*": {pool: a}\n'
    document = loaded(tmp_path, inv__yaml=reversed_order)
    assert inventory_for(document, "math-2")["pool"] == "a"
    assert inventory_for(document, "math-10")["pool"] == "a"
    assert inventory_for(document, "Math-1") == {}
    assert inventory_for(document, "intake") == {}


def test_later_file_wins_within_a_section_but_not_over_a_more_specific_one(tmp_path):
    """Files merge first, so a later file's common never beats an earlier name section."""
    second = "common:\n  pool: z\n  limits: {mem: 1024}\nservices:\n  math: {precision: 12}\n"
    document = loaded(tmp_path, one__yaml=YAML, two__yaml=second)
    assert inventory_for(document, "math-2", ["math"]) == dict(
        MATH_2, limits={"cpu": 2, "mem": 1024})
    assert inventory_for(document, "math-1", ["math"])["precision"] == 12
    assert inventory_for(document, "intake")["pool"] == "z"


def test_merge_is_deep_for_maps_and_replaces_lists_without_changing_its_inputs():
    """Nested maps merge key by key; a list or scalar is replaced whole."""
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    overlay = {"a": {"c": [3], "e": {"f": 1}}, "d": {"g": 2}}
    assert merge(base, overlay) == {"a": {"b": 1, "c": [3], "e": {"f": 1}}, "d": {"g": 2}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_the_answer_is_a_copy_the_asker_may_change(tmp_path):
    """Changing a returned inventory leaves the loaded document alone."""
    document = loaded(tmp_path, inv__yaml=YAML)
    first = inventory_for(document, "math-2", ["math"])
    first["limits"]["cpu"] = 99
    first["tags"].append("y")
    assert inventory_for(document, "math-2", ["math"]) == MATH_2


def test_an_empty_file_section_or_entry_adds_nothing(tmp_path):
    """An empty file, and YAML's ``key:`` with nothing after it, count as empty maps."""
    empty_parts = "common:\nservices:\n  math:\nactors:\n  math-2:\n"
    document = loaded(tmp_path, inv__yaml=YAML, empty__yml="", parts__yaml=empty_parts)
    assert inventory_for(document, "math-2", ["math"]) == MATH_2


def test_example_inventory_is_valid():
    """examples/inventory.yaml loads and gives math-2 its own pool."""
    document = read_inventory(EXAMPLE)
    assert inventory_for(document, "math-2", ["math"])["pool"] == "b"
    assert inventory_for(document, "math-1", ["math"])["pool"] == "a"


# -- bad files -----------------------------------------------------------------


@pytest.mark.parametrize("name, text, fragments", [
    ("missing.yaml", None, ["cannot read", "No such file"]),
    ("bad.yaml", "common: [unclosed\n", ["not valid YAML", "line 2"]),
    ("bad.toml", "common = {\n", ["not valid TOML", "line 1"]),
    ("inv.yaml", "actors: [math-1]\n", ["actors: expected a map, got list"]),
    ("inv.yaml", "services:\n  math: 10\n", ["services.math: expected a map, got int"]),
    ("inv.toml", 'actors = { "math-*" = "a" }\n', ["actors.math-*: expected a map"]),
    ("inv.yaml", "service:\n  math: {}\n", ["service: unknown section"]),
    ("inv.yaml", "- common\n", ["top level: expected a map"]),
    ("inv.yaml", "actors:\n  1: {pool: a}\n", ["actors: key 1 is not a string"]),
    ("inv.json", "{}", ["unknown format '.json'"]),
    ("inv.yaml", "services:\n  math: {since: [2024-01-01]}\n",
     ["services.math.since[0]: a date cannot be sent"]),
    ("inv.toml", "[actors.math-1]\nstart = 07:30:00\n",
     ["actors.math-1.start: a time cannot be sent"]),
])
def test_bad_file_error_names_the_file_and_the_key(tmp_path, name, text, fragments):
    """A missing, unparsable or misshapen file fails with its name and the key at fault."""
    if text is not None:
        (tmp_path / name).write_text(text)
    actor = inventory_actor(tmp_path, [name])
    with pytest.raises(InventoryError) as raised:
        actor.load()
    message = str(raised.value)
    assert message.startswith(f"{name}: ")
    for fragment in fragments:
        assert fragment in message
    assert actor.document is None


def test_a_bad_second_file_loads_nothing_and_keeps_the_old_data(tmp_path):
    """Loading is all or nothing: one bad file keeps everything loaded before."""
    actor = inventory_actor(tmp_path, ["one.yaml", "two.yaml"], one__yaml=YAML,
                            two__yaml="common: {}\n")
    actor.load()
    before = actor.document
    (tmp_path / "one.yaml").write_text("common: {site: lab-2}\n")
    (tmp_path / "two.yaml").write_text("actors: 3\n")
    with pytest.raises(InventoryError, match="^two.yaml: actors:"):
        actor.load()
    assert actor.document is before
    assert actor.last_error.startswith("two.yaml: actors:")


@pytest.mark.parametrize("files", [None, [], "inv.yaml", ["inv.yaml", 3], [""]])
def test_files_option_must_be_a_non_empty_list_of_paths(files):
    """A malformed ``files`` option fails at construction, naming the option."""
    with pytest.raises(InventoryError, match="inventory: option files:"):
        Inventory("inventory", options={} if files is None else {"files": files})


# -- on the network ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_actor_has_its_inventory_before_its_first_request(cluster, tmp_path):
    """A request that reaches an actor still fetching its inventory waits for it."""
    await running(cluster, tmp_path)
    cluster.freeze("inventory")
    probe = await cluster.add(Probe("math-2", options={"inventory": "inventory"}),
                              wait=False)
    await cluster.registered("math-2")
    client = await cluster.client()
    first = client.ask("math", "current")
    await cluster.wait_for(lambda: cluster.peer("math-2").in_flight == 1)
    assert probe.seen == [] and not first.called
    cluster.thaw("inventory")
    assert dict(await first) == MATH_2
    assert probe.seen == [MATH_2]


@pytest_twisted.ensureDeferred
async def test_actor_started_before_the_inventory_gets_it_once_the_inventory_joins(
        cluster, tmp_path):
    """An actor whose first fetch found no inventory service fetches when it registers."""
    probe = await cluster.add(Probe("math-2", options={"inventory": "inventory"}))
    assert probe.inventory == {} and probe.seen == []
    await running(cluster, tmp_path)
    await cluster.wait_for(lambda: probe.inventory == MATH_2)
    assert probe.seen == [MATH_2]


@pytest_twisted.ensureDeferred
async def test_get_answers_for_the_named_actor_and_services(cluster, tmp_path):
    """``get`` uses the given name and services, and the asker's name by default."""
    await running(cluster, tmp_path, TOML, "inv.toml")
    client = await cluster.client("math-2")
    assert dict(await client.ask("inventory", "get", {"services": ["math"]})) == MATH_2
    answer = await client.ask("inventory", "get", {"name": "intake"})
    assert dict(answer) == {"site": "lab-1", "limits": {"cpu": 1, "mem": 512}}
    with pytest.raises(RemoteError, match="services must be a list"):
        await client.ask("inventory", "get", {"services": "math"})


@pytest_twisted.ensureDeferred
async def test_reload_reaches_subscribed_actors(cluster, tmp_path):
    """After an edit and a reload, subscribed actors fetch and get the new inventory."""
    await running(cluster, tmp_path)
    probe = await cluster.add(Probe("math-2", options={"inventory": "inventory"}))
    client = await cluster.client()
    events = []
    client.subscribe(INVENTORY_RELOADED, events.append)
    (tmp_path / "inv.yaml").write_text(YAML.replace("pool: b", "pool: c"))
    answer = await client.ask("inventory", "reload")
    assert dict(answer) == {"reloaded": True, "files": ["inv.yaml"]}
    assert [dict(event) for event in events] == [{"files": ["inv.yaml"]}]
    expected = dict(MATH_2, pool="c")
    await cluster.wait_for(lambda: probe.inventory == expected)
    assert probe.seen == [MATH_2, expected]
    assert dict(await client.ask("math", "current")) == expected


@pytest_twisted.ensureDeferred
async def test_failed_reload_answers_the_error_and_keeps_the_old_inventory(cluster,
                                                                           tmp_path):
    """A reload of a broken file answers its error, publishes nothing, and keeps the data."""
    await running(cluster, tmp_path)
    probe = await cluster.add(Probe("math-2", options={"inventory": "inventory"}))
    client = await cluster.client()
    events = []
    client.subscribe(INVENTORY_RELOADED, events.append)
    (tmp_path / "inv.yaml").write_text("actors: [math-2]\n")
    with pytest.raises(RemoteError) as raised:
        await client.ask("inventory", "reload")
    assert raised.value.remote_type == "InventoryError"
    assert raised.value.message.startswith("inv.yaml: actors: expected a map")
    assert events == []
    asked = {"name": "math-2", "services": ["math"]}
    assert dict(await client.ask("inventory", "get", asked)) == MATH_2
    shown = await client.ask("inventory", "show")
    assert shown["last_error"] == raised.value.message
    assert probe.seen == [MATH_2]


@pytest_twisted.ensureDeferred
async def test_reload_signal_rereads_the_files_and_notifies(cluster, tmp_path):
    """on_reload_signal() reloads like a reload request; a bad file there only logs."""
    inventory = await running(cluster, tmp_path)
    probe = await cluster.add(Probe("math-2", options={"inventory": "inventory"}))
    (tmp_path / "inv.yaml").write_text("common: {site: lab-2}\n")
    inventory.on_reload_signal()
    await cluster.wait_for(lambda: probe.inventory == {"site": "lab-2"})
    (tmp_path / "inv.yaml").write_text("common: 1\n")
    inventory.on_reload_signal()
    assert inventory.last_error.startswith("inv.yaml: common:")
    assert inventory_for(inventory.document, "math-2") == {"site": "lab-2"}


@pytest_twisted.ensureDeferred
async def test_bad_file_at_start_fails_every_get_until_a_reload_succeeds(cluster,
                                                                         tmp_path):
    """An inventory whose file is missing at start answers get with the file's error."""
    actor = Inventory("inventory", options={"files": ["late.yaml"]})
    actor.config_dir = tmp_path
    await cluster.add(actor)
    client = await cluster.client("math-2")
    with pytest.raises(RemoteError) as raised:
        await client.ask("inventory", "get")
    assert raised.value.remote_type == "InventoryError"
    assert raised.value.message.startswith("late.yaml: cannot read")
    (tmp_path / "late.yaml").write_text(YAML)
    await client.ask("inventory", "reload")
    assert dict(await client.ask("inventory", "get", {"services": ["math"]})) == MATH_2


@pytest_twisted.ensureDeferred
async def test_show_returns_each_files_data_as_read(cluster, tmp_path):
    """``show`` answers the files in order with each one's own, unmerged data."""
    (tmp_path / "two.toml").write_text('[common]\nsite = "lab-2"\n')
    (tmp_path / "one.yaml").write_text(YAML)
    actor = Inventory("inventory", options={"files": ["one.yaml", "two.toml"]})
    actor.config_dir = tmp_path
    await cluster.add(actor)
    client = await cluster.client()
    shown = await client.ask("inventory", "show")
    assert shown["files"] == ["one.yaml", "two.toml"]
    assert shown["data"]["two.toml"] == {"common": {"site": "lab-2"}}
    assert shown["data"]["one.yaml"]["actors"]["math-2"] == {"pool": "b", "precision": 11}
    assert shown["last_error"] is None
