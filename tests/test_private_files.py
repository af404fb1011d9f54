"""Files and folders baton writes are private to the user: logs (rotated ones too) and the runtime dir."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from daemon import logs
from daemon.errors import BatonError
from daemon.paths import BatonPaths


def test_rotated_log_files_are_private(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "baton.log"
    old = os.umask(0o022)
    try:
        logs.configure(log_file, console=False, max_bytes=10_000, backups=2)
        for i in range(400):
            logging.getLogger("t").warning("line %d %s", i, "x" * 80)
    finally:
        os.umask(old)
        logging.getLogger().handlers.clear()
    written = sorted(log_file.parent.iterdir())
    assert len(written) == 3  # baton.log, .1 and .2
    assert all(p.stat().st_mode & 0o077 == 0 for p in written), [oct(p.stat().st_mode) for p in written]


def test_runtime_dir_is_created_private(tmp_path: Path) -> None:
    paths = BatonPaths.from_env({"BATON_HOME": str(tmp_path / "h")}).ensure()
    assert paths.runtime_dir().stat().st_mode & 0o777 == 0o700


def test_a_runtime_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    paths = BatonPaths.from_env({"BATON_HOME": str(tmp_path / "h")})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    paths.runtime_dir().parent.mkdir(parents=True)
    paths.runtime_dir().symlink_to(elsewhere)
    with pytest.raises(BatonError, match="not a directory of yours"):
        paths.ensure()
