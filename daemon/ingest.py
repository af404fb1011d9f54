"""Transcripts -> the ledger: a one-shot catch-up over every file, and the daemon's per-file path.

`catch_up` stats every transcript, reads only files that changed, parses them in parallel worker processes
when there is much to read (each worker prefilters, parses and dedups its files), and writes in the parent:
each batch of files' events and new offsets in one transaction. `Ingestor.ingest_file` is the same for one
file, in process. Bad lines are counted and logged with file and line number; they never stop the rest of the
file.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import ledger_write as ledger
from daemon.errors import BatonError
from daemon.parse import (
    USAGE_MARKER,
    LimitEvent,
    Skip,
    UsageEvent,
    null_key,
    parse_marked_line,
    usage_fields,
)
from daemon.pricing import PriceTable, load_prices
from daemon.timeutil import local_zone
from daemon.transcripts import (
    MAX_LINE_BYTES,
    TREE_FORGET,
    TREE_UPSERT,
    FileState,
    find_roots,
    path_identity,
    read_new_lines,
    scan,
    tree_json,
    unchanged,
)

if TYPE_CHECKING:
    from daemon.config import Settings
    from daemon.paths import BatonPaths

log = logging.getLogger("baton.ingest")

PARALLEL_MIN_BYTES = 16 << 20  # below this, forking workers costs more than it saves
BATCH_ROWS = 20_000  # rows per write transaction in a catch-up: bounds memory whatever the corpus size
CHUNK_FILES = 8  # files handed to a worker at a time
CACHE_KIB = 32 << 10  # the writer's page cache: a cold catch-up's indexes stay in memory
LOGGED_BAD_PER_FILE = 20

Progress = Callable[[int, int], None]  # (bytes done, bytes to read)


@dataclass
class IngestSummary:
    """What one catch-up (or one file's ingest) did."""

    files: int = 0
    files_read: int = 0
    new_events: int = 0
    new_limits: int = 0
    skipped_lines: int = 0
    bytes_read: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        """Return the one-line summary `baton ingest` ends with."""
        text = (
            f"{self.files} files ({self.files_read} read, {self.bytes_read / 1e6:.1f} MB), "
            f"{self.new_events} new events, {self.new_limits} limit messages, "
            f"{self.skipped_lines} skipped lines"
        )
        if self.errors:
            text += f", {len(self.errors)} unreadable files"
        return text + f" in {self.seconds:.2f}s"

    def add(self, other: IngestSummary) -> None:
        self.files_read += other.files_read
        self.new_events += other.new_events
        self.new_limits += other.new_limits
        self.skipped_lines += other.skipped_lines
        self.bytes_read += other.bytes_read
        self.errors.extend(other.errors)


@dataclass
class FileResult:
    """One file's new lines, parsed and deduped (rows' file_id still unset)."""

    path: str
    state: FileState
    restarted: bool
    rows: list[ledger.Row]
    limits: list[tuple[object, ...]]
    bad: int
    bad_samples: list[tuple[int, str]]
    bytes_read: int
    error: str | None = None
    file_id: int | None = None  # when the parser was given it (a new ledger's build numbers its files)
    message_ids: set[str] = field(default_factory=set)  # of the rows (a new ledger's build looks them up)
    bare_keys: list[str] = field(default_factory=list)  # dedup keys of the rows without a message id


# ---- parsing one file (runs in a worker or in process) -----------------------------------------------------


def parse_file(
    path: str,
    state: FileState,
    prices: PriceTable,
    zone: tzinfo,
    file_id: int | None = None,
    *,
    shipped: bool = True,
) -> FileResult:
    """Return the new events of `path` since `state`. Never raises: an unreadable file gives `error`.
    Rows and limit messages carry `file_id` (None: the writer sets it). `shipped` false: the rows are written
    by this process, not pickled to another (their repeated strings are not interned then).

    The file is read in bounded chunks of complete lines (transcripts.CHUNK_BYTES), never whole. Ordinary
    assistant lines take `parse.usage_fields` (a plain tuple, no event object); the others the full parser.
    """
    project, session = path_identity(path)
    merger = ledger.Merger()
    best, by_message, add, ranks_above = merger.best, merger.by_message, merger.add, ledger.ranks_above
    cost = prices.cost
    intern = sys.intern  # interned strings are pickled once per worker result (when `shipped`)
    limits: list[tuple[object, ...]] = []
    bare: list[str] = []  # keys of rows without a message id (each line its own)
    bad, samples = 0, list[tuple[int, str]]()
    current, restarted, bytes_read = state, False, 0
    with gc_paused():  # many small objects, no cycles: collections would only cost time
        while True:
            try:
                chunk = read_new_lines(path, current, count=False)
            except OSError as exc:
                return FileResult(
                    path, state, False, [], [], 0, [], 0, error=f"{path}: {exc.strerror or exc}"
                )
            marked, lines = chunk.marked_lines(USAGE_MARKER)  # one pass numbers and counts the lines
            restarted = restarted or chunk.restarted
            current = chunk.state._replace(lines=chunk.state.lines + lines)
            bytes_read += len(chunk.data)
            for line_no in chunk.oversized:
                bad += 1
                if len(samples) < LOGGED_BAD_PER_FILE:
                    samples.append((line_no, f"line longer than {MAX_LINE_BYTES >> 20} MB: skipped"))
            for line_no, line in marked:
                try:
                    fields = usage_fields(line)  # the null rule is applied below, to the lines kept
                    if fields is not None:
                        ts, mid, rid, cwd, branch, ver, model, speed, side, inp, out, c5, c1, cr, usd = fields
                        key = f"{mid}\x1f{rid or ''}"  # usage_fields only accepts lines with a message id
                        seen = best.get(key)
                        if seen is not None and not ranks_above(
                            side, inp + out + c5 + c1 + cr, speed is not None, seen[0]
                        ):  # a repeat of a response (streaming writes one line per content block) that does
                            continue  # not beat the earlier line of this file: nothing to build, nor to check
                        if null_key(line) is None:  # else the full parser skips it, as ccusage does
                            if shipped:
                                cwd = None if cwd is None else intern(cwd)
                                branch = None if branch is None else intern(branch)
                                ver = None if ver is None else intern(ver)
                                model = None if model is None else intern(model)
                            row = (
                                key,
                                mid,
                                rid,
                                ts,
                                session,
                                project,
                                cwd,
                                branch,
                                ver,
                                model,
                                speed,
                                side,
                                "assistant",
                                inp,
                                out,
                                c5 + c1,
                                c5,
                                c1,
                                cr,
                                inp + out + c5 + c1 + cr,
                                usd,
                                cost(model, speed, inp, out, c5, c1, cr),
                                file_id,
                                line_no,
                            )
                            if seen is not None:  # beats the earlier line of its response: Merger.add's
                                best[key] = (row, path)  # answer for one key in one file
                            elif mid not in by_message:  # Merger.add's common case
                                best[key] = (row, path)
                                by_message[mid] = [key]  # type: ignore[index]
                            else:
                                add(row, path)
                            continue
                    parsed = parse_marked_line(line, zone)
                except Exception as exc:  # a parser bug must cost one line, never the file
                    parsed = Skip(f"unexpected error: {exc!r}", bad=True)
                if isinstance(parsed, Skip):
                    if parsed.bad:
                        bad += 1
                        if len(samples) < LOGGED_BAD_PER_FILE:
                            samples.append((line_no, parsed.reason[:300]))
                    continue
                usage = parsed.usage if isinstance(parsed, LimitEvent) else parsed
                if isinstance(parsed, LimitEvent):
                    limits.append(_limit_row(parsed, session, project, line_no, file_id))
                if usage is not None:
                    usage_row = _usage_row(usage, session, project, path, line_no, line, prices, file_id)
                    if usage.message_id is None:
                        bare.append(str(usage_row[0]))
                    add(usage_row, path)
            if not chunk.data or current.offset >= current.size:
                break
        rows = [r for r, _ in merger.rows()]
    return FileResult(
        path, current, restarted, rows, limits, bad, samples, bytes_read, None, file_id, set(by_message), bare
    )


def _usage_row(
    e: UsageEvent,
    session: str,
    project: str,
    path: str,
    line_no: int,
    line: bytes,
    prices: PriceTable,
    file_id: int | None = None,
) -> ledger.Row:
    key = e.dedup_key
    if key is None:
        # ccusage never dedups these: repeated identical lines count each time (the line number keeps them
        # apart), while reading the same file again, or under a renamed project folder, counts nothing twice.
        where = f"{session}/{os.path.basename(path)}:{line_no}\0".encode()
        key = "line:" + hashlib.blake2b(where + line, digest_size=16).hexdigest()
    cost = prices.cost(
        e.model,
        e.speed,
        e.input_tokens,
        e.output_tokens,
        e.cache_5m_tokens,
        e.cache_1h_tokens,
        e.cache_read_tokens,
    )
    return (
        key,
        e.message_id,
        e.request_id,
        e.ts_ms,
        session,
        project,
        e.cwd,
        e.git_branch,
        e.version,
        e.model,
        e.speed,
        int(e.is_sidechain),
        e.source,
        e.input_tokens,
        e.output_tokens,
        e.cache_creation_tokens,
        e.cache_5m_tokens,
        e.cache_1h_tokens,
        e.cache_read_tokens,
        e.total_tokens,
        e.cost_usd,
        cost,
        file_id,
        line_no,
    )


def _limit_row(
    e: LimitEvent, session: str, project: str, line_no: int, file_id: int | None = None
) -> tuple[object, ...]:
    digest = hashlib.blake2b(e.text.encode(), digest_size=8).hexdigest()
    key = f"limit:{session}:{e.ts_ms}:{digest}"
    return (key, e.ts_ms, session, project, e.cwd, e.kind, e.reset_at_ms, e.text, file_id, line_no)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (parsing allocates many small acyclic objects)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_WORKER: dict[str, object] = {}


def _init_worker(prices: PriceTable, zone: tzinfo, parent: int | None = None) -> None:
    gc.disable()  # a worker only parses, then exits
    _WORKER["prices"], _WORKER["zone"] = prices, zone
    # the parent handles Ctrl-C and SIGTERM (and ends its workers): no tracebacks from them
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    if parent is not None:
        _WORKER["parent"] = parent
        _die_with_parent()
        _check_parent()


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux; elsewhere `_check_parent` only)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _check_parent() -> None:
    """Exit at once if the process that started this worker is gone (this one was re-parented)."""
    parent = _WORKER.get("parent")
    if parent is not None and os.getppid() != parent:
        os._exit(1)


