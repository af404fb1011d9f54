"""Desktop notifications on a real session bus: delivered, or a logged failure (never a silent loss)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import notify
from daemon.config import load_settings
from daemon.paths import BatonPaths
from tests.support.desktop import NotificationServer


def settings(baton_home: Path, backend: str = "auto"):  # type: ignore[no-untyped-def]
    return load_settings(BatonPaths.from_env(), notify={"backend": backend})


def test_alert_reaches_the_notification_server_with_its_text_intact(
    baton_home: Path, notifications: NotificationServer
) -> None:
    title = "80% of the 5-hour window used"
    body = "Strategic planning time. $(touch PWNED) `ls` 'quotes' \"double\" ünïcode"
    outcome = notify.deliver(settings(baton_home), title, body)
    assert outcome.delivered and outcome.backend == "dbus"
    (got,) = notifications.wait_for(1)
    assert (got["summary"], got["body"], got["app_name"]) == (title, body, "baton")
    assert not Path("PWNED").exists()


def test_no_server_on_the_bus_is_a_logged_failure(baton_home: Path, dbus_session: str) -> None:
    outcome = notify.deliver(settings(baton_home), "t", "b")
    assert not outcome.delivered and outcome.backend == "log"
    assert [name for name, _ in outcome.failures] == ["dbus", "plyer"]
    assert "no notification server" in outcome.failures[0][1]


def test_no_bus_at_all_is_a_logged_failure(
    baton_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert not notify.send(settings(baton_home), "t", "b")
    assert "no D-Bus session bus" in (notify.plyer_trap() or "")


def test_plyer_backend_goes_through_when_a_server_is_there(
    baton_home: Path, notifications: NotificationServer
) -> None:
    assert notify.plyer_trap(app_dir=baton_home / "no-app") is None
    assert notify.chain("plyer") == ["plyer"]


def test_the_flatpak_trap_is_detected(
    baton_home: Path, notifications: NotificationServer, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    trap = notify.plyer_trap(app_dir=app, flatpak_info=tmp_path / "no-flatpak-info")
    assert trap is not None and "Flatpak" in trap
    assert notify.plyer_trap(app_dir=app, flatpak_info=app) is None  # really inside Flatpak


def test_log_backend_never_touches_the_desktop(baton_home: Path, notifications: NotificationServer) -> None:
    assert not notify.send(settings(baton_home, "log"), "t", "b")
    assert notifications.received() == []


def test_chain_per_platform() -> None:
    assert notify.chain("auto", "linux") == ["dbus", "plyer"]
    assert notify.chain("auto", "darwin") == ["osascript", "plyer"]
    assert notify.chain("auto", "win32") == ["plyer"]
