"""Errors a user can cause, each with a stable reason code (snake_case) and the field it concerns."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal with a stable reason code, a human message and optionally the field/row it concerns."""

    def __init__(self, code: str, message: str, *, field: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.row = row

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(self.field)
        prefix = f"[{', '.join(where)}] " if where else ""
        return f"{prefix}{self.message} ({self.code})"
