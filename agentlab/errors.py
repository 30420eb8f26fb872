"""The assistant's exceptions: each says what went wrong and what to do next.

All derive from :class:`litcore.errors.UserError`, the one base of every litlab error (it
lives in the foundation every package depends on). The CLI prints ``str(error)`` as one line and exits
with its ``exit_code``; the TUI shows it as a notification. Anything that is not a ``UserError``
is a bug: the CLI keeps its traceback, the app logs it to ``LITLAB_HOME/logs/app.log``.
"""

from __future__ import annotations

from litcore.errors import UserError

__all__ = ["ConfigError", "DraftError", "ForeignServer", "MissingDependency", "ModelNotFound",
           "ModelPrepareError", "ServerFailed", "ServerGone", "ServerUnavailable", "UserError"]


class ConfigError(UserError):
    """A setting is invalid: bad value, unknown key, unreadable litlab.toml."""


class ModelNotFound(UserError):
    """A model name that is neither packaged nor served."""


class ModelPrepareError(UserError):
    """Converting a packaged GGUF into a checkpoint failed (missing package, corrupt file)."""


class ServerUnavailable(UserError):
    """The vLLM server cannot be reached, crashed, or did not come up in time."""

    exit_code = 3


class ServerGone(ServerUnavailable):
    """The server could not be reached at all, or dropped the connection mid-answer: the
    request was not answered, so another server may take it (:mod:`agentlab.pool`)."""


class ServerFailed(ServerUnavailable):
    """The server answered with an error of its own (HTTP 5xx): a bug of the server, or a
    server shutting down or whose engine died (then its health check fails too)."""


class ForeignServer(UserError):
    """Something else answers on the port litlab wanted for its server."""

    exit_code = 3


class MissingDependency(UserError):
    """An optional dependency is not installed; the hint is the install command."""


class DraftError(UserError):
    """A draft `litlab check` cannot read (empty, binary, too large, an unknown format), or a
    library it cannot check against. Exit code 2: 1 means something was contradicted."""

    exit_code = 2
