"""The scheduler: launches of primed sessions (and their reminders) that survive restarts and kill -9.

APScheduler 3.x runs inside the daemon (`attach(ctx)`) with a persistent SQLAlchemy job store at
`paths.jobs_db`. Jobs name their function as "module:function" text, and every job carries its own
`misfire_grace_time` and `coalesce`: APScheduler stores them per job when it is added, so the daemon's
defaults would not apply to jobs the CLI wrote. Job ids are `launch:<handoff id>` and `reminder:<handoff id>`.

The CLI asks the daemon over the control socket (`schedule.add`, `schedule.list`, `schedule.cancel`,
`launch.now`); when no daemon runs it writes the job store itself through a *paused* scheduler (an unpaused
one would run the jobs), and the daemon runs them when it starts.

A launch at the reset (`--at-reset`, a handoff's at-reset/after-reset, auto mode) checks at launch time that
the quota really has reset (the window ended, or the figure is below `scheduler.reset_below_percent`); if
not, it moves `retry_minutes` later, up to `max_retries` times. A launch at a time the person gave starts
then, whatever the quota (the CLI warns when scheduling it if the limit will likely still be in force).
A launch missed by more than `grace_minutes` (machine asleep or off) is not run: the person is told, and the
handoff stays pending. In auto mode, when the quota hits its limit, the newest pending handoff of each project
that asked to start at the reset is scheduled by itself.

The readiness check is pure (time parsing is in `daemon.when`, the CLI's client half in
`daemon.commands.schedule`); the rest is the thin edge around APScheduler.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import BatonError
from daemon.logs import get_logger
from daemon.paths import BatonPaths

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from daemon.config import Settings
    from daemon.context import DaemonContext
    from daemon.handoff import Handoff

log = get_logger("baton.scheduler")

LAUNCH_FUNC = "daemon.scheduler:launch_job"
REMINDER_FUNC = "daemon.scheduler:reminder_job"
HEARTBEAT_SECONDS = 30
KINDS = ("launch", "reminder")
LABEL_WIDTH = 14  # as the labels of `baton status`


class NothingScheduled(BatonError):
    """No job matches what the person asked to cancel."""


class ResetUnknown(BatonError):
    """A launch at the reset was asked for, but no reset time is known (no window open, no figure yet)."""

    def __init__(self) -> None:
        super().__init__(
            "the reset time is not known: no 5-hour window is open, or baton has no quota figure yet",
            hint="give a time with --at, or launch now with `baton launch now`",
        )


# ------------------------------------------------------------------------------------- pure: readiness


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


def quota_ready(snapshot: Any, now: datetime, threshold: float) -> Readiness:
    """Return whether the quota has reset enough to launch, given the daemon's latest snapshot.

    Not ready while the weekly limit is in force. Otherwise ready when there is no snapshot (nothing known
    against it), when the 5-hour window has ended, or when it is not limited and its figure is below
    `threshold` percent.
    """
    if snapshot is None:
        return Readiness(True, "no quota figure yet")
    weekly = _get(snapshot, "weekly")
    weekly_reset = _time(_get(weekly, "reset_at")) if weekly is not None else None
    if weekly is not None and _get(weekly, "limited") and (weekly_reset is None or weekly_reset > now):
        return Readiness(False, "the weekly limit is in force")
    reset_at = _time(_get(snapshot, "reset_at"))
    if reset_at is not None and reset_at <= now:
        return Readiness(True, "the window has ended")
    percent = float(_get(snapshot, "percent") or 0.0)
    if _get(snapshot, "limited"):
        return Readiness(False, "the limit is still in force")
    if percent >= threshold:
        return Readiness(False, f"{percent:.0f}% used, reset means below {threshold:.0f}%")
    return Readiness(True, f"{percent:.0f}% used")


def _time(value: Any) -> datetime | None:
    """Return `value` (a datetime or ISO text) as an aware datetime, or None."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) and value.tzinfo is not None else None


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


# ----------------------------------------------------------------------------------------- pure: jobs


