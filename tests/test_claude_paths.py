"""Claude Code's folders are resolved one way everywhere, including a comma-separated CLAUDE_CONFIG_DIR."""

from __future__ import annotations

from pathlib import Path

from daemon import claude_paths


def test_without_claude_config_dir_reads_both_defaults_and_writes_to_dot_claude() -> None:
    env = {"HOME": "/h"}
    assert claude_paths.candidate_dirs(env) == [Path("/h/.config/claude"), Path("/h/.claude")]
    assert claude_paths.settings_file(env) == Path("/h/.claude/settings.json")
    assert claude_paths.commands_dir(env) == Path("/h/.claude/commands")


def test_a_comma_list_is_split_trimmed_and_expanded_and_the_first_entry_is_written() -> None:
    env = {"HOME": "/h", "CLAUDE_CONFIG_DIR": " ~/a/claude , /b/claude/projects ,"}
    assert claude_paths.candidate_dirs(env) == [Path("/h/a/claude"), Path("/b/claude")]
    assert claude_paths.settings_file(env) == Path("/h/a/claude/settings.json")
    assert claude_paths.credentials_file(env) == Path("/h/a/claude/.credentials.json")


def test_xdg_config_home_moves_the_second_default() -> None:
    env = {"HOME": "/h", "XDG_CONFIG_HOME": "/x"}
    assert claude_paths.candidate_dirs(env)[0] == Path("/x/claude")


def test_secure_storage_dir_overrides_where_the_login_file_is() -> None:
    env = {"HOME": "/h", "CLAUDE_SECURESTORAGE_CONFIG_DIR": "/s"}
    assert claude_paths.credentials_file(env) == Path("/s/.credentials.json")
