# The journal's time, kind, actor and payload become stored columns generated from the hashed text (see
# lowcarbon.registry.models.JournalField), so that they cannot be edited on their own and verification does not
# have to compare them entry by entry. The existing rows keep their hashed text; the columns are recomputed from it.
# Written as SQL (one table rewrite per database, reversible), with the model state as Django would have it.

import importlib

import django.db.models.fields.json
from django.db import migrations, models

import lowcarbon.registry.models

TABLE = "registry_journalentry"

PG_AT = (
    "timezone('UTC', make_timestamp("
    + ", ".join(
        f"""substr("canonical", strpos("canonical", ',"at":"') + {o}, {w})::{t}"""
        for o, w, t in (
            (7, 4, "integer"),
            (12, 2, "integer"),
            (15, 2, "integer"),
            (18, 2, "integer"),
            (21, 2, "integer"),
            (24, 9, "double precision"),
        )
    )
    + "))"
)

PG_FORWARD = [
    'DROP INDEX IF EXISTS "journal_payload_ref_idx"',
    f'ALTER TABLE "{TABLE}" DROP COLUMN "at", DROP COLUMN "kind", DROP COLUMN "actor_id", DROP COLUMN "payload"',
    f"""ALTER TABLE "{TABLE}"
        ADD COLUMN "at" timestamp with time zone GENERATED ALWAYS AS ({PG_AT}) STORED,
        ADD COLUMN "kind" varchar(30) GENERATED ALWAYS AS (split_part(split_part("canonical", '"kind":"', 2), '"', 1)) STORED,
        ADD COLUMN "actor_id" bigint GENERATED ALWAYS AS ((nullif(split_part(substr("canonical", 13), ',', 1), 'null'))::bigint) STORED,
        ADD COLUMN "payload" jsonb GENERATED ALWAYS AS ((("canonical")::jsonb -> 'payload')) STORED""",
    f"""CREATE INDEX "journal_payload_ref_idx" ON "{TABLE}" ((("payload" ->> 'ref')))""",
]

PG_BACKWARD = [
    f'ALTER TABLE "{TABLE}" ALTER COLUMN "at" DROP EXPRESSION, ALTER COLUMN "kind" DROP EXPRESSION, '
    'ALTER COLUMN "actor_id" DROP EXPRESSION, ALTER COLUMN "payload" DROP EXPRESSION',
    f'ALTER TABLE "{TABLE}" ALTER COLUMN "at" SET NOT NULL, ALTER COLUMN "kind" SET NOT NULL, '
    'ALTER COLUMN "payload" SET NOT NULL',
]

# The append function of 0002, now inserting the hashed text only (the other columns follow from it).
_EARLIER = importlib.import_module("lowcarbon.registry.migrations.0002_journal_canonical")
_INSERT_ALL = """    INSERT INTO registry_journalentry (seq, at, kind, actor_id, payload, prev_hash, hash, canonical)
    VALUES (o_seq, o_at, p_kind, p_actor, p_payload::jsonb, o_prev, o_hash, o_content);"""
_INSERT_TEXT = """    INSERT INTO registry_journalentry (seq, prev_hash, hash, canonical)
    VALUES (o_seq, o_prev, o_hash, o_content);"""
assert _EARLIER.APPEND_FUNCTION.count(_INSERT_ALL) == 1
APPEND_FUNCTION = _EARLIER.APPEND_FUNCTION.replace(_INSERT_ALL, _INSERT_TEXT)

