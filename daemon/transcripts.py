"""Where Claude Code's transcripts are, and reading the complete lines appended since we last looked.

Roots are found exactly as ccusage finds them (claude-data-formats.md §1). Each file's reading state is
(device, inode, size, offset, line count, head digest): only whole lines are consumed, a partial last line
waits for its newline, and a truncated or replaced file (new inode, size below the offset, or different first
bytes) is read again from the start; the ledger's dedup makes re-reading harmless.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from daemon import claude_paths
from daemon.errors import BatonError

if TYPE_CHECKING:
    from daemon.config import Settings

HEAD_BYTES = 512


def find_roots(settings: Settings | None, env: Mapping[str, str]) -> list[Path]:
    """Return the Claude config dirs to read (each has a `projects/` dir).

    `settings.transcripts.roots` wins when non-empty; else CLAUDE_CONFIG_DIR (comma-separated; raise
    BatonError when it is set but names no valid dir); else `${XDG_CONFIG_HOME:-~/.config}/claude` and
    `~/.claude`.
    """
    configured = list(settings.transcripts.roots) if settings is not None else []
    return roots_from(configured, env)


def roots_from(configured: list[Path], env: Mapping[str, str]) -> list[Path]:
    """Return the roots for explicit `configured` dirs (if any) or the environment, as `find_roots`."""
    if configured:
        found = [r for r in (_as_root(str(p), env) for p in configured) if r is not None]
        if not found:
            raise BatonError(
                "none of transcripts.roots has a projects/ directory: " + ", ".join(map(str, configured)),
                hint="fix transcripts.roots in config.toml, or leave it empty to use Claude Code's defaults",
            )
        return _unique(found)
    raw = env.get("CLAUDE_CONFIG_DIR", "")
    if raw.strip():  # set: its entries only (ccusage: an error when none is valid, never the defaults)
        found = [d for d in claude_paths.configured_dirs(env) if (d / "projects").is_dir()]
        if not found:
            raise BatonError(
                f"CLAUDE_CONFIG_DIR={raw!r} names no directory with a projects/ folder",
                hint="point CLAUDE_CONFIG_DIR at Claude Code's config dir (the one holding projects/)",
            )
        return _unique(found)
    return _unique([d for d in claude_paths.candidate_dirs(env) if (d / "projects").is_dir()])


def _as_root(entry: str, env: Mapping[str, str]) -> Path | None:
    """Return a configured root (`~` expanded, a trailing `/projects` dropped, as `claude_paths` does for
    CLAUDE_CONFIG_DIR) if it has a projects/ dir, else None."""
    if entry == "~" or entry.startswith("~/"):
        entry = (env.get("HOME") or os.path.expanduser("~")) + entry[1:]
    path = Path(entry)
    path = path.parent if path.name == "projects" else path
    return path if (path / "projects").is_dir() else None


def _unique(paths: list[Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for p in paths:
        seen.setdefault(os.path.realpath(p), p)
    return list(seen.values())


def list_files(roots: list[Path]) -> list[str]:
    """Return every `*.jsonl` under each root's `projects/` (sub-agent files included), sorted by path."""
    return scan(roots)[0]


def scan(roots: list[Path]) -> tuple[list[str], dict[str, int]]:
    """Return what `list_files` returns, and the mtime (ns) of every directory walked, taken before it was
    read: while no directory's mtime changes, no transcript can have appeared (see `tree_unchanged`)."""
    found: list[str] = []
    dirs: dict[str, int] = {}
    for root in roots:
        _walk(str(root / "projects"), found, dirs)
    return sorted(set(found)), dirs


def _walk(top: str, found: list[str], dirs: dict[str, int]) -> None:
    try:
        dirs[top] = os.stat(top).st_mtime_ns
        entries = list(os.scandir(top))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, found, dirs)
            elif entry.name.endswith(".jsonl") and entry.is_file():
                found.append(entry.path)
        except OSError:
            continue


