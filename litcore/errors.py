"""The one base of every litlab error. A command prints it as one line (``error: what (what to
do)``) and exits non-zero; the app shows it as a notification and keeps running."""

from __future__ import annotations


class UserError(Exception):
    """A problem the person can fix; ``hint`` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
