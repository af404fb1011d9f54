"""Log lines from one-shot commands: one line on stderr, never on stdout (it carries `--json` output)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from daemon import logs
log = logs.get_logger("baton.notify")
log.info("notification_sent", title="t")
log.warning("notification_not_delivered", title="Quota at 90%", kind="alert")
print('{"ok": true}')
"""


def test_warnings_before_configure_are_one_line_on_stderr() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert done.stdout == '{"ok": true}\n'
    assert done.stderr == "baton: warning: notification_not_delivered (title=Quota at 90%, kind=alert)\n"
