"""Hash chain of the registry journal (domain.md §9.1: every registry change is recorded, and the record can be
checked by anyone holding a copy).

An entry's content is the canonical JSON of ``{seq, at, kind, actor_id, payload}``: keys sorted, no spaces,
UTF-8 kept as is (``ensure_ascii=False``), Decimals and dates written as strings, times as ISO 8601 UTC with
microseconds and a ``Z``. Its hash is ``sha256(prev_hash + "\\n" + content)`` in lower-case hex; the first
entry has seq 1 and links to ``GENESIS``. Verification needs nothing but this module and the entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeAlias

#: the previous hash of the first entry
GENESIS = "0" * 64

JSONValue: TypeAlias = "None | bool | int | str | list[JSONValue] | dict[str, JSONValue]"

#: reasons a chain is reported broken (stable codes)
SEQ_GAP = "seq_gap"
PREV_LINK_BROKEN = "prev_link_broken"
HASH_MISMATCH = "hash_mismatch"
CONTENT_MISMATCH = "content_mismatch"
#: the chain ends before the head an earlier verification reached: its last entries were deleted
TRUNCATED = "truncated"
#: the entry at the head an earlier verification reached has another hash now: entries up to it were replaced
ANCHOR_MISMATCH = "anchor_mismatch"

#: how an entry's fields were checked against its hashed text (VerifyResult.fields)
FIELDS_GENERATED = "generated"
FIELDS_COMPARED = "compared"
#: compared entry by entry because the table's definition could not be read (a read-only database or role)
FIELDS_COMPARED_UNREAD = "compared_unread"

#: the header line of an exported journal file tells how to recompute the hashes
HOW_TO_VERIFY = (
    "For each entry line in order: content = JSON of the object {seq, at, kind, actor_id, payload} taken from the "
    "line, with keys sorted at every level, separators ',' and ':' (no spaces), non-ASCII characters written as "
    "UTF-8 (not escaped); hash = lower-case hex SHA-256 of the UTF-8 bytes of prev_hash + '\\n' + content. "
    "The first entry has seq 1 and prev_hash = 64 zeros; every next entry has seq + 1 and prev_hash equal to "
    "the hash of the entry before it."
)


def iso_utc(moment: datetime) -> str:
    """A timezone-aware time as ISO 8601 in UTC with microseconds and 'Z', the journal's only time format."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("journal times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise(value: object) -> JSONValue:
    """The JSON value the journal stores for `value`: Decimals and dates become strings, tuples lists, mapping keys
    are sorted. Floats are refused: quantities are exact (DESIGN.md §3)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        return format(value, "f")
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError(f"journal payload keys must be strings, not {type(key).__name__}")
            out[key] = normalise(value[key])
        return out
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, float):
        raise TypeError("floats are not allowed in the journal; use Decimal or int")
    raise TypeError(f"cannot record a {type(value).__name__} in the journal")


def canonical_json(value: object) -> str:
    """Canonical JSON text: normalised value, sorted keys, no spaces, UTF-8 not escaped."""
    return canonical_text(normalise(value))


def canonical_text(value: JSONValue) -> str:
    """canonical_json of a value that is already normalised (so it is not walked twice)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


_KIND_JSON: dict[str, str] = {}


def _kind_json(kind: str) -> str:
    text = _KIND_JSON.get(kind)
    if text is None:
        text = json.dumps(kind, ensure_ascii=False)
        if len(_KIND_JSON) < 256:
            _KIND_JSON[kind] = text
    return text


def entry_content(
    seq: int, at: datetime | str, kind: str, actor_id: int | None, payload: Mapping[str, object] | str
) -> str:
    """The canonical content of an entry. `at` may be given already formatted (iso_utc) and `payload` already as
    canonical JSON text; the result equals canonical_json of the five fields (keys in sorted order)."""
    at_text = at if isinstance(at, str) else iso_utc(at)
    payload_text = payload if isinstance(payload, str) else canonical_json(payload)
    actor = "null" if actor_id is None else str(int(actor_id))
    return (
        f'{{"actor_id":{actor},"at":"{at_text}","kind":{_kind_json(kind)},'
        f'"payload":{payload_text},"seq":{int(seq)}}}'
    )


def entry_hash(prev_hash: str, content: str) -> str:
    """sha256(prev_hash + "\\n" + content) as lower-case hex."""
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a chain check: how many entries were read, and the first broken one with the reason (for a
    truncated chain: the first missing entry, and in `missing_through` the last one)."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str = ""
    head_hash: str = GENESIS
    missing_through: int | None = None
    #: how the entries' fields were held to their hashed text: FIELDS_GENERATED (the database computes them from
    #: it, and the schema says so), FIELDS_COMPARED (entry by entry: the table no longer generates them),
    #: FIELDS_COMPARED_UNREAD (entry by entry: the table's definition could not be read), or "" (chain only)
    fields: str = ""


