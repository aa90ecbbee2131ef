"""The file share actor and the fetch helper, over real loopback sockets."""

import hashlib
import os
import time

import pytest
import pytest_twisted

import actornet.actors.fileshare
import actornet.actors.listing
import actornet.fetch
from actornet import RemoteError
from actornet.actors.fileshare import FileShare
from actornet.cli import parser
from actornet.dispatcher.settings import DispatcherSettings
from actornet.fetch import CHUNK, IN_FLIGHT, FetchError, fetch
from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024


@pytest.fixture
def share(tmp_path):
    """A shared folder with files, an inside symlink, and two symlinks that escape."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    root = tmp_path / "share"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "hello.txt").write_text("hello\n")
    (root / "notes.md").write_text("# notes\n")
    (root / "docs" / "a.txt").write_text("a\n")
    (root / "docs" / "deep" / "b.txt").write_text("b\n")
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "latest.txt").symlink_to(root / "docs" / "a.txt")
    return root


async def start_share(cluster, root, name="files", **options):
    await cluster.add(FileShare(name, options={"root": str(root), **options}))
    return await cluster.client()


async def remote_error(deferred):
    with pytest.raises(RemoteError) as raised:
        await deferred
    return raised.value


@pytest.mark.parametrize("path", [
    "../outside/secret.txt",
    "docs/../../outside/secret.txt",
    "..",
    "/etc/passwd",
    "secret-link.txt",
    "elsewhere/secret.txt",
])
@pytest_twisted.ensureDeferred
async def test_every_path_outside_the_root_is_refused(cluster, share, path):
    """details and fetch refuse ``..``, absolute paths and escaping symlinks by name."""
    client = await start_share(cluster, share)
    for method in ("details", "fetch"):
        error = await remote_error(client.ask("fileshare", method, {"path": path}))
        assert error.remote_type == "PathOutsideRoot"
        assert error.message == f"{path!r} is outside the shared folder"
        assert str(share.parent) not in error.message


@pytest_twisted.ensureDeferred
async def test_list_and_walk_refuse_to_look_outside_the_root(cluster, share):
    """A pattern or folder that leaves the root is refused; escaping links are not listed."""
    client = await start_share(cluster, share)
    error = await remote_error(client.ask("fileshare", "list", {"pattern": "../*"}))
    assert error.remote_type == "PathOutsideRoot"
    error = await remote_error(client.ask("fileshare", "walk", {"path": "elsewhere"}))
    assert error.message == "'elsewhere' is outside the shared folder"
    error = await remote_error(client.ask("fileshare", "list", {"pattern": "/etc/*"}))
    assert error.remote_type == "PathOutsideRoot"


@pytest_twisted.ensureDeferred
async def test_a_symlink_that_stays_inside_the_root_is_served(cluster, share):
    """A link to a file inside the root is listed and fetched like the file itself."""
    client = await start_share(cluster, share)
    answer = await client.ask("fileshare", "fetch", {"path": "latest.txt"})
    assert (answer["data"], answer["offset"], answer["eof"]) == (b"a\n", 0, True)
    details = await client.ask("fileshare", "details", {"path": "latest.txt"})
    assert details["sha256"] == hashlib.sha256(b"a\n").hexdigest()


@pytest_twisted.ensureDeferred
async def test_list_matches_files_only_and_recurses_with_double_star(cluster, share):
    """``*`` lists the top folder's files; ``**`` goes down; results are sorted."""
    client = await start_share(cluster, share)
    top = await client.ask("fileshare", "list")
    assert top["files"] == ["hello.txt", "latest.txt", "notes.md"]
    texts = await client.ask("fileshare", "list", {"pattern": "**/*.txt"})
    assert texts["files"] == ["docs/a.txt", "docs/deep/b.txt", "hello.txt", "latest.txt"]
    docs = await client.ask("fileshare", "list", {"pattern": "docs/*"})
    assert docs["files"] == ["docs/a.txt"]