@dataclass(frozen=True)
class JobInfo:
    """One scheduled job as `schedule list` shows it."""

    id: str
    kind: str
    run_at: datetime
    handoff_id: str
    handoff: str | None
    project: str | None
    attempt: int = 0
    at_reset: bool = False

    def to_dict(self, tz: tzinfo) -> dict[str, Any]:
        """Return the JSON form: `run_at` in ISO 8601 with the offset of `tz`."""
        return {
            "id": self.id,
            "kind": self.kind,
            "run_at": self.run_at.astimezone(tz).isoformat(timespec="seconds"),
            "handoff": self.handoff,
            "handoff_id": self.handoff_id,
            "project": self.project,
            "attempt": self.attempt,
            "at_reset": self.at_reset,
        }


def job_id(kind: str, handoff_id: str) -> str:
    return f"{kind}:{handoff_id}"


def split_job_id(jid: str) -> tuple[str, str] | None:
    """Return (kind, handoff id) of a baton job id, or None for another id."""
    kind, sep, hid = jid.partition(":")
    return (kind, hid) if sep and kind in KINDS and hid else None


# -------------------------------------------------------------------------------------- the job store


def zone(settings: Settings) -> tzinfo:
    """Return the zone times are shown in: `general.timezone`, else the system's."""
    from daemon.timeutil import resolve_zone

    return resolve_zone(settings.general.timezone)


def make_scheduler(paths: BatonPaths) -> BackgroundScheduler:
    """Return an (unstarted) scheduler on the persistent job store at `paths.jobs_db`."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from daemon.db import make_engine

    store = SQLAlchemyJobStore(engine=make_engine(paths.jobs_db))
    return BackgroundScheduler(jobstores={"default": store}, timezone=UTC)


@contextmanager
def offline_scheduler(paths: BatonPaths) -> Iterator[BackgroundScheduler]:
    """Yield a *paused* scheduler on the job store, for the CLI when no daemon runs: it never runs a job."""
    sched = make_scheduler(paths)
    sched.start(paused=True)
    try:
        yield sched
    finally:
        sched.shutdown(wait=False)


def add_launch(
    sched: BackgroundScheduler,
    settings: Settings,
    handoff_path: Path,
    run_at: datetime,
    *,
    now: datetime,
    at_reset: bool,
    attempt: int = 0,
    reminder: bool = True,
    claude_path: str | None = None,
) -> list[JobInfo]:
    """Schedule the launch of the handoff at `handoff_path` at `run_at` (and its reminder); return the jobs.

    `at_reset` says the time is the quota's reset (the launch then checks that it really has reset); else it
    is a time the person chose, and the handoff's start becomes "time". `claude_path` is claude as the
    scheduling CLI found it, used should the daemon not find it. Replaces an earlier schedule of the same
    handoff. Raise BatonError if the handoff is not pending or the time is more than the grace period past.
    """
    from daemon import handoff as handoffs

    h = handoffs.load(handoff_path)
    sc = settings.scheduler
    if h.status != "pending":
        raise BatonError(f"handoff {h.id} is {h.status}; only a pending handoff can be scheduled")
    if run_at < now - timedelta(minutes=sc.grace_minutes):
        raise BatonError(f"{run_at.isoformat()} is in the past")
    kwargs: dict[str, Any] = {"handoff": str(handoff_path), "handoff_id": h.id, "project": h.project}
    launch_kwargs = {**kwargs, "attempt": attempt, "at_reset": at_reset, "claude_path": claude_path}
    grace = max(1, sc.grace_minutes * 60)  # APScheduler needs a positive number
    sched.add_job(
        LAUNCH_FUNC,
        "date",
        run_date=run_at,
        id=job_id("launch", h.id),
        name=f"launch {h.project_name}",
        kwargs=launch_kwargs,
        replace_existing=True,
        misfire_grace_time=grace,
        coalesce=True,
        max_instances=1,
    )
    jobs = [JobInfo(job_id("launch", h.id), "launch", run_at, h.id, str(handoff_path), h.project, attempt,
                    at_reset)]  # fmt: skip
    remind_at = run_at - timedelta(minutes=sc.reminder_minutes)
    rid = job_id("reminder", h.id)
    if reminder and sc.reminder_minutes > 0 and remind_at > now:
        sched.add_job(
            REMINDER_FUNC,
            "date",
            run_date=remind_at,
            id=rid,
            name=f"reminder {h.project_name}",
            kwargs={**kwargs, "launch_at": run_at.isoformat()},
            replace_existing=True,
            misfire_grace_time=max(60, sc.reminder_minutes * 60),
            coalesce=True,
            max_instances=1,
        )
        jobs.append(
            JobInfo(rid, "reminder", remind_at, h.id, str(handoff_path), h.project, attempt, at_reset)
        )
    elif sched.get_job(rid) is not None:
        sched.remove_job(rid)
    if at_reset:
        handoffs.update(handoff_path, scheduled_for=run_at)
    else:
        handoffs.update(handoff_path, scheduled_for=run_at, start="time")
    return jobs


def list_jobs(sched: BackgroundScheduler) -> list[JobInfo]:
    """Return baton's jobs in the persistent store, soonest first."""
    out = []
    for job in sched.get_jobs(jobstore="default"):
        parts = split_job_id(job.id)
        run_at = job.next_run_time or getattr(job.trigger, "run_date", None)
        if parts is None or run_at is None:
            continue
        kw = job.kwargs
        out.append(
            JobInfo(
                job.id,
                parts[0],
                run_at.astimezone(UTC),
                parts[1],
                kw.get("handoff"),
                kw.get("project"),
                int(kw.get("attempt", 0)),
                bool(kw.get("at_reset", False)),
            )
        )
    return sorted(out, key=lambda j: (j.run_at, j.kind))


