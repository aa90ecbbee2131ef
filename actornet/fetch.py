"""Copy a file from a file share (:class:`actornet.actors.fileshare.FileShare`), verified.

    result = await fetch(client, "reports/q3.pdf", "downloads")

The file comes in chunks with a few requests outstanding at once, so a large
file moves at the link's speed without ever being held whole in memory; chunks
are written at their offsets into a temporary file beside the destination and
hashed in order as they arrive (the file is never read back).  The chunks in
flight stay under the dispatcher's per-reader outbound limit (8 MiB by
default); should the dispatcher still refuse a chunk as BUSY (this client reads
too slowly), that chunk is asked for again after a pause, with fewer in flight.
Only when the sha256 matches the share's does the file take its final name, so
an interrupted or corrupted transfer never leaves a half file where a good one
is expected.  A destination that already holds the same bytes is left alone
and nothing is transferred.

Disk work runs on the client's (or actor's) ``runner`` and the transfer is
timed on its ``clock``.  The ``actornet fetch`` command is in :mod:`actornet.cli`.
"""

import hashlib
import os
import secrets
from pathlib import Path, PurePosixPath

from twisted.internet.defer import DeferredLock, DeferredQueue

from actornet.protocols.codes import Status
from actornet.protocols.errors import ActornetError

CHUNK = 1024 * 1024
IN_FLIGHT = 7
"""1 MiB chunks, 7 at a time: the window (7 MiB, with each answer's envelope) stays
under the dispatcher's default outbound limit of 8 MiB, which judges what waits
for a reader.  No process of the three is busy a whole core during a fetch, so
the window sets the pace: 4 chunks in flight moved 478-509 MB/s, 7 moved
575-595 MB/s (``bench/run.py --only transfer``).  Bigger chunks only make every
hop's buffers bigger (4 MiB chunks were half as fast end to end)."""
BUSY_RETRIES = 5
BUSY_PAUSE = 0.05
"""Seconds before the first retry of a chunk refused BUSY; doubled for each next."""
HASH_BLOCK = 1024 * 1024


class FetchError(ActornetError):
    """The transfer failed: the file changed on the share or arrived corrupted."""


async def fetch(client, path, dest, *, service="fileshare", chunk_size=CHUNK, in_flight=IN_FLIGHT,
                progress=None, target="any", timeout=30.0):
    """Copy the shared file ``path`` into the folder ``dest`` (made if missing).

    @param client: a client or an actor: its ``ask``, ``clock`` and ``runner`` are used.
    @param in_flight: how many chunk requests may be outstanding at once; keep
        ``in_flight * chunk_size`` under the dispatcher's ``outbound_limit_bytes``.
    @param progress: called as ``progress(done_bytes, total_bytes)`` after each chunk.
    @param target: which file share actor to ask first; every chunk then comes
        from the actor that answered, so instances with different folders never mix.
    @return: ``{"path", "dest", "bytes", "sha256", "skipped", "source", "seconds"}``;
        ``bytes`` is what was transferred (0 when ``dest`` already held the file).
    @raise FetchError: the file changed during the transfer or its hash did not
        match (no file is left behind); the share's own errors (e.g. ``RemoteError``
        of type ``PathOutsideRoot`` or ``FileNotFoundError``) as they come, and
        a BUSY refusal once a chunk was refused ``BUSY_RETRIES`` times in a row.
    """
    if chunk_size < 1 or in_flight < 1:
        raise ValueError("chunk_size and in_flight must be positive")
    started = client.clock.seconds()
    details = await client.ask(service, "details", {"path": path}, target=target,
                               timeout=timeout)
    source = getattr(details, "sender", None)
    name = PurePosixPath(path).name
    folder = Path(dest)
    final = folder / name
    result = {"path": path, "dest": str(final), "bytes": 0, "sha256": details["sha256"],
              "skipped": True, "source": source}
    if final.is_file() and await client.runner.run(_sha256_of, final) == details["sha256"]:
        result["seconds"] = client.clock.seconds() - started
        return result
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _temporary_file(folder, name)
    try:
        transfer = _Transfer(client, service, source or target, path, descriptor,
                             details["size"], chunk_size, in_flight, progress, timeout)
        digest = await transfer.run()
        os.close(descriptor)
        descriptor = None
        if digest != details["sha256"]:
            raise FetchError(f"{path!r} arrived corrupted: sha256 {digest}, but the share "
                             f"said {details['sha256']}")
        os.replace(temporary, final)
    except BaseException:
        if descriptor is not None:
            os.close(descriptor)
        os.unlink(temporary)
        raise
    result.update(bytes=details["size"], skipped=False,
                  seconds=client.clock.seconds() - started)
    return result