@pytest_twisted.ensureDeferred
async def test_a_list_pattern_over_the_limits_is_refused_before_any_scan(
        cluster, share, monkeypatch):
    """Nine ``**/a`` segments, or 513 characters, are refused naming the limit, and
    the folder is never scanned."""
    scans = []
    monkeypatch.setattr(actornet.actors.listing, "files_below",
                        lambda *args: scans.append(args) or ([], False))
    client = await start_share(cluster, share)
    error = await remote_error(client.ask("fileshare", "list",
                                          {"pattern": "/".join(["**/a"] * 9)}))
    assert error.remote_type == "PatternTooComplex"
    assert error.message == "the pattern has 9 '**' segments; at most 2 are allowed"
    error = await remote_error(client.ask("fileshare", "list", {"pattern": "x" * 513}))
    assert error.message == "the pattern has 513 characters; at most 512 are allowed"
    assert scans == []
    allowed = await client.ask("fileshare", "list", {"pattern": "**/**/docs/**/*.txt"})
    assert allowed["truncated"] is False and len(scans) == 1


def test_matching_costs_at_most_pattern_times_path_segment_matches(monkeypatch):
    """Even with nine ``**``, matching a 41-segment path that fails makes at most
    19 x 41 name matches (backtracking made millions)."""
    calls = []
    real = actornet.actors.listing.fnmatch.fnmatchcase

    def counted(name, pattern):
        calls.append(name)
        assert len(calls) <= 19 * 41, "matching backtracks"
        return real(name, pattern)

    monkeypatch.setattr(actornet.actors.listing.fnmatch, "fnmatchcase", counted)
    pattern = ["**", "a"] * 9 + ["b"]
    assert not actornet.actors.listing.matches(pattern, ["a"] * 40 + ["f"])
    assert actornet.actors.listing.matches(pattern, ["a"] * 40 + ["b"])


def test_a_scan_reads_at_most_max_visited_entries_and_says_it_was_truncated(
        tmp_path, monkeypatch):
    """With room for 25 entries, a scan of 63 stops at the 26th and answers ``truncated``."""
    for folder in ("one", "two", "three"):
        (tmp_path / folder).mkdir()
        for number in range(20):
            (tmp_path / folder / f"{number}.txt").write_text("x")
    read = []
    real_scandir = os.scandir

    def counting_scandir(path):
        entries = real_scandir(path)

        class Counted:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return entries.__exit__(*exc)

            def __iter__(self):
                for entry in entries:
                    read.append(entry.name)
                    yield entry

        return Counted()

    monkeypatch.setattr(actornet.actors.listing.os, "scandir", counting_scandir)
    files, truncated = actornet.actors.listing.glob_files(str(tmp_path), ["**", "*.txt"])
    assert (len(files), truncated, len(read)) == (60, False, 63)
    read.clear()
    monkeypatch.setattr(actornet.actors.listing, "MAX_VISITED", 25)
    files, truncated = actornet.actors.listing.glob_files(str(tmp_path), ["**", "*.txt"])
    assert truncated is True and len(read) == 26 and len(files) < 25


@pytest_twisted.ensureDeferred
async def test_list_and_walk_return_at_most_max_listed_files(cluster, share, monkeypatch):
    """Past ``MAX_LISTED`` files, list and walk answer that many and ``truncated``."""
    monkeypatch.setattr(actornet.actors.listing, "MAX_LISTED", 2)
    client = await start_share(cluster, share)
    listed = await client.ask("fileshare", "list", {"pattern": "**/*.txt"})
    walked = await client.ask("fileshare", "walk")
    for answer in (listed, walked):
        assert (len(answer["files"]), answer["truncated"]) == (2, True)
    whole = await client.ask("fileshare", "list", {"pattern": "docs/*"})
    assert (whole["files"], whole["truncated"]) == (["docs/a.txt"], False)


@pytest_twisted.ensureDeferred
async def test_walk_lists_every_file_below_a_folder(cluster, share):
    """walk gives every file below the folder, as paths relative to the root."""
    client = await start_share(cluster, share)
    everything = await client.ask("fileshare", "walk")
    assert everything["files"] == ["docs/a.txt", "docs/deep/b.txt", "hello.txt",
                                   "latest.txt", "notes.md"]
    docs = await client.ask("fileshare", "walk", {"path": "docs"})
    assert docs["files"] == ["docs/a.txt", "docs/deep/b.txt"]


