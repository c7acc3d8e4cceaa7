"""Full-text index over transcript segments for the dashboard's search (PostgreSQL only).

The expression must stay identical to `apps.dashboard.search.EnglishDocument`, or the planner will not
use the index. Built CONCURRENTLY (outside a transaction) so an existing table with millions of segments
keeps taking writes while it builds; IF NOT EXISTS because databases migrated before this migration existed
have it already (dashboard 0002 built it then). SQLite has no such index: its plain fallback needs none.
"""

from django.db import migrations

INDEX = "transcription_segment_text_fts"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("transcription", "Segment")._meta.db_table)
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {table} "
        "USING gin (to_tsvector('english'::regconfig, text))"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("transcription", "0005_transcription_lease"),
    ]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
