"""Domain errors. They carry no HTTP codes; `huifang.api.errors` maps them to responses."""

from __future__ import annotations


class HuifangError(Exception):
    """Base of every error Huifang raises on purpose."""


class NotFound(HuifangError):
    pass


class Forbidden(HuifangError):
    pass


class Conflict(HuifangError):
    """The thing changed under us: a guarded transition found another state."""


class AlreadyApplied(HuifangError):
    """A request carrying this idempotency key was applied before: nothing changed now."""


class IllegalTransition(HuifangError):
    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: '{event}' is not allowed in state '{state}'")
        self.machine, self.state, self.event = machine, state, event


class InvalidPhoneNumber(HuifangError, ValueError):
    pass


class ProtocolInjection(HuifangError, ValueError):
    """A value bound for a phone network carries control characters (CR, LF, NUL, …)."""