@pytest_twisted.ensureDeferred
async def test_details_hash_is_computed_once_per_file_version(cluster, share, monkeypatch):
    """details gives size, mtime and sha256, and hashes again only when the file changes."""
    hashed = []
    real_sha256 = actornet.actors.fileshare._sha256
    monkeypatch.setattr(actornet.actors.fileshare, "_sha256",
                        lambda *args: hashed.append(args[1]) or real_sha256(*args))
    client = await start_share(cluster, share)
    first = await client.ask("fileshare", "details", {"path": "hello.txt"})
    again = await client.ask("fileshare", "details", {"path": "hello.txt"})
    assert dict(first) == dict(again) == {
        "path": "hello.txt", "size": 6, "mtime": (share / "hello.txt").stat().st_mtime,
        "sha256": hashlib.sha256(b"hello\n").hexdigest()}
    assert hashed == ["hello.txt"]
    (share / "hello.txt").write_text("hello, again\n")
    changed = await client.ask("fileshare", "details", {"path": "hello.txt"})
    assert changed["sha256"] == hashlib.sha256(b"hello, again\n").hexdigest()
    assert hashed == ["hello.txt", "hello.txt"]


@pytest_twisted.ensureDeferred
async def test_missing_file_is_file_not_found_naming_only_the_relative_path(cluster, share):
    """A missing file fails with FileNotFoundError naming the path, not the root."""
    client = await start_share(cluster, share)
    for method in ("details", "fetch"):
        error = await remote_error(client.ask("fileshare", method, {"path": "docs/gone.txt"}))
        assert error.remote_type == "FileNotFoundError"
        assert "'docs/gone.txt'" in error.message
        assert str(share) not in error.message


@pytest_twisted.ensureDeferred
async def test_fetch_answers_are_capped_at_max_chunk(cluster, share):
    """A fetch asking for more than ``max_chunk`` bytes gets ``max_chunk`` and no eof."""
    client = await start_share(cluster, share, max_chunk=4)
    answer = await client.ask("fileshare", "fetch",
                              {"path": "hello.txt", "offset": 1, "size": 100})
    assert (answer["data"], answer["offset"], answer["eof"]) == (b"ello", 1, False)


@pytest_twisted.ensureDeferred
async def test_64_mib_file_streams_verified_and_a_second_fetch_is_skipped(
        cluster, share, tmp_path):
    """A 64 MiB file arrives through the dispatcher with its hash checked; fetching it
    again into the same folder transfers nothing."""
    digest = hashlib.sha256()
    with open(share / "big.bin", "wb") as big:
        for _ in range(64):
            piece = os.urandom(MiB)
            digest.update(piece)
            big.write(piece)
    client = await start_share(cluster, share)
    seen = []
    started = time.monotonic()
    result = await fetch(client, "big.bin", tmp_path / "dest",
                         progress=lambda done, total: seen.append((done, total)))
    seconds = time.monotonic() - started
    print(f"\n64 MiB fetched in {seconds:.2f}s ({64 * MiB / seconds / 1e6:.0f} MB/s)")
    assert result["skipped"] is False
    assert result["bytes"] == 64 * MiB
    assert result["sha256"] == digest.hexdigest()
    assert result["source"] == "files"
    assert seen[-1] == (64 * MiB, 64 * MiB) and len(seen) == 64 * MiB // CHUNK
    with open(tmp_path / "dest" / "big.bin", "rb") as copy:
        assert hashlib.file_digest(copy, "sha256").hexdigest() == digest.hexdigest()
    assert sorted(os.listdir(tmp_path / "dest")) == ["big.bin"]

    share_actor = cluster.services["files"].actor
    handled, chunks = cluster.peer("files").handled, share_actor.chunks_served
    again = await fetch(client, "big.bin", tmp_path / "dest")
    assert again["skipped"] is True and again["bytes"] == 0
    assert again["sha256"] == digest.hexdigest()
    assert cluster.peer("files").handled == handled + 1
    assert share_actor.chunks_served == chunks


@pytest_twisted.ensureDeferred
async def test_eight_chunks_in_flight_under_the_default_limit_are_never_refused_busy(
        cluster, share, tmp_path):
    """A fetch keeping eight 1 MiB chunks outstanding, just under the dispatcher's
    default 8 MiB outbound limit, moves 32 MiB without a single BUSY refusal."""
    content = os.urandom(32 * MiB)
    (share / "big.bin").write_bytes(content)
    client = await start_share(cluster, share)
    result = await fetch(client, "big.bin", tmp_path, in_flight=8)
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert cluster.snapshot().counters.get("slow_reader_refused", 0) == 0