Task = tuple[str, FileState, int | None]  # path, stored state, file id for its rows (None: writer sets it)


def _work_chunk(tasks: list[Task]) -> list[FileResult]:
    prices, zone = _WORKER["prices"], _WORKER["zone"]
    assert isinstance(prices, PriceTable) and isinstance(zone, tzinfo)
    return [parse_file(task[0], task[1], prices, zone, task[2]) for task in tasks]


# ---- writing -----------------------------------------------------------------------------------------------

_FILE_UPSERT = (
    "INSERT INTO files (path, device, inode, size, offset, lines, mtime_ns, head, tail, session_id, project, "
    "deleted, skipped_lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (path) DO UPDATE SET "
    "device = excluded.device, inode = excluded.inode, size = excluded.size, offset = excluded.offset, "
    "lines = excluded.lines, mtime_ns = excluded.mtime_ns, head = excluded.head, tail = excluded.tail, "
    "deleted = 0, "
    # a file read again from its start recounts its bad lines; otherwise the new ones add up
    "skipped_lines = CASE WHEN ?13 OR files.inode != excluded.inode THEN excluded.skipped_lines "
    "ELSE files.skipped_lines + excluded.skipped_lines END "
    # another process may already have read further: offsets only move forward, unless the file restarted
    "WHERE ?13 OR files.inode != excluded.inode OR files.offset <= excluded.offset "
    "RETURNING id"
)
_STATES = "SELECT path, device, inode, size, offset, lines, mtime_ns, head, tail FROM files WHERE deleted = 0"


