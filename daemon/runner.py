"""`baton run`: the long-running service. Follows the transcripts, keeps the quota current, fires alerts.

One thread does the work (the main thread, so signals are handled there): it waits on a queue fed by the
watchdog observer (`daemon.follow`), ingests each changed transcript with the ledger's `Ingestor`, then
re-evaluates the quota and fires what is due. A timer wakes it about once a minute for what happens without
any file changing (a window reset, a calendar day for budgets, an official figure ageing out) and to ping the
systemd watchdog. Idle, it sleeps in `queue.get`.

Signals: SIGTERM/SIGINT stop it (within about a second), SIGHUP reloads the configuration (an invalid one is
logged and the old one kept). One instance per user: an exclusive `flock` on `paths.lock_file`.
The parts other engineers own (scheduler, sessions, estimates, control socket, sd_notify) are attached when
their module exists; an error in one is logged and the daemon goes on.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from daemon import alerts, alerts_store, notify, official, plans, quota, quota_data, snapshot
from daemon.config import Settings, load_settings
from daemon.context import DaemonContext
from daemon.db import connect_fast
from daemon.errors import BatonError, ConfigError
from daemon.follow import RESCAN, STAMP, TranscriptWatcher, candidate_roots
from daemon.instance import InstanceLock
from daemon.logs import get_logger
from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from daemon.ingest import IngestSummary

log = get_logger("baton.run")

TICK_S = 60.0
RETRY_S = 2.0  # a transcript whose ingest failed (a locked ledger) is read again after this, then backs off
HISTORY_MS = quota_data.HISTORY_MS
RESET_SLACK_S = 0.05  # wake this long after a reset, so the evaluation sees it as past
AUTO_REFRESH_S = 3600.0  # the `auto` plan's P90 is recomputed at most hourly
HOSTED = ("daemon.scheduler", "daemon.sessions", "daemon.estimate_store")
# Settings a SIGHUP cannot apply to a running daemon (read once at start): a reload that changes one says so.
RESTART_KEYS = (
    "quota.oauth_usage",
    "quota.oauth_url",
    "quota.oauth_cache_seconds",
    "general.log_level",
    "general.log_max_bytes",
    "general.log_backups",
)


def zone_of(settings: Settings) -> tzinfo:
    """Return the display zone: the configured one, else the system's."""
    from daemon.timeutil import resolve_zone

    return resolve_zone(settings.general.timezone or None)


