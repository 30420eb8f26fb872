"""Errors a person can fix. ``UserError`` is the one base of every litlab error (agentlab's
included: this package depends on no other, the others on it); the CLI prints one line."""

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


class LibraryError(UserError):
    """A problem with the paper library."""


class LibraryBusy(LibraryError):
    """Another index run holds the library."""

    exit_code = 4
