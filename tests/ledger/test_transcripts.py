"""Transcript roots are found exactly as Claude Code and ccusage find them; files and identities follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import BatonError
from daemon.transcripts import list_files, path_identity, roots_from


def claude(root: Path) -> Path:
    (root / "projects").mkdir(parents=True)
    return root


def test_claude_config_dir_list_is_trimmed_expanded_and_accepts_projects(tmp_path: Path) -> None:
    a = claude(tmp_path / "a")
    claude(tmp_path / "home" / "b")
    env = {"CLAUDE_CONFIG_DIR": f" {a}/projects , ~/b,{tmp_path}/missing", "HOME": str(tmp_path / "home")}
    assert roots_from([], env) == [a, tmp_path / "home" / "b"]


def test_claude_config_dir_set_but_invalid_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    claude(tmp_path / "home" / ".claude")
    env = {"CLAUDE_CONFIG_DIR": f"{tmp_path}/nothing", "HOME": str(tmp_path / "home")}
    with pytest.raises(BatonError, match="names no directory with a projects/ folder"):
        roots_from([], env)


def test_defaults_are_xdg_claude_and_dot_claude_when_present(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dot = claude(home / ".claude")
    env = {"HOME": str(home)}
    assert roots_from([], env) == [dot]
    xdg = claude(tmp_path / "xdg" / "claude")
    assert roots_from([], {**env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == [xdg, dot]
    assert roots_from([], {"HOME": str(tmp_path / "empty")}) == []


def test_configured_roots_win(tmp_path: Path) -> None:
    mine = claude(tmp_path / "mine")
    claude(tmp_path / "env")
    assert roots_from([mine], {"CLAUDE_CONFIG_DIR": str(tmp_path / "env")}) == [mine]
    with pytest.raises(BatonError, match=r"transcripts\.roots"):
        roots_from([tmp_path / "nope"], {})


def test_roots_are_claude_paths_candidates_that_hold_projects(tmp_path: Path) -> None:
    from daemon import claude_paths

    home = tmp_path / "home"
    claude(home / ".claude")
    claude(home / "~odd")
    claude(tmp_path / "homeodd")  # `~odd` is not "$HOME" + "odd": only `~` and `~/` mean home, everywhere
    claude(tmp_path / "xdg" / "claude")
    envs = [
        {"HOME": str(home)},
        {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
        {"HOME": str(home), "CLAUDE_CONFIG_DIR": f"~/.claude/projects, {tmp_path}/xdg/claude,{home}/~odd"},
        {"HOME": str(home), "CLAUDE_CONFIG_DIR": "~odd, ~/.claude"},
    ]
    for env in envs:
        want = [d for d in claude_paths.candidate_dirs(env) if (d / "projects").is_dir()]
        assert roots_from([], env) == want, env
        assert want
    with pytest.raises(BatonError):
        roots_from([], {"HOME": str(home), "CLAUDE_CONFIG_DIR": " , "})  # set but empty: ccusage errs


def test_every_jsonl_under_projects_is_listed_sorted(tmp_path: Path) -> None:
    root = claude(tmp_path / "c")
    names = [
        "projects/-home-me-app/s1.jsonl",
        "projects/-home-me-app/s1/subagents/agent-a1.jsonl",
        "projects/-home-me-app/s1/subagents/workflow/agent-b2.jsonl",
        "projects/-home-me-app/agent-old.jsonl",
        "projects/-home-me-app/s1/tool-results/out.txt",
    ]
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        (root / n).write_text("")
    listed = [str(Path(p).relative_to(root)) for p in list_files([root])]
    assert listed == sorted(n for n in names if n.endswith(".jsonl"))


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/c/projects/-home-me-app/0b7e.jsonl", ("-home-me-app", "0b7e")),
        ("/c/projects/-home-me-app/0b7e/subagents/agent-a1.jsonl", ("-home-me-app", "0b7e")),
        ("/c/projects/-home-me-app/0b7e/subagents/w/agent-b.jsonl", ("-home-me-app", "0b7e")),
        ("/c/projects/project-alpha/session-alpha/chat.jsonl", ("project-alpha", "session-alpha")),
    ],
)
def test_subagent_files_roll_up_to_their_parent_session(path: str, identity: tuple[str, str]) -> None:
    assert path_identity(path) == identity


def test_marked_lines_numbers_and_counts_the_lines_in_one_pass() -> None:
    from daemon.transcripts import Chunk, FileState, count_lines

    m = b'"usage":{'
    for data in (
        b"",
        b"a\n",
        b'{"usage":{}}\n',
        b'x\n{"usage":{}}\ny\n\n{"usage":{1}}{"usage":{2}}\nz\n',
        b'{"usage":{}}\n{"usage":{}}\n',
        b"\n\n\n" + m + b"\n",
    ):
        chunk = Chunk(data, 7, FileState(), False)
        found, lines = chunk.marked_lines(m)
        assert found == [(7 + i, line) for i, line in enumerate(data.split(b"\n")[:-1]) if m in line]
        assert lines == count_lines(data)


def test_find_in_answers_as_bytes_find_does() -> None:
    """The marker search (glibc's memmem where there is one) finds what `bytes.find` finds, from any start."""
    import os
    import sys

    from daemon import transcripts

    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert transcripts._memmem() is not None  # the fast path is the one tested here
    m = b'"usage":{'
    binary = bytes(range(256)) * 3 + m + b"\0" + m
    for data in (b"", m, b"x" + m, m + b"\n" + m, b'"usage":' * 50 + m, binary):
        search = transcripts.find_in(data)
        for needle in (m, b"\n", b"\0", b"zz"):
            for start in (0, 1, len(data) - len(m), len(data) - 1, len(data), len(data) + 5):
                at = max(start, 0)
                assert search(needle, at) == data.find(needle, at), (data, needle, start)


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/r//projects/./slug/s.jsonl", ("slug", "s")),  # as pathlib's parts: empty and "." segments dropped
        ("/p/projects/a/projects/b/c.jsonl", ("b", "c")),  # the last projects/ segment counts
        ("/r/projects/slug", ("unknown", "slug")),
        ("/r/x.jsonl", ("unknown", "x")),
    ],
)
def test_path_identity_reads_segments_as_pathlib_does(path: str, identity: tuple[str, str]) -> None:
    assert path_identity(path) == identity


