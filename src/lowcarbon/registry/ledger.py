"""Registry ledger services: accounts, issuance of serial blocks, transfers (a partial block is split), final
retirements, administrative cancellations, idempotent client keys and the read helpers (domain.md §3.3, §3.7, §9).

Every service runs in one transaction, appends a journal entry, and locks what it changes (SELECT … FOR NO KEY
UPDATE on PostgreSQL, so that foreign-key checks of concurrent inserts do not queue behind it; SQLite serialises
writers itself) in one global order, so that concurrent calls cannot deadlock: application → accounts (by id) →
blocks → serial counters → journal. The journal append comes last, so the chain lock is held for as short a time as
possible. The frequent statements (transfer, retirement, issuance) are plain SQL on a server-binding cursor, a few
merged into one statement on PostgreSQL and prepared once per connection: they are the platform's hot path.
Transfers that threads of one process ask for at the same moment are settled together in one transaction (see
`do_transfer`), each still with its own outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import uuid4

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, F, IntegerField, Q, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import In
from django.utils import timezone
from django.utils.translation import gettext as _

from lowcarbon.accounts.models import Membership
from lowcarbon.core.domain.combining import Combiner
from lowcarbon.core.domain.errors import DomainError
from lowcarbon.registry import journal
from lowcarbon.registry.domain import serials as ds
from lowcarbon.registry.models import (
    Application,
    ApplicationSystem,
    Cancellation,
    IdempotentRequest,
    JournalEntry,
    RegistryAccount,
    Retirement,
    SerialBlock,
    SerialCounter,
    SystemCarry,
    Transfer,
    Transition,
)

HELD = SerialBlock.State.HELD
RETIRED = SerialBlock.State.RETIRED
CANCELLED = SerialBlock.State.CANCELLED
SPLIT = SerialBlock.State.SPLIT

#: oldest units move first: earliest vintage, then series, then lowest numbers
OLDEST_FIRST = ("vintage", "series", "start")

_QTY = F("end") - F("start") + 1

_T_ACCOUNT = RegistryAccount._meta.db_table
_T_BLOCK = SerialBlock._meta.db_table


# ---------------------------------------------------------------------------------------------------------------
# accounts


def account_for_user(user: Any) -> RegistryAccount:
    """The person's registry account, opened on first use (number XL-U followed by the person's id)."""
    found = RegistryAccount.objects.filter(owner_user_id=user.pk).first()
    if found is not None:
        return found
    return _open_account({"owner_user_id": user.pk}, f"XL-U{user.pk:06d}", user.display_name)


def account_for_org(org: Any) -> RegistryAccount:
    """The organisation's registry account, opened on first use (number XL-O followed by its id)."""
    found = RegistryAccount.objects.filter(owner_org_id=org.pk).first()
    if found is not None:
        return found
    return _open_account({"owner_org_id": org.pk}, f"XL-O{org.pk:06d}", org.name)


def _open_account(owner: dict[str, int], number: str, holder: str) -> RegistryAccount:
    try:
        with transaction.atomic():
            account = RegistryAccount.objects.create(number=number, **owner)
            journal.append("account_open", {"ref": number, "account": number, "holder": holder, **owner})
            return account
    except IntegrityError:  # opened meanwhile by a concurrent request
        return RegistryAccount.objects.get(**owner)