class _Transfer:
    """One file's chunks: requested within a window, then written and hashed in
    order on the client's runner while the next chunks travel.

    At most ``in_flight * chunk_size`` bytes are requested, waiting for their
    turn or being written at any moment, so memory stays flat whatever order
    answers arrive in and however slow the disk is.  A chunk that comes back
    shorter than asked (the share caps its chunk size) has its remainder
    requested at once.  A chunk refused BUSY halves the window (down to one
    chunk) and is asked for again after a pause that doubles at each refusal.
    """

    def __init__(self, client, service, target, path, descriptor, size, chunk_size,
                 in_flight, progress, timeout):
        self.client = client
        self.service = service
        self.target = target
        self.path = path
        self.descriptor = descriptor
        self.size = size
        self.chunk_size = chunk_size
        self.window = in_flight * chunk_size
        self.progress = progress
        self.timeout = timeout
        self.digest = hashlib.sha256()
        self.next_offset = 0
        self.received = 0
        self.queued = 0
        self.stored = 0
        self.early = {}
        self.asks = {}
        self.events = DeferredQueue()
        self.disk = DeferredLock()
        self.abandoned = False

    async def run(self):
        """The sha256 of the file as written, once every byte is on disk."""
        try:
            self._request_more()
            while self.stored < self.size:
                event, *details = await self.events.get()
                if event == "failed":
                    self._failed(*details)
                elif event == "answer":
                    offset, length, answer = details
                    del self.asks[offset]
                    self._received(offset, length, answer)
                else:
                    self.stored += details[0]
                self._request_more()
        finally:
            asks, self.asks = self.asks, {}
            for ask in asks.values():
                ask.cancel()
            self.abandoned = True
            await self.disk.run(lambda: None)
        return self.digest.hexdigest()

    def _request_more(self):
        while (self.next_offset < self.size
               and self.next_offset < self.stored + self.window):
            length = min(self.chunk_size, self.size - self.next_offset)
            self._ask(self.next_offset, length)
            self.next_offset += length

    def _ask(self, offset, length, refusals=0):
        ask = self.client.ask(self.service, "fetch",
                              {"path": self.path, "offset": offset, "size": length},
                              target=self.target, timeout=self.timeout)
        self.asks[offset] = ask
        ask.addCallbacks(
            lambda answer: self.events.put(("answer", offset, length, answer)),
            lambda failure: self.events.put(("failed", offset, length, refusals,
                                             failure.value)))

    def _failed(self, offset, length, refusals, error):
        """Ask again for a chunk refused BUSY, with a smaller window; raise anything else."""
        busy = isinstance(error, ActornetError) and error.status == Status.BUSY
        if not busy or refusals >= BUSY_RETRIES:
            raise error
        self.window = max(self.chunk_size, self.window // 2)
        self.asks[offset] = self.client.clock.callLater(
            BUSY_PAUSE * 2 ** refusals, self._ask, offset, length, refusals + 1)

    def _received(self, offset, length, answer):
        data = answer.get("data")
        if answer.get("offset") != offset or not isinstance(data, bytes):
            raise FetchError(f"the share answered for {self.path!r} at offset {offset} "
                             f"with something other than its bytes")
        if len(data) > length or (not data and length):
            raise FetchError(f"{self.path!r} changed on the share while it was fetched "
                             f"(expected {self.size} bytes)")
        if len(data) < length:
            self._ask(offset + len(data), length - len(data))
        self.received += len(data)
        self.early[offset] = data
        while self.queued in self.early:
            piece = self.early.pop(self.queued)
            self.disk.run(self.client.runner.run, self._store, self.queued, piece).addCallbacks(
                lambda stored: self.events.put(("stored", stored)),
                lambda failure: self.events.put(("failed", failure.value)))
            self.queued += len(piece)
        if self.progress is not None:
            self.progress(self.received, self.size)

    def _store(self, offset, piece):
        """Write and hash one piece; runs in a thread, one piece at a time, in order."""
        if self.abandoned:
            return 0
        view = memoryview(piece)
        while view:
            written = os.pwrite(self.descriptor, view, offset)
            view, offset = view[written:], offset + written
        self.digest.update(piece)
        return len(piece)


def _temporary_file(folder, name):
    """A new hidden file beside the destination, made with the umask's usual mode
    (``tempfile.mkstemp`` would leave the fetched file readable by its owner only)."""
    while True:
        path = folder / f".{name}.{secrets.token_hex(4)}.part"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


def _sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
