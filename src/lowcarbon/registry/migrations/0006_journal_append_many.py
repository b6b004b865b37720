# The PostgreSQL journal append of several entries in one round trip (concurrent transfers settled together).

from django.db import migrations

# Takes the advisory lock (key passed by the caller), reads the last entry with a fresh snapshot (a VOLATILE
# function's statements each take one), then builds each entry's canonical text (same bytes as
# lowcarbon.registry.domain.journal.entry_content; one time for all, as append_many gives them), chains the hashes
# and inserts the rows with one statement. The other columns are generated from the hashed text (0004).
APPEND_MANY_FUNCTION = r"""
CREATE OR REPLACE FUNCTION registry_journal_append_many(
    p_lock bigint, p_kinds text[], p_kind_jsons text[], p_actors bigint[], p_payloads text[])
RETURNS TABLE (o_seq bigint, o_at timestamptz, o_prev text, o_hash text, o_content text)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_seq bigint;
    v_prev text;
    v_at timestamptz;
    v_at_text text;
    v_seqs bigint[] := '{}';
    v_prevs text[] := '{}';
    v_hashes text[] := '{}';
    v_contents text[] := '{}';
    v_content text;
    v_hash text;
    i integer;
BEGIN
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT j.seq, j.hash INTO v_seq, v_prev FROM registry_journalentry j ORDER BY j.seq DESC LIMIT 1;
    IF v_seq IS NULL THEN
        v_seq := 0;
        v_prev := repeat('0', 64);
    END IF;
    v_at := clock_timestamp();
    v_at_text := to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    FOR i IN 1 .. coalesce(array_length(p_kinds, 1), 0) LOOP
        v_seq := v_seq + 1;
        v_content := '{"actor_id":' || coalesce(p_actors[i]::text, 'null')
            || ',"at":"' || v_at_text
            || '","kind":' || p_kind_jsons[i] || ',"payload":' || p_payloads[i] || ',"seq":' || v_seq::text || '}';
        v_hash := encode(sha256(convert_to(v_prev || E'\n' || v_content, 'UTF8')), 'hex');
        v_seqs := v_seqs || v_seq;
        v_prevs := v_prevs || v_prev;
        v_hashes := v_hashes || v_hash;
        v_contents := v_contents || v_content;
        v_prev := v_hash;
    END LOOP;
    INSERT INTO registry_journalentry (seq, prev_hash, hash, canonical)
    SELECT * FROM unnest(v_seqs, v_prevs, v_hashes, v_contents);
    RETURN QUERY SELECT s, v_at, p, h, c FROM unnest(v_seqs, v_prevs, v_hashes, v_contents) AS u (s, p, h, c);
END
$fn$;
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_MANY_FUNCTION)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS registry_journal_append_many(bigint, text[], text[], bigint[], text[])"
        )


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0005_serial_block_fewer_indexes"),
    ]

    operations = [
        migrations.RunPython(create_function, drop_function),
    ]