def cancel(sched: BackgroundScheduler, paths: BatonPaths, ref: str) -> list[str]:
    """Remove the jobs `ref` names (a job id, a handoff id or prefix, or a handoff file); return their ids.

    Cancelling a launch leaves the handoff pending, to be started by hand (`baton launch now`), never by auto
    mode. Raise NothingScheduled if nothing matches.
    """
    from daemon import handoff as handoffs

    parts = split_job_id(ref)
    if parts is not None:
        targets = [ref] if parts[0] == "reminder" else [ref, job_id("reminder", parts[1])]
        hid = parts[1]
    else:
        hid = handoffs.resolve(paths, ref).stem
        targets = [job_id("launch", hid), job_id("reminder", hid)]
    removed = [jid for jid in targets if sched.get_job(jid, jobstore="default") is not None]
    for jid in removed:
        sched.remove_job(jid, jobstore="default")
    if not removed:
        raise NothingScheduled(f"nothing scheduled for {ref!r}", hint="see `baton schedule list`")
    if job_id("launch", hid) in removed:
        _forget_schedule(paths, hid)
    return removed


def _forget_schedule(paths: BatonPaths, hid: str) -> None:
    from daemon import handoff as handoffs

    try:
        path = handoffs.resolve(paths, hid)
        handoffs.update(path, scheduled_for=None, start="manual")
    except BatonError as exc:
        log.warning("handoff not updated", handoff=hid, error=exc.message)


def reset_time(snapshot: Any) -> datetime | None:
    """Return when the quota is back: the 5-hour window's reset, or the week's when the weekly limit is hit.

    `snapshot` is a QuotaSnapshot or its JSON form; None when no window is open or nothing is known.
    """
    if snapshot is None:
        return None
    weekly = _get(snapshot, "weekly")
    if weekly is not None and _get(weekly, "limited"):
        weekly_reset = _time(_get(weekly, "reset_at"))
        if weekly_reset is not None:
            return weekly_reset
    if _get(snapshot, "active") is False:  # no open 5-hour window: nothing to wait for
        return None
    return _time(_get(snapshot, "reset_at"))


def exhausted_at(snapshot: Any, at: datetime) -> datetime | None:
    """Return the reset time if the limit is in force now and still will be at `at`, else None."""
    if snapshot is None:
        return None
    weekly = _get(snapshot, "weekly")
    limited = _get(snapshot, "limited") or (weekly is not None and _get(weekly, "limited"))
    reset = reset_time(snapshot)
    return reset if limited and reset is not None and reset > at else None