class Freshness:
    """Tracks, across one catch-up's transactions, whether the ledger holds only what this catch-up wrote
    (it was empty when the catch-up began, and no other connection has committed since). Then a file whose
    message ids this catch-up has not seen yet cannot have a duplicate anywhere, and its rows are inserted
    as they are, without looking for stored matches."""

    def __init__(self) -> None:
        self.fresh: bool | None = None
        self.version: int | None = None
        self.seen: set[str] = set()

    def check(self, conn: sqlite3.Connection) -> bool:
        """Return whether the ledger is still fresh; call inside the write transaction."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self.fresh is None:
            self.fresh = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM usage_events)").fetchone()[0] == 1
        elif version != self.version:
            self.fresh = False
        return self.fresh

    def committed(self, conn: sqlite3.Connection) -> None:
        self.version = conn.execute("PRAGMA data_version").fetchone()[0]


class LedgerWriter:
    """Writes parsed files to the ledger: events, limit messages and offsets of a batch in one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def states(self) -> dict[str, FileState]:
        """Return the stored reading state of every known file, by path."""
        return {r[0]: FileState(*r[1:]) for r in self.conn.execute(_STATES)}

    def state(self, path: str) -> FileState:
        row = self.conn.execute(
            "SELECT device, inode, size, offset, lines, mtime_ns, head, tail FROM files WHERE path = ?",
            (path,),
        ).fetchone()
        return FileState(*row) if row else FileState()

    def commit(self, results: list[FileResult], fresh: Freshness | None = None) -> IngestSummary:
        """Write `results` in one transaction and return what was new."""
        try:
            return self._commit(results, fresh)
        except sqlite3.IntegrityError:
            if fresh is None or not fresh.fresh:
                raise
            fresh.fresh = False  # cannot happen while the ledger is fresh; write the careful way
            return self._commit(results, fresh)

    def _commit(self, results: list[FileResult], fresh: Freshness | None) -> IngestSummary:
        summary = IngestSummary()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            bulk = fresh is not None and fresh.check(conn)
            direct: list[ledger.Row] = []
            candidates: list[tuple[ledger.Row, str]] = []
            limits: list[tuple[object, ...]] = []
            for res in results:
                file_id = self._save_file(res)
                rows = [(*row[: ledger.FILE], file_id, row[ledger.LINE]) for row in res.rows]
                if bulk:
                    assert fresh is not None
                    msgs = {m for r in res.rows if isinstance(m := r[ledger.MSG], str)}
                    if fresh.seen.isdisjoint(msgs):
                        direct.extend(rows)
                    else:
                        candidates.extend((row, res.path) for row in rows)
                    fresh.seen.update(msgs)
                else:
                    candidates.extend((row, res.path) for row in rows)
                limits.extend((*lim[:8], file_id, lim[9]) for lim in res.limits)
                summary.files_read += 1
                summary.skipped_lines += res.bad
                summary.bytes_read += res.bytes_read
            summary.new_events = ledger.insert_new(conn, direct)
            # rows that may have duplicates are merged with the stored ones (exact key, sidechain match)
            summary.new_events += ledger.write_events(conn, candidates, table_empty=False)
            before = conn.total_changes
            conn.executemany(ledger.INSERT_LIMIT, limits)
            summary.new_limits = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if fresh is not None:
            fresh.committed(conn)
        return summary

    def _save_file(self, res: FileResult) -> int:
        project, session = path_identity(res.path)
        s = res.state
        row = self.conn.execute(
            _FILE_UPSERT,
            (
                res.path,
                s.device,
                s.inode,
                s.size,
                s.offset,
                s.lines,
                s.mtime_ns,
                s.head,
                s.tail,
                session,
                project,
                res.bad,
                res.restarted,
            ),
        ).fetchone()
        if row is None:  # not updated: the stored offset is further on
            row = self.conn.execute("SELECT id FROM files WHERE path = ?", (res.path,)).fetchone()
        return int(row[0])

    def mark_deleted(self, present: set[str]) -> None:
        """Flag files that are gone from disk; their events stay in the ledger."""
        gone = [p for p in self.states() if p not in present and not os.path.exists(p)]
        if gone:
            with self.transaction():
                self.conn.executemany("UPDATE files SET deleted = 1 WHERE path = ?", [(p,) for p in gone])

    def save_tree(self, roots: list[Path], dirs: dict[str, int], *, complete: bool = True) -> None:
        """Remember the directories a listing walked (see `tree_json`): reports skip the listing while
        none of them changes. When some file could not be read (`complete` false), forget them instead:
        the next report lists the tree again and retries that file (it has no state yet)."""
        with self.transaction():
            if complete:
                self.conn.execute(TREE_UPSERT, (tree_json(roots, dirs),))
            else:
                self.conn.execute(TREE_FORGET)

    def refresh_costs(self, prices: PriceTable) -> int:
        """Recompute stored costs if the price table changed since they were computed; return rows updated."""
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = 'prices_digest'").fetchone()
        if row is not None and row[0] == prices.digest:
            return 0
        # one UPDATE with the price table as an SQL function: no row is loaded into Python
        self.conn.create_function("baton_cost", 7, prices.cost, deterministic=True)
        with self.transaction():
            updated = self.conn.execute(
                "UPDATE usage_events SET cost_calc = baton_cost(model, speed, input_tokens, output_tokens, "
                "cache_5m_tokens, cache_1h_tokens, cache_read_tokens)"
            ).rowcount
            ledger.refresh_rollup(self.conn)
            self.conn.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('prices_digest', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (prices.digest,),
            )
        return updated

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one write transaction (the connection is in autocommit mode otherwise)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