@pytest.mark.parametrize("max_bytes", [300, 5000, None])
def test_the_tail_digest_is_the_bytes_before_the_offset_whether_read_or_taken_from_the_chunk(
    tmp_path: Path, max_bytes: int | None
) -> None:
    """The digest of the bytes before the offset comes from the chunk just read when it holds them all (no
    second read), else from the file: either way it is the digest of those bytes."""
    from daemon import transcripts
    from daemon.transcripts import FileState, read_new_lines

    f = tmp_path / "t.jsonl"
    content = b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * (i * 37 % 400)) for i in range(60))
    f.write_bytes(content)
    state, seen = FileState(), 0
    while state.offset < len(content):
        state = read_new_lines(str(f), state, max_bytes).state
        seen += 1
        n = min(state.offset, transcripts.HEAD_BYTES)
        assert state.tail == transcripts._digest(content[state.offset - n : state.offset])
    assert seen > (1 if max_bytes else 0)


def test_a_file_whose_first_line_is_oversized_is_not_read_again_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oversized first line stands in the chunk as one newline: the head digest must still be the file's
    first bytes, or every later read would take the file for rewritten and read it all again."""
    from daemon import transcripts
    from daemon.transcripts import FileState, read_new_lines

    monkeypatch.setattr(transcripts, "MAX_LINE_BYTES", 20_000)
    f = tmp_path / "t.jsonl"
    f.write_bytes(b'{"big":"' + b"x" * 50_000 + b'"}\n' + b'{"n":1}\n')
    first = read_new_lines(str(f), FileState(), 30_000)
    assert first.oversized == (1,) and first.data == b"\n"
    state = first.state
    for _ in range(5):  # the old digest made each read start over: this never got to the end
        if state.offset == f.stat().st_size:
            break
        state = read_new_lines(str(f), state, 30_000).state
    assert state.offset == f.stat().st_size and state.lines == 2
    with f.open("ab") as out:
        out.write(b'{"n":2}\n')
    later = read_new_lines(str(f), state, 30_000)
    assert not later.restarted and later.data == b'{"n":2}\n' and later.first_line == 3
