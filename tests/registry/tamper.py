"""What someone with write access to the database has to do to edit a journal entry's fields on their own: the
time, kind, actor and payload columns are generated from the hashed text, so an UPDATE of them is refused, and they
must first be made plain columns again (what the reverse of migration registry 0004 does). Used by the tamper
tests, in-process and against a scratch database in another process."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

_GENERATING = importlib.import_module("lowcarbon.registry.migrations.0004_journal_fields_generated")


def make_journal_fields_plain(vendor: str, execute: Callable[[str], Any]) -> None:
    """Turn the generated columns of the journal into plain ones, keeping their values (`execute` runs one SQL
    statement on the database)."""
    _GENERATING.backwards(None, SimpleNamespace(connection=SimpleNamespace(vendor=vendor), execute=execute))


def payload_update(vendor: str) -> str:
    """The statement that sets one entry's payload column (parameters: the JSON text, the seq)."""
    cast = "::jsonb" if vendor == "postgresql" else ""
    return f"UPDATE registry_journalentry SET payload = %s{cast} WHERE seq = %s"


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