SQLITE_NEW = (
    '"seq" bigint NOT NULL PRIMARY KEY, "prev_hash" varchar(64) NOT NULL, "hash" varchar(64) NOT NULL UNIQUE, '
    '"canonical" text NOT NULL, '
    """"at" datetime GENERATED ALWAYS AS (replace(substr(json_extract("canonical",'$.at'),1,26),'T',' ')) STORED, """
    """"kind" varchar(30) GENERATED ALWAYS AS (json_extract("canonical",'$.kind')) STORED, """
    """"actor_id" bigint GENERATED ALWAYS AS (json_extract("canonical",'$.actor_id')) STORED, """
    """"payload" text GENERATED ALWAYS AS (json_extract("canonical",'$.payload')) STORED"""
)
SQLITE_OLD = (
    '"seq" bigint NOT NULL PRIMARY KEY, "at" datetime NOT NULL, "kind" varchar(30) NOT NULL, "actor_id" bigint NULL, '
    '"payload" text NOT NULL CHECK ((JSON_VALID("payload") OR "payload" IS NULL)), "prev_hash" varchar(64) NOT NULL, '
    '"hash" varchar(64) NOT NULL UNIQUE, "canonical" text NOT NULL'
)
SQLITE_INDEX = (
    f'CREATE INDEX "journal_payload_ref_idx" ON "{TABLE}" (((CASE WHEN JSON_TYPE("payload", \'$."ref"\') '
    "IN ('true','false','null') THEN JSON_TYPE(\"payload\", '$.\"ref\"') "
    'ELSE JSON_EXTRACT("payload", \'$."ref"\') END)))'
)


def _sqlite_rebuild(schema_editor, columns: str, copied: str) -> None:
    for sql in (
        f'CREATE TABLE "new__{TABLE}" ({columns})',
        f'INSERT INTO "new__{TABLE}" ({copied}) SELECT {copied} FROM "{TABLE}"',  # noqa: S608
        f'DROP TABLE "{TABLE}"',
        f'ALTER TABLE "new__{TABLE}" RENAME TO "{TABLE}"',
        SQLITE_INDEX,
    ):
        schema_editor.execute(sql)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in PG_FORWARD:
            schema_editor.execute(sql)
        schema_editor.execute(APPEND_FUNCTION)
    else:
        _sqlite_rebuild(schema_editor, SQLITE_NEW, '"seq", "prev_hash", "hash", "canonical"')


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in PG_BACKWARD:
            schema_editor.execute(sql)
        schema_editor.execute(_EARLIER.APPEND_FUNCTION)
    else:
        _sqlite_rebuild(
            schema_editor,
            SQLITE_OLD,
            '"seq", "at", "kind", "actor_id", "payload", "prev_hash", "hash", "canonical"',
        )


STATE = [
    migrations.RemoveIndex(model_name="journalentry", name="journal_payload_ref_idx"),
    migrations.RemoveField(model_name="journalentry", name="at"),
    migrations.RemoveField(model_name="journalentry", name="kind"),
    migrations.RemoveField(model_name="journalentry", name="actor_id"),
    migrations.RemoveField(model_name="journalentry", name="payload"),
    migrations.AddField(
        model_name="journalentry",
        name="at",
        field=models.GeneratedField(
            db_persist=True,
            expression=lowcarbon.registry.models.JournalField("at"),
            output_field=models.DateTimeField(),
        ),
    ),
    migrations.AddField(
        model_name="journalentry",
        name="kind",
        field=models.GeneratedField(
            db_persist=True,
            expression=lowcarbon.registry.models.JournalField("kind"),
            output_field=models.CharField(max_length=30),
        ),
    ),
    migrations.AddField(
        model_name="journalentry",
        name="actor_id",
        field=models.GeneratedField(
            db_persist=True,
            expression=lowcarbon.registry.models.JournalField("actor_id"),
            output_field=models.BigIntegerField(null=True),
        ),
    ),
    migrations.AddField(
        model_name="journalentry",
        name="payload",
        field=models.GeneratedField(
            db_persist=True,
            expression=lowcarbon.registry.models.JournalField("payload"),
            output_field=models.JSONField(),
        ),
    ),
    migrations.AddIndex(
        model_name="journalentry",
        index=models.Index(
            django.db.models.fields.json.KeyTextTransform("ref", "payload"), name="journal_payload_ref_idx"
        ),
    ),
]


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_verification_run")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=STATE,
            database_operations=[migrations.RunPython(forwards, backwards)],
        )
    ]
