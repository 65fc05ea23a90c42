"""Errors a user can act on: each says where it happened, what went wrong, and what to do."""
from __future__ import annotations


class Explained:
    """What went wrong, where, and what to do; IPython shows these lines instead of a traceback."""

    def __init__(self, what: str, todo: str = "", where: str = "") -> None:
        self.what = what
        self.todo = todo
        self.where = where
        super().__init__(self._text())  # type: ignore[call-arg]

    def _render_traceback_(self) -> list:
        """IPython shows this instead of a traceback: the message is the useful part."""
        return [f"{type(self).__name__}: {self}"]

    def _text(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        return f"{head}\n  -> {self.todo}" if self.todo else head


class NimbusError(Explained, Exception):
    """Base error. ``str()`` reads as one sentence of what and one of what to do."""


class Interrupted(Explained, KeyboardInterrupt):
    """Ctrl-C (a kernel interrupt) stopped a long run: says what was kept and how to go on, in a few lines.
    Still a ``KeyboardInterrupt``, so ``except Exception`` around the call does not swallow it."""


class UserInputError(NimbusError):
    """The caller gave something wrong (a name, a value, an object); magics show it as UsageError."""


class CodeCaptureError(UserInputError):
    """A component's code lives in the notebook and cannot be shipped with the pipeline."""


class DeploymentNotFound(UserInputError):
    """No deployment of that name in the registry."""


class DeploymentGone(DeploymentNotFound):
    """A ``Deployment`` handle whose deployment was destroyed (or replaced) since the handle was made."""


class DeployFailed(NimbusError):
    """A deploy could not finish; nothing it started was left running."""


class EndpointError(NimbusError):
    """An endpoint answered with an error, or did not answer."""


class EndpointRejected(EndpointError):
    """The endpoint refused the request itself (a 4xx: bad input, too large, throttled): the caller's to fix.

    ``status`` and ``code`` are the endpoint's own (e.g. 400 ``unknown_field``); ``message`` its words."""

    def __init__(self, what: str, todo: str = "", where: str = "", status: int = 400, code: str = "",
                 message: str = "") -> None:
        self.status, self.code, self.message = status, code, message or what
        super().__init__(what, todo, where)
