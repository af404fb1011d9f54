"""The one user-facing error type, and its exit codes."""

from __future__ import annotations


class BatonError(Exception):
    """A problem the person can act on: raised anywhere, rendered once by the CLI as a message
    and an exit code."""

    def __init__(self, message: str, *, exit_code: int = 1, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint

    def render(self) -> str:
        """Return the message as the CLI prints it, with the hint on its own line when there is one."""
        return f"baton: {self.message}" + (f"\n  hint: {self.hint}" if self.hint else "")


class ConfigError(BatonError):
    """The configuration is invalid; `problems` names every one with its location."""

    def __init__(self, problems: list[str], source: str) -> None:
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration in {source}:\n{listing}",
            exit_code=78,  # EX_CONFIG: systemd and launchd show it, and the unit does not loop on it
            hint="run `baton config validate` after fixing it",
        )
        self.problems = problems