def open_writer(db_path: Path) -> LedgerWriter:
    """Return a writer on the migrated ledger at `db_path` (autocommit; transactions are explicit)."""
    from daemon.db import open_ledger

    open_ledger(db_path).dispose()  # migrates under db's file lock: racing processes take turns
    conn = sqlite3.connect(db_path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    # statement journals in memory: with triggers on usage_events (sessions), each row's insert opens one,
    # and on disk that tripled the cost of a bulk insert
    conn.execute("PRAGMA temp_store=MEMORY")
    os.chmod(db_path, 0o600)
    return LedgerWriter(conn)


LEDGER_VERSION = 4  # len(daemon.ledger.MIGRATIONS), known here without importing SQLAlchemy


def read_states(db_path: Path) -> dict[str, FileState]:
    """Return the stored reading states (stdlib sqlite3); {} when there is no ledger yet.

    A ledger from an older version is migrated first (a migration may send files back to their start).
    """
    if not db_path.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)
        try:
            (version,) = conn.execute(
                "SELECT max(version) FROM schema_migrations WHERE component = 'ledger'"
            ).fetchone()
            if version is None or version < LEDGER_VERSION:
                open_writer(db_path).conn.close()
            return {r[0]: FileState(*r[1:]) for r in conn.execute(_STATES)}
        finally:
            conn.close()
    except sqlite3.Error:
        return {}  # not migrated yet: everything is read, and the dedup keeps it exact


def _log_bad(res: FileResult) -> None:
    if res.error:
        log.warning("cannot read transcript: %s", res.error)
    for line_no, reason in res.bad_samples:
        log.warning("skipped %s:%d: %s", res.path, line_no, reason)
    if res.bad > len(res.bad_samples):
        log.warning("skipped %d more lines in %s", res.bad - len(res.bad_samples), res.path)


# ---- catch-up ----------------------------------------------------------------------------------------------


def catch_up(
    paths: BatonPaths,
    settings: Settings | None,
    *,
    progress: Progress | None = None,
    env: dict[str, str] | None = None,
    workers: int | None = None,
) -> IngestSummary:
    """Read every new complete line of every transcript into the ledger; return what was done.

    Raise BatonError when the transcript roots are misconfigured. Unreadable files and bad lines are
    reported in the summary and the log, never raised. `settings` None: the defaults, when there is nothing
    to validate (`baton ingest` with no config.toml and no BATON_* setting: pydantic is not imported).
    """
    started = time.perf_counter()
    roots = find_roots(settings, os.environ if env is None else env)
    listing, dirs = scan(roots)
    prices = load_prices(None if settings is None else settings.pricing.file)
    try:
        summary = _catch_up_into(paths.ledger_db, listing, roots, dirs, prices, progress, workers)
    except Exception as exc:  # transcripts' read errors are in the summary: this is writing the ledger
        cause = _write_failure(exc)
        if cause is None:
            raise
        raise cannot_write(paths.ledger_db, cause) from exc
    summary.files = len(listing)
    summary.seconds = time.perf_counter() - started
    return summary


def _write_failure(exc: BaseException) -> BaseException | None:
    """Return the database or file system error behind `exc` (SQLAlchemy wraps sqlite3's), if it is one."""
    if isinstance(exc, BatonError):
        return None
    if isinstance(exc, (sqlite3.Error, OSError)):
        return exc
    orig = getattr(exc, "orig", None)  # sqlalchemy.exc.DBAPIError, while the schema is created
    return orig if isinstance(orig, sqlite3.Error) else None


def cannot_write(path: Path, exc: BaseException) -> BatonError:
    """The error for a ledger (or data folder) that cannot be written: read-only, full disk, ..."""
    reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    return BatonError(
        f"cannot write {path}: {reason}",
        hint="check that the folder is writable and the disk has room, then run it again",
    )


def _catch_up_into(
    db: Path,
    listing: list[str],
    roots: list[Path],
    dirs: dict[str, int],
    prices: PriceTable,
    progress: Progress | None,
    workers: int | None,
) -> IngestSummary:
    _remove_stray_builds(db)  # of processes killed while building a new ledger
    if not db.exists():
        built = _build_new(db, listing, roots, dirs, prices, progress, workers)
        if built is not None:
            return built
    tasks, sizes = _plan(listing, read_states(db))
    total = sum(sizes)
    with gc_paused(), _Parsed(tasks, prices, local_zone(), total, workers) as parsed:
        # the workers are parsing already: open (and if need be create) the ledger meanwhile
        writer = open_writer(db)
        try:
            writer.refresh_costs(prices)
            summary = _write_all(writer, parsed, total, progress)
            writer.mark_deleted(set(listing))
            writer.save_tree(roots, dirs, complete=not summary.errors)
        finally:
            writer.conn.close()
    return summary


# ---- a first catch-up: a new ledger, built aside -----------------------------------------------------------

# pages read through a mapping, not one read() each: rereading the pages that another writer changed, and the
# final index creation's scan of the whole table, cost about a third less. Mapped pages count in a process's
# RSS: at most this much of the file (a 1 GB transcript tree makes a ledger of about 40 MB)
BUILD_MMAP_BYTES = 64 << 20
BUILD_SUFFIX = ".new-"  # <ledger>.new-<pid>: a new ledger being built by that process
LOCK_SUFFIX = ".lock"  # <build>.lock: the writers' flock
READY_SUFFIX = ".ready"  # <build>.ready: exists once the build's schema does
_FILE_INSERT = (
    "INSERT INTO files (id, path, device, inode, size, offset, lines, mtime_ns, head, tail, session_id, "
    "project, deleted, skipped_lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"
)
KEPT_INDEXES = frozenset({"ix_usage_events_message"})  # the merge of duplicates across files looks up by it


