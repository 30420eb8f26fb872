"""The litlab exceptions: each says what went wrong and what to do next.

The CLI prints ``str(error)`` as one line and exits non-zero; the TUI shows it as a
notification. Anything that is not a ``LitlabError`` is a bug and keeps its traceback.
"""

from __future__ import annotations

from retrievers.errors import UserError


class LitlabError(UserError):
    """A problem the person can fix; ``hint`` says how."""


class ConfigError(LitlabError):
    """A setting is invalid: bad value, unknown key, unreadable litlab.toml."""


class ModelNotFound(LitlabError):
    """A model name that is neither packaged nor served."""


class ModelPrepareError(LitlabError):
    """Converting a packaged GGUF into a checkpoint failed (missing package, corrupt file)."""


class ServerUnavailable(LitlabError):
    """The vLLM server cannot be reached, crashed, or did not come up in time."""

    exit_code = 3


class ForeignServer(LitlabError):
    """Something else answers on the port litlab wanted for its server."""

    exit_code = 3


class MissingDependency(LitlabError):
    """An optional dependency is not installed; the hint is the install command."""
