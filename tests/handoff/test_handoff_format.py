"""The handoff file: header and sections render and parse back to the same record, edits keep the body."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from daemon import handoff as ho
from daemon.handoff import CurrentState, Handoff, HandoffError, Objective
from daemon.paths import BatonPaths

NOW = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)


def full() -> Handoff:
    return Handoff(
        id="20261123-173000-abcd",
        project="/home/ann/code/auth service",
        created=NOW,
        title="Auth phase 2",
        start="time",
        scheduled_for=datetime(2026, 11, 23, 23, 5, tzinfo=timezone(timedelta(hours=1))),
        branch="feature/auth",
        from_session="abc123-def456",
        agent="implementation-agent",
        estimate_tokens=45_000,
        accomplished=("Built the JWT endpoints `POST /login`", "Added 15 tests\nall passing", "ünïcødé ✅"),
        state=CurrentState("a1b2c3d Add JWT endpoints", "15/15 passing", ("src/auth.ts", "tests/a b.ts"),
                           "# a line that looks like a heading\n\\ and a backslash\n- and a dash"),
        objectives=(Objective("Integrate auth with user endpoints", 15_000), Objective("Refresh tokens"),
                    Objective("Errors (est. soon)", 12_000)),
        decisions=("JWT over sessions: stateless API", "Access tokens live 15 minutes"),
        blockers='None; but "quotes", $(rm -rf ~) and `backticks` must survive',
        files=("src/auth/auth.service.ts", "tests/auth.spec.ts"),
        commands=("git status", "npm test -- auth", "echo ```fenced```"),
        instructions="Be efficient.\n\n## Not a section\nKeep going.",
    )  # fmt: skip


@pytest.mark.parametrize(
    "handoff",
    [
        full(),
        Handoff(id="20261123-173000-x1", project="/p", created=NOW, launched_at=NOW),
        Handoff(id="20261123-173000-y", project="/p", created=NOW, title=" "),
    ],
)
def test_parse_of_render_gives_back_the_same_handoff(handoff: Handoff) -> None:
    template = (Path(__file__).parents[2] / "handoffs" / "handoff.md").read_text()
    text = ho.render(handoff, template)
    assert ho.parse(text) == handoff
    assert ho.render(ho.parse(text), template) == text


def test_rendered_handoff_has_the_sections_of_the_issue() -> None:
    template = (Path(__file__).parents[2] / "handoffs" / "handoff.md").read_text()
    text = ho.render(full(), template)
    for heading in (
        "What was accomplished",
        "Current state",
        "Next session objectives",
        "Key decisions and context",
        "Blockers and notes",
        "Files to read first",
        "Commands to run on start",
        "Agent instructions",
    ):
        assert f"\n## {heading}\n" in text
    assert "1. Integrate auth with user endpoints (est. 15,000 tokens)" in text
    assert "**Total estimate**: 45,000 tokens" in text
    assert "status: pending" in text and "scheduled-for: 2026-11-23T23:05:00+01:00" in text


def test_malformed_headers_name_the_file_and_line() -> None:
    with pytest.raises(HandoffError, match=r"h\.md:1: a handoff starts"):
        ho.parse("# no header\n", "h.md")
    with pytest.raises(HandoffError, match=r"h\.md:3: expected 'key: value'"):
        ho.parse("---\nid: x\nnonsense\n---\n", "h.md")
    with pytest.raises(HandoffError, match="'status' is 'maybe'"):
        ho.parse(
            "---\nid: 20260101-000000-ab\nproject: /p\ncreated: 2026-01-01T00:00:00+00:00\n"
            "status: maybe\n---\n",
            "h.md",
        )
    with pytest.raises(HandoffError, match="no UTC offset"):
        ho.parse("---\nid: 20260101-000000-ab\nproject: /p\ncreated: 2026-01-01T00:00:00\n---\n", "h.md")


def test_status_change_rewrites_the_header_and_keeps_an_edited_body(baton_home: Path) -> None:
    paths = BatonPaths.from_env().ensure()
    path = ho.save(paths, full())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    edited = path.read_text().replace("Be efficient.", "Be efficient, and *careful*.  ")
    path.write_text(edited)
    h = ho.set_status(path, "launched")
    assert h.status == "launched"
    after = path.read_text()
    assert after.split("\n---\n", 1)[1] == edited.split("\n---\n", 1)[1]
    assert ho.load(path).status == "launched"


def test_user_template_overrides_the_bundled_one(baton_home: Path) -> None:
    paths = BatonPaths.from_env().ensure()
    paths.templates_dir.mkdir()
    (paths.templates_dir / "handoff.md").write_text(
        "# $title\n\n## What was accomplished\n$accomplished\n\nOurs.\n"
    )
    path = ho.save(paths, full())
    text = path.read_text()
    assert "Ours." in text and "## Agent instructions" not in text
    assert ho.load(path).accomplished == full().accomplished


def test_resolve_finds_by_path_id_and_unique_prefix(baton_home: Path) -> None:
    paths = BatonPaths.from_env().ensure()
    a = ho.save(paths, full())
    b = ho.save(paths, Handoff(id="20261124-090000-ffff", project="/other", created=NOW))
    assert ho.resolve(paths, str(a)) == a.resolve()
    assert ho.resolve(paths, "20261123-173000-abcd") == a
    assert ho.resolve(paths, "20261124") == b
    with pytest.raises(HandoffError, match="matches 2 handoffs"):
        ho.resolve(paths, "2026112")
    with pytest.raises(HandoffError, match="no handoff matches"):
        ho.resolve(paths, "nope")
    assert ho.resolve(paths, "ffff") == b  # the random end of an id is what people remember
    assert ho.resolve(paths, "abcd") == a
    assert ho.latest_pending(paths, "/other") == (b, ho.load(b))


@pytest.mark.parametrize("bad", ["../../x", "20261123-173000-../../evil", "a/b", "", "20261123-173000-ab cd"])
def test_an_id_that_is_not_a_handoff_id_is_refused_and_never_becomes_a_path(
    baton_home: Path, tmp_path: Path, bad: str
) -> None:
    paths = BatonPaths.from_env().ensure()
    text = f"---\nid: {bad}\nproject: /p\ncreated: 2026-01-01T00:00:00+00:00\n---\n"
    with pytest.raises(HandoffError, match=r"imported\.md: (header 'id'|the header has no 'id')"):
        ho.parse(text, "imported.md")
    with pytest.raises(HandoffError, match="not a handoff id"):
        ho.save(paths, Handoff(id=bad, project="/p", created=NOW))
    assert not list(tmp_path.rglob("evil*")) and not (paths.data_dir / "x.md").exists()


def test_every_folder_baton_creates_for_handoffs_is_private(baton_home: Path) -> None:
    paths = BatonPaths.from_env().ensure()
    paths.handoffs_dir.mkdir(mode=0o755)  # as an older version left it
    paths.handoffs_dir.chmod(0o755)
    path = ho.save(paths, full())
    for folder in (paths.handoffs_dir, path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    fresh = BatonPaths.from_env()
    nested = fresh.data_dir / "a" / "b" / "c.md"
    ho.write_private(nested, "x")
    for folder in (nested.parent, nested.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