TREE_UPSERT = (
    "INSERT INTO ledger_meta (key, value) VALUES ('tree', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
TREE_FORGET = "DELETE FROM ledger_meta WHERE key = 'tree'"  # the next report lists the tree again


def tree_json(roots: list[Path], dirs: Mapping[str, int]) -> str:
    """Return the stored form of a listing's directories (ledger_meta 'tree'): the roots it walked and each
    directory's mtime."""
    return json.dumps({"roots": [str(r) for r in roots], "dirs": dirs}, separators=(",", ":"))


def tree_unchanged(dirs: Mapping[str, int]) -> bool:
    """True when every directory still has the mtime `scan` saw (no entry added, removed or renamed)."""
    for path, mtime_ns in dirs.items():
        try:
            if os.stat(path).st_mtime_ns != mtime_ns:
                return False
        except OSError:
            return False
    return True


def path_identity(path: str, roots: list[Path] | None = None) -> tuple[str, str]:
    """Return (project slug, session id) of a transcript path, as ccusage derives them.

    The project is the first segment under `projects/`; the session is the next segment without `.jsonl`, so
    sub-agent files (`<slug>/<session>/subagents/...`) roll up to their parent session.
    """
    parts = [p for p in path.split(os.sep) if p and p != "."]  # Path(path).parts without pathlib's cost
    try:
        i = len(parts) - 1 - parts[::-1].index("projects")
    except ValueError:
        return ("unknown", Path(path).stem)
    rest = parts[i + 1 :]
    if len(rest) < 2:
        return ("unknown", Path(path).stem)
    session = rest[1][: -len(".jsonl")] if rest[1].endswith(".jsonl") else rest[1]
    return (rest[0], session)


class FileState(NamedTuple):
    """Where reading of one file stopped: after `lines` complete lines, at byte `offset`."""

    device: int = 0
    inode: int = 0
    size: int = 0
    offset: int = 0
    lines: int = 0
    mtime_ns: int = 0
    head: str = ""  # digest of the first min(offset, HEAD_BYTES) bytes
    tail: str = ""  # digest of the min(offset, HEAD_BYTES) bytes before the offset ("" in older ledgers)


class Chunk(NamedTuple):
    """The complete lines appended to one file: `data` ends with a newline (or is empty); `first_line` is the
    1-based number of its first line; `state` is the reading state after it."""

    data: bytes
    first_line: int
    state: FileState
    restarted: bool  # the file was truncated or replaced, and is read again from its start
    oversized: tuple[
        int, ...
    ] = ()  # numbers of lines longer than MAX_LINE_BYTES (each an empty line in data)

    def marked_lines(self, marker: bytes) -> tuple[list[tuple[int, bytes]], int]:
        """Return (line number, line) for each line holding `marker`, and how many lines `data` holds, in one
        pass (`read_new_lines(..., count=False)` leaves the count to this). The lines in between are numbered
        by stepping from newline to newline with `find` (memchr, several times faster than `bytes.count`),
        without splitting them: a transcript has a few hundred lines per megabyte. The marker is searched
        with `find_in` (glibc's memmem where there is one)."""
        data, pos, line_no = self.data, 0, self.first_line
        find = data.find
        found = []
        search = find_in(data)
        i = search(marker, 0)
        while i != -1:
            nl = find(b"\n", pos, i)
            while nl != -1:
                pos, line_no = nl + 1, line_no + 1
                nl = find(b"\n", pos, i)
            end = find(b"\n", i)
            found.append((line_no, data[pos:end]))
            pos, line_no = end + 1, line_no + 1
            i = search(marker, pos)
        return found, line_no - self.first_line + count_lines(data, pos)


def find_in(data: bytes) -> Callable[[bytes, int], int]:
    """Return `search(needle, start)`: `data.find(needle, start)`, computed by glibc's memmem when this
    process has it. That one compares many bytes per step, where CPython's `find` (for a needle like
    `"usage":{`, whose last byte is common in JSON) goes about one at a time: a cold ingest's prefilter
    spends a third less time. Elsewhere (macOS, musl: memmem there is not faster) it is `data.find`."""
    memmem = _memmem()
    if memmem is None or type(data) is not bytes:
        return data.find
    import ctypes

    size = len(data)
    base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value  # data's own buffer: no copy
    assert base is not None

    def search(needle: bytes, start: int, _keep: bytes = data) -> int:  # _keep: base stays valid
        if start >= size:
            return -1
        hit = memmem(base + start, size - start, needle, len(needle))
        return -1 if hit is None else hit - base

    return search


_MEMMEM: list[Callable[..., int | None] | None] = []  # [glibc's memmem, or None], once looked up


def _memmem() -> Callable[..., int | None] | None:
    if not _MEMMEM:
        _MEMMEM.append(_load_memmem())
    return _MEMMEM[0]


def _load_memmem() -> Callable[..., int | None] | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError, AttributeError):  # not glibc
        return None
    try:
        import ctypes

        func = ctypes.CDLL(None).memmem
    except (OSError, AttributeError, ImportError):
        return None
    func.restype = ctypes.c_void_p
    func.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return func


def count_lines(data: bytes, start: int = 0) -> int:
    """Return how many newlines `data` holds from `start` (stepping with memchr: about 4x faster than
    `bytes.count`)."""
    n, find = 0, data.find
    i = find(b"\n", start)
    while i != -1:
        n += 1
        i = find(b"\n", i + 1)
    return n


def unchanged(st: os.stat_result, state: FileState) -> bool:
    """True when a stat shows nothing new since `state` (same file, same size and mtime)."""
    return (
        st.st_ino == state.inode
        and st.st_dev == state.device
        and st.st_size == state.size
        and st.st_mtime_ns == state.mtime_ns
    )


def _digest(data: bytes) -> str:
    import hashlib  # here: a warm report never needs it

    return hashlib.blake2b(data, digest_size=12).hexdigest()


CHUNK_BYTES = 16 << 20  # one read returns at most this much (more only for a single longer line)
MAX_LINE_BYTES = 64 << 20  # a longer line is skipped (counted as bad), never held in memory
# Where the search for the newline that ends a long partial line got to, keyed by (path, device, inode,
# offset of the line): a line growing by a few bytes per event is not scanned again from its start.
_SCANNED: dict[tuple[str, int, int, int], int] = {}