def _build_new(
    db: Path,
    listing: list[str],
    roots: list[Path],
    dirs: dict[str, int],
    prices: PriceTable,
    progress: Progress | None,
    workers: int | None,
) -> IngestSummary | None:
    """Catch up into a ledger that does not exist yet: build it aside, then move it into place whole.

    The ledger is written to a private file (`<ledger>.new-<pid>-...`) with no rollback journal and no fsync,
    without the secondary indexes of usage_events (created once at the end from sorted keys, cheaper than
    keeping them up to date row by row); the files are numbered by the parsers, so that rows arrive ready to
    insert. With much to read, the worker processes write what they parse themselves, taking turns on a lock
    (nothing is shipped back but counts). The finished file is switched to WAL and hard-linked into place,
    which fails rather than replace a ledger that another process created meanwhile: then None is returned,
    and the caller catches up into that ledger the usual way. A crash or kill leaves no ledger at all (the
    next catch-up starts again and removes the stray file), so nothing can be counted twice or lost.
    """
    db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _build_path(db)
    planned, sizes = _plan(listing, {})
    total = sum(sizes)
    tasks: list[Task] = [(path, state, i) for i, (path, state, _) in enumerate(planned, start=1)]
    zone = local_zone()
    n = workers if workers is not None else worker_count()
    try:
        with gc_paused(), _terminated_as_exit():
            if n > 1 and len(tasks) > 1 and total >= PARALLEL_MIN_BYTES:
                summary = _build_in_workers(tmp, tasks, total, prices, zone, n, progress, sizes)
            else:
                summary = _build_in_process(tmp, tasks, total, prices, zone, progress)
        conn = _connect_build(tmp)
        try:
            _finish_build(conn, roots, dirs if not summary.errors else None)
        finally:
            conn.close()
        placed = _place(tmp, db)
    except sqlite3.IntegrityError as exc:  # two rows with one key that the build took for distinct
        log.warning("building a new ledger failed (%s): catching up the usual way", exc)
        return None
    except WorkerDied as exc:
        log.info("a worker process died while building the new ledger (%s): build abandoned", exc.detail)
        raise BatonError(
            "a worker process died while building the new ledger; nothing was written, run it again"
        ) from None
    finally:
        _remove_build(tmp)
    return summary if placed else None


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """From now on, SIGTERM raises SystemExit in the main thread (`baton ingest`): cleanup runs as on an
    error (a new ledger's build is removed)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)


@contextmanager
def _terminated_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit in the main thread, so that a build is cleaned up (its
    workers ended and its files removed) as on Ctrl-C. Nothing changes outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _create_build(path: Path, prices: PriceTable) -> None:
    """Create the new ledger at `path` from the migrations' schema snapshot (stdlib sqlite3, a few ms), with
    the deferred indexes set aside and the price table's digest recorded."""
    from daemon import ledger_schema

    _remove_build(path, _DB_SUFFIXES)  # not the writers' lock: the workers may have opened it already
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    conn = _connect_build(path)
    try:
        ledger_schema.create(conn)
        for name, sql in _deferred_indexes(conn):
            conn.execute(f'DROP INDEX "{name}"')
            conn.execute("INSERT INTO ledger_meta (key, value) VALUES (?, ?)", (f"build_index:{name}", sql))
        LedgerWriter(conn).refresh_costs(prices)  # no rows yet: records the price table's digest
    finally:
        conn.close()


def _build_path(db: Path) -> Path:
    return db.with_name(f"{db.name}{BUILD_SUFFIX}{os.getpid()}-{os.urandom(4).hex()}")


def _deferred_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_events' "
        "AND sql IS NOT NULL"
    )
    return [(name, sql) for name, sql in rows if name not in KEPT_INDEXES]


def _connect_build(path: Path | str) -> sqlite3.Connection:
    """Open the new ledger at `path`, which must exist: never create it (a worker outliving its build)."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=OFF")  # a failure discards the whole file: nothing to roll back
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute(f"PRAGMA mmap_size={BUILD_MMAP_BYTES}")
    return conn


def _finish_build(conn: sqlite3.Connection, roots: list[Path], dirs: dict[str, int] | None) -> None:
    """Create the deferred indexes, remember the listing (unless `dirs` is None: some file could not be
    read, and the next report must list the tree again to retry it), and switch the file to WAL."""
    conn.execute("BEGIN IMMEDIATE")
    stored = conn.execute("SELECT key, value FROM ledger_meta WHERE key LIKE 'build_index:%'").fetchall()
    for _, sql in stored:
        conn.execute(sql)
    conn.execute("DELETE FROM ledger_meta WHERE key LIKE 'build_index:%'")
    if dirs is not None:
        conn.execute(TREE_UPSERT, (tree_json(roots, dirs),))
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")


def _build_in_process(
    tmp: Path,
    tasks: list[Task],
    total: int,
    prices: PriceTable,
    zone: tzinfo,
    progress: Progress | None,
) -> IngestSummary:
    _create_build(tmp, prices)
    conn = _connect_build(tmp)
    try:
        parsed = (parse_file(p, state, prices, zone, n, shipped=False) for p, state, n in tasks)
        return _write_batched(parsed, lambda batch: _write_batch(conn, batch), total, progress)
    finally:
        conn.close()


BUILD_BATCH_BYTES = 48 << 20  # of transcript per worker batch: one write transaction each
HAND_BACK_EARLY = True  # batches parsed before the schema exists go to the parent (False: the worker waits)


class WorkerDied(BatonError):
    """A worker process died (killed, out of memory): its work is lost, so the catch-up stops. What was
    committed stays (a new ledger's build is discarded whole); running it again goes on from there."""

    def __init__(self, detail: str) -> None:
        super().__init__("a worker process died while reading transcripts; run it again")
        self.detail = detail


def _build_in_workers(
    tmp: Path,
    tasks: list[Task],
    total: int,
    prices: PriceTable,
    zone: tzinfo,
    workers: int,
    progress: Progress | None,
    sizes: list[int],
) -> IngestSummary:
    """Parse and write in `workers` processes; the parent creates the schema meanwhile, then only counts.

    The writers take turns on an flock of `<build>.lock`, which the kernel releases when its holder dies;
    the schema is there once `<build>.ready` exists. A worker never waits for its turn: when another one is
    writing, it keeps what it parsed and writes it with its next batch, and the last task of each worker
    (`_flush_build_work`) writes what it still holds. A worker that dies breaks the pool at once: the others
    are killed and WorkerDied raised (the caller discards the build)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    fork = sys.platform.startswith("linux") and threading.active_count() == 1  # see _Parsed
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    lock_path = f"{tmp}{LOCK_SUFFIX}"
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    barrier = ctx.Barrier(workers)  # the last tasks: one per worker (see _flush_build_work)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=ctx,
        initializer=_init_build_worker,
        initargs=(prices, zone, str(tmp), os.getpid(), barrier),
    )
    summary = IngestSummary()
    conn: sqlite3.Connection | None = None
    try:
        with _sigterm_held():  # the pool forks here: not inside fork's handlers (its exception is lost)
            pending = {pool.submit(_build_work, batch) for batch in _batches(tasks, workers, sizes)}
        _create_build(tmp, prices)  # the workers are parsing already
        os.close(os.open(f"{tmp}{READY_SUFFIX}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        done, flushed = 0, False
        while pending or not flushed:
            if not pending:  # every batch is parsed: each worker writes what it still holds
                pending, flushed = {pool.submit(_flush_build_work) for _ in range(workers)}, True
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            if not finished and _a_worker_died(pool):  # e.g. while it sent a result: the pool waits on
                raise WorkerDied("a worker exited")  # the rest of that message for ever, so look here too
            for future in finished:
                part, files = future.result()
                for res in files:
                    _log_bad(res)
                    if res.error:
                        summary.errors.append(res.error)
                if part is None:  # parsed before the schema was there: written here
                    conn = conn or _connect_build(tmp)
                    with _flocked(lock_fd):
                        part = _write_batch(conn, [r for r in files if not r.error])
                summary.add(part)
                done += part.bytes_read
                if progress is not None:
                    progress(done, total)
        unwritten = len(tasks) - summary.files_read - len(summary.errors)
        if unwritten:  # never place a ledger that lacks a file a worker parsed
            raise WorkerDied(f"{unwritten} parsed files were not written")
    except BrokenProcessPool as exc:
        raise WorkerDied(str(exc)) from None
    except threading.BrokenBarrierError:  # a worker missed the last tasks' meeting in time
        raise WorkerDied("a worker did not reach its last task in time") from None
    finally:
        _end_pool(pool)
        os.close(lock_fd)
        if conn is not None:
            conn.close()
    return summary


def _end_pool(pool: Any) -> None:
    """Shut `pool` (a ProcessPoolExecutor) down at once: its workers are killed, whatever they were doing
    (nothing of theirs is wanted any more: never leave one writing or waiting)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)  # shutdown forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(10)
    with contextlib.suppress(Exception):  # the pool's thread may wait on a half-sent result: end it
        results._writer.close()  # type: ignore[union-attr]