class ChangesFileAfterDetails:
    """A client that lets ``change`` alter the shared file once details has answered."""

    def __init__(self, client, change):
        self.client = client
        self.clock = client.clock
        self.runner = client.runner
        self.change = change

    def ask(self, service, method, data=None, **options):
        answer = self.client.ask(service, method, data, **options)
        if method == "details":
            answer.addCallback(self._changed)
        return answer

    def _changed(self, bag):
        self.change()
        return bag


@pytest.mark.parametrize("change, complaint", [
    (lambda path: path.write_bytes(b"X" * path.stat().st_size), "arrived corrupted"),
    (lambda path: path.write_bytes(b"short"), "changed on the share"),
])
@pytest_twisted.ensureDeferred
async def test_file_changed_during_a_transfer_fails_and_leaves_nothing(
        cluster, share, tmp_path, change, complaint):
    """A file rewritten between details and fetch fails the fetch with FetchError,
    and the destination folder is left empty."""
    (share / "data.bin").write_bytes(os.urandom(3 * MiB + 5))
    client = await start_share(cluster, share)
    dest = tmp_path / "dest"
    changing = ChangesFileAfterDetails(client, lambda: change(share / "data.bin"))
    with pytest.raises(FetchError) as raised:
        await fetch(changing, "data.bin", dest)
    assert complaint in raised.value.message
    assert os.listdir(dest) == []


class AltersChunks:
    """A client whose ``fetch`` answers pass through ``alter(offset, answer)`` first:
    it may change the answer, or return an error to fail that ask with."""

    def __init__(self, client, alter):
        self.client = client
        self.clock = client.clock
        self.runner = client.runner
        self.alter = alter
        self.fetches = []

    def ask(self, service, method, data=None, **options):
        answer = self.client.ask(service, method, data, **options)
        if method == "fetch":
            self.fetches.append((data["offset"], data["size"]))
            answer.addCallback(self._altered, data["offset"])
        return answer

    def _altered(self, answer, offset):
        altered = self.alter(offset, answer)
        if isinstance(altered, Exception):
            raise altered
        return altered


def busy():
    return ActornetError("the answer was not sent: the asker reads too slowly",
                         status=Status.BUSY)


@pytest_twisted.ensureDeferred
async def test_a_corrupted_chunk_fails_the_hash_taken_while_receiving(
        cluster, share, tmp_path, monkeypatch):
    """One flipped byte in one chunk fails the fetch with FetchError and leaves
    nothing; the copy is hashed as it arrives, never read back."""
    content = os.urandom(3 * MiB + 5)
    (share / "data.bin").write_bytes(content)
    client = await start_share(cluster, share)

    def flip_a_byte(offset, answer):
        if offset == MiB:
            answer["data"] = b"\0" + answer["data"][1:]
        return answer

    def read_back(path):
        raise AssertionError(f"{path} was read back")

    monkeypatch.setattr(actornet.fetch, "_sha256_of", read_back)
    dest = tmp_path / "dest"
    with pytest.raises(FetchError) as raised:
        await fetch(AltersChunks(client, flip_a_byte), "data.bin", dest)
    assert "arrived corrupted" in raised.value.message
    assert os.listdir(dest) == []
    result = await fetch(client, "data.bin", dest)
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert (dest / "data.bin").read_bytes() == content


@pytest_twisted.ensureDeferred
async def test_a_chunk_refused_busy_is_asked_again_with_fewer_in_flight(
        cluster, share, tmp_path, monkeypatch):
    """Chunks the dispatcher refused BUSY are asked for again, after a pause, with
    fewer chunks in flight, and the file still arrives whole and verified."""
    monkeypatch.setattr(actornet.fetch, "BUSY_PAUSE", 0.001)
    content = os.urandom(200_000)
    (share / "data.bin").write_bytes(content)
    client = await start_share(cluster, share)
    refused = set()

    def refuse_twice(offset, answer):
        if offset in (30_000, 60_000) and len(refused) < 2:
            refused.add(offset)
            return busy()
        return answer

    altering = AltersChunks(client, refuse_twice)
    result = await fetch(altering, "data.bin", tmp_path, chunk_size=10_000, in_flight=8)
    assert (tmp_path / "data.bin").read_bytes() == content
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    asked = [offset for offset, _ in altering.fetches]
    assert asked.count(30_000) == asked.count(60_000) == 2
    assert len(asked) == 20 + 2


