"""Where every file baton owns lives. `BATON_HOME` moves all of them, so tests are hermetic.

Without `BATON_HOME`, configuration goes to the platform's user config dir and everything else
(the ledger, the job store, handoffs, logs) to its user data dir, as platformdirs defines them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP = "baton"
_SOCKET_MAX = 100  # sun_path is 104 bytes on macOS, 108 on Linux


NOT_SETTINGS = frozenset({"BATON_HOME", "BATON_REQUIRE_REAL"})  # BATON_* variables that set no setting


def setting_variables(env: Mapping[str, str]) -> list[str]:
    """Return the `BATON_*` variables of `env` that set a setting (any case: pydantic-settings reads them)."""
    return [k for k in env if k.upper().startswith("BATON_") and k.upper() not in NOT_SETTINGS]


@dataclass(frozen=True)
class BatonPaths:
    """The directories and files baton reads and writes."""

    home: Path | None
    config_dir: Path
    data_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BatonPaths:
        """Return the paths for `env` (default: the process environment)."""
        env = os.environ if env is None else env
        home = env.get("BATON_HOME")
        if home:
            root = Path(home).expanduser().resolve()
            return cls(home=root, config_dir=root, data_dir=root)
        import platformdirs

        return cls(
            home=None,
            config_dir=Path(platformdirs.user_config_dir(APP, appauthor=False)),
            data_dir=Path(platformdirs.user_data_dir(APP, appauthor=False)),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def ledger_db(self) -> Path:
        return self.data_dir / "baton.db"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.db"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "baton.log"

    @property
    def handoffs_dir(self) -> Path:
        return self.data_dir / "handoffs"

    @property
    def memory_dir(self) -> Path:
        return self.data_dir / "memory"

    @property
    def templates_dir(self) -> Path:
        """User templates that override the bundled ones (same file names)."""
        return self.config_dir / "templates"

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir() / "baton.lock"

    @property
    def socket_path(self) -> Path:
        return self.runtime_dir() / "baton.sock"

    def runtime_dir(self, env: Mapping[str, str] | None = None) -> Path:
        """Return the private directory for the control socket and the instance lock.

        With BATON_HOME: `<home>/run`, unless that path is too long for a Unix socket, then a per-home
        directory under the system temp dir. Without it: `$XDG_RUNTIME_DIR/baton`, else `<data_dir>/run`.
        """
        env = os.environ if env is None else env
        if self.home is not None:
            candidate = self.home / "run"
        elif env.get("XDG_RUNTIME_DIR"):
            candidate = Path(env["XDG_RUNTIME_DIR"]) / APP
        else:
            candidate = self.data_dir / "run"
        if len(str(candidate / "baton.sock")) <= _SOCKET_MAX:
            return candidate
        import hashlib  # only for a path too long for a socket

        digest = hashlib.sha256(str(candidate).encode()).hexdigest()[:12]
        return Path("/tmp") / f"baton-{os.getuid()}-{digest}"

    def ensure(self) -> BatonPaths:
        """Create the directories (private to the user) and return self.

        Raise BatonError if the runtime directory exists but is not a real directory owned by this user (under
        a shared /tmp, someone else could have created it first).
        """
        for d in (self.config_dir, self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        runtime = self.runtime_dir()
        runtime.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            runtime.mkdir(mode=0o700)
        info = os.lstat(runtime)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            from daemon.errors import BatonError

            raise BatonError(
                f"{runtime} is not a directory of yours: refusing to put the control socket there",
                hint="remove it, or set BATON_HOME to a shorter path",
            )
        os.chmod(runtime, 0o700)
        return self