def _a_worker_died(pool: Any) -> bool:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    return any(proc.exitcode is not None for proc in procs)


@contextmanager
def _sigterm_held() -> Iterator[None]:
    """Hold SIGTERM back for the block (it is delivered right after); the workers unblock it."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def _flocked(fd: int) -> Iterator[None]:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        _unlock(fd)


def _try_lock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def _batches(tasks: list[Task], workers: int, sizes: list[int]) -> list[list[Task]]:
    """Group `tasks` into batches of files to parse and write at once: each about a fourth of the bytes left
    per worker (at most BUILD_BATCH_BYTES, at least 1 MB), so that batches shrink towards the end and the
    workers finish together. `sizes`: the tasks' bytes to read, as `_plan` found them."""
    left = sum(sizes)
    batches: list[list[Task]] = []
    current: list[Task] = []
    size, target = 0, 0
    for task, n in zip(tasks, sizes, strict=True):
        if not current:
            target = max(1 << 20, min(BUILD_BATCH_BYTES, left // (workers * 4)))
        current.append(task)
        size += n
        left -= n
        if size >= target:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


def _init_build_worker(prices: PriceTable, zone: tzinfo, path: str, parent: int, barrier: Any) -> None:
    _init_worker(prices, zone, parent)
    # opened, never created: a build removed meanwhile (its process gone) makes this worker fail, not leak
    lock = os.open(f"{path}{LOCK_SUFFIX}", os.O_RDWR | os.O_CLOEXEC)
    _WORKER.update(path=path, lock=lock, barrier=barrier, held=[])


def _build_work(batch: list[Task]) -> tuple[IngestSummary | None, list[FileResult]]:
    """Parse a batch of files, then write it to the new ledger under the writers' lock, with what this
    worker held from earlier batches; return the counts of what was written, and the files' results without
    their rows (the parent logs their bad lines). When another worker holds the lock, keep the batch for
    later rather than wait (it is written with the next batch, or by `_flush_build_work`). When the parent
    has not created the ledger's schema yet, return (None, the results with their rows) instead: the parent
    writes them, and this worker goes on parsing rather than wait."""
    prices, zone = _WORKER["prices"], _WORKER["zone"]
    assert isinstance(prices, PriceTable) and isinstance(zone, tzinfo)
    results = [
        parse_file(path, state, prices, zone, file_id, shipped=False) for path, state, file_id in batch
    ]
    path, lock = str(_WORKER["path"]), _WORKER["lock"]
    assert isinstance(lock, int)
    ready = f"{path}{READY_SUFFIX}"
    if HAND_BACK_EARLY and not os.path.exists(ready):
        return None, results
    while not os.path.exists(ready):
        _check_parent()
        time.sleep(0.005)
    held = _WORKER["held"]
    assert isinstance(held, list)
    held.extend(r for r in results if not r.error)
    summary = IngestSummary()
    if sum(r.bytes_read for r in held) >= HELD_MAX_BYTES:  # holds enough: waits for its turn this time
        with _flocked(lock):
            summary = _write_held()
    elif _try_lock(lock):
        try:
            summary = _write_held()
        finally:
            _unlock(lock)
    return summary, [
        FileResult(r.path, r.state, r.restarted, [], [], r.bad, r.bad_samples, r.bytes_read, r.error)
        for r in results
    ]


def _flush_build_work() -> tuple[IngestSummary, list[FileResult]]:
    """Write what this worker still holds, then wait for every other worker to be here too: so that each
    worker runs exactly one of these last tasks (a worker waiting here takes no other task)."""
    lock, barrier = _WORKER["lock"], _WORKER["barrier"]
    assert isinstance(lock, int)
    with _flocked(lock):
        summary = _write_held()
    # no time limit where the kernel kills a worker with its parent (and a worker that dies breaks the pool:
    # the parent ends the others), so that a stopped process group (Ctrl-Z) does not break it when resumed
    barrier.wait(None if sys.platform.startswith("linux") else FLUSH_WAIT_S)  # type: ignore[attr-defined]
    return summary, []


FLUSH_WAIT_S = 600.0  # elsewhere: a worker that never comes is dead (the parent ended the pool long before)
HELD_MAX_BYTES = 2 * BUILD_BATCH_BYTES  # of transcript a worker keeps unwritten before it waits for the lock


def _write_held() -> IngestSummary:
    """Write (under the writers' lock) the files this worker parsed and has not written yet."""
    held = _WORKER["held"]
    assert isinstance(held, list)
    if not held:
        return IngestSummary()
    _check_parent()
    conn = _WORKER.get("conn")
    if not isinstance(conn, sqlite3.Connection):
        conn = _WORKER["conn"] = _connect_build(str(_WORKER["path"]))
    summary = _write_batch(conn, held)
    held.clear()
    return summary


def _write_batch(conn: sqlite3.Connection, results: list[FileResult]) -> IngestSummary:
    """Write `results` (their rows carry their file ids) to a ledger being built, in one transaction: a file
    none of whose message ids (and keys of rows without one) is stored yet or shared with another file of
    the batch is inserted as it is; the others go through the full merge with the stored rows."""
    summary = IngestSummary()
    files: list[tuple[object, ...]] = []
    direct: list[ledger.Row] = []
    candidates: list[tuple[ledger.Row, str]] = []
    limits: list[tuple[object, ...]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        ids = [res.message_ids.union(res.bare_keys) if res.bare_keys else res.message_ids for res in results]
        seen = _stored_ids(
            conn, set().union(*(r.message_ids for r in results)), [k for r in results for k in r.bare_keys]
        )
        for res, file_ids in zip(results, ids, strict=True):
            project, session = path_identity(res.path)
            files.append((res.file_id, res.path, *res.state, session, project, res.bad))
            if seen.isdisjoint(file_ids):
                direct.extend(res.rows)
            else:
                candidates.extend((row, res.path) for row in res.rows)
            seen.update(file_ids)
            limits.extend(res.limits)
            summary.files_read += 1
            summary.skipped_lines += res.bad
            summary.bytes_read += res.bytes_read
        conn.executemany(_FILE_INSERT, files)
        summary.new_events = ledger.insert_new(conn, direct)
        summary.new_events += ledger.write_events(conn, candidates, table_empty=False)
        before = conn.total_changes
        conn.executemany(ledger.INSERT_LIMIT, limits)
        summary.new_limits = conn.total_changes - before
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # no journal: the build is discarded whole anyway
            conn.execute("ROLLBACK")
        raise
    return summary


def _stored_ids(conn: sqlite3.Connection, message_ids: set[str], bare_keys: list[str]) -> set[object]:
    """Return those of `message_ids` and `bare_keys` (dedup keys of rows without a message id) that the ledger
    holds."""
    found: set[object] = set()
    for column, values in (("message_id", sorted(message_ids)), ("dedup_key", sorted(bare_keys))):
        for i in range(0, len(values), 500):
            part = values[i : i + 500]
            sql = f"SELECT {column} FROM usage_events WHERE {column} IN ({', '.join('?' * len(part))})"
            found.update(r[0] for r in conn.execute(sql, part))
    return found


def _place(tmp: Path, db: Path) -> bool:
    """Move the finished ledger `tmp` to `db` unless a ledger is there already; return whether it was."""
    try:
        os.link(tmp, db)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        if db.exists():
            return False
        os.replace(tmp, db)
    return True


_DB_SUFFIXES = ("", "-journal", "-wal", "-shm", ".migrate-lock")  # the database's own files


def _remove_build(tmp: Path, suffixes: tuple[str, ...] = (*_DB_SUFFIXES, LOCK_SUFFIX, READY_SUFFIX)) -> None:
    for suffix in suffixes:
        with contextlib.suppress(OSError):  # gone already, or a read-only folder (then nothing was made)
            os.unlink(f"{tmp}{suffix}")


def _remove_stray_builds(db: Path) -> None:
    """Remove the unfinished builds of processes that are gone (killed in the middle of one)."""
    prefix = db.name + BUILD_SUFFIX
    try:
        names = os.listdir(db.parent)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix) :].partition("-")[0]
        if name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            _remove_build(db.parent / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_current(
    paths: BatonPaths,
    settings: Settings | None = None,
    *,
    progress: Progress | None = None,
    defaults: bool = False,
) -> IngestSummary | None:
    """Bring the ledger up to date before a command reads it; return what was ingested, or None when
    nothing had to be (stat-only: no transcript new or changed since the ledger read it, prices unchanged;
    so also when the running daemon has already ingested everything).

    `settings` default to `load_settings(paths)`, or with `defaults` to the defaults as they are (there is
    nothing to validate: see `catch_up`). Raise BatonError on an invalid configuration or misconfigured
    transcript roots. Catching up while the daemon runs is safe: the database dedups.
    """
    from daemon.prices_file import prices_digest
    from daemon.usage_reports import needs_ingest

    if settings is None and not defaults:
        from daemon.config import load_settings

        settings = load_settings(paths)
    roots = find_roots(settings, os.environ)
    pricing_file = None if settings is None else settings.pricing.file
    if not needs_ingest(paths.ledger_db, roots, prices_digest(pricing_file)):
        return None
    try:
        paths.ensure()
    except OSError as exc:
        raise cannot_write(Path(exc.filename or paths.ledger_db.parent), exc) from exc
    return catch_up(paths, settings, progress=progress)


def _plan(listing: list[str], states: dict[str, FileState]) -> tuple[list[Task], list[int]]:
    """Return the files to read (with their stored state) and each one's bytes to read, in the same order."""
    tasks: list[Task] = []
    sizes: list[int] = []
    for path in listing:
        try:
            st = os.stat(path)
        except OSError:
            continue
        state = states.get(path, FileState())
        if not unchanged(st, state):
            tasks.append((path, state, None))
            sizes.append(max(st.st_size - state.offset, 0) if st.st_ino == state.inode else st.st_size)
    return tasks, sizes


def _write_all(
    writer: LedgerWriter, parsed: Iterator[FileResult], total: int, progress: Progress | None
) -> IngestSummary:
    fresh = Freshness()
    return _write_batched(parsed, lambda batch: writer.commit(batch, fresh), total, progress)


def _write_batched(
    parsed: Iterator[FileResult],
    write: Callable[[list[FileResult]], IngestSummary],
    total: int,
    progress: Progress | None,
) -> IngestSummary:
    """Log each file's bad lines, collect its errors, and `write` the parsed files in batches of about
    BATCH_ROWS rows (one transaction each: bounded memory whatever the corpus size)."""
    summary = IngestSummary()
    done, pending = 0, 0
    batch: list[FileResult] = []
    for res in parsed:
        _log_bad(res)
        if res.error:
            summary.errors.append(res.error)
            continue
        batch.append(res)
        pending += len(res.rows) + len(res.limits)
        done += res.bytes_read
        if pending >= BATCH_ROWS:
            summary.add(write(batch))
            batch, pending = [], 0
        if progress is not None:
            progress(done, total)
    if batch:
        summary.add(write(batch))
    return summary


def _catch_up(
    writer: LedgerWriter,
    listing: list[str],
    prices: PriceTable,
    zone: tzinfo,
    progress: Progress | None,
    workers: int | None,
) -> IngestSummary:
    tasks, sizes = _plan(listing, writer.states())
    total = sum(sizes)
    with gc_paused(), _Parsed(tasks, prices, zone, total, workers) as parsed:
        return _write_all(writer, parsed, total, progress)


def worker_count() -> int:
    """Return how many parser processes to use: one per CPU this process may run on, at most 4 (more
    processes only add forking and shipping results back)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


class _Parsed:
    """The parsed files, in the tasks' order: from worker processes (started on entering) when there is
    much to read, else parsed in this process as they are consumed."""

    def __init__(
        self,
        tasks: list[Task],
        prices: PriceTable,
        zone: tzinfo,
        total: int,
        workers: int | None,
    ) -> None:
        self.tasks, self.prices, self.zone = tasks, prices, zone
        n = workers if workers is not None else worker_count()
        self.workers = n if n > 1 and len(tasks) > 1 and total >= PARALLEL_MIN_BYTES else 0
        self.pool: Any = None

    def __enter__(self) -> Iterator[FileResult]:
        if not self.workers:
            return (parse_file(*task[:2], self.prices, self.zone, task[2]) for task in self.tasks)
        from concurrent.futures import ProcessPoolExecutor

        # fork is cheap, but forking a process that runs other threads (the daemon's watcher, scheduler)
        # can deadlock the child on a lock some thread held: then pay for spawn instead.
        fork = sys.platform.startswith("linux") and threading.active_count() == 1
        ctx = multiprocessing.get_context("fork" if fork else "spawn")
        args = (self.prices, self.zone, os.getpid())
        self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=args)
        n = max(1, min(CHUNK_FILES, len(self.tasks) // (self.workers * 8)))
        with _sigterm_held():  # the pool forks here (see _build_in_workers)
            futures = [
                self.pool.submit(_work_chunk, self.tasks[i : i + n]) for i in range(0, len(self.tasks), n)
            ]
        return self._results(futures)

    def _results(self, futures: list[Any]) -> Iterator[FileResult]:
        """The chunks' results in order; WorkerDied as soon as a worker is gone (its chunk never comes)."""
        from concurrent.futures.process import BrokenProcessPool

        for i, future in enumerate(futures):
            while True:
                try:
                    chunk: list[FileResult] = future.result(timeout=0.25)
                    break
                except TimeoutError:
                    if _a_worker_died(self.pool):
                        raise WorkerDied("a worker exited") from None
                except BrokenProcessPool as exc:
                    raise WorkerDied(str(exc)) from None
            futures[i] = None  # its rows are freed once written
            yield from chunk

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            _end_pool(self.pool)


# ---- the daemon's path -------------------------------------------------------------------------------------


class Ingestor:
    """Keeps the ledger open for the daemon: `ingest_file` reads one changed transcript's new lines."""

    def __init__(self, paths: BatonPaths, settings: Settings) -> None:
        self.paths = paths
        self.settings = settings
        self.prices = load_prices(settings.pricing.file)
        self.zone = local_zone()
        self.writer = open_writer(paths.ledger_db)
        self.writer.refresh_costs(self.prices)
        self.lock = threading.Lock()  # one connection, used from whichever thread the daemon calls in

    def ingest_file(self, path: str | Path) -> IngestSummary:
        """Ingest the new complete lines of one transcript; return what was new (errors in `.errors`)."""
        with self.lock:
            return self._ingest_file(path)

    def _ingest_file(self, path: str | Path) -> IngestSummary:
        started = time.perf_counter()
        p = str(path)
        res = parse_file(p, self.writer.state(p), self.prices, self.zone)
        _log_bad(res)
        summary = IngestSummary(files=1)
        if res.error:
            summary.errors.append(res.error)
        elif res.bytes_read or res.restarted or res.state != self.writer.state(p):
            summary.add(self.writer.commit([res]))
        summary.seconds = time.perf_counter() - started
        return summary

    def catch_up(self, progress: Progress | None = None) -> IngestSummary:
        """Catch up on every transcript with this ingestor's open ledger. Raise BatonError on bad roots."""
        with self.lock:
            return self._catch_up_locked(progress)

    def _catch_up_locked(self, progress: Progress | None) -> IngestSummary:
        started = time.perf_counter()
        roots = find_roots(self.settings, os.environ)
        _remove_stray_builds(self.paths.ledger_db)
        listing, dirs = scan(roots)
        summary = _catch_up(self.writer, listing, self.prices, self.zone, progress, None)
        self.writer.mark_deleted(set(listing))
        self.writer.save_tree(roots, dirs, complete=not summary.errors)
        summary.files = len(listing)
        summary.seconds = time.perf_counter() - started
        return summary

    def close(self) -> None:
        self.writer.conn.close()
