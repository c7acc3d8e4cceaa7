"""Kept for the history of existing databases: the full-text index over transcript segments it created is
transcription's from now on (transcription 0006_segment_text_search_index, which finds it already there)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_support_staff_group"),
        ("transcription", "0003_live_transcript_permission"),
    ]

    operations = []