def may_act_for(user: Any, account: RegistryAccount, *, administrative: bool = False) -> bool:
    """Whether `user` may dispose of the units in `account`: the person owning it, or an administrator member of
    the owning organisation; a registry administrator only where a service says so (`administrative`)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return False
    if account.owner_user_id is not None and account.owner_user_id == user.pk:
        return True
    if (
        account.owner_org_id is not None
        and Membership.objects.filter(
            user_id=user.pk, organisation_id=account.owner_org_id, level=Membership.Level.ADMIN
        ).exists()
    ):
        return True
    return bool(administrative and user.is_registry_admin)


def lock_accounts(ids: Iterable[int]) -> list[int]:
    """Row locks on accounts, always taken in id order (the global lock order: application, accounts, blocks,
    counters, journal). A caller that will touch several accounts locks them all in one call, before any block:
    taking one account first and the others later can deadlock with a call that takes them in id order. Locking
    an account the transaction already holds is harmless. Returns the ids that exist."""
    with journal.fast_cursor() as cur:
        return [r[0] for r in cur.fetchall()] if _send_account_locks(cur, ids) else []


def _send_account_locks(cur: Any, ids: Iterable[int]) -> bool:
    """Send lock_accounts' statement on `cur` (its result, the ids that exist, is left unread: inside a
    `journal.pipeline()` the caller need not wait for it). False when there is nothing to lock."""
    wanted = sorted(set(ids))
    if not wanted:
        return False
    if connection.vendor == "postgresql":
        journal.execute_prepared(
            cur,
            f"SELECT id FROM {_T_ACCOUNT} WHERE id = ANY(%s) ORDER BY id{_for_update()}",  # noqa: S608
            [wanted],
        )
    else:
        cur.execute(
            f"SELECT id FROM {_T_ACCOUNT} WHERE id IN ({_marks(len(wanted))}) ORDER BY id{_for_update()}",  # noqa: S608
            wanted,
        )
    return True


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _for_update() -> str:
    # NO KEY UPDATE: we never change keys, and the foreign-key checks of concurrent inserts (a split child's
    # application, account and parent) take KEY SHARE locks that must not queue behind ours
    if connection.vendor == "postgresql":
        return " FOR NO KEY UPDATE"
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def _when(moment: Any) -> Any:
    """A time as the database adapter wants it in raw SQL (UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(moment)


# ---------------------------------------------------------------------------------------------------------------
# idempotent client keys


def _check_key(key: str) -> str:
    key = (key or "").strip()
    if len(key) > IdempotentRequest._meta.get_field("key").max_length or not key.isprintable():
        raise DomainError(
            "invalid_client_key",
            _("A client key is at most 100 printable characters."),
            field="client_key",
        )
    return key


def _replayed(actor: Any, operation: str, key: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result of an earlier request with the same (actor, operation, key); refuses a key reused for
    a different request."""
    if not key:
        return None
    result = (
        IdempotentRequest.objects.filter(actor_id=actor.pk, operation=operation, key=key)
        .values_list("result", flat=True)
        .first()
    )
    if result is None:
        return None
    if result.get("request") != request:
        raise DomainError(
            "idempotency_key_reused",
            _("The client key %(key)s was already used for a different %(operation)s request.")
            % {"key": key, "operation": operation},
            field="client_key",
        )
    return dict(result)


def _remember(actor: Any, operation: str, key: str, request: dict[str, Any], result: dict[str, Any]) -> None:
    """Store the result under the client key, in the same transaction: a concurrent twin fails on the unique key
    and replays this result once it commits."""
    if key:
        IdempotentRequest.objects.create(
            actor_id=actor.pk, operation=operation, key=key, result={"request": request, **result}
        )


def _run_idempotent(
    actor: Any, operation: str, key: str, request: dict[str, Any], run: Any, replay: Any
) -> Any:
    done = _replayed(actor, operation, key, request)
    if done is not None:
        return replay(done)
    try:
        with transaction.atomic():
            return run()
    except IntegrityError:
        done = _replayed(actor, operation, key, request)
        if done is None:
            raise
        return replay(done)


# ---------------------------------------------------------------------------------------------------------------
# numbers


def _insert_record(
    model: Any, prefix: str, values: dict[str, Any], owner_column: str, block_ids: Sequence[int]
) -> tuple[int, str]:
    """Insert a transfer, retirement or cancellation with its links to its blocks, and give it its permanent number
    PREFIX-YEAR-ID (e.g. TR-2026-000042): unique, in creation order, with no shared counter row to queue on."""
    table = model._meta.db_table
    links = model.blocks.through._meta.db_table
    head = f"{prefix}-{timezone.localdate().year}-"
    columns = ", ".join(connection.ops.quote_name(c) for c in values)
    with journal.fast_cursor() as cur:
        if connection.vendor == "postgresql":  # one statement: id from the sequence, record, links
            cur.execute(
                f"WITH n AS (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id), "  # noqa: S608
                f"r AS (INSERT INTO {table} (id, number, {columns}) "
                f"SELECT n.id, %s || CASE WHEN n.id < 1000000 THEN lpad(n.id::text, 6, '0') ELSE n.id::text END, "
                f"{_marks(len(values))} FROM n RETURNING id, number), "
                f"l AS (INSERT INTO {links} ({owner_column}, serialblock_id) "
                "SELECT r.id, b FROM r, unnest(%s::bigint[]) AS b) "
                "SELECT id, number FROM r",
                [table, head, *values.values(), list(block_ids)],
            )
            pk, number = cur.fetchone()
            return int(pk), str(number)
        cur.execute(
            f"INSERT INTO {table} (number, {columns}) VALUES (%s, {_marks(len(values))}) RETURNING id",  # noqa: S608
            ["~" + uuid4().hex[:23], *values.values()],
        )
        pk = int(cur.fetchone()[0])
        number = _record_number(head, pk)
        cur.execute(f"UPDATE {table} SET number = %s WHERE id = %s", [number, pk])  # noqa: S608
        if block_ids:
            cur.execute(
                f"INSERT INTO {links} ({owner_column}, serialblock_id) VALUES "  # noqa: S608
                + ", ".join(["(%s, %s)"] * len(block_ids)),
                [v for b in block_ids for v in (pk, b)],
            )
        return pk, number


def _record_number(head: str, pk: int) -> str:
    """The permanent number of a transfer, retirement or cancellation: PREFIX-YEAR- and the id, at least six
    digits (the same text as the PostgreSQL statements of `_insert_record` make)."""
    return f"{head}{pk:06d}"


def _insert_transfers(
    rows: Sequence[tuple[int, int, int, Sequence[int], int]], at: Any, *, ids: Sequence[int] | None = None
) -> list[tuple[int, str]]:
    """Insert many transfers (from, to, quantity, moved block ids, actor id) with their block links and permanent
    numbers; on PostgreSQL in one statement, elsewhere one by one. Returns (id, number) in the order given.

    On PostgreSQL `ids` may give the transfers' ids, drawn beforehand from their sequence: the statement's result
    is then not read, so that inside a `journal.pipeline()` nothing waits for it."""
    if connection.vendor != "postgresql":
        return [
            _insert_record(
                Transfer,
                "TR",
                {
                    "from_account_id": f,
                    "to_account_id": t,
                    "quantity": q,
                    "actor_id": actor_id,
                    "created_at": at,
                },
                "transfer_id",
                blocks,
            )
            for f, t, q, blocks, actor_id in rows
        ]
    table = Transfer._meta.db_table
    links = Transfer.blocks.through._meta.db_table
    head = f"TR-{timezone.localdate().year}-"
    given = list(ids) if ids is not None else [None] * len(rows)
    link_ord = [i for i, row in enumerate(rows, 1) for _b in row[3]]
    link_block = [b for row in rows for b in row[3]]
    with journal.fast_cursor() as cur:
        journal.execute_prepared(
            cur,
            "WITH n AS MATERIALIZED (SELECT v.ord, "  # noqa: S608
            f"coalesce(v.id, nextval(pg_get_serial_sequence('{table}', 'id'))) AS id, v.f, v.t, v.q, v.a "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::int[], %s::bigint[]) WITH ORDINALITY "
            "AS v (id, f, t, q, a, ord)), "
            f"r AS (INSERT INTO {table} (id, number, from_account_id, to_account_id, quantity, actor_id, created_at) "
            "SELECT n.id, %s || CASE WHEN n.id < 1000000 THEN lpad(n.id::text, 6, '0') ELSE n.id::text END, "
            "n.f, n.t, n.q, n.a, %s FROM n ORDER BY n.ord RETURNING id, number), "
            f"l AS (INSERT INTO {links} (transfer_id, serialblock_id) "
            "SELECT n.id, l.b FROM unnest(%s::bigint[], %s::bigint[]) AS l (ord, b) JOIN n ON n.ord = l.ord) "
            "SELECT n.ord, r.id, r.number FROM r JOIN n ON n.id = r.id ORDER BY n.ord",
            [
                given,
                [row[0] for row in rows],
                [row[1] for row in rows],
                [row[2] for row in rows],
                [row[4] for row in rows],
                head,
                at,
                link_ord,
                link_block,
            ],
        )
        if ids is not None:
            return [(int(pk), _record_number(head, int(pk))) for pk in ids]
        return [(int(pk), str(number)) for _ord, pk, number in cur.fetchall()]


def _bump_counters(totals: dict[str, int]) -> dict[str, int]:
    """Advance series counters by the given quantities and return their new last numbers: one upsert that also
    locks the counter rows (in series order) until the transaction ends. Numbers are never reused (§3.7)."""
    table = SerialCounter._meta.db_table
    out: dict[str, int] = {}
    items = sorted(totals.items())
    with journal.fast_cursor() as cur:
        for i in range(0, len(items), _CHUNK):
            chunk = items[i : i + _CHUNK]
            cur.execute(
                f"INSERT INTO {table} (series, last_end) VALUES "  # noqa: S608
                + ", ".join(["(%s, %s)"] * len(chunk))
                + f" ON CONFLICT (series) DO UPDATE SET last_end = {table}.last_end + EXCLUDED.last_end "
                "RETURNING series, last_end",
                [v for pair in chunk for v in pair],
            )
            out.update((series, int(last)) for series, last in cur.fetchall())
    return out


# ---------------------------------------------------------------------------------------------------------------
# issuance


@dataclass(frozen=True)
class IssueOutcome:
    """What became of one application in an issuance run: its blocks, or the refusal that left it unchanged."""

    application_id: int
    code: str
    blocks: list[SerialBlock]
    error: DomainError | None = None

    @property
    def issued(self) -> bool:
        return self.error is None

    @property
    def quantity(self) -> int:
        return sum(b.quantity for b in self.blocks)


def do_issue_units(application: Application, *, issuer: Any, client_key: str = "") -> list[SerialBlock]:
    """Issue an approved application's units: one block per member system with units, from its series counter,
    into the member's credit account; carry-forward recorded per system; application marked issued; one journal
    entry. The issuer is a registry administrator other than the preparer and the reviewer (four eyes)."""
    _check_issuer(issuer)
    key = _check_key(client_key)
    request = {"application": application.code}

    def run() -> list[SerialBlock]:
        [outcome] = _issue([application.pk], issuer, key=key, request=request)
        if outcome.error is not None:
            raise outcome.error
        return outcome.blocks

    def replay(done: dict[str, Any]) -> list[SerialBlock]:
        return list(SerialBlock.objects.filter(pk__in=done["blocks"]).order_by("pk"))

    return _run_idempotent(issuer, "issue", key, request, run, replay)


def do_issue_batch(applications: Sequence[Any], *, issuer: Any) -> list[IssueOutcome]:
    """Issue many approved applications in one transaction (the monthly run): each is checked on its own, a refused
    one is reported and left unchanged, the others are issued exactly as by `do_issue_units`, with set-based
    statements (one per kind of row for the whole batch). Outcomes come in the order given."""
    _check_issuer(issuer)
    ids = list(dict.fromkeys(a if isinstance(a, int) else a.pk for a in applications))
    if not ids:
        return []
    with transaction.atomic():
        return _issue(ids, issuer)


def _check_issuer(issuer: Any) -> None:
    if issuer is None or not getattr(issuer, "is_registry_admin", False):
        raise DomainError("not_registry_admin", _("Only a registry administrator can issue units."))


_APP_FIELDS = (
    "pk",
    "code",
    "state",
    "applicant_id",
    "reviewer_id",
    "units",
    "vintage",
    "methodology__code",
    "factor__code",
)
_MEMBER_FIELDS = (
    "application_id",
    "system_id",
    "system__code",
    "units",
    "carry_out_kg",
    "credit_account_id",
    "credit_account__number",
)


@dataclass
class _App:
    pk: int
    code: str
    state: str
    applicant_id: int
    reviewer_id: int | None
    units: int
    vintage: int
    methodology: str
    factor: str
    members: list[_Member]
    series: str = ""
    project: str = ""


@dataclass(frozen=True)
class _Member:
    application_id: int
    system_id: int
    system_code: str
    units: int
    carry_out_kg: Decimal
    account_id: int | None
    account_number: str | None


def _issue(
    ids: list[int], issuer: Any, *, key: str = "", request: dict[str, Any] | None = None
) -> list[IssueOutcome]:
    """Check each application (four eyes, state, units, accounts), then issue those that pass."""
    locked = (
        Application.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list(*_APP_FIELDS)
    )
    apps = {row[0]: _App(*row, members=[]) for row in locked}
    refused: dict[int, DomainError] = {}
    for a in apps.values():
        if issuer.pk in (a.applicant_id, a.reviewer_id):
            refused[a.pk] = DomainError(
                "four_eyes",
                _("Application %(code)s must be issued by someone other than its preparer and its reviewer.")
                % {"code": a.code},
            )
        elif a.state == Application.State.ISSUED:
            refused[a.pk] = DomainError(
                "already_issued", _("Application %(code)s is already issued.") % {"code": a.code}
            )
        elif a.state != Application.State.APPROVED:
            refused[a.pk] = DomainError(
                "not_approved",
                _("Application %(code)s is %(state)s; only an approved application can be issued.")
                % {"code": a.code, "state": dict(Application.State.choices).get(a.state, a.state)},
            )
    candidates = [pk for pk in apps if pk not in refused]
    for row in (
        ApplicationSystem.objects.filter(application_id__in=candidates)
        .order_by("application_id", "pk")
        .values_list(*_MEMBER_FIELDS)
    ):
        apps[row[0]].members.append(_Member(*row))
    for pk in candidates:
        a = apps[pk]
        total = sum(m.units for m in a.members)
        missing = [m for m in a.members if m.units > 0 and m.account_id is None]
        if total != a.units:
            refused[pk] = DomainError(
                "units_mismatch",
                _("Application %(code)s claims %(units)d units but its systems add up to %(sum)d.")
                % {"code": a.code, "units": a.units, "sum": total},
            )
        elif missing:
            refused[pk] = DomainError(
                "no_credit_account",
                _("System %(system)s of application %(code)s has no account to credit.")
                % {"system": missing[0].system_code, "code": a.code},
            )
    issuing = [apps[pk] for pk in candidates if pk not in refused]
    blocks = _write_issuance(issuing, issuer, key, request) if issuing else {}
    outcomes = []
    for pk in ids:
        if pk not in apps:
            outcomes.append(IssueOutcome(pk, "", [], DomainError("not_found", _("No such application."))))
        else:
            outcomes.append(IssueOutcome(pk, apps[pk].code, blocks.get(pk, []), refused.get(pk)))
    return outcomes


def _write_issuance(
    issuing: list[_App], issuer: Any, key: str, request: dict[str, Any] | None
) -> dict[int, list[SerialBlock]]:
    """The writes of an issuance run, in the global lock order: accounts, counters, then blocks, carry-forward,
    applications and the journal (one entry per application)."""
    lock_accounts(m.account_id for a in issuing for m in a.members if m.units > 0 and m.account_id)
    totals: dict[str, int] = {}
    for a in issuing:
        a.project = a.members[0].system_code if len(a.members) == 1 else a.code
        a.series = ds.series_name(a.methodology, a.project, a.vintage)
        totals[a.series] = totals.get(a.series, 0) + a.units
    last = {k: v - totals[k] for k, v in _bump_counters({k: q for k, q in totals.items() if q}).items()}
    now = timezone.now()
    blocks: dict[int, list[SerialBlock]] = {a.pk: [] for a in issuing}
    credited: dict[int, list[_Member]] = {a.pk: [] for a in issuing}
    for a in issuing:  # numbers in application order, then member order
        for m in a.members:
            if m.units <= 0:
                continue
            r = ds.allocate(last[a.series], m.units)
            last[a.series] = r.end
            blocks[a.pk].append(
                SerialBlock(
                    series=a.series,
                    start=r.start,
                    end=r.end,
                    state=HELD,
                    account_id=m.account_id,
                    application_id=a.pk,
                    system_id=m.system_id,
                    project_code=a.project,
                    vintage=a.vintage,
                    methodology_code=a.methodology,
                    factor_code=a.factor,
                    locked_by="",
                    created_at=now,
                    changed_at=now,
                )
            )
            credited[a.pk].append(m)
    _insert_blocks([b for a in issuing for b in blocks[a.pk]])
    when = _when(now)
    # one row per system: of two applications of the same system in a run, the later one's carry-out stands
    carry = list({m.system_id: m.carry_out_kg for a in issuing for m in a.members}.items())
    with journal.fast_cursor() as cur:
        table = SystemCarry._meta.db_table
        for i in range(0, len(carry), _CHUNK):
            chunk = carry[i : i + _CHUNK]
            cur.execute(
                f"INSERT INTO {table} (system_id, kg, updated_at) VALUES "  # noqa: S608
                + ", ".join(["(%s, %s, %s)"] * len(chunk))
                + " ON CONFLICT (system_id) DO UPDATE SET kg = EXCLUDED.kg, updated_at = EXCLUDED.updated_at",
                [v for system_id, kg in chunk for v in (system_id, _kg(kg), when)],
            )
        table = Application._meta.db_table
        for i in range(0, len(issuing), _CHUNK):
            chunk_ids = [a.pk for a in issuing[i : i + _CHUNK]]
            cur.execute(
                f"UPDATE {table} SET state = %s, issued_at = %s, issuer_id = %s, state_since = %s "  # noqa: S608
                f"WHERE id IN ({_marks(len(chunk_ids))})",
                [Application.State.ISSUED, when, issuer.pk, when, *chunk_ids],
            )
    if key and request is not None:
        [only] = issuing
        _remember(
            issuer, "issue", key, request, {"application": only.pk, "blocks": [b.pk for b in blocks[only.pk]]}
        )
    journal.append_many(
        [
            (
                "issue",
                {
                    "ref": a.code,
                    "application": a.code,
                    "series": a.series,
                    "quantity": a.units,
                    "blocks": [
                        {
                            "block": b.pk,
                            "serial": b.serial,
                            "quantity": b.quantity,
                            "account": m.account_number,
                            "system": m.system_code,
                        }
                        for b, m in zip(blocks[a.pk], credited[a.pk], strict=True)
                    ],
                    "carry_kg": {m.system_code: m.carry_out_kg for m in a.members},
                },
                issuer,
            )
            for a in issuing
        ]
    )
    return blocks


def _kg(value: Decimal) -> Any:
    return connection.ops.adapt_decimalfield_value(value, 18, 3)


#: rows per multi-row statement
_CHUNK = 500

_BLOCK_COLUMNS = (
    "series",
    "start",
    "end",
    "state",
    "account_id",
    "application_id",
    "system_id",
    "project_code",
    "vintage",
    "methodology_code",
    "factor_code",
    "locked_by",
    "created_at",
    "changed_at",
)


def _insert_blocks(new: list[SerialBlock]) -> None:
    """Insert new blocks and give the objects their ids: on PostgreSQL ids drawn from the sequence and one COPY,
    elsewhere multi-row inserts."""
    if not new:
        return
    with journal.fast_cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [_T_BLOCK, len(new)],
            )
            for b, (pk,) in zip(new, cur.fetchall(), strict=True):
                b.pk = int(pk)
            with cur.copy(f"COPY {_T_BLOCK} (id, {_q(*_BLOCK_COLUMNS)}) FROM STDIN") as copy:
                for b in new:
                    copy.write_row([b.pk, *(getattr(b, c) for c in _BLOCK_COLUMNS)])
        else:
            marks = f"({_marks(len(_BLOCK_COLUMNS))})"
            for i in range(0, len(new), _CHUNK):
                chunk = new[i : i + _CHUNK]
                cur.execute(
                    f"INSERT INTO {_T_BLOCK} ({_q(*_BLOCK_COLUMNS)}) VALUES "  # noqa: S608
                    + ", ".join([marks] * len(chunk))
                    + f" RETURNING id, series, {_q('start')}",
                    [
                        _when(getattr(b, c)) if c in ("created_at", "changed_at") else getattr(b, c)
                        for b in chunk
                        for c in _BLOCK_COLUMNS
                    ],
                )
                ids = {(series, int(start)): int(pk) for pk, series, start in cur.fetchall()}
                for b in chunk:
                    b.pk = ids[(b.series, b.start)]
    for b in new:
        b._state.adding = False
        b._state.db = connection.alias


# ---------------------------------------------------------------------------------------------------------------
# choosing and moving units


@dataclass(frozen=True)
class _Candidate:
    """A held, unlocked block that may be taken (with what a split child copies from it)."""

    pk: int
    series: str
    start: int
    end: int
    vintage: int
    application_id: int
    system_id: int | None
    project_code: str
    methodology_code: str
    factor_code: str

    @property
    def serial(self) -> str:
        return ds.serial_text(self.series, self.start, self.end)


_CANDIDATE_COLUMNS = (
    "id",
    "series",
    "start",
    "end",
    "vintage",
    "application_id",
    "system_id",
    "project_code",
    "methodology_code",
    "factor_code",
)
_CHILD_COLUMNS = (
    *_CANDIDATE_COLUMNS[1:],
    "state",
    "account_id",
    "parent_id",
    "locked_by",
    "created_at",
    "changed_at",
)


def _q(*names: str) -> str:
    return ", ".join(connection.ops.quote_name(n) for n in names)


def _check_quantity(quantity: Any) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise DomainError(
            "invalid_quantity",
            _("The quantity must be a whole number of units, at least 1."),
            field="quantity",
        )
    return quantity


def _insufficient(account: RegistryAccount, selection: ds.Selection[_Candidate], asked: int) -> DomainError:
    """The refusal of a quantity the account's units do not cover, naming the figures."""
    return DomainError(
        "insufficient_units",
        _("Account %(account)s has %(available)d units available; %(asked)d asked.")
        % {"account": account.number, "available": selection.available, "asked": asked},
        field="quantity",
    )


def _transfer_record(
    pk: int, number: str, source: RegistryAccount, target: RegistryAccount, quantity: int, actor: Any, at: Any
) -> Transfer:
    """The Transfer just inserted by raw SQL, as a saved model instance with its accounts and actor attached (no
    read back). Built as the ORM builds a fetched row: this runs once per transfer of a batch."""
    values = {
        "id": pk,
        "number": number,
        "from_account_id": source.pk,
        "to_account_id": target.pk,
        "quantity": quantity,
        "actor_id": actor.pk,
        "created_at": at,
    }
    transfer = Transfer.from_db(connection.alias, None, [values[a] for a in _TRANSFER_ATTNAMES])
    for name, related in (("from_account", source), ("to_account", target), ("actor", actor)):
        Transfer._meta.get_field(name).set_cached_value(transfer, related)
    return transfer


_TRANSFER_ATTNAMES = [f.attname for f in Transfer._meta.concrete_fields]


def _select(
    account: RegistryAccount,
    quantity: int,
    block_ids: Sequence[int] | None,
    *,
    lock: str = "",
    vintage: int | None = None,
    methodology: str | None = None,
    for_update: bool = True,
) -> ds.Selection[_Candidate]:
    """Choose the units to take from the account's held blocks that carry `lock` (by default: unreserved ones), or
    from the named ones, oldest first (vintage, series, first number), and lock the chosen blocks. Refuses, naming
    the figures, when they do not suffice. `for_update=False` only reads (a plan, see `preview_reservation`).

    Only the oldest blocks that cover the quantity are read (the account's index is in that order), however many
    the account holds. The caller holds the account's lock. The candidates are read without locks and only the
    chosen blocks are locked, then checked to be still held here with the same reservation (a block changed in
    between, which the account lock should prevent, makes the choice run again): an account holding many small
    blocks costs one row lock per block taken, not one per block held."""
    where = "account_id = %s AND state = %s AND locked_by = %s"
    params: list[Any] = [account.pk, HELD, lock]
    if vintage is not None:
        where += " AND vintage = %s"
        params.append(vintage)
    if methodology is not None:
        where += " AND methodology_code = %s"
        params.append(methodology)
    limit = ""
    if block_ids is not None:
        wanted = list(dict.fromkeys(int(b) for b in block_ids))
        if not wanted:
            raise DomainError("block_unavailable", _("Name at least one block."), field="block_ids")
        where += f" AND id IN ({_marks(len(wanted))})"
        params += wanted
    else:  # every block holds at least one unit: the `quantity` oldest cover it when the account has it
        limit = " LIMIT %s"
        params.append(quantity)
    for _attempt in range(_SELECT_ATTEMPTS):
        with journal.fast_cursor() as cur:
            cur.execute(
                f"SELECT {_q(*_CANDIDATE_COLUMNS)} FROM {_T_BLOCK} WHERE {where} "  # noqa: S608
                f"ORDER BY {_q(*OLDEST_FIRST)}{limit}",
                params,
            )
            candidates = [_Candidate(*row) for row in cur.fetchall()]
        if block_ids is not None:
            missing = set(wanted) - {c.pk for c in candidates}
            if missing:
                _refuse_blocks(account, sorted(missing))
        selection = ds.choose_blocks(candidates, quantity)
        if not selection.sufficient:
            raise _insufficient(account, selection, quantity)
        if not for_update or _lock_chosen(account, lock, [t.block.pk for t in selection.takes]):
            return selection
    raise DomainError(
        "busy",
        _("The units of account %(account)s changed while they were being chosen; try again.")
        % {"account": account.number},
    )


#: how many times `_select` chooses again when a chosen block changed before it was locked
_SELECT_ATTEMPTS = 3


def _lock_chosen(account: RegistryAccount, lock: str, ids: list[int]) -> bool:
    """Lock the chosen blocks (in id order); whether every one is still held in the account with the reservation
    `lock`."""
    return _lock_blocks(dict.fromkeys(ids, account.pk), lock)


def _refuse_blocks(account: RegistryAccount, ids: list[int]) -> None:
    """Say why named blocks cannot be used: retired, cancelled, reserved, or not held in this account."""
    rows = list(SerialBlock.objects.filter(pk__in=ids).order_by("pk"))
    for b in rows:
        if b.state == RETIRED:
            raise DomainError(
                "block_retired",
                _("Block %(serial)s is retired; it can never move again.") % {"serial": b.serial},
            )
        if b.state == CANCELLED:
            raise DomainError("block_cancelled", _("Block %(serial)s is cancelled.") % {"serial": b.serial})
    for b in rows:
        if b.state == HELD and b.account_id == account.pk and b.locked_by:
            raise DomainError(
                "block_locked",
                _("Block %(serial)s is reserved by market order %(order)s.")
                % {"serial": b.serial, "order": b.locked_by},
            )
    raise DomainError(
        "block_unavailable",
        _("Some of the named blocks are not held in account %(account)s.") % {"account": account.number},
        field="block_ids",
    )


def _take(
    selection: ds.Selection[_Candidate],
    *,
    source: RegistryAccount,
    to_account_id: int,
    state: str,
    set_lock: str = "",
    keep_lock: str = "",
    defer_whole: list[int] | None = None,
    kept: list[_Candidate] | None = None,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Move the chosen units: whole blocks change account/state (and reservation: `set_lock`); a partial block
    becomes `split` and gets two children, [s, s+q−1] moved and [s+q, e] kept with the parent's reservation
    (`keep_lock`), each pointing to it (domain.md §3.7). Returns the moved block ids and their journal lines.
    With `defer_whole` the caller moves the whole blocks itself (their ids are appended there); with `kept` the
    kept children are appended there as candidates for a later take."""
    now = _when(timezone.now())
    whole = [t.block for t in selection.takes if t.whole]
    moved: list[int] = [c.pk for c in whole]
    lines: list[dict[str, Any]] = [
        {"block": c.pk, "serial": c.serial, "quantity": c.end - c.start + 1} for c in whole
    ]
    postgres = connection.vendor == "postgresql"
    with journal.fast_cursor() as cur:
        if whole and defer_whole is not None:
            defer_whole.extend(moved)
        elif whole:
            cur.execute(
                f"UPDATE {_T_BLOCK} SET account_id = %s, state = %s, locked_by = %s, changed_at = %s "  # noqa: S608
                + ("WHERE id = ANY(%s)" if postgres else f"WHERE id IN ({_marks(len(moved))})"),
                [to_account_id, state, set_lock, now, *([moved] if postgres else moved)],
            )
    splits = [
        _Split(t.block, *ds.split_range(t.block.start, t.block.end, t.quantity), to_account_id, source.pk)
        for t in selection.takes
        if not t.whole
    ]
    children = _split_blocks(splits, now, state=state, set_lock=set_lock, keep_lock=keep_lock)
    for sp in splits:
        parent, part, rest = sp.parent, sp.part, sp.rest
        moved_id, kept_id = children[parent.pk]
        moved.append(moved_id)
        if kept is not None:
            kept.append(
                _Candidate(
                    kept_id,
                    parent.series,
                    rest.start,
                    rest.end,
                    parent.vintage,
                    parent.application_id,
                    parent.system_id,
                    parent.project_code,
                    parent.methodology_code,
                    parent.factor_code,
                )
            )
        lines.append(
            {
                "block": moved_id,
                "serial": ds.serial_text(parent.series, part.start, part.end),
                "quantity": part.quantity,
                "split_from": parent.serial,
                "kept": ds.serial_text(parent.series, rest.start, rest.end),
            }
        )
    return moved, lines


def _child_row(
    parent: _Candidate, r: ds.Range, state: str, account_id: int, now: Any, lock: str = ""
) -> list[Any]:
    """Values of a split child, in the order of _CHILD_COLUMNS."""
    return [
        parent.series,
        r.start,
        r.end,
        parent.vintage,
        parent.application_id,
        parent.system_id,
        parent.project_code,
        parent.methodology_code,
        parent.factor_code,
        state,
        account_id,
        parent.pk,
        lock,
        now,
        now,
    ]


@dataclass(frozen=True)
class _Split:
    """A partial take: `part` of the parent goes to `to_account`, `rest` stays in `keep_account`."""

    parent: _Candidate
    part: ds.Range
    rest: ds.Range
    to_account: int
    keep_account: int


def _split_blocks(
    splits: Sequence[_Split],
    now: Any,
    *,
    state: str = HELD,
    set_lock: str = "",
    keep_lock: str = "",
    ids: Sequence[int] | None = None,
) -> dict[int, tuple[int, int]]:
    """Mark each parent `split` and insert its two children pointing to it (domain.md §3.7): the moved part (state
    `state`, reservation `set_lock`) and the kept part (held, reservation `keep_lock`). On PostgreSQL one statement
    for all, elsewhere two per split. Returns parent id → (moved child id, kept child id).

    On PostgreSQL `ids` may give the children's ids, drawn beforehand from the blocks' sequence (moved, kept for
    each split in turn): the statement's result is then not read, so that inside a `journal.pipeline()` nothing
    waits for it."""
    out: dict[int, tuple[int, int]] = {}
    if not splits:
        return out
    with journal.fast_cursor() as cur:
        if connection.vendor == "postgresql":
            given = list(ids) if ids is not None else [None] * (2 * len(splits))
            journal.execute_prepared(
                cur,
                "WITH v AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], "  # noqa: S608
                "%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[]) "
                "AS v (parent, ps, pe, rs, re, acc, keep_acc, part_id, rest_id)), "
                f"p AS (UPDATE {_T_BLOCK} AS b SET state = %s, changed_at = %s WHERE b.id = ANY(%s::bigint[]) "
                "RETURNING b.id, b.series, b.vintage, b.application_id, b.system_id, b.project_code, "
                f"b.methodology_code, b.factor_code) INSERT INTO {_T_BLOCK} (id, {_q(*_CHILD_COLUMNS)}) "
                f"SELECT coalesce(c.id, nextval(pg_get_serial_sequence('{_T_BLOCK}', 'id'))), p.series, c.s, c.e, "
                "p.vintage, p.application_id, p.system_id, p.project_code, p.methodology_code, p.factor_code, c.st, "
                "c.acc, p.id, c.lk, %s, %s FROM p JOIN v ON v.parent = p.id "
                "CROSS JOIN LATERAL (VALUES (v.part_id, v.ps, v.pe, %s::varchar, v.acc, %s::varchar), "
                "(v.rest_id, v.rs, v.re, %s::varchar, v.keep_acc, %s::varchar)) AS c (id, s, e, st, acc, lk) "
                f"RETURNING id, parent_id, {_q('start')}",
                [
                    [sp.parent.pk for sp in splits],
                    [sp.part.start for sp in splits],
                    [sp.part.end for sp in splits],
                    [sp.rest.start for sp in splits],
                    [sp.rest.end for sp in splits],
                    [sp.to_account for sp in splits],
                    [sp.keep_account for sp in splits],
                    given[0::2],
                    given[1::2],
                    SPLIT,
                    now,
                    [sp.parent.pk for sp in splits],
                    now,
                    now,
                    state,
                    set_lock,
                    HELD,
                    keep_lock,
                ],
            )
            if ids is not None:
                return {sp.parent.pk: (given[2 * k], given[2 * k + 1]) for k, sp in enumerate(splits)}
            rows = cur.fetchall()
        else:
            rows = []
            marks = f"({_marks(len(_CHILD_COLUMNS))})"
            for sp in splits:
                cur.execute(
                    f"UPDATE {_T_BLOCK} SET state = %s, changed_at = %s WHERE id = %s",  # noqa: S608
                    [SPLIT, now, sp.parent.pk],
                )
                cur.execute(
                    f"INSERT INTO {_T_BLOCK} ({_q(*_CHILD_COLUMNS)}) VALUES {marks}, {marks} "  # noqa: S608
                    f"RETURNING id, parent_id, {_q('start')}",
                    [
                        *_child_row(sp.parent, sp.part, state, sp.to_account, now, set_lock),
                        *_child_row(sp.parent, sp.rest, HELD, sp.keep_account, now, keep_lock),
                    ],
                )
                rows += cur.fetchall()
    ids_by = {
        (int(parent), int(start)): int(pk) for pk, parent, start in rows
    }  # RETURNING order is not guaranteed
    for sp in splits:
        out[sp.parent.pk] = (ids_by[(sp.parent.pk, sp.part.start)], ids_by[(sp.parent.pk, sp.rest.start)])
    return out


def _move_whole(moves: Sequence[tuple[int, int]], now: Any) -> None:
    """Move whole blocks (block id, to account) to their new accounts, held and unreserved: on PostgreSQL one
    statement for all, elsewhere one per receiving account."""
    if not moves:
        return
    with journal.fast_cursor() as cur:
        if connection.vendor == "postgresql":
            journal.execute_prepared(  # found by primary key, whatever the planner thinks of the arrays
                cur,
                f"UPDATE {_T_BLOCK} SET account_id = (%s::bigint[])[array_position(%s::bigint[], id)], "  # noqa: S608
                "state = %s, locked_by = '', changed_at = %s WHERE id = ANY(%s::bigint[])",
                [[m[1] for m in moves], [m[0] for m in moves], HELD, now, [m[0] for m in moves]],
            )
            return
        by_account: dict[int, list[int]] = {}
        for block, account in moves:
            by_account.setdefault(account, []).append(block)
        for account, ids in by_account.items():
            cur.execute(
                f"UPDATE {_T_BLOCK} SET account_id = %s, state = %s, locked_by = '', changed_at = %s "  # noqa: S608
                f"WHERE id IN ({_marks(len(ids))})",
                [account, HELD, now, *ids],
            )


# ---------------------------------------------------------------------------------------------------------------
# transfers


def do_transfer(
    *,
    from_account: RegistryAccount,
    to_account: RegistryAccount,
    quantity: int,
    actor: Any,
    client_key: str = "",
    block_ids: Sequence[int] | None = None,
) -> Transfer:
    """Move `quantity` units from one account to another, oldest first (or from the named blocks), splitting the
    last block when only part of it moves. Only someone who may act for the sending account can do it.

    Called outside a transaction, the transfer is settled together with the transfers other threads of this
    process ask for at the same moment (`_TRANSFERS`: one transaction, one statement per kind of row and one
    commit for all of them); each caller still gets its own transfer or its own refusal, and a transfer is
    committed when this returns. Called inside a transaction, it is settled alone, in that transaction."""
    req = _transfer_request(from_account, to_account, quantity, actor, client_key, block_ids)
    if not connection.in_atomic_block:
        return _as_transfer(req, _TRANSFERS.submit(req))
    outcome = _settle_transfers([req])[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return _as_transfer(req, outcome)


@dataclass(frozen=True)
class _Settled:
    """A transfer committed by a batch, as the batch hands it back: each caller builds its own Transfer from it
    (`_as_transfer`), in its own thread, so that the batch's transaction is not held up by it."""

    pk: int
    number: str
    at: Any


def _as_transfer(req: _TransferRequest, outcome: Transfer | _Settled) -> Transfer:
    if isinstance(outcome, _Settled):
        return _transfer_record(
            outcome.pk, outcome.number, req.source, req.target, req.quantity, req.actor, outcome.at
        )
    return outcome


def _transfer_request(
    from_account: RegistryAccount,
    to_account: RegistryAccount,
    quantity: int,
    actor: Any,
    client_key: str,
    block_ids: Sequence[int] | None,
) -> _TransferRequest:
    """A transfer asked for, checked for what needs no lock: quantity, accounts, the actor's right, the key."""
    quantity = _check_quantity(quantity)
    if from_account.pk == to_account.pk:
        raise DomainError("same_account", _("A transfer needs two different accounts."), field="to_account")
    if not may_act_for(actor, from_account):
        raise DomainError(
            "not_allowed",
            _("You may not move units out of account %(account)s.") % {"account": from_account.number},
        )
    key = _check_key(client_key)
    wanted = list(dict.fromkeys(int(b) for b in block_ids)) if block_ids is not None else None
    if wanted == []:
        raise DomainError("block_unavailable", _("Name at least one block."), field="block_ids")
    return _TransferRequest(
        from_account,
        to_account,
        quantity,
        actor,
        key,
        {
            "from": from_account.number,
            "to": to_account.number,
            "quantity": quantity,
            "blocks": sorted(int(b) for b in block_ids) if block_ids is not None else None,
        },
        wanted,
    )


@dataclass(frozen=True, eq=False)
class _TransferRequest:
    source: RegistryAccount
    target: RegistryAccount
    quantity: int
    actor: Any
    key: str
    request: dict[str, Any]
    block_ids: list[int] | None


def _transfer_conflicts(req: _TransferRequest) -> tuple[Any, ...]:
    """Two transfers that touch the same account (or repeat one client key) are settled in different batches."""
    keys: tuple[Any, ...] = (("account", req.source.pk), ("account", req.target.pk))
    if req.key:
        keys += (("key", req.actor.pk, req.key),)
    return keys


#: the process's transfers, settled in batches (see do_transfer); at most 64 per transaction
_TRANSFERS: Combiner[_TransferRequest, Transfer | _Settled] = Combiner(
    lambda reqs: _settle_transfers(reqs), conflicts=_transfer_conflicts, limit=64
)


def _settle_transfers(reqs: Sequence[_TransferRequest]) -> list[Transfer | _Settled | BaseException]:
    """Settle transfers that share no account: requests repeated under a client key get their earlier transfer,
    the others are settled in one transaction; a refusal (units not there, blocks not held…) concerns only its
    own request. Should the transaction fail as a whole (a twin of a keyed request committed meanwhile by another
    process, or any database error), each request is settled again alone, so that one cannot fail the others."""
    out: list[Transfer | _Settled | BaseException | None] = [None] * len(reqs)
    todo: list[int] = []
    for i, req in enumerate(reqs):
        try:
            done = _replayed(req.actor, "transfer", req.key, req.request)
        except DomainError as exc:
            out[i] = exc
            continue
        if done is not None:
            out[i] = Transfer.objects.get(pk=done["transfer"])
        else:
            todo.append(i)
    if todo:
        try:
            with transaction.atomic():
                settled: list[Transfer | _Settled | BaseException] = list(
                    _transfer_batch([reqs[i] for i in todo])
                )
        except DatabaseError:
            if len(todo) > 1:
                settled = [_settle_alone(reqs[i]) for i in todo]
            else:
                req = reqs[todo[0]]
                try:  # a concurrent twin of this keyed request won the key: its transfer is the answer
                    done = _replayed(req.actor, "transfer", req.key, req.request)
                except DomainError as exc:
                    settled = [exc]
                else:
                    if done is None:
                        raise
                    settled = [Transfer.objects.get(pk=done["transfer"])]
        for i, outcome in zip(todo, settled, strict=True):
            out[i] = outcome
    return [o if o is not None else RuntimeError("transfer not settled") for o in out]


def _settle_alone(req: _TransferRequest) -> Transfer | _Settled | BaseException:
    """One request of a failed batch, settled on its own (its own error, if any, is its outcome)."""
    try:
        return _settle_transfers([req])[0]
    except DatabaseError as exc:
        return exc


def _transfer_batch(reqs: Sequence[_TransferRequest]) -> list[_Settled | BaseException]:
    """Inside one transaction: lock every account of the batch (id order), read the unreserved held blocks of all
    senders at once, choose each transfer's blocks (oldest first, or the named ones) and lock the chosen blocks,
    then move them: one statement for all whole blocks, one for all splits, one for the transfers with their
    links, one for the client keys, one journal append for all. Each transfer is the same, row by row and entry
    by entry, as if settled alone in the order given.

    On PostgreSQL the statements go in a pipeline and the batch waits for the server only where it reads: for the
    chosen blocks (after the account locks), for the block locks and the new rows' ids, and for the journal (after
    every write, each sent without waiting)."""
    postgres = connection.vendor == "postgresql"
    outcomes: list[_Settled | BaseException | None] = [None] * len(reqs)
    with journal.pipeline():
        with journal.fast_cursor() as cur:
            _send_account_locks(cur, [a.pk for r in reqs for a in (r.source, r.target)])
        for _attempt in range(_SELECT_ATTEMPTS):
            chosen = _choose_for_batch(reqs, outcomes)
            owners = {t.block.pk: reqs[i].source.pk for i, sel in chosen.items() for t in sel.takes}
            splitting = sum(1 for sel in chosen.values() for t in sel.takes if not t.whole)
            with journal.fast_cursor() as cur, journal.fast_cursor() as ids_cur:
                if owners:
                    _send_block_locks(cur, owners)
                if postgres and chosen:  # ids of the new transfers and split children, drawn now
                    journal.execute_prepared(
                        ids_cur,
                        "SELECT ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)), "
                        "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s))",
                        [Transfer._meta.db_table, len(chosen), _T_BLOCK, 2 * splitting],
                    )
                held = not owners or _still_held(cur.fetchall(), owners, "")
                transfer_ids, child_ids = ids_cur.fetchone() if postgres and chosen else (None, None)
            if held:
                break
            for i in chosen:
                outcomes[i] = None
        else:
            raise DomainError("busy", _("The units changed while they were being chosen; try again."))
        now = timezone.now()
        at = _when(now)
        whole: list[tuple[int, int]] = []
        splits: list[_Split] = []
        for i, sel in chosen.items():
            req = reqs[i]
            for t in sel.takes:
                if t.whole:
                    whole.append((t.block.pk, req.target.pk))
                else:
                    part, rest = ds.split_range(t.block.start, t.block.end, t.quantity)
                    splits.append(_Split(t.block, part, rest, req.target.pk, req.source.pk))
        _move_whole(whole, at)
        children = _split_blocks(splits, at, ids=child_ids)
        moved: dict[int, list[int]] = {}
        lines: dict[int, list[dict[str, Any]]] = {}
        for i, sel in chosen.items():
            moved[i], lines[i] = [], []
            for t in sel.takes:
                c = t.block
                if t.whole:
                    moved[i].append(c.pk)
                    lines[i].append({"block": c.pk, "serial": c.serial, "quantity": c.end - c.start + 1})
                    continue
                part, rest = ds.split_range(c.start, c.end, t.quantity)
                moved_id, _kept_id = children[c.pk]
                moved[i].append(moved_id)
                lines[i].append(
                    {
                        "block": moved_id,
                        "serial": ds.serial_text(c.series, part.start, part.end),
                        "quantity": part.quantity,
                        "split_from": c.serial,
                        "kept": ds.serial_text(c.series, rest.start, rest.end),
                    }
                )
        order = list(chosen)
        numbers = _insert_transfers(
            [
                (reqs[i].source.pk, reqs[i].target.pk, reqs[i].quantity, moved[i], reqs[i].actor.pk)
                for i in order
            ],
            at,
            ids=transfer_ids,
        )
        _remember_many(
            [
                (reqs[i].actor.pk, "transfer", reqs[i].key, {"request": reqs[i].request, "transfer": pk})
                for i, (pk, _n) in zip(order, numbers, strict=True)
                if reqs[i].key
            ],
            at,
        )
        journal.append_many(
            [
                (
                    "transfer",
                    {
                        "ref": number,
                        "number": number,
                        "from": reqs[i].source.number,
                        "to": reqs[i].target.number,
                        "quantity": reqs[i].quantity,
                        "blocks": lines[i],
                    },
                    reqs[i].actor,
                )
                for i, (_pk, number) in zip(order, numbers, strict=True)
            ]
        )
    for i, (pk, number) in zip(order, numbers, strict=True):
        outcomes[i] = _Settled(pk, number, now)
    return [o if o is not None else RuntimeError("transfer not settled") for o in outcomes]


def _remember_many(rows: Sequence[tuple[int, str, str, dict[str, Any]]], at: Any) -> None:
    """Store several client keys (actor id, operation, key, result) in the caller's transaction, as `_remember`
    does one; on PostgreSQL in one statement whose result is not read (see `journal.pipeline`)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        IdempotentRequest.objects.bulk_create(
            [IdempotentRequest(actor_id=a, operation=op, key=k, result=r) for a, op, k, r in rows]
        )
        return
    with journal.fast_cursor() as cur:
        journal.execute_prepared(
            cur,
            f"INSERT INTO {IdempotentRequest._meta.db_table} (actor_id, operation, {_q('key')}, result, created_at) "  # noqa: S608
            "SELECT v.a, v.op, v.k, v.r::jsonb, %s FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
            "AS v (a, op, k, r)",
            [
                at,
                [a for a, _op, _k, _r in rows],
                [op for _a, op, _k, _r in rows],
                [k for _a, _op, k, _r in rows],
                [json.dumps(r) for _a, _op, _k, r in rows],
            ],
        )


def _choose_for_batch(
    reqs: Sequence[_TransferRequest], outcomes: list[Transfer | BaseException | None]
) -> dict[int, ds.Selection[_Candidate]]:
    """Each request's blocks, from one unlocked read of the senders' unreserved held blocks (oldest first); a
    request that cannot be met gets its refusal in `outcomes`. The senders' accounts are locked by the caller.

    On PostgreSQL a request that does not name its blocks reads only the oldest blocks that cover its quantity
    (all of them when they do not suffice), so that an account holding thousands of small blocks does not send
    them all here at every transfer; each account sends in one request at most (the batch's rule)."""
    pool: dict[int, list[_Candidate]] = {r.source.pk: [] for r in reqs}
    postgres = connection.vendor == "postgresql"
    needs = {r.source.pk: r.quantity for r in reqs if r.block_ids is None} if postgres else {}
    every = sorted(pk for pk in pool if pk not in needs)
    columns = _q(*_CANDIDATE_COLUMNS)
    with journal.fast_cursor() as cur:
        rows: list[Any] = []
        if needs:
            size = 'o."end" - o."start" + 1'
            oldest = ", ".join("o." + c for c in _q(*OLDEST_FIRST).split(", "))
            # every block holds at least one unit, so the `need` oldest blocks cover `need` units when the account
            # has them: the account's index (account, state, vintage, series, start) is read in order and no
            # further than that, however many blocks the account holds
            journal.execute_prepared(
                cur,
                "SELECT c.* FROM unnest(%s::bigint[], %s::bigint[]) AS a (acc, need) CROSS JOIN LATERAL ("  # noqa: S608
                f"SELECT o.*, sum({size}) OVER (ORDER BY {oldest}) - ({size}) AS before, a.need FROM ("
                f"SELECT b.account_id, {', '.join('b.' + c for c in columns.split(', '))} FROM {_T_BLOCK} AS b "
                "WHERE b.account_id = a.acc AND b.state = %s AND b.locked_by = '' "
                f"ORDER BY {oldest.replace('o.', 'b.')} LIMIT a.need) AS o) AS c "
                f"WHERE c.before < c.need ORDER BY c.account_id, {_q(*OLDEST_FIRST)}",
                [list(needs), list(needs.values()), HELD],
            )
            rows += [row[:-2] for row in cur.fetchall()]
        if every:
            journal.execute_prepared(
                cur,
                f"SELECT account_id, {columns} FROM {_T_BLOCK} "  # noqa: S608
                + (
                    "WHERE account_id = ANY(%s)"
                    if postgres
                    else f"WHERE account_id IN ({_marks(len(every))})"
                )
                + f" AND state = %s AND locked_by = '' ORDER BY account_id, {_q(*OLDEST_FIRST)}",
                [*([every] if postgres else every), HELD],
            )
            rows += cur.fetchall()
        for account_id, *row in rows:
            pool[account_id].append(_Candidate(*row))
    chosen: dict[int, ds.Selection[_Candidate]] = {}
    for i, req in enumerate(reqs):
        candidates = pool[req.source.pk]
        try:
            if req.block_ids is not None:
                named = set(req.block_ids)
                candidates = [c for c in candidates if c.pk in named]
                missing = named - {c.pk for c in candidates}
                if missing:
                    _refuse_blocks(req.source, sorted(missing))
            selection = ds.choose_blocks(candidates, req.quantity)
            if not selection.sufficient:
                raise _insufficient(req.source, selection, req.quantity)
        except DomainError as exc:
            outcomes[i] = exc
            continue
        chosen[i] = selection
    return chosen


def _lock_blocks(owners: dict[int, int], lock: str = "") -> bool:
    """Lock the chosen blocks (block id → the account it was read in; id order, found by their keys alone); whether
    each is still held in that account with the reservation `lock` (by default: none). A row changed meanwhile is
    re-read by PostgreSQL under the lock and shows its new values."""
    with journal.fast_cursor() as cur:
        _send_block_locks(cur, owners)
        return _still_held(cur.fetchall(), owners, lock)


def _send_block_locks(cur: Any, owners: dict[int, int]) -> None:
    """Send _lock_blocks' statement on `cur`; its rows are read by `_still_held`."""
    ids = sorted(owners)
    postgres = connection.vendor == "postgresql"
    journal.execute_prepared(
        cur,
        f"SELECT id, account_id, state, locked_by FROM {_T_BLOCK} WHERE "  # noqa: S608
        + ("id = ANY(%s)" if postgres else f"id IN ({_marks(len(ids))})")
        + f" ORDER BY id{_for_update()}",
        [ids] if postgres else ids,
    )


def _still_held(rows: Sequence[Any], owners: dict[int, int], lock: str) -> bool:
    return len(rows) == len(owners) and all(
        account == owners[pk] and state == HELD and held_for == lock for pk, account, state, held_for in rows
    )


# ---------------------------------------------------------------------------------------------------------------
# retirements

_RETIRE_CHECKS: list[Any] = []


def register_retire_check(check: Any) -> None:
    """Another app's rule on retirements, called as check(account, quantity, purpose, retired_on) inside the
    retirement's transaction after the account is locked; it refuses by raising DomainError (e.g. the offset
    limit of covered enterprises)."""
    if check not in _RETIRE_CHECKS:
        _RETIRE_CHECKS.append(check)


def do_retire(
    *,
    account: RegistryAccount,
    quantity: int,
    beneficiary: str,
    purpose: str,
    retired_on: date,
    actor: Any,
    client_key: str = "",
    block_ids: Sequence[int] | None = None,
    note: str = "",
) -> Retirement:
    """Retire (注销) units for a beneficiary and purpose, oldest first or from the named blocks, splitting where
    partial. Final: retired blocks never move again."""
    quantity = _check_quantity(quantity)
    beneficiary = (beneficiary or "").strip()
    if not beneficiary:
        raise DomainError(
            "beneficiary_required", _("Name the beneficiary of the retirement."), field="beneficiary"
        )
    if len(beneficiary) > Retirement._meta.get_field("beneficiary").max_length:
        raise DomainError(
            "beneficiary_too_long", _("The beneficiary name is at most 200 characters."), field="beneficiary"
        )
    if purpose not in Retirement.Purpose.values:
        raise DomainError(
            "invalid_purpose",
            _("The purpose must be one of: %(choices)s.") % {"choices": ", ".join(Retirement.Purpose.values)},
            field="purpose",
        )
    if not isinstance(retired_on, date) or retired_on > timezone.localdate():
        raise DomainError(
            "invalid_retired_on",
            _("The retirement date must be a date, not in the future."),
            field="retired_on",
        )
    if not may_act_for(actor, account):
        raise DomainError(
            "not_allowed", _("You may not retire units of account %(account)s.") % {"account": account.number}
        )
    key = _check_key(client_key)
    note = (note or "").strip()
    request = {
        "account": account.number,
        "quantity": quantity,
        "beneficiary": beneficiary,
        "purpose": purpose,
        "retired_on": retired_on.isoformat(),
        "blocks": sorted(int(b) for b in block_ids) if block_ids is not None else None,
        "note": note,
    }
    return _run_idempotent(
        actor,
        "retire",
        key,
        request,
        lambda: _retire(
            account, quantity, beneficiary, purpose, retired_on, note, actor, key, request, block_ids
        ),
        lambda done: Retirement.objects.get(pk=done["retirement"]),
    )


def _retire(
    account: RegistryAccount,
    quantity: int,
    beneficiary: str,
    purpose: str,
    retired_on: date,
    note: str,
    actor: Any,
    key: str,
    request: dict[str, Any],
    block_ids: Sequence[int] | None,
) -> Retirement:
    lock_accounts([account.pk])
    for check in _RETIRE_CHECKS:  # under the account lock: concurrent retirements of the account queue here
        check(account, quantity, purpose, retired_on)
    selection = _select(account, quantity, block_ids)
    moved, lines = _take(selection, source=account, to_account_id=account.pk, state=RETIRED)
    pk, number = _insert_record(
        Retirement,
        "RT",
        {
            "account_id": account.pk,
            "quantity": quantity,
            "beneficiary": beneficiary,
            "purpose": purpose,
            "retired_on": connection.ops.adapt_datefield_value(retired_on),
            "note": note,
            "actor_id": actor.pk,
            "created_at": _when(timezone.now()),
        },
        "retirement_id",
        moved,
    )
    _remember(actor, "retire", key, request, {"retirement": pk})
    journal.append(
        "retire",
        {
            "ref": number,
            "number": number,
            "account": account.number,
            "quantity": quantity,
            "beneficiary": beneficiary,
            "purpose": purpose,
            "retired_on": retired_on,
            "note": note,
            "blocks": lines,
        },
        actor=actor,
    )
    return Retirement.objects.get(pk=pk)


# ---------------------------------------------------------------------------------------------------------------
# market reservations and settlement (called inside the market service's transaction)


def reserve_units(
    *,
    account: RegistryAccount,
    quantity: int,
    lock: str,
    actor: Any,
    vintage: int | None = None,
    methodology: str | None = None,
) -> list[dict[str, Any]]:
    """Reserve `quantity` held units of the account (oldest first, optionally of one vintage / methodology) for a
    market order: they stay in the account but cannot be moved or retired elsewhere until settled or released.
    A partial block is split so that exactly the quantity is reserved. Journalled as `reserve`."""
    quantity = _check_quantity(quantity)
    if not lock:
        raise ValueError("a reservation needs a reference")
    with transaction.atomic():
        lock_accounts([account.pk])
        selection = _select(account, quantity, None, vintage=vintage, methodology=methodology)
        _moved, lines = _take(selection, source=account, to_account_id=account.pk, state=HELD, set_lock=lock)
        journal.append(
            "reserve",
            {"ref": lock, "account": account.number, "quantity": quantity, "blocks": lines},
            actor=actor,
        )
    return lines


def preview_reservation(
    *, account: RegistryAccount, quantity: int, vintage: int | None = None, methodology: str | None = None
) -> list[int]:
    """The blocks that `reserve_units` with the same arguments would take now (oldest first), read without any
    lock: a market order plans its fills from them before it locks every account involved at once; the
    reservation itself selects again under the lock. Refuses, naming the figures, when the units do not suffice."""
    quantity = _check_quantity(quantity)
    selection = _select(account, quantity, None, vintage=vintage, methodology=methodology, for_update=False)
    return [t.block.pk for t in selection.takes]


def reserved(lock: str) -> int:
    """Units still reserved under a market reference."""
    if not lock:
        return 0
    q = SerialBlock.objects.filter(state=HELD, locked_by=lock).aggregate(q=Sum(_QTY))["q"]
    return int(q or 0)


def release_units(*, account: RegistryAccount, lock: str, actor: Any, reason: str) -> int:
    """Free every unit still reserved under `lock` in the account (order cancelled, expired or filled with a
    remainder). Returns the quantity released; journalled as `release` when there was any."""
    if not lock:
        return 0
    with transaction.atomic():
        lock_accounts([account.pk])
        blocks = list(
            SerialBlock.objects.select_for_update()
            .filter(account_id=account.pk, state=HELD, locked_by=lock)
            .order_by(*OLDEST_FIRST)
        )
        if not blocks:
            return 0
        SerialBlock.objects.filter(pk__in=[b.pk for b in blocks]).update(
            locked_by="", changed_at=timezone.now()
        )
        quantity = sum(b.quantity for b in blocks)
        journal.append(
            "release",
            {
                "ref": lock,
                "account": account.number,
                "quantity": quantity,
                "reason": reason,
                "blocks": [{"block": b.pk, "serial": b.serial, "quantity": b.quantity} for b in blocks],
            },
            actor=actor,
        )
    return quantity


def settle_reserved(
    *,
    lock: str,
    seller: RegistryAccount,
    buyer: RegistryAccount,
    quantity: int,
    actor: Any,
    trade: dict[str, Any],
    retire: dict[str, Any] | None = None,
) -> tuple[Transfer, Retirement | None]:
    """Settle a market trade: move `quantity` units reserved under `lock` from the seller to the buyer (splitting
    the last block, whose kept part stays reserved), record the transfer with the trade's terms in the journal,
    and, when the buyer asked for it, retire the units at once for the given beneficiary and purpose."""
    return settle_reserved_many([Settlement(lock, seller, buyer, quantity, trade, retire)], actor=actor)[0]


@dataclass(frozen=True)
class Settlement:
    """One fill to settle: units reserved under `lock` in the seller's account go to the buyer."""

    lock: str
    seller: RegistryAccount
    buyer: RegistryAccount
    quantity: int
    trade: dict[str, Any]
    retire: dict[str, Any] | None = None


def settle_reserved_many(
    items: Sequence[Settlement], *, actor: Any
) -> list[tuple[Transfer, Retirement | None]]:
    """Settle many fills in one transaction (a sweep of the book, an auction's allocation): the same result,
    transfer by transfer and entry by entry, as `settle_reserved` one after the other, with one lock round, one
    read of all reserved blocks, one move of all whole blocks per buyer and one journal append for all."""
    items = list(items)
    for it in items:
        _check_quantity(it.quantity)
        if it.seller.pk == it.buyer.pk:
            raise DomainError(
                "same_account", _("A transfer needs two different accounts."), field="to_account"
            )
    if not items:
        return []
    with transaction.atomic():
        lock_accounts([a.pk for it in items for a in (it.seller, it.buyer)])
        locks = list(dict.fromkeys(it.lock for it in items))
        pool: dict[str, list[_Candidate]] = {lk: [] for lk in locks}
        owner: dict[int, int] = {}
        with journal.fast_cursor() as cur:
            cur.execute(
                f"SELECT locked_by, account_id, {_q(*_CANDIDATE_COLUMNS)} FROM {_T_BLOCK} "  # noqa: S608
                f"WHERE state = %s AND locked_by IN ({_marks(len(locks))}) "
                f"ORDER BY locked_by, {_q(*OLDEST_FIRST)}{_for_update()}",
                [HELD, *locks],
            )
            for lk, account_id, *row in cur.fetchall():
                c = _Candidate(*row)
                pool[lk].append(c)
                owner[c.pk] = account_id
        now = timezone.now()
        whole_by_buyer: dict[int, list[int]] = {}
        pending: list[tuple[Settlement, list[int], list[dict[str, Any]]]] = []
        for it in items:
            mine = [c for c in pool[it.lock] if owner.get(c.pk, it.seller.pk) == it.seller.pk]
            selection = ds.choose_blocks(mine, it.quantity)
            if not selection.sufficient:
                raise _insufficient(it.seller, selection, it.quantity)
            deferred: list[int] = []
            kept: list[_Candidate] = []
            moved, lines = _take(
                selection,
                source=it.seller,
                to_account_id=it.buyer.pk,
                state=HELD,
                keep_lock=it.lock,
                defer_whole=deferred,
                kept=kept,
            )
            whole_by_buyer.setdefault(it.buyer.pk, []).extend(deferred)
            used = {t.block.pk for t in selection.takes}
            pool[it.lock] = kept + [c for c in pool[it.lock] if c.pk not in used]
            for c in kept:
                owner[c.pk] = it.seller.pk
            pending.append((it, moved, lines))
        numbers = _insert_transfers(
            [(it.seller.pk, it.buyer.pk, it.quantity, moved, actor.pk) for it, moved, _lines in pending],
            _when(now),
        )
        records = [
            (it, pk, number, moved, lines)
            for (it, moved, lines), (pk, number) in zip(pending, numbers, strict=True)
        ]
        postgres = connection.vendor == "postgresql"
        with journal.fast_cursor() as cur:
            for buyer_id, ids in whole_by_buyer.items():
                if ids:
                    cur.execute(
                        f"UPDATE {_T_BLOCK} SET account_id = %s, state = %s, locked_by = '', changed_at = %s "  # noqa: S608
                        + ("WHERE id = ANY(%s)" if postgres else f"WHERE id IN ({_marks(len(ids))})"),
                        [buyer_id, HELD, _when(now), *([ids] if postgres else ids)],
                    )
        journal.append_many(
            [
                (
                    "transfer",
                    {
                        "ref": number,
                        "number": number,
                        "from": it.seller.number,
                        "to": it.buyer.number,
                        "quantity": it.quantity,
                        "blocks": lines,
                        "trade": it.trade,
                    },
                    actor,
                )
                for it, _pk, number, _moved, lines in records
            ]
        )
        out: list[tuple[Transfer, Retirement | None]] = []
        for it, pk, number, moved, _lines in records:
            retirement = None
            if it.retire is not None:
                retirement = _retire(
                    it.buyer,
                    it.quantity,
                    it.retire["beneficiary"],
                    it.retire["purpose"],
                    timezone.localdate(),
                    it.retire.get("note", ""),
                    actor,
                    "",
                    {},
                    moved,
                )
            transfer = _transfer_record(pk, number, it.seller, it.buyer, it.quantity, actor, now)
            out.append((transfer, retirement))
    return out


# ---------------------------------------------------------------------------------------------------------------
# cancellation


class _Moved(Exception):
    """Units of the application moved to an account not yet locked while the cancellation waited: start over."""


def do_cancel(*, application: Application, reason: str, actor: Any) -> Cancellation:
    """A registry administrator cancels the units issued for an application by mistake, wherever they are now
    (unless any is retired). The numbers are never reused; the systems' carry-forward is restored and the
    application returns to `approved`, to be issued again under new numbers (domain.md §3.3, §9.2)."""
    if actor is None or not getattr(actor, "is_registry_admin", False):
        raise DomainError("not_registry_admin", _("Only a registry administrator can cancel units."))
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("reason_required", _("Give the reason for the cancellation."), field="reason")
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return _cancel(application.pk, reason, actor)
        except _Moved:
            continue
    raise DomainError(
        "busy", _("The units of this application kept moving while it was being cancelled; try again.")
    )


def _cancel(app_id: int, reason: str, actor: Any) -> Cancellation:
    app = Application.objects.select_for_update(no_key=True).get(pk=app_id)
    if app.state != Application.State.ISSUED:
        raise DomainError(
            "not_issued",
            _("Application %(code)s is %(state)s; only issued units can be cancelled.")
            % {"code": app.code, "state": app.get_state_display()},
        )
    live = SerialBlock.objects.filter(application_id=app.pk, state__in=[HELD, RETIRED])
    accounts = set(live.values_list("account_id", flat=True))
    lock_accounts(accounts)
    blocks = list(live.select_for_update(no_key=True).order_by("pk"))
    if {b.account_id for b in blocks} - accounts or set(live.values_list("pk", flat=True)) != {
        b.pk for b in blocks
    }:
        raise _Moved
    retired = sum(b.quantity for b in blocks if b.state == RETIRED)
    if retired:
        raise DomainError(
            "units_retired",
            _("%(n)d units of application %(code)s are retired; retired units cannot be cancelled.")
            % {"n": retired, "code": app.code},
        )
    listed = sorted({b.locked_by for b in blocks if b.locked_by})
    if listed:
        raise DomainError(
            "units_locked",
            _("Units of application %(code)s are reserved by market orders %(orders)s; close them first.")
            % {"code": app.code, "orders": ", ".join(listed)},
        )
    now = timezone.now()
    SerialBlock.objects.filter(pk__in=[b.pk for b in blocks]).update(state=CANCELLED, changed_at=now)
    quantity = sum(b.quantity for b in blocks)
    pk, number = _insert_record(
        Cancellation,
        "CX",
        {
            "application_id": app.pk,
            "quantity": quantity,
            "reason": reason,
            "actor_id": actor.pk,
            "created_at": _when(now),
        },
        "cancellation_id",
        [b.pk for b in blocks],
    )
    members = list(
        ApplicationSystem.objects.filter(application_id=app.pk).select_related("system").order_by("pk")
    )
    if members:
        SystemCarry.objects.bulk_create(
            [SystemCarry(system_id=m.system_id, kg=m.carry_in_kg) for m in members],
            update_conflicts=True,
            unique_fields=["system"],
            update_fields=["kg", "updated_at"],
        )
    Application.objects.filter(pk=app.pk).update(
        state=Application.State.APPROVED, issued_at=None, issuer=None, state_since=now
    )
    Transition.objects.create(
        application=app,
        from_state=Application.State.ISSUED,
        to_state=Application.State.APPROVED,
        actor=actor,
        comment=reason,
    )
    numbers = dict(RegistryAccount.objects.filter(pk__in=accounts).values_list("pk", "number"))
    journal.append(
        "cancel",
        {
            "ref": number,
            "number": number,
            "application": app.code,
            "reason": reason,
            "quantity": quantity,
            "blocks": [
                {"block": b.pk, "serial": b.serial, "quantity": b.quantity, "account": numbers[b.account_id]}
                for b in blocks
            ],
            "carry_kg": {m.system.code: m.carry_in_kg for m in members},
        },
        actor=actor,
    )
    return Cancellation.objects.get(pk=pk)


# ---------------------------------------------------------------------------------------------------------------
# reading


def balance(account: RegistryAccount) -> int:
    """Units held in the account (including units reserved by an open market order)."""
    return int(SerialBlock.objects.filter(account_id=account.pk, state=HELD).aggregate(q=Sum(_QTY))["q"] or 0)


def available(account: RegistryAccount) -> int:
    """Units the account can move or retire now (held and not reserved)."""
    return int(
        SerialBlock.objects.filter(account_id=account.pk, state=HELD, locked_by="").aggregate(q=Sum(_QTY))[
            "q"
        ]
        or 0
    )


def holdings(account: RegistryAccount) -> list[dict[str, Any]]:
    """The account's held units grouped by series and vintage: quantity, of which reserved, and number of blocks."""
    rows = (
        SerialBlock.objects.filter(account_id=account.pk, state=HELD)
        .values("series", "vintage", "project_code", "methodology_code")
        .annotate(
            quantity=Sum(_QTY),
            locked=Sum(
                Case(When(~Q(locked_by=""), then=_QTY), default=Value(0), output_field=IntegerField())
            ),
            blocks=Sum(Value(1), output_field=IntegerField()),
        )
        .order_by("vintage", "series")
    )
    return [
        {
            "series": r["series"],
            "vintage": r["vintage"],
            "project_code": r["project_code"],
            "methodology_code": r["methodology_code"],
            "quantity": int(r["quantity"]),
            "locked": int(r["locked"] or 0),
            "blocks": int(r["blocks"]),
        }
        for r in rows
    ]


def supply_totals() -> dict[str, int]:
    """Units issued (all blocks ever issued, cancelled included) and where they are now: held, retired, cancelled.
    Invariant: issued = held + retired + cancelled (a split only divides a block)."""
    issued = SerialBlock.objects.filter(parent__isnull=True).aggregate(q=Sum(_QTY))["q"] or 0
    by_state = dict(
        SerialBlock.objects.exclude(state=SPLIT)
        .values("state")
        .annotate(q=Sum(_QTY))
        .values_list("state", "q")
    )
    return {
        "issued": int(issued),
        "held": int(by_state.get(HELD, 0) or 0),
        "retired": int(by_state.get(RETIRED, 0) or 0),
        "cancelled": int(by_state.get(CANCELLED, 0) or 0),
    }


def find_by_serial(text: str) -> SerialBlock | None:
    """The block a serial refers to: the live (not split) block containing that unit, or for a block serial the
    block containing its first unit; an exact match of a split block when its units have all moved on."""
    try:
        ref = ds.parse_serial(text)
    except ds.SerialError:
        raise DomainError(
            "invalid_serial", _("%(text)s is not a serial number.") % {"text": text}, field="serial"
        )
    block = (
        SerialBlock.objects.filter(series=ref.series, start__lte=ref.start)
        .exclude(state=SPLIT)
        .order_by("-start")
        .first()
    )
    if block is not None and block.end >= ref.start:
        return block
    return SerialBlock.objects.filter(series=ref.series, start=ref.start, end=ref.end).first()


def block_history(block: SerialBlock) -> dict[str, Any]:
    """A block's lineage back to issuance (root first), the blocks split from it, the transfers, retirements and
    cancellations that touched it or its ancestors, and the journal entries recording them (oldest first)."""
    lineage = [block]
    while lineage[0].parent_id is not None:
        lineage.insert(0, SerialBlock.objects.get(pk=lineage[0].parent_id))
    descendants: list[SerialBlock] = []
    frontier = [block.pk]
    while frontier:
        children = list(SerialBlock.objects.filter(parent_id__in=frontier).order_by("start"))
        descendants.extend(children)
        frontier = [c.pk for c in children if c.state == SPLIT]
    # the split of an ancestor moved a sibling: those records belong to this block's story too
    related = {b.pk for b in lineage} | {b.pk for b in descendants}
    related |= set(
        SerialBlock.objects.filter(parent_id__in=[b.pk for b in lineage]).values_list("pk", flat=True)
    )
    transfers = list(Transfer.objects.filter(blocks__in=related).distinct().order_by("pk"))
    retirements = list(Retirement.objects.filter(blocks__in=related).distinct().order_by("pk"))
    cancellations = list(Cancellation.objects.filter(blocks__in=related).distinct().order_by("pk"))
    root = lineage[0]
    refs = [root.application.code, *(r.number for r in (*transfers, *retirements, *cancellations))]
    entries = [
        e
        for e in JournalEntry.objects.filter(In(KeyTextTransform("ref", "payload"), refs)).order_by("seq")
        if e.kind != "issue" or any(line.get("block") == root.pk for line in e.payload.get("blocks", []))
    ]
    return {
        "block": block,
        "root": root,
        "lineage": lineage,
        "descendants": descendants,
        "transfers": transfers,
        "retirements": retirements,
        "cancellations": cancellations,
        "entries": entries,
    }


def carry_of(system_id: int) -> Decimal:
    """kg CO2e a system carries to its next application (0 when none)."""
    kg = SystemCarry.objects.filter(system_id=system_id).values_list("kg", flat=True).first()
    return kg if kg is not None else Decimal(0)
