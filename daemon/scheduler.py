"""The scheduler: launches of primed sessions (and their reminders) that survive restarts and kill -9.

APScheduler 3.x runs inside the daemon (`attach(ctx)`) with a persistent SQLAlchemy job store at
`paths.jobs_db`. Jobs name their function as "module:function" text, and every job carries its own
`misfire_grace_time` and `coalesce`: APScheduler stores them per job when it is added, so the daemon's
defaults would not apply to jobs the CLI wrote. Job ids are `launch:<handoff id>` and `reminder:<handoff id>`.

The CLI asks the daemon over the control socket (`schedule.add`, `schedule.list`, `schedule.cancel`,
`launch.now`); when no daemon runs it writes the job store itself through a *paused* scheduler (an unpaused
one would run the jobs), and the daemon runs them when it starts.

At launch time the quota must really have reset (the window ended, or the figure is below
`scheduler.reset_below_percent`); if not, the launch moves `retry_minutes` later, up to `max_retries` times.
A launch missed by more than `grace_minutes` (machine asleep or off) is not run: the person is told, and the
handoff stays pending. In auto mode, when the quota hits its limit, the newest pending handoff of each project
that asked to start at the reset is scheduled by itself.

Time parsing and the readiness check are pure; the rest is the thin edge around APScheduler.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
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

# ------------------------------------------------------------------------------------------- pure: times

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm)?$", re.I)


def parse_duration(text: str) -> timedelta:
    """Return the duration in `text` ("5m", "90s", "1h30m", "2 hours", "0"). Raise BatonError if malformed."""
    s = text.strip().lower()
    if s in ("0", "0s", "0m"):
        return timedelta(0)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if s[pos : m.start()].strip() or m.group(2) not in _UNITS:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    else:
        if pos and not s[pos:].strip():
            return timedelta(seconds=total)
    raise BatonError(f"not a duration: {text!r}", hint="write it like 90s, 5m, 1h30m or 2 hours")


def parse_when(text: str, now: datetime, tz: tzinfo) -> datetime:
    """Return the aware UTC time `text` names, relative to `now` (aware).

    Accepted: relative (`+90s`, `in 5m`), a local clock time (`18:05`, `6:05pm`: today, or tomorrow if that
    has passed), or ISO 8601 (`2026-11-23T18:05`, local when it has no offset). Raise BatonError otherwise, or
    if an absolute time is in the past.
    """
    s = text.strip()
    low = s.lower()
    if low.startswith("+") or low.startswith("in "):
        return (now + parse_duration(low[1:] if low.startswith("+") else low[3:])).astimezone(UTC)
    if low == "now":
        return now.astimezone(UTC)
    m = _CLOCK.match(low)
    if m:
        hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if m.group(4):
            if not 1 <= hour <= 12:
                raise BatonError(f"not a clock time: {text!r}")
            hour = hour % 12 + (12 if m.group(4) == "pm" else 0)
        if hour > 23 or minute > 59 or second > 59:
            raise BatonError(f"not a clock time: {text!r}")
        local_now = now.astimezone(tz)
        candidate = _local(local_now.date(), time(hour, minute, second), tz)
        if candidate <= now:
            candidate = _local(local_now.date() + timedelta(days=1), time(hour, minute, second), tz)
        return candidate.astimezone(UTC)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise BatonError(
            f"not a time: {text!r}",
            hint="use an ISO time (2026-11-23T18:05), a clock time (18:05), +90s or 'in 5m'",
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    if dt <= now:
        raise BatonError(f"{text!r} is in the past")
    return dt.astimezone(UTC)


def _local(day: date, clock: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, clock).replace(tzinfo=tz)


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
        }


def job_id(kind: str, handoff_id: str) -> str:
    return f"{kind}:{handoff_id}"


def split_job_id(jid: str) -> tuple[str, str] | None:
    """Return (kind, handoff id) of a baton job id, or None for another id."""
    kind, sep, hid = jid.partition(":")
    return (kind, hid) if sep and kind in KINDS and hid else None


# -------------------------------------------------------------------------------------- the job store


def _zone(settings: Settings) -> tzinfo:
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
    attempt: int = 0,
    reminder: bool = True,
) -> list[JobInfo]:
    """Schedule the launch of the handoff at `handoff_path` at `run_at` (and its reminder); return the jobs.

    Replaces an earlier schedule of the same handoff. Raise BatonError if the handoff is not pending or the
    time is more than the grace period in the past.
    """
    from daemon import handoff as handoffs

    h = handoffs.load(handoff_path)
    sc = settings.scheduler
    if h.status != "pending":
        raise BatonError(f"handoff {h.id} is {h.status}; only a pending handoff can be scheduled")
    if run_at < now - timedelta(minutes=sc.grace_minutes):
        raise BatonError(f"{run_at.isoformat()} is in the past")
    kwargs = {"handoff": str(handoff_path), "handoff_id": h.id, "project": h.project, "attempt": attempt}
    grace = max(1, sc.grace_minutes * 60)  # APScheduler needs a positive number
    sched.add_job(
        LAUNCH_FUNC,
        "date",
        run_date=run_at,
        id=job_id("launch", h.id),
        name=f"launch {h.project_name}",
        kwargs=kwargs,
        replace_existing=True,
        misfire_grace_time=grace,
        coalesce=True,
        max_instances=1,
    )
    jobs = [JobInfo(job_id("launch", h.id), "launch", run_at, h.id, str(handoff_path), h.project, attempt)]
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
        jobs.append(JobInfo(rid, "reminder", remind_at, h.id, str(handoff_path), h.project, attempt))
    elif sched.get_job(rid) is not None:
        sched.remove_job(rid)
    handoffs.update(handoff_path, scheduled_for=run_at)
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
            )
        )
    return sorted(out, key=lambda j: (j.run_at, j.kind))


def cancel(sched: BackgroundScheduler, paths: BatonPaths, ref: str) -> list[str]:
    """Remove the jobs `ref` names (a job id, a handoff id or prefix, or a handoff file); return their ids.

    Cancelling a launch leaves the handoff pending, to be started by hand (`baton launch now`), never by auto
    mode. Raise BatonError if nothing matches.
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
        raise BatonError(f"nothing scheduled for {ref!r}", hint="see `baton schedule list`")
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


