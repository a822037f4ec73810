"""Domain errors. The API maps each to an RFC 9457 problem response."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal the write side can give."""

    title = "Request refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidCommand(DomainError):
    """The command breaks an invariant; `errors` maps each field to its messages."""

    title = "Validation failed"

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors

    @classmethod
    def field(cls, name: str, message: str) -> InvalidCommand:
        return cls({name: [message]})


class NotFound(DomainError):
    """A world, branch or entity that does not exist (or is not visible)."""

    title = "Not found"


class Conflict(DomainError):
    """The command is valid but the current state refuses it (e.g. still referenced)."""

    title = "Conflict"

    def __init__(self, detail: str, references: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.references = references or []


class StaleVersion(DomainError):
    """An `If-Match` precondition named a version that is no longer current."""

    title = "Precondition failed"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, but the current version is {actual}")
        self.expected = expected
        self.actual = actual


class ConcurrentWrite(DomainError):
    """Other writers kept winning the race for the stream; the command was not applied."""

    title = "Concurrent modification"
