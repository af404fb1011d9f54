"""baton: follows Claude Code's usage, warns before the quota runs out, carries the work across the reset."""

__version__ = "0.1.0"
