"""The journal: bags kept in a real SQLite file, bounded, batched, and off by default."""

import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_twisted
from sample_actors import Echo
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from actornet import Actor, ActornetError, Status, handler
from actornet.actors.journal import JournalClient
from actornet.config import ConfigError, load
from actornet.dispatcher import journal as journal_module
from actornet.dispatcher.journal import Journal, JournalUnusable
from actornet.protocols import codec
from actornet.protocols.stamp import stamp_bytes
from actornet.testing import MODES, Cluster
from actornet.trace import routes_from_journal

pytestmark = pytest.mark.timeout(20)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ROUTE = [stamp_bytes("client-1", "h", 1, 1, 1, 1.0, 1.0, 1)]


def journal_at(path, clock, **bounds):
    """A journal on ``path`` keyed as dispatcher "d", with its stats and outbox."""
    outbox = SimpleNamespace(name="d", seq=0)
    stats = Counter()
    bounds = {"max_bytes": 64 * 1024 * 1024, "max_age": 3600.0, **bounds}
    batch = {key: bounds.pop(key) for key in ("batch_rows",) if key in bounds}
    journal = Journal(clock, str(path), outbox, stats, bounds["max_bytes"], bounds["max_age"],
                      **batch)
    return journal, outbox, stats


def routed(journal, outbox, body, service="echo"):
    """Record one routed request as the dispatcher does: stamp (seq + 1), then record."""
    outbox.seq += 1
    journal.record({"k": 3, "id": outbox.seq, "svc": service, "m": "echo", "r": list(ROUTE)},
                   codec.encode(body), service, "echo")


def rows(path):
    """(server, seq, body) of every row, read with the sqlite3 module."""
    with sqlite3.connect(path) as connection:
        return [(server, seq, codec.decode(body)) for server, seq, body in connection.execute(
            "SELECT server, seq, body FROM bags ORDER BY seq")]


@pytest_twisted.ensureDeferred
async def test_batched_writes_land_in_the_sqlite_file_once_the_batch_time_passes(tmp_path):
    """Bags wait in a batch until its few milliseconds pass, then land in one write."""
    clock = Clock()
    path = tmp_path / "journal.db"
    journal, outbox, stats = journal_at(path, clock)
    for n in range(3):
        routed(journal, outbox, {"n": n})
    assert not journal._writes and len(journal._pending) == 3
    clock.advance(journal.batch_seconds)
    assert len(journal._writes) == 1 and not journal._pending
    await journal.close()
    assert rows(path) == [("d", 1, {"n": 0}), ("d", 2, {"n": 1}), ("d", 3, {"n": 2})]
    assert stats["journal_written"] == 3
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest_twisted.ensureDeferred
async def test_a_full_batch_is_written_without_waiting(tmp_path):
    """A batch that reaches ``batch_rows`` is written at once, before its time."""
    clock = Clock()
    journal, outbox, stats = journal_at(tmp_path / "j.db", clock, batch_rows=2)
    routed(journal, outbox, {"n": 1})
    assert not journal._writes
    routed(journal, outbox, {"n": 2})
    assert len(journal._writes) == 1 and not clock.getDelayedCalls()
    await journal.close()
    assert stats["journal_written"] == 2


@pytest_twisted.ensureDeferred
async def test_bags_older_than_max_age_are_dropped_and_counted(tmp_path):
    """A bag older than ``max_age`` is gone after the next write, and counted."""
    clock = Clock()
    path = tmp_path / "j.db"
    journal, outbox, stats = journal_at(path, clock, max_age=10.0)
    routed(journal, outbox, {"old": True})
    await journal.idle()
    clock.advance(11)
    routed(journal, outbox, {"new": True})
    await journal.close()
    assert rows(path) == [("d", 2, {"new": True})]
    assert stats["journal_dropped_age"] == 1


@pytest_twisted.ensureDeferred
async def test_the_oldest_bags_are_dropped_to_stay_under_max_bytes(tmp_path):
    """Past ``max_bytes`` the oldest bags make room (counted); the file stays bounded."""
    clock = Clock()
    path = tmp_path / "j.db"
    journal, outbox, stats = journal_at(path, clock, max_bytes=1024 * 1024)
    for n in range(40):
        routed(journal, outbox, {"n": n, "pad": b"x" * 50_000})
        await journal.idle()
    await journal.close()
    kept = [body["n"] for _, _, body in rows(path)]
    assert stats["journal_dropped_size"] == 40 - len(kept) > 0
    assert kept == list(range(40 - len(kept), 40))
    assert os.path.getsize(path) <= 1024 * 1024
    assert stats["journal_write_failures"] == 0


