from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("transcription", "0004_live_dead_letter"),
    ]

    operations = [
        migrations.AddField(
            model_name="transcription",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="transcription",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