@pytest_twisted.ensureDeferred
async def test_a_chunk_refused_busy_every_time_fails_with_that_refusal(
        cluster, share, tmp_path, monkeypatch):
    """A chunk refused BUSY more than BUSY_RETRIES times fails the fetch with the
    BUSY error, and nothing is left behind."""
    monkeypatch.setattr(actornet.fetch, "BUSY_PAUSE", 0.001)
    (share / "data.bin").write_bytes(os.urandom(50_000))
    client = await start_share(cluster, share)
    altering = AltersChunks(client, lambda offset, answer: busy() if offset else answer)
    dest = tmp_path / "dest"
    with pytest.raises(ActornetError) as raised:
        await fetch(altering, "data.bin", dest, chunk_size=10_000, in_flight=2)
    assert raised.value.status == Status.BUSY
    assert [offset for offset, _ in altering.fetches].count(10_000) == \
        1 + actornet.fetch.BUSY_RETRIES
    assert os.listdir(dest) == []


def test_the_default_window_stays_under_the_dispatchers_outbound_limit():
    """The chunks a fetch has in flight by default, each with its answer's envelope
    and frame header, fit in what the dispatcher lets wait for one reader before
    refusing it BUSY."""
    assert IN_FLIGHT * (CHUNK + 4096) <= DispatcherSettings().outbound_limit_bytes


@pytest_twisted.ensureDeferred
async def test_fetch_completes_chunks_the_share_cut_short(cluster, share, tmp_path):
    """Chunks larger than the share's ``max_chunk`` still arrive whole, in order."""
    content = os.urandom(50_000)
    (share / "odd.bin").write_bytes(content)
    client = await start_share(cluster, share, max_chunk=3000)
    result = await fetch(client, "odd.bin", tmp_path, chunk_size=8192, in_flight=3)
    assert (tmp_path / "odd.bin").read_bytes() == content
    assert result["sha256"] == hashlib.sha256(content).hexdigest()


@pytest_twisted.ensureDeferred
async def test_an_empty_file_is_fetched_with_the_usual_mode(cluster, share, tmp_path):
    """An empty file arrives as an empty file, readable as the umask allows."""
    (share / "empty").write_bytes(b"")
    client = await start_share(cluster, share)
    result = await fetch(client, "empty", tmp_path / "dest")
    assert result["sha256"] == hashlib.sha256(b"").hexdigest()
    arrived = tmp_path / "dest" / "empty"
    umask = os.umask(0)
    os.umask(umask)
    assert arrived.read_bytes() == b""
    assert arrived.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest_twisted.ensureDeferred
async def test_every_chunk_comes_from_the_share_that_gave_the_details(cluster, tmp_path):
    """With two shares of different folders, a fetch never mixes their files."""
    for number in (1, 2):
        root = tmp_path / f"root-{number}"
        root.mkdir()
        (root / "same-name.bin").write_bytes(bytes([number]) * 200_000)
        await cluster.add(FileShare(f"files-{number}", options={"root": str(root)}))
    client = await cluster.client()
    for attempt in range(4):
        result = await fetch(client, "same-name.bin", tmp_path / f"dest-{attempt}",
                             chunk_size=10_000, in_flight=4)
        number = int(result["source"][-1])
        assert (tmp_path / f"dest-{attempt}" / "same-name.bin").read_bytes() == \
            bytes([number]) * 200_000


def test_root_is_relative_to_the_config_folder_and_defaults_to_cwd(tmp_path, monkeypatch):
    """A relative ``root`` is under ``config_dir``; no ``root`` means the current folder."""
    (tmp_path / "files").mkdir()
    share = FileShare(options={"root": "files"})
    share.config_dir = tmp_path
    assert share.root == os.path.realpath(tmp_path / "files")
    monkeypatch.chdir(tmp_path / "files")
    assert FileShare().root == os.path.realpath(tmp_path / "files")


def test_cli_has_a_fetch_command():
    """``actornet fetch PATH`` parses, with --dest . and --service fileshare by default."""
    args = parser().parse_args(["fetch", "x"])
    assert (args.path, args.dest, args.service) == ("x", ".", "fileshare")
    assert args.run.__name__ == "run_fetch"