class Daemon:
    """The running service; `run()` blocks until a stop signal and returns the exit code."""

    def __init__(
        self, paths: BatonPaths, settings: Settings, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.reload_requested = False
        self.latest: quota.QuotaSnapshot | None = None
        self.lock = InstanceLock(paths.lock_file)
        self._auto: tuple[float, plans.Limits] | None = None
        self._reset_due = time.monotonic() + TICK_S
        self.retry: set[str] = set()  # transcripts whose last ingest failed: read again before anything else
        self._retry_due = float("inf")
        self._retry_delay = RETRY_S
        self._sdnotify: ModuleType | None = None
        self._control: Any = None
        self.engine: Engine | None = None

    # ---- life cycle ---------------------------------------------------------------------------------------

    def run(self) -> int:
        """Start everything, serve until SIGTERM/SIGINT, stop cleanly; return 0."""
        from daemon.db import open_ledger
        from daemon.ingest import Ingestor, catch_up

        self.paths.ensure()
        self.lock.acquire()
        try:
            if not self.paths.ledger_db.exists():
                # A first start builds the ledger aside in worker processes, as `baton ingest` does: faster,
                # and the daemon never holds a bulk load's batches and page cache (its memory stays a
                # daemon's). If that fails, the ordinary catch-up below reads everything instead.
                self._catch_up("built", run=lambda: catch_up(self.paths, self.settings))
            self.engine = open_ledger(self.paths.ledger_db)
            self.ingestor = Ingestor(self.paths, self.settings)
            self._install_signals()
            self._catch_up("caught_up")
            self.ctx = self._context(self.engine)
            self._attach_parts()
            self._start_control()
            self.watcher = TranscriptWatcher(
                candidate_roots(self.settings.transcripts.roots, os.environ),
                self.events.put,
                stamps={self.paths.data_dir / official.STAMP_NAME: "official"},
            )
            self.watcher.start()
            self._start_oauth()
            self._catch_up("caught_up_after_watch")  # lines written between the first catch-up and the watch
            self._resend_pending()
            self.evaluate()
            self._sd("ready")
            log.info("running", followed=[str(p) for p in self.watcher.followed_dirs()])
            self._loop()
        finally:
            self._shutdown()
        return 0

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self.stopping.set()
            self.events.put("\0wake")

        def reload(_signum: int, _frame: FrameType | None) -> None:
            self.reload_requested = True
            self.events.put("\0wake")

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _loop(self) -> None:
        next_tick = time.monotonic() + TICK_S
        while not self.stopping.is_set():
            wake = min(next_tick, self._reset_due, self._retry_due)
            timeout = max(0.0, wake - time.monotonic())
            try:
                first = self.events.get(timeout=min(timeout, self._watchdog_every()))
            except queue.Empty:
                first = None
            changed = self._drain(first)
            if self.stopping.is_set():
                break
            try:
                next_tick = self._pass(changed, wake, next_tick)
            except Exception:  # never let one bad pass end the service; the next event or tick tries again
                log.exception("loop_pass_failed")
                next_tick = time.monotonic() + TICK_S

    def _pass(self, changed: set[str], wake: float, next_tick: float) -> float:
        """Do one pass of the loop: reload, ping, ingest and evaluate when due; return the next tick."""
        if self.reload_requested:
            self._reload()
        self._sd("watchdog")
        if not changed and time.monotonic() < wake:
            return next_tick
        tick = time.monotonic() >= next_tick
        if tick:  # lost watch events (a full inotify queue, max_user_watches) are made up here: stat only
            changed.add(RESCAN)
        self._ingest(changed, quiet=tick)
        self.evaluate()
        if self._reset_due <= time.monotonic():  # the evaluation failed: wait for the tick
            self._reset_due = next_tick
        return time.monotonic() + TICK_S if tick else next_tick

    def _plan_reset_wake(self, snap: quota.QuotaSnapshot, now: datetime) -> None:
        """Remember when the next known reset falls, so the loop re-evaluates right then (the reset
        notice and a fresh window come on time, not up to a tick late)."""
        ahead = [
            s.reset_at
            for s in (snap, snap.weekly)
            if s is not None and s.active and not s.rolling and s.reset_at > now
        ]
        seconds = (min(ahead) - now).total_seconds() if ahead else TICK_S
        self._reset_due = time.monotonic() + seconds + RESET_SLACK_S

    def _drain(self, first: str | None) -> set[str]:
        """Return the distinct changes queued now (a burst of writes becomes one pass)."""
        changed: set[str] = set()
        item = first
        while item is not None:
            if item != "\0wake":
                changed.add(item)
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                item = None
        return changed

    def _ingest(self, changed: set[str], *, quiet: bool = False) -> None:
        """Read the new lines of the changed transcripts (and of those whose ingest failed before); a
        failure keeps the path for a retry in RETRY_S seconds (doubling up to a tick)."""
        pending = self.retry | changed
        self.retry = set()
        todo = {c for c in pending if not c.startswith("\0")}
        if RESCAN in pending and self._catch_up("rescanned", quiet=quiet):
            todo = set()  # the catch-up read every transcript, these included
        for path in sorted(todo):
            try:
                result = self.ingestor.ingest_file(path)
            except Exception:
                log.exception("ingest_failed", file=path, retry_in_s=self._retry_delay)
                self.retry.add(path)
                continue
            if result.new_events or result.new_limits:
                log.debug("ingested", file=path, events=result.new_events, limits=result.new_limits)
        if self.retry:
            self._retry_due = time.monotonic() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, TICK_S)
        else:
            self._retry_due, self._retry_delay = float("inf"), RETRY_S

    def _start_oauth(self) -> None:
        """With `[quota] oauth_usage`, read the usage endpoint on a thread (it may take seconds to answer)."""
        if not self.settings.quota.oauth_usage:
            return
        from daemon import oauth

        q = self.settings.quota
        poller = oauth.Poller(q.oauth_url, float(q.oauth_cache_seconds))

        def loop() -> None:
            while not self.stopping.is_set():
                try:
                    figures = poller.poll(time.monotonic(), quota.to_ms(self.clock()))
                except Exception:  # the poller reports its failures; this is for the unforeseen
                    log.exception("oauth_poll_failed")
                    figures = None
                if figures:
                    try:
                        with connect_fast(self.paths.ledger_db) as conn:
                            official.record(conn, figures)
                        self.events.put(f"{STAMP}:oauth")
                    except Exception:
                        log.exception("oauth_record_failed")
                elif poller.last_error:
                    log.warning("oauth_usage_unavailable", error=poller.last_error)
                self.stopping.wait(max(1.0, poller.next_at - time.monotonic()))

        threading.Thread(target=loop, name="baton-oauth", daemon=True).start()

    def _catch_up(
        self, event: str, *, quiet: bool = False, run: Callable[[], IngestSummary] | None = None
    ) -> bool:
        """Read every transcript's new lines (files unchanged since the last read cost one stat); return
        True if it ran. A misconfigured root or a database error (locked, disk full) is logged, and the
        next tick tries again. `quiet`: log only when it found something (the periodic check). `run`:
        another catch-up than the ingestor's (the first start's build)."""
        try:
            summary = (run or self.ingestor.catch_up)()
        except BatonError as exc:
            log.error("catch_up_failed", error=exc.message, hint=exc.hint)
            return False
        except Exception:
            log.exception("catch_up_failed")
            if self._retry_due == float("inf"):
                self._retry_due = time.monotonic() + self._retry_delay
            self.retry.add(RESCAN)
            return False
        if not quiet or summary.new_events or summary.new_limits:
            log.info(event, summary=summary.line(), pid=os.getpid())
        return True

    def _reload(self) -> None:
        self.reload_requested = False
        try:
            settings = load_settings(self.paths)
        except ConfigError as exc:
            log.error("reload_refused", error=exc.message)
            return
        old, self.settings = self.settings, settings
        self.ctx.settings = settings
        self._auto = None
        if (old.transcripts, old.pricing) != (settings.transcripts, settings.pricing):
            self._rebuild_ingest()
        restart = [key for key in RESTART_KEYS if _key(old, key) != _key(settings, key)]
        if restart:
            log.warning("reload_needs_restart", keys=restart, hint="baton service restart")
        log.info("config_reloaded")

    def _rebuild_ingest(self) -> None:
        """Apply new transcript roots or prices: a new Ingestor, the watch moved, a rescan queued."""
        from daemon.ingest import Ingestor

        try:
            ingestor = Ingestor(self.paths, self.settings)
        except Exception:
            log.exception("reload_ingest_failed")
            return
        self.ingestor.close()
        self.ingestor = ingestor
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.set_roots(candidate_roots(self.settings.transcripts.roots, os.environ))
        self.events.put(RESCAN)
        log.info("ingest_reloaded", roots=[str(p) for p in self.settings.transcripts.roots])

    def _shutdown(self) -> None:
        self._sd("stopping")
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.stop()
        if self._control is not None:
            try:
                self._control.stop()
            except Exception:
                log.exception("control_stop_failed")
        for hook in reversed(getattr(getattr(self, "ctx", None), "shutdown_hooks", [])):
            try:
                hook()
            except Exception:
                log.exception("shutdown_hook_failed")
        if hasattr(self, "ingestor"):
            self.ingestor.close()
        if self.engine is not None:
            self.engine.dispose()
        self.lock.release()
        log.info("stopped")

    # ---- the hosted parts ---------------------------------------------------------------------------------

    def _context(self, engine: Engine) -> DaemonContext:
        ctx = DaemonContext(
            paths=self.paths,
            settings=self.settings,
            engine=engine,
            notify=lambda title, body, kind: notify.send(self.settings, title, body, kind),
            quota_state=lambda: self.latest,
        )
        ctx.handlers["ping"] = lambda _req: {"ok": True, "pid": os.getpid()}
        ctx.handlers["status"] = lambda _req: {"ok": True, "pid": os.getpid(), **self.status_payload()}
        return ctx

    def _attach_parts(self) -> None:
        for name in HOSTED:
            module = _optional(name)
            attach = getattr(module, "attach", None)
            if attach is None:
                continue
            try:
                attach(self.ctx)
                log.info("attached", part=name)
            except Exception:
                log.exception("attach_failed", part=name)
        self._sdnotify = _optional("daemon.sdnotify")

    def _start_control(self) -> None:
        control = _optional("daemon.control")
        if control is None:
            return
        try:
            self._control = control.ControlServer(self.paths, self.ctx.handlers)
            self._control.start()
        except Exception:
            log.exception("control_socket_failed")
            self._control = None

    def _sd(self, what: str) -> None:
        if self._sdnotify is None:
            return
        try:
            getattr(self._sdnotify, what)()
        except Exception:
            log.exception("sdnotify_failed", call=what)

    def _watchdog_every(self) -> float:
        interval = None
        if self._sdnotify is not None:
            try:
                interval = self._sdnotify.watchdog_interval()
            except Exception:
                interval = None
        return max(1.0, interval) if interval else TICK_S  # already half of WATCHDOG_USEC: ping at it

    # ---- evaluation ---------------------------------------------------------------------------------------

    def limits(self, conn: sqlite3.Connection) -> plans.Limits:
        """Return the plan's limits; for `auto`, from the history (cached for an hour)."""
        q = self.settings.quota
        if q.plan != "auto" or q.token_limit:
            return quota_data.resolve_limits(conn, q, 0)
        if self._auto is not None and time.monotonic() - self._auto[0] < AUTO_REFRESH_S:
            return self._auto[1]
        result = quota_data.resolve_limits(conn, q, quota.to_ms(self.clock()))
        self._auto = (time.monotonic(), result)
        return result

    def evaluate(self) -> quota.QuotaSnapshot | None:
        """Recompute the quota, fire what is due, write the snapshot; return it (None on error)."""
        try:
            now = self.clock()
            now_ms = quota.to_ms(now)
            with contextlib.closing(sqlite3.connect(self.paths.ledger_db, timeout=10)) as conn:
                snap = quota_data.current(conn, self.settings.quota, now, self.limits(conn))
                meters = self._meters(conn, snap, now)
            self.latest = snap
            self._plan_reset_wake(snap, now)
            snapshot.write(self.paths, self.snapshot_payload(snap))  # first: the prompt hook reads it
            self._fire(meters, now_ms)
        except Exception:
            log.exception("evaluation_failed")
            return None
        for listener in list(self.ctx.quota_listeners):
            try:
                listener(snap)
            except Exception:
                log.exception(
                    "quota_listener_failed", listener=getattr(listener, "__qualname__", repr(listener))
                )
        return snap

    def _meters(
        self, conn: sqlite3.Connection, snap: quota.QuotaSnapshot, now: datetime
    ) -> list[alerts.Meter]:
        a = self.settings.alerts
        meters = alerts.quota_meters(snap, a.thresholds, a.weekly_thresholds)
        budgets = {
            "daily": a.daily_budget_usd,
            "weekly": a.weekly_budget_usd,
            "monthly": a.monthly_budget_usd,
        }
        if any(budgets.values()):
            periods = quota.calendar_periods(now, zone_of(self.settings))
            for period, budget in budgets.items():
                if budget:
                    start, end = (quota.to_ms(t) for t in periods[period])
                    spent = quota_data.spent_between(conn, start, end)
                    meters.append(alerts.budget_meter(period, start, end, spent, budget, a.thresholds))
        return meters

    def _fire(self, meters: list[alerts.Meter], now_ms: int) -> None:
        assert self.engine is not None
        fired = alerts_store.load_fired(self.engine, now_ms - HISTORY_MS)
        tz = zone_of(self.settings)
        for alert in alerts.due(meters, fired, tz, now_ms, reset_notice=self.settings.alerts.reset_notice):
            alert_id = alerts_store.record(self.engine, alert, now_ms)
            if alert_id is None or not alert.send:
                continue
            log.warning("alert", title=alert.title, body=alert.body, source=alert.source)
            self._deliver(
                alert_id, alert.title, alert.body, "info" if alert.threshold == alerts.RESET else "alert"
            )

    def _deliver(self, alert_id: int, title: str, body: str, kind: str) -> None:
        assert self.engine is not None
        outcome = notify.deliver(self.settings, title, body, kind)
        alerts_store.mark_delivered(self.engine, alert_id, outcome.delivered, outcome.backend)

    def _resend_pending(self) -> None:
        """Send the alerts recorded but not sent before a crash (kill -9 between record and send)."""
        assert self.engine is not None
        for alert_id, title, body in alerts_store.pending(self.engine, quota.to_ms(self.clock())):
            log.warning("alert_resent_after_restart", title=title)
            self._deliver(alert_id, title, body, "alert")

    # ---- what others read ---------------------------------------------------------------------------------

    def snapshot_payload(self, snap: quota.QuotaSnapshot) -> dict[str, Any]:
        """Return the JSON the daemon writes for fast readers: the snapshot plus who wrote it and when."""
        return {
            **snap.to_dict(),
            "written_at": self.clock().isoformat(),
            "pid": os.getpid(),
            "timezone": self.settings.general.timezone,
        }

    def status_payload(self) -> dict[str, Any]:
        """Return the control socket's `status` reply body."""
        return {"quota": None if self.latest is None else self.latest.to_dict()}


def _key(settings: Settings, dotted: str) -> object:
    section, name = dotted.split(".")
    return getattr(getattr(settings, section), name)


def _optional(name: str) -> ModuleType | None:
    """Import module `name` if it exists (another engineer's part may not be written yet); None otherwise."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        log.exception("import_failed", module=name)
        return None
    except Exception:
        log.exception("import_failed", module=name)
        return None


def run(paths: BatonPaths, settings: Settings) -> int:
    """Run the daemon in the foreground until stopped; return the exit code."""
    from daemon import logs

    logs.configure(
        paths.log_file,
        level=settings.general.log_level,
        max_bytes=settings.general.log_max_bytes,
        backups=settings.general.log_backups,
    )
    return Daemon(paths, settings).run()
