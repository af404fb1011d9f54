"""The distribution, its command and its import name."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_name_daemon_is_provided_by_claude_baton_alone() -> None:
    # python-daemon uses the same import name; baton must never depend on it or be shadowed by it.
    import daemon

    assert (
        Path(daemon.__file__).resolve() == ROOT / "daemon" / "__init__.py"
        or "site-packages" in daemon.__file__
    )
    # An editable install records no top-level names; a wheel install records `daemon` for claude-baton only.
    assert packages_distributions().get("daemon") in (None, ["claude-baton"])
    requires = distribution("claude-baton").requires or []
    assert not any(r.lower().startswith("python-daemon") for r in requires)


def test_python_dash_m_daemon_runs_the_baton_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "daemon", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "baton, version 0.1.0"


def test_help_lists_commands_without_importing_them() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "daemon", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage:" in out.stdout


def test_a_lazy_group_with_ordinary_sub_commands_lists_both_in_its_help() -> None:
    import click
    from click.testing import CliRunner

    from daemon.cli_app import LazyGroup

    @click.group(cls=LazyGroup, lazy={"ingest": ("daemon.commands.ingest:ingest", "Catch up.")})
    def group() -> None:
        """A group."""

    @group.command()
    def plain() -> None:
        """An ordinary command."""

    result = CliRunner().invoke(group, ["--help"])
    assert result.exit_code == 0, result.output
    assert "ingest" in result.output and "plain" in result.output