@pytest_twisted.ensureDeferred
async def test_a_batch_the_file_cannot_hold_is_counted_as_lost(tmp_path):
    """SQLite refuses to grow the file past its bound: the batch is lost and counted,
    and the journal keeps writing later batches."""
    clock = Clock()
    path = tmp_path / "j.db"
    journal, outbox, stats = journal_at(path, clock, max_bytes=64 * 1024)
    routed(journal, outbox, {"pad": b"x" * 200_000})
    await journal.idle()
    assert (stats["journal_write_failures"], stats["journal_lost"]) == (1, 1)
    routed(journal, outbox, {"small": 1})
    await journal.close()
    assert rows(path) == [("d", 2, {"small": 1})]


@pytest_twisted.ensureDeferred
async def test_a_restarted_journal_stamps_on_after_the_keys_it_kept(tmp_path):
    """A new journal on a kept file moves the outbox's seq past its highest key, so
    new bags never replace the earlier run's."""
    path = tmp_path / "j.db"
    journal, outbox, _ = journal_at(path, Clock())
    for n in range(5):
        routed(journal, outbox, {"n": n})
    await journal.close()
    again, outbox, _ = journal_at(path, Clock())
    assert outbox.seq == 5
    routed(again, outbox, {"n": 5})
    await again.close()
    assert [seq for _, seq, _ in rows(path)] == [1, 2, 3, 4, 5, 6]


@pytest_twisted.ensureDeferred
async def test_a_batch_the_disk_has_no_room_for_is_refused(tmp_path, monkeypatch):
    """A batch that would leave the disk with less than the reserve is not written:
    it is counted as lost, and nothing lands in the file."""
    monkeypatch.setattr(journal_module, "DISK_RESERVE", shutil.disk_usage(tmp_path).total)
    path = tmp_path / "j.db"
    journal, outbox, stats = journal_at(path, Clock())
    routed(journal, outbox, {"n": 1})
    await journal.close()
    assert (stats["journal_write_failures"], stats["journal_lost"]) == (1, 1)
    assert rows(path) == []


def test_a_journal_in_a_folder_that_does_not_exist_is_refused_at_start(tmp_path):
    """The journal names the missing folder when it is made, before any bag."""
    with pytest.raises(JournalUnusable, match="does not exist"):
        journal_at(tmp_path / "nowhere" / "j.db", Clock())


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
def test_a_journal_in_a_read_only_folder_is_refused_at_start(tmp_path):
    """A read-only folder is named when the journal is made."""
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(JournalUnusable, match="not writable"):
        journal_at(folder / "j.db", Clock())


# -- through the dispatcher -------------------------------------------------


