"""The library's errors (each a :class:`litcore.errors.UserError`)."""

from __future__ import annotations

from litcore.errors import UserError


class LibraryError(UserError):
    """A problem with the paper library."""


class LibraryBusy(LibraryError):
    """Another index run holds the library."""

    exit_code = 4