def current_quota(paths: BatonPaths, settings: Settings, now: datetime) -> Any:
    """Return the quota at `now` as `baton status` computes it (ledger and official figures), for the CLI
    when no daemon runs; the daemon's last snapshot file when that cannot be computed or knows of no open
    window while the file still does. None when nothing is known."""
    from daemon import snapshot as snapshots

    computed: Any = None
    if paths.ledger_db.exists():
        try:
            from daemon import quota_data

            conn = sqlite3.connect(f"file:{paths.ledger_db}?mode=ro", uri=True, timeout=10)
            try:
                computed = quota_data.current(conn, settings.quota, now)
            finally:
                conn.close()
        except Exception as exc:  # the quota is advice here: fall back on what the daemon last wrote
            log.warning("quota not computed for the scheduler", error=str(exc))
    if computed is not None and reset_time(computed) is not None:
        return computed
    stored = snapshots.read(paths)
    stored_reset = reset_time(stored)
    return stored if stored_reset is not None and stored_reset > now else computed


# -------------------------------------------------------------------------- status for `baton status`


def status_lines(paths: BatonPaths, now: datetime | None = None) -> list[str]:
    """Return lines on what is scheduled and what waits for the limit, for `baton status` (no APScheduler).

    Times are shown in `general.timezone`, with the day when it is not today.
    """
    from daemon import handoff as handoffs
    from daemon.when import display

    now = now or datetime.now(UTC)
    settings = _settings(paths)
    tz = zone(settings) if settings is not None else _local_zone()
    auto = settings is None or settings.scheduler.auto_mode
    lines = []
    scheduled: set[str] = set()
    for jid, at in _stored_jobs(paths):
        parts = split_job_id(jid)
        if parts is None or parts[0] != "launch":
            continue
        scheduled.add(parts[1])
        minutes = int((at - now).total_seconds() // 60)
        if minutes < 0:
            when = f"{-minutes} min overdue"
        else:
            when = f"in {minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"in {minutes} min"
        what = f"{_project_of(paths, parts[1])} at {display(at, tz, now)} ({when}), handoff {parts[1]}"
        lines.append(f"{'Next launch':<{LABEL_WIDTH}}{what}")
    for _path, h in handoffs.list_all(paths):
        if h.status == "pending" and h.start in ("at-reset", "after-reset") and h.id not in scheduled:
            what = f"{h.project_name} (handoff {h.id}) starts after the reset once the quota runs out"
            if not auto:
                what = f"{h.project_name} (handoff {h.id}) waits, but auto mode is off: "
                what += f"baton schedule --at-reset --handoff {h.id}"
            lines.append(f"{'Waiting':<{LABEL_WIDTH}}{what}")
    return lines


def _settings(paths: BatonPaths) -> Settings | None:
    try:
        from daemon.config import load_settings

        return load_settings(paths)
    except BatonError:  # a broken config: status says so elsewhere
        return None


def _local_zone() -> tzinfo:
    from daemon.timeutil import local_zone

    return local_zone()


def _stored_jobs(paths: BatonPaths) -> list[tuple[str, datetime]]:
    """Return (job id, next run time) of the stored jobs, read with sqlite3 alone (none without a store)."""
    if not paths.jobs_db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{paths.jobs_db}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute(
                "SELECT id, next_run_time FROM apscheduler_jobs ORDER BY next_run_time"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [(str(jid), datetime.fromtimestamp(float(ts), UTC)) for jid, ts in rows if ts is not None]


def _project_of(paths: BatonPaths, hid: str) -> str:
    from daemon import handoff as handoffs

    try:
        return handoffs.load(handoffs.resolve(paths, hid)).project_name
    except BatonError:
        return "?"


# -------------------------------------------------------------------------------- inside the daemon


class SchedulerService:
    """The daemon's scheduler: jobs, control ops, the quota listener, and the job functions' context."""

    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx
        self.sched = make_scheduler(ctx.paths)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="baton-scheduler-tick", daemon=True)

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def start(self) -> None:
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED

        self.sched.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.sched.add_listener(self._on_error, EVENT_JOB_ERROR)
        self.sched.start(paused=True)  # recovery first, while no job can start and race with it
        try:
            self.recover(datetime.now(UTC))
        except Exception:  # recovery must never keep the daemon from starting
            log.exception("launch recovery failed")
        self.sched.resume()
        self._ticker.start()
        log.info("scheduler started", jobs=len(self.sched.get_jobs(jobstore="default")))

    def recover(self, now: datetime) -> None:
        """Finish what a crash interrupted: a pending handoff with a schedule but no job had its job taken by
        APScheduler (it removes a job as it starts it) when the daemon died. If the launch is recorded, mark
        the handoff launched; else launch it if still within the grace period, or report it missed."""
        from daemon import handoff as handoffs
        from daemon.launch_store import recent

        grace = timedelta(minutes=self.settings.scheduler.grace_minutes)
        for path, h in handoffs.list_all(self.ctx.paths):
            due = h.scheduled_for
            if h.status != "pending" or due is None or due > now:
                continue
            if self.sched.get_job(job_id("launch", h.id)) is not None:
                continue
            records = recent(self.ctx.engine, handoff_id=h.id, limit=1)
            if records and records[0].status != "failed" and records[0].ts >= due - timedelta(minutes=1):
                handoffs.set_status(path, "launched")
            elif now - due <= grace:
                log.info("relaunching a launch interrupted by a crash", handoff=h.id)
                at_reset = h.start in ("at-reset", "after-reset")
                add_launch(self.sched, self.settings, path, now, now=now, at_reset=at_reset, reminder=False)
            else:
                self._report_missed(h.id, due)

    def _tick(self) -> None:
        # APScheduler sleeps on a clock that stops while the machine is suspended: waking it every
        # HEARTBEAT_SECONDS makes it notice, soon after a resume, what fell due during the sleep.
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            if self.sched.running:
                self.sched.wakeup()

    def stop(self) -> None:
        self._stopped.set()
        if self.sched.running:
            self.sched.shutdown(wait=False)

    def notify(self, title: str, body: str, kind: str = "launch") -> None:
        try:
            self.ctx.notify(title, body, kind)
        except Exception:
            log.exception("notification failed", title=title)

    def local(self, dt: datetime) -> str:
        from daemon.when import display

        return display(dt, zone(self.settings), datetime.now(UTC))

    # ---- control ops

    def op_add(self, req: dict[str, Any]) -> dict[str, Any]:
        from daemon import handoff as handoffs

        now = datetime.now(UTC)
        path = handoffs.resolve(self.ctx.paths, str(req.get("handoff") or ""))
        run_at = self._run_at(req, now)
        claude = req.get("claude_path")
        jobs = add_launch(self.sched, self.settings, path, run_at, now=now, at_reset=not req.get("at"),
                          claude_path=str(claude) if claude else None)  # fmt: skip
        return {"jobs": [j.to_dict(zone(self.settings)) for j in jobs]}

    def _run_at(self, req: dict[str, Any], now: datetime) -> datetime:
        if req.get("at"):
            return datetime.fromisoformat(str(req["at"])).astimezone(UTC)
        if req.get("at_reset"):
            reset = reset_time(self.ctx.quota_state())
            if reset is None:
                raise ResetUnknown()
            return reset + timedelta(seconds=float(req.get("offset_seconds") or 0))
        raise BatonError("schedule.add needs 'at' or 'at_reset'")

    def op_list(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"jobs": [j.to_dict(zone(self.settings)) for j in list_jobs(self.sched)]}

    def op_cancel(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"removed": cancel(self.sched, self.ctx.paths, str(req.get("id") or ""))}

    def op_launch_now(self, req: dict[str, Any]) -> dict[str, Any]:
        """Launch a handoff now (`force` relaunches one no longer pending); `claude_path` is claude as the
        CLI found it, used when this process cannot find it."""
        from daemon import handoff as handoffs

        path = handoffs.resolve(self.ctx.paths, str(req.get("handoff") or ""))
        claude = req.get("claude_path")
        launched = self._launch(path, trigger="manual", force=bool(req.get("force")),
                                claude_path=str(claude) if claude else None)  # fmt: skip
        if launched.result.ok:
            for jid in (job_id("launch", launched.handoff_id), job_id("reminder", launched.handoff_id)):
                if self.sched.get_job(jid) is not None:
                    self.sched.remove_job(jid)
        return dict(launched.to_dict())

    # ---- jobs

    def _launch(
        self, path: Path, trigger: str, *, force: bool = False, claude_path: str | None = None
    ) -> Any:
        """Launch from inside the daemon. Raise BatonError as launch_handoff does; a claude missing from the
        daemon's PATH is explained as such."""
        from daemon.launch import ProgramNotFound, launch_handoff

        try:
            return launch_handoff(
                self.ctx.paths, self.settings, path, now=datetime.now(UTC), engine=self.ctx.engine,
                trigger=trigger, watch=True, force=force, claude_fallback=claude_path,
            )  # fmt: skip
        except ProgramNotFound as exc:
            if exc.what != "claude" or os.path.isabs(exc.name):
                raise
            raise ProgramNotFound(
                exc.name,
                exc.what,
                f"the daemon (pid {os.getpid()}) cannot find `{exc.name}` on its PATH "
                f"({os.environ.get('PATH', '')})",
                hint="set launch.claude_path to claude's full path (`which claude`), or reinstall the "
                "service (`baton service install`) so that it gets your PATH",
            ) from None

    def run_launch(
        self, handoff: str, handoff_id: str, project: str, attempt: int = 0, at_reset: bool = True,
        claude_path: str | None = None,
    ) -> None:  # fmt: skip
        """The launch job: at the reset, check the quota first; then launch, or move the launch later, or
        give up and say so. A launch at a time the person chose starts whatever the quota."""
        from daemon import handoff as handoffs
        from daemon.launch import LaunchInProgress, NotPending

        path = Path(handoff)
        try:
            h = handoffs.load(path)
        except BatonError as exc:
            self.notify("Scheduled launch failed", exc.message)
            return
        if h.status != "pending":
            log.info("launch skipped: handoff not pending", handoff=h.id, status=h.status)
            return
        now = datetime.now(UTC)
        sc = self.settings.scheduler
        if at_reset:
            readiness = quota_ready(self.ctx.quota_state(), now, sc.reset_below_percent)
            if not readiness.ready:
                self._postpone(path, h, attempt, readiness, now, claude_path)
                return
        retry = f"\nThe handoff stays pending: baton launch now {h.id}"
        try:
            launched = self._launch(path, trigger="scheduled" if attempt == 0 else "retry",
                                    claude_path=claude_path)  # fmt: skip
        except (LaunchInProgress, NotPending) as exc:  # `launch now` got there first: nothing to add
            log.info("scheduled launch skipped", handoff=h.id, reason=exc.message)
            return
        except Exception as exc:  # the launch failed: say so, and do not try again behind the person's back
            _forget_schedule(self.ctx.paths, h.id)
            if isinstance(exc, BatonError):
                text = exc.message + ("\n" + exc.hint if exc.hint else "")
            else:
                log.exception("launch failed", handoff=h.id)
                text = f"{type(exc).__name__}: {exc} (see baton's log)"
            self.notify(f"Could not resume {h.project_name}", text + retry)
            return
        if launched.result.ok:
            self.notify(f"Claude Code resumed {h.project_name}", launched.describe())
        else:
            _forget_schedule(self.ctx.paths, h.id)
            self.notify(f"Launch of {h.project_name} failed", launched.describe() + retry)

    def _postpone(
        self,
        path: Path,
        h: Handoff,
        attempt: int,
        readiness: Readiness,
        now: datetime,
        claude_path: str | None,
    ) -> None:
        from daemon import handoff as handoffs

        sc = self.settings.scheduler
        if attempt >= sc.max_retries:
            handoffs.update(path, scheduled_for=None, start="manual")
            self.notify(
                f"Launch of {h.project_name} given up",
                f"The quota has still not reset ({readiness.reason}) after {sc.max_retries} retries. The "
                f"handoff stays pending: start it with `baton launch now {h.id}`.",
            )
            return
        run_at = now + timedelta(minutes=sc.retry_minutes)
        add_launch(self.sched, self.settings, path, run_at, now=now, at_reset=True, attempt=attempt + 1,
                   reminder=False, claude_path=claude_path)  # fmt: skip
        self.notify(
            f"Launch of {h.project_name} postponed",
            f"The quota has not reset yet ({readiness.reason}). Trying again at {self.local(run_at)} "
            f"(retry {attempt + 1} of {sc.max_retries}).",
        )

    def run_reminder(
        self, handoff: str, handoff_id: str, project: str, launch_at: str, attempt: int = 0
    ) -> None:
        at = datetime.fromisoformat(launch_at)
        name = Path(project).name or project
        self.notify(
            f"Claude Code resumes {name} at {self.local(at)}",
            f"A primed session starts from handoff {handoff_id}. "
            f"To stop it: baton schedule cancel {handoff_id}",
        )

    def _on_missed(self, event: Any) -> None:
        parts = split_job_id(event.job_id)
        if parts is not None and parts[0] == "launch":
            self._report_missed(parts[1], event.scheduled_run_time)

    def _report_missed(self, hid: str, due: datetime) -> None:
        _forget_schedule(self.ctx.paths, hid)
        name = _project_of(self.ctx.paths, hid)
        self.notify(
            f"Launch of {name} missed",
            f"It was due at {self.local(due)}, more than {self.settings.scheduler.grace_minutes} min ago "
            f"(the computer was asleep or off). The handoff stays pending: baton launch now {hid}",
        )

    def _on_error(self, event: Any) -> None:
        log.error("scheduled job failed", job=event.job_id, error=repr(event.exception))

    # ---- auto mode

    def on_snapshot(self, snapshot: Any) -> None:
        """Quota listener: at the limit, schedule each project's newest pending handoff for reset + offset."""
        sc = self.settings.scheduler
        weekly = _get(snapshot, "weekly") if snapshot is not None else None
        limited = snapshot is not None and (_get(snapshot, "limited") or _get(weekly, "limited"))
        if not sc.auto_mode or not limited:
            return
        reset = reset_time(snapshot)
        now = datetime.now(UTC)
        if reset is None:
            return
        with self._lock:
            for path, h in self._auto_candidates():
                offset = timedelta(minutes=0 if h.start == "at-reset" else sc.offset_minutes)
                run_at = reset + offset
                if run_at <= now:
                    continue
                try:
                    add_launch(self.sched, self.settings, path, run_at, now=now, at_reset=True)
                except BatonError as exc:  # one bad handoff must not keep the others from being scheduled
                    log.warning("auto mode could not schedule a handoff", handoff=h.id, error=exc.message)
                    continue
                self.notify(
                    f"Next session of {h.project_name} at {self.local(run_at)}",
                    f"The quota is used up; it resets at {self.local(reset)}. baton will resume the work "
                    f"from handoff {h.id} then. To stop it: baton schedule cancel {h.id}",
                )

    def _auto_candidates(self) -> list[tuple[Path, Handoff]]:
        from daemon import handoff as handoffs

        seen: set[str] = set()
        out = []
        for path, h in handoffs.list_all(self.ctx.paths):
            if h.status != "pending" or h.project in seen:
                continue
            seen.add(h.project)
            if h.start in ("at-reset", "after-reset") and self.sched.get_job(job_id("launch", h.id)) is None:
                out.append((path, h))
        return out


_SERVICE: SchedulerService | None = None


def _service() -> SchedulerService:
    if _SERVICE is None:
        raise RuntimeError("baton's scheduler jobs run only inside the daemon")
    return _SERVICE


def launch_job(
    handoff: str, handoff_id: str, project: str, attempt: int = 0, at_reset: bool = True,
    claude_path: str | None = None,
) -> None:  # fmt: skip
    """Job function (stored as text in the job store): launch a handoff's session.

    Jobs stored by earlier versions carry no `at_reset`: they were all checked against the quota."""
    _service().run_launch(handoff, handoff_id, project, attempt, at_reset, claude_path)


def reminder_job(handoff: str, handoff_id: str, project: str, launch_at: str, attempt: int = 0) -> None:
    """Job function: the notification a few minutes before a launch."""
    _service().run_reminder(handoff, handoff_id, project, launch_at, attempt)


def attach(ctx: DaemonContext) -> SchedulerService:
    """Start the scheduler in the daemon: control ops, the auto-mode quota listener, shutdown. Return it."""
    global _SERVICE
    service = SchedulerService(ctx)
    _SERVICE = service
    ctx.handlers.update({
        "schedule.add": service.op_add,
        "schedule.list": service.op_list,
        "schedule.cancel": service.op_cancel,
        "launch.now": service.op_launch_now,
    })  # fmt: skip
    ctx.quota_listeners.append(service.on_snapshot)
    ctx.shutdown_hooks.append(service.stop)
    service.start()
    return service