def verify_contents(
    rows: Iterable[tuple[int, str, str, str]], *, start_seq: int = 1, start_hash: str = GENESIS
) -> VerifyResult:
    """Check a chain given as (seq, content, prev_hash, hash) in seq order; stops at the first broken entry.

    The tight loop avoids per-entry function calls: one SHA-256 of prev_hash + content per entry."""
    sha256 = hashlib.sha256
    expected_seq = start_seq
    last = start_hash
    count = 0
    for seq, content, prev_hash, stored in rows:
        count += 1
        if seq != expected_seq:
            return VerifyResult(False, count, seq, SEQ_GAP, last)
        if prev_hash != last:
            return VerifyResult(False, count, seq, PREV_LINK_BROKEN, last)
        if sha256(f"{prev_hash}\n{content}".encode()).hexdigest() != stored:
            return VerifyResult(False, count, seq, HASH_MISMATCH, last)
        last = stored
        expected_seq += 1
    return VerifyResult(True, count, None, "", last)


def verify_prepared(
    rows: Iterable[tuple[int, bytes, str, bool]],
    *,
    start_seq: int = 1,
    start_hash: str = GENESIS,
    recheck: Callable[[int], bool] | None = None,
) -> VerifyResult:
    """Check a chain read as (seq, message, hash, fields_ok) in seq order, where message is the UTF-8 of
    prev_hash + "\n" + content (the exact bytes hashed) and `fields_ok` says the stored fields give the content.
    A row whose fields do not match is passed to `recheck(seq)` (a slower comparison by value) before it is
    reported. Same verdicts as verify_contents, with no decoding or encoding per entry."""
    sha256 = hashlib.sha256
    expected_seq = start_seq
    last = start_hash
    link = f"{last}\n".encode()
    count = 0
    for seq, message, stored, fields_ok in rows:
        count += 1
        if seq != expected_seq:
            return VerifyResult(False, count, seq, SEQ_GAP, last)
        if not message.startswith(link):
            return VerifyResult(False, count, seq, PREV_LINK_BROKEN, last)
        if sha256(message).hexdigest() != stored:
            return VerifyResult(False, count, seq, HASH_MISMATCH, last)
        if not fields_ok and (recheck is None or not recheck(seq)):
            return VerifyResult(False, count, seq, CONTENT_MISMATCH, last)
        last = stored
        link = f"{stored}\n".encode()
        expected_seq += 1
    return VerifyResult(True, count, None, "", last)


def verify_chain(
    entries: Iterable[tuple[int, datetime | str, str, int | None, Mapping[str, object] | str, str, str]],
    *,
    start_seq: int = 1,
    start_hash: str = GENESIS,
) -> VerifyResult:
    """Check entries given as (seq, at, kind, actor_id, payload, prev_hash, hash) in seq order, recomputing each
    content from its fields; names the first entry whose seq, link or hash is wrong."""

    def contents() -> Iterator[tuple[int, str, str, str]]:
        for seq, at, kind, actor_id, payload, prev_hash, stored in entries:
            yield seq, entry_content(seq, at, kind, actor_id, payload), prev_hash, stored

    return verify_contents(contents(), start_seq=start_seq, start_hash=start_hash)


def check_anchor(
    result: VerifyResult, anchor_seq: int, anchor_hash: str, hash_at_anchor: str | None
) -> VerifyResult:
    """Hold a verified chain against a head (seq, hash) recorded by an earlier verification. Deleting the last
    entries leaves a chain that still links up from GENESIS, so only such an anchor, kept apart from the chain,
    shows it: no entry at `anchor_seq` any more (`hash_at_anchor` None) means entries count+1 … anchor_seq are
    missing; another hash there means entries up to it were deleted or replaced since. A broken chain is
    returned as it is (its first broken entry is the finding)."""
    if not result.ok or anchor_seq < 1:
        return result
    if hash_at_anchor is None and result.count < anchor_seq:
        # a verified chain runs from seq 1 without gaps: it ends at seq `count`
        return VerifyResult(
            False, result.count, result.count + 1, TRUNCATED, result.head_hash, missing_through=anchor_seq
        )
    if hash_at_anchor != anchor_hash:
        return VerifyResult(False, result.count, anchor_seq, ANCHOR_MISMATCH, result.head_hash)
    return result