def reset_time(paths: BatonPaths, snapshot: Any = None) -> datetime | None:
    """Return when the quota is back: the 5-hour window's reset, or the week's when the weekly limit is hit.

    From `snapshot`, else the daemon's snapshot file; None when no window is open or nothing is known.
    """
    if snapshot is None:
        try:
            from daemon import snapshot as snapshots
        except ImportError:
            return None
        snapshot = snapshots.read(paths)
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


# -------------------------------------------------------------------------- status for `baton status`


def status_lines(paths: BatonPaths, now: datetime | None = None) -> list[str]:
    """Return lines on what is scheduled and what waits for the limit, for `baton status` (no APScheduler)."""
    now = now or datetime.now(UTC)
    lines = []
    scheduled: set[str] = set()
    for jid, at in _stored_jobs(paths):
        parts = split_job_id(jid)
        if parts is None or parts[0] != "launch":
            continue
        scheduled.add(parts[1])
        minutes = int((at - now).total_seconds() // 60)
        when = f"in {minutes // 60}h {minutes % 60:02d}m" if minutes >= 0 else f"{-minutes} min overdue"
        local = at.astimezone().strftime("%H:%M")
        lines.append(f"Next launch: {_project_of(paths, parts[1])} at {local} ({when}), handoff {parts[1]}")
    from daemon import handoff as handoffs

    for _path, h in handoffs.list_all(paths):
        if h.status == "pending" and h.start in ("at-reset", "after-reset") and h.id not in scheduled:
            lines.append(f"Handoff {h.id} ({h.project_name}) waits: it is scheduled when the quota runs out")
    return lines


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
                add_launch(self.sched, self.settings, path, now, now=now, reminder=False)
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
        return dt.astimezone(_zone(self.settings)).strftime("%H:%M")

    # ---- control ops

    def op_add(self, req: dict[str, Any]) -> dict[str, Any]:
        from daemon import handoff as handoffs

        now = datetime.now(UTC)
        path = handoffs.resolve(self.ctx.paths, str(req.get("handoff") or ""))
        run_at = self._run_at(req, now)
        jobs = add_launch(self.sched, self.settings, path, run_at, now=now)
        return {"jobs": [j.to_dict(_zone(self.settings)) for j in jobs]}

    def _run_at(self, req: dict[str, Any], now: datetime) -> datetime:
        if req.get("at"):
            return datetime.fromisoformat(str(req["at"])).astimezone(UTC)
        if req.get("at_reset"):
            reset = reset_time(self.ctx.paths, self.ctx.quota_state())
            if reset is None:
                raise BatonError(
                    "the reset time is not known: no 5-hour window is open, or no figure yet",
                    hint="launch now with `baton launch now`, or give a time with --at",
                )
            return reset + timedelta(seconds=float(req.get("offset_seconds") or 0))
        raise BatonError("schedule.add needs 'at' or 'at_reset'")

    def op_list(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"jobs": [j.to_dict(_zone(self.settings)) for j in list_jobs(self.sched)]}

    def op_cancel(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"removed": cancel(self.sched, self.ctx.paths, str(req.get("id") or ""))}

    def op_launch_now(self, req: dict[str, Any]) -> dict[str, Any]:
        from daemon import handoff as handoffs

        path = handoffs.resolve(self.ctx.paths, str(req.get("handoff") or ""))
        launched = self._launch(path, trigger="manual")
        for jid in (job_id("launch", launched.handoff_id), job_id("reminder", launched.handoff_id)):
            if self.sched.get_job(jid) is not None:
                self.sched.remove_job(jid)
        plan = launched.result.plan
        return {
            "launch_id": launched.launch_id,
            "mode": plan.mode,
            "tmux_session": plan.tmux_session,
            "attach": plan.attach_command,
            "pid": launched.result.pid,
            "log_path": plan.log_path,
            "error": launched.result.error,
            "message": launched.describe(),
        }

    # ---- jobs

    def _launch(self, path: Path, trigger: str) -> Any:
        from daemon.launch import launch_handoff

        return launch_handoff(
            self.ctx.paths,
            self.settings,
            path,
            now=datetime.now(UTC),
            engine=self.ctx.engine,
            trigger=trigger,
            watch=True,
        )

    def run_launch(self, handoff: str, handoff_id: str, project: str, attempt: int = 0) -> None:
        """The launch job: check the quota, then launch, or move the launch later, or give up and say so."""
        from daemon import handoff as handoffs

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
        readiness = quota_ready(self.ctx.quota_state(), now, sc.reset_below_percent)
        if not readiness.ready:
            self._postpone(path, h, attempt, readiness, now)
            return
        retry = f"\nThe handoff stays pending: baton launch now {h.id}"
        try:
            launched = self._launch(path, trigger="scheduled" if attempt == 0 else "retry")
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

    def _postpone(self, path: Path, h: Handoff, attempt: int, readiness: Readiness, now: datetime) -> None:
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
        add_launch(self.sched, self.settings, path, run_at, now=now, attempt=attempt + 1, reminder=False)
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
        reset = reset_time(self.ctx.paths, snapshot)
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
                    add_launch(self.sched, self.settings, path, run_at, now=now)
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


def launch_job(handoff: str, handoff_id: str, project: str, attempt: int = 0) -> None:
    """Job function (stored as text in the job store): launch a handoff's session."""
    _service().run_launch(handoff, handoff_id, project, attempt)


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


# ------------------------------------------------------------------------------- the CLI's side (client)


@dataclass(frozen=True)
class ClientResult:
    """What a schedule request did: the jobs (JSON form), and whether a running daemon took it."""

    jobs: list[dict[str, Any]]
    via_daemon: bool


def _call(paths: BatonPaths, op: str, **fields: Any) -> dict[str, Any] | None:
    """Return the daemon's reply to `op`, or None when no daemon runs. Raise BatonError if it refuses."""
    from daemon import control

    try:
        return control.call(paths, op, timeout=30.0, **fields)
    except control.DaemonNotRunning:
        return None


def request_add(
    paths: BatonPaths,
    settings: Settings,
    handoff_path: Path,
    *,
    at: datetime | None,
    offset: timedelta | None,
    now: datetime,
) -> ClientResult:
    """Schedule a handoff's launch at `at`, or at the reset plus `offset` when `at` is None; return the jobs.

    Through the daemon when it runs, else into the job store directly. Raise BatonError if the reset time is
    not known (no daemon has seen the quota yet) or the time is past.
    """
    fields: dict[str, Any] = {"handoff": str(handoff_path)}
    if at is not None:
        fields["at"] = at.isoformat()
    else:
        fields.update(at_reset=True, offset_seconds=(offset or timedelta(0)).total_seconds())
    reply = _call(paths, "schedule.add", **fields)
    if reply is not None:
        return ClientResult(list(reply.get("jobs", [])), True)
    if at is None:
        reset = reset_time(paths)
        if reset is None or reset + (offset or timedelta(0)) <= now:
            raise BatonError(
                "the reset time is not known: no 5-hour window is open, or baton has no quota figure yet",
                hint="give a time with --at, or start the daemon (`baton run`)",
            )
        at = reset + (offset or timedelta(0))
    with offline_scheduler(paths) as sched:
        jobs = add_launch(sched, settings, handoff_path, at, now=now)
    return ClientResult([j.to_dict(_zone(settings)) for j in jobs], False)


def request_list(paths: BatonPaths, settings: Settings | None = None) -> ClientResult:
    """Return the scheduled jobs, from the daemon when it runs, else from the job store."""
    reply = _call(paths, "schedule.list")
    if reply is not None:
        return ClientResult(list(reply.get("jobs", [])), True)
    if not paths.jobs_db.exists():
        return ClientResult([], False)
    if settings is None:
        from daemon.config import load_settings

        settings = load_settings(paths)
    with offline_scheduler(paths) as sched:
        return ClientResult([j.to_dict(_zone(settings)) for j in list_jobs(sched)], False)


def request_cancel(paths: BatonPaths, ref: str) -> tuple[list[str], bool]:
    """Cancel the jobs `ref` names; return (removed job ids, whether the daemon did it). Raise BatonError."""
    reply = _call(paths, "schedule.cancel", id=ref)
    if reply is not None:
        return list(reply.get("removed", [])), True
    if not paths.jobs_db.exists():
        raise BatonError(f"nothing scheduled for {ref!r}", hint="see `baton schedule list`")
    with offline_scheduler(paths) as sched:
        return cancel(sched, paths, ref), False