class Collector(Actor):
    """Keeps what it is told."""

    services = ("collect",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept = []

    @handler
    def keep(self, bag):
        self.kept.append(dict(bag))


@pytest.fixture(params=MODES)
def journaled(tmp_path, request):
    """A cluster whose dispatcher keeps a journal in ``tmp_path``, on sockets and
    then in memory."""
    cluster = Cluster(mode=request.param, journal=str(tmp_path / "journal.db"))
    pytest_twisted.blockon(ensureDeferred(cluster.start()))
    yield cluster
    pytest_twisted.blockon(ensureDeferred(cluster.stop()))


@pytest_twisted.ensureDeferred
async def test_save_then_get_by_the_dispatchers_key(journaled):
    """save keeps a bag under the dispatcher's (name, seq); get reads it back, and an
    unknown key reads as None."""
    journal = JournalClient(await journaled.client())
    key = await journal.save({"order": 7, "items": ["a", "b"]})
    assert key[0] == "dispatcher" and isinstance(key[1], int)
    assert await journal.get(key) == {"order": 7, "items": ["a", "b"]}
    assert await journal.get(("dispatcher", 10**9)) is None


@pytest_twisted.ensureDeferred
async def test_match_merge_joins_partial_results_under_one_key(journaled):
    """The first match_merge keeps its bag; later ones merge their fields into it."""
    journal = JournalClient(await journaled.client())
    key = await journal.save({"order": 7})
    assert await journal.match_merge({"a": 1}, key=key) == {"order": 7, "a": 1}
    assert await journal.match_merge({"b": 2, "a": 3}, key=key) == {"order": 7, "a": 3, "b": 2}
    assert await journal.get(key) == {"order": 7, "a": 3, "b": 2}
    fresh = ("dispatcher", 10**9)
    assert await journal.match_merge({"c": 1}, key=fresh) == {"c": 1}
    with pytest.raises(ActornetError) as raised:
        await journal.match_merge({"c": 1}, key=("other", 1))
    assert raised.value.status == Status.MALFORMED_BODY


@pytest_twisted.ensureDeferred
async def test_save_and_send_keeps_the_bag_and_tells_the_service(journaled):
    """save_and_send fires with the key once saved, and the service receives the bag."""
    collector = Collector("collector-1")
    await journaled.add(collector)
    journal = JournalClient(await journaled.client())
    key = await journal.save_and_send({"x": 1}, "collect", "keep")
    await journaled.wait_for(lambda: collector.kept, what="the bag to arrive")
    assert collector.kept == [{"x": 1}]
    assert await journal.get(key) == {"x": 1}


@pytest_twisted.ensureDeferred
async def test_every_routed_bag_is_recorded_with_its_route(journaled):
    """A request and its answer are recorded under the dispatcher's stamps, readable
    by key and as the last N of their service, with envelope, body and route."""
    await journaled.add(Echo("echo-1"))
    client = await journaled.client()
    await client.ask("echo", "echo", {"hello": "world"})
    journal = JournalClient(client)
    answer, request = await journal.last(2, service="echo")
    assert request["method"] == answer["method"] == "echo"
    assert request["key"][1] < answer["key"][1]
    assert request["body"] == {"hello": "world"}
    assert request["envelope"]["svc"] == "echo"
    assert [stamp["name"] for stamp in request["route"]][-1] == "dispatcher"
    assert request["route"][-1]["seq"] == request["key"][1]
    assert "echo-1" in [stamp["name"] for stamp in answer["route"]]
    assert await journal.read(request["key"]) == request


@pytest_twisted.ensureDeferred
async def test_a_gathered_answer_is_recorded_once_combined(journaled):
    """The answer to an ``all`` request is recorded as the asker gets it: one bag
    keyed by actor name."""
    for n in (1, 2):
        await journaled.add(Echo(f"echo-{n}"))
    client = await journaled.client()
    await client.ask("echo", "echo", {"x": 1}, target="all")
    combined, _ = await JournalClient(client).last(2, service="echo")
    assert sorted(combined["body"]) == ["echo-1", "echo-2"]
    assert combined["body"]["echo-1"]["result"] == {"x": 1, "answered_by": "echo-1"}


@pytest_twisted.ensureDeferred
async def test_events_are_recorded_under_their_topic(journaled):
    """An event a peer publishes is recorded, found by its topic."""
    client = await journaled.client()
    client.publish("news", {"headline": "journal"})
    journal = JournalClient(client)
    await journaled.wait_for(lambda: journaled.dispatcher.stats["events_unheard"])
    [event] = await journal.last(5, service="news")
    assert event["body"] == {"headline": "journal"}


@pytest_twisted.ensureDeferred
async def test_bad_journal_requests_say_why(journaled):
    """A malformed key, a bad n, or an unknown method is refused precisely."""
    client = await journaled.client()
    for method, data, status in [("get", {"key": "x"}, Status.MALFORMED_BODY),
                                 ("last", {"n": 0}, Status.MALFORMED_BODY),
                                 ("erase", {}, Status.UNKNOWN_METHOD)]:
        with pytest.raises(ActornetError) as raised:
            await client.ask("journal", method, data)
        assert raised.value.status == status


@pytest_twisted.ensureDeferred
async def test_the_journal_is_off_by_default_and_makes_no_file(tmp_path, monkeypatch):
    """Without a journal the hook is None, no file appears, and journal requests fail
    with UNKNOWN_SERVICE."""
    monkeypatch.chdir(tmp_path)
    cluster = await Cluster().start()
    try:
        assert cluster.dispatcher.journal is None
        assert cluster.dispatcher.requests.journal is None
        await cluster.add(Echo("echo-1"))
        client = await cluster.client()
        await client.ask("echo", "echo", {"x": 1})
        with pytest.raises(ActornetError) as raised:
            await JournalClient(client).save({"x": 1})
        assert raised.value.status == Status.UNKNOWN_SERVICE
    finally:
        await cluster.stop()
    assert list(tmp_path.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_the_dispatcher_keeps_serving_when_the_journal_cannot_write(tmp_path):
    """A journal file that is not a database fails every write (counted), and the
    dispatcher routes requests as before; journal reads fail with FAILURE."""
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not an SQLite database" * 100)
    cluster = await Cluster(journal=str(path)).start()
    try:
        await cluster.add(Echo("echo-1"))
        client = await cluster.client()
        for n in range(3):
            assert (await client.ask("echo", "echo", {"n": n}))["n"] == n
        await cluster.dispatcher.journal.idle()
        assert cluster.dispatcher.stats["journal_write_failures"] >= 1
        assert cluster.dispatcher.stats["journal_lost"] == 6
        with pytest.raises(ActornetError) as raised:
            await JournalClient(client).save({"x": 1})
        assert raised.value.status == Status.FAILURE
        assert (await client.ask("echo", "echo", {"still": 1}))["still"] == 1
    finally:
        await cluster.stop()


@pytest_twisted.ensureDeferred
async def test_an_unusable_journal_folder_leaves_the_dispatcher_serving(tmp_path):
    """A journal path that is a folder is refused at start (counted); the dispatcher
    serves without a journal."""
    cluster = await Cluster(journal=str(tmp_path)).start()
    try:
        assert cluster.dispatcher.journal is None
        assert cluster.dispatcher.stats["journal_unusable"] == 1
        await cluster.add(Echo("echo-1"))
        client = await cluster.client()
        assert (await client.ask("echo", "echo", {"x": 1}))["x"] == 1
    finally:
        await cluster.stop()


# -- config -------------------------------------------------------------------


def test_the_journal_keys_are_read_from_the_dispatcher_table(tmp_path):
    """journal is a path relative to the config's folder; its bounds are read too."""
    path = tmp_path / "net.toml"
    path.write_text("[dispatcher]\nlisten = 'tcp:0'\njournal = 'bags.db'\n"
                    "journal_max_bytes = 2097152\njournal_max_age = 60\n")
    settings = load(path).dispatcher.settings
    assert settings.journal == str(tmp_path / "bags.db")
    assert (settings.journal_max_bytes, settings.journal_max_age) == (2097152, 60.0)
    path.write_text("[dispatcher]\nlisten = 'tcp:0'\n")
    assert load(path).dispatcher.settings.journal is None


@pytest.mark.parametrize("lines, problem", [
    ("journal = ''", "dispatcher.journal: expected a file path, got ''"),
    ("journal = 5", "dispatcher.journal: expected a file path, got 5"),
    ("journal = 'nowhere/bags.db'", "dispatcher.journal: the folder "),
    ("journal_max_bytes = 1000", "dispatcher.journal_max_bytes: expected an integer of "
                                 "1048576 (1 MiB) or more, got 1000"),
    ("journal_max_age = 0", "dispatcher.journal_max_age: expected a positive number of "
                            "seconds, got 0.0"),
    ("journal_max_age = 'week'", "dispatcher.journal_max_age: expected a positive number"),
])
def test_each_journal_key_mistake_is_one_line_naming_the_key(tmp_path, lines, problem):
    """A bad journal key is a ConfigError of one line naming the file and the key."""
    path = tmp_path / "net.toml"
    path.write_text(f"[dispatcher]\nlisten = 'tcp:0'\n{lines}\n")
    with pytest.raises(ConfigError) as raised:
        load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


# -- the documented example --------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_scatter_example_joins_every_answer_into_one_bag(journaled, monkeypatch):
    """examples/scatter.py: each quoter's answer is merged into the bag saved for the
    item, and the joined bag stays readable by its key."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from scatter import Broker, Quoter

    for n in (1, 2, 3):
        await journaled.add(Quoter(f"quoter-{n}"))
    await journaled.add(Broker("broker"))
    client = await journaled.client()
    answer = await client.ask("broker", "quotes", {"item": "lamp"})
    joined = {"item": "lamp", "quoter-1": 4, "quoter-2": 8, "quoter-3": 12}
    assert answer["quotes"] == joined
    assert await JournalClient(client).get(answer["key"]) == joined


def test_the_readme_shows_the_scatter_examples_handler_as_it_is():
    """The README's excerpt of scatter.py is the file's own code."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    excerpt = readme.split("# scatter.py (the handler that joins the answers)\n")[1]
    excerpt = excerpt.split("```")[0]
    assert excerpt in (EXAMPLES / "scatter.py").read_text()


@pytest_twisted.ensureDeferred
async def test_actornet_trace_reads_routes_from_the_journals_answers(journaled):
    """What journal.get and journal.last answer is what `actornet trace` draws from."""
    await journaled.add(Echo("echo-1"))
    client = await journaled.client()
    await client.ask("echo", "echo", {"x": 1})
    last = await client.ask("journal", "last", {"n": 1, "service": "echo"})
    [route] = routes_from_journal(last)
    assert route[-1].name == "dispatcher" and route[-1].seq == last["bags"][0]["key"][1]
    one = await client.ask("journal", "get", {"key": last["bags"][0]["key"]})
    assert routes_from_journal(one) == [route]
    missing = await client.ask("journal", "get", {"key": ["dispatcher", 10**9]})
    assert dict(missing) == {"key": ["dispatcher", 10**9]}
