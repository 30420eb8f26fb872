"""Errors of the paper library; the CLI prints each as one line with its hint."""

from __future__ import annotations


class LibraryError(Exception):
    """A problem with the library the person can fix; ``hint`` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class LibraryBusy(LibraryError):
    """Another index run holds the library."""

    exit_code = 4