def read_new_lines(path: str, state: FileState, max_bytes: int | None = None, *, count: bool = True) -> Chunk:
    """Return the next complete lines of `path` after `state`: at most `max_bytes` (default CHUNK_BYTES) of
    them (unless one line is longer), cut after the last newline. Call again with the returned state while its
    offset is below its size and data came back. Raise OSError if the file cannot be read. With `count`
    false, the returned state's `lines` leaves out the chunk's own (the caller adds `marked_lines`' count).

    The file counts as restarted (read again from 0) when it is another inode, shorter than the offset, has a
    different head, or the bytes before the offset changed (rewritten in place, even in the same inode with
    the same first bytes): the byte before the offset is no longer a newline, or the HEAD_BYTES before it
    differ.
    """
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        restarted = False
        start, first = state.offset, state.lines + 1
        if state.offset and (
            st.st_ino != state.inode
            or st.st_dev != state.device
            or st.st_size < state.offset
            or not _same_head(f, state)
            or not _same_tail(f.fileno(), state)
        ):
            start, first, restarted = 0, 1, True
        size = st.st_size
        key = (path, st.st_dev, st.st_ino, start)
        data, end, oversized = _complete_lines(f, key, start, size, max_bytes or CHUNK_BYTES)
        same = end == state.offset and not restarted and state.tail
        tail = state.tail if same else _tail_of(f.fileno(), end, data)
    offset = end
    oversized_lines = (first,) if oversized else ()
    head = (
        state.head if (not restarted and state.offset >= HEAD_BYTES) else _head_of(path, offset, data, start)
    )
    lines = first - 1 + (count_lines(data) if count else 0)
    new = FileState(st.st_dev, st.st_ino, size, offset, lines, st.st_mtime_ns, head, tail)
    return Chunk(data, first, new, restarted, oversized_lines)


def _complete_lines(
    f: BinaryIO, key: tuple[str, int, int, int], start: int, size: int, max_bytes: int
) -> tuple[bytes, int, bool]:
    """Return (complete lines from `start`, the offset after them, whether that is one oversized line).

    Reads at most `max_bytes`, cut after the last newline. When the first line alone is longer, its end is
    searched for in `max_bytes` blocks (resuming where an earlier search stopped): a line up to
    MAX_LINE_BYTES is returned whole, a longer one as a single b"\n" standing for it.
    """
    if size <= start:
        return b"", start, False
    f.seek(start)
    data = f.read(min(size - start, max_bytes))
    cut = data.rfind(b"\n") + 1
    if cut or len(data) < max_bytes:
        return data[:cut], start + cut, False  # a short partial last line waits for its newline
    pos = max(start + len(data), _SCANNED.get(key, 0))
    del data
    newline = -1
    while pos < size:
        f.seek(pos)
        block = f.read(min(max_bytes, size - pos))
        if not block:
            break
        i = block.find(b"\n")
        if i != -1:
            newline = pos + i
            break
        pos += len(block)
    if newline == -1:
        if len(_SCANNED) > 1000:
            _SCANNED.clear()
        _SCANNED[key] = pos  # still no newline: the next call goes on from here
        return b"", start, False
    _SCANNED.pop(key, None)
    length = newline + 1 - start
    if length > MAX_LINE_BYTES:
        return b"\n", newline + 1, True
    f.seek(start)
    return f.read(length), newline + 1, False


def _same_head(f: object, state: FileState) -> bool:
    import io

    assert isinstance(f, io.BufferedReader)
    n = min(state.offset, HEAD_BYTES)
    f.seek(0)
    return _digest(f.read(n)) == state.head


def _tail_before(fd: int, offset: int) -> bytes:
    n = min(offset, HEAD_BYTES)
    return os.pread(fd, n, offset - n)


def _same_tail(fd: int, state: FileState) -> bool:
    """Return True if the bytes before `state.offset` still end a line and, when known, are the same bytes."""
    before = _tail_before(fd, state.offset)
    if not before.endswith(b"\n"):
        return False
    return not state.tail or _digest(before) == state.tail


def _tail_of(fd: int, offset: int, data: bytes) -> str:
    """Digest of the min(offset, HEAD_BYTES) bytes before `offset`, taken from `data` (the chunk just read,
    which ends there) when it holds them all, else read again (an oversized line stands as one b"\n")."""
    n = min(offset, HEAD_BYTES)
    if not n:
        return ""
    return _digest(data[-n:] if len(data) >= n else _tail_before(fd, offset))


def _head_of(path: str, offset: int, data: bytes, start: int) -> str:
    """Digest of the file's first min(offset, HEAD_BYTES) bytes: from `data` when it was read from the start
    and holds them all (an oversized first line stands there as one b"\n"), else read again."""
    n = min(offset, HEAD_BYTES)
    if start == 0 and len(data) >= n:
        return _digest(data[:n])
    with open(path, "rb") as f:
        return _digest(f.read(n))
