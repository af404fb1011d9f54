"""Logging, configured once: JSON lines to the log file (rotated by size), readable lines on a terminal.

structlog is imported when logging is set up or a logger is asked for, not with this module, so that a
command that logs nothing (a first `baton ingest`) can defer the whole set-up (`configure_on_first_record`).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

_configured = False


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log whose every file, the rotated ones included, is readable by the user alone."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding, errors=self.errors)


def configure(
    log_file: Path | None,
    *,
    level: str = "info",
    console: bool = True,
    plain: bool = False,
    max_bytes: int = 5_000_000,
    backups: int = 3,
) -> None:
    """Send structlog and stdlib logging to `log_file` as JSON lines and, when `console`, to stderr
    as text: timestamped lines (`baton run`), or with `plain` (one-shot commands) warnings and errors as
    one plain line each."""
    import structlog

    global _configured
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    if log_file is not None:
        create_private(log_file)
        handler = PrivateRotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ],
                foreign_pre_chain=shared,
            )
        )
        root.addHandler(handler)
    if console:
        console_handler = logging.StreamHandler(sys.stderr)
        if plain:
            console_handler.setLevel(logging.WARNING)
        console_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _plain_line if plain else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
                ],
                foreign_pre_chain=shared,
            )
        )
        root.addHandler(console_handler)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _configured = True


def create_private(log_file: Path) -> None:
    """Create `log_file` (and its folder) readable by the user alone, or make an existing one so."""
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    os.chmod(log_file, 0o600)


def configure_on_first_record(log_file: Path, *, level: str, console: bool) -> None:
    """`configure(log_file, level=level, console=console, plain=True)`, done when the first record is
    logged rather than now: structlog's import and set-up (about 50 ms) are paid only by a run that logs
    something. The log file is created now, as `configure` would (an unwritable data folder fails here,
    not at the first record)."""
    create_private(log_file)
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))  # the same records are made as after it

    class _ConfigureOnFirstRecord(logging.Handler):
        def handle(self, record: logging.LogRecord) -> bool:
            root.handlers = []  # a new list: the loop that called this one ends here
            configure(log_file, level=level, console=console, plain=True)
            for handler in root.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
            return True

        def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does the work
            self.handle(record)

    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ConfigureOnFirstRecord())


def _one_line(_logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
    """Render an event as one line for a person at a terminal: `baton: warning: event (key=value, ...)`."""
    event = event_dict.pop("event", "")
    event_dict.pop("logger", None)
    details = ", ".join(f"{key}={value}" for key, value in event_dict.items())
    return f"baton: {method}: {event}" + (f" ({details})" if details else "")


def _plain_line(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
    """`_one_line` for a configured console: the time and level the file keeps are left out."""
    event_dict.pop("timestamp", None)
    event_dict.pop("level", None)
    return _one_line(logger, method, event_dict)


def _configure_default() -> None:
    """Before `configure` (one-shot commands): warnings and errors as one line each on stderr, never on
    stdout, where they would corrupt a command's output (`--json`)."""
    import structlog

    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, _one_line],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "baton") -> Any:
    """Return a structlog logger (usable before `configure`; then it logs warnings and up to stderr)."""
    import structlog

    if not _configured and not structlog.is_configured():
        _configure_default()
    return structlog.get_logger(name)
