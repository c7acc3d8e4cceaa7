"""The "Support staff" group: members may follow live calls and search transcripts on the dashboard."""

from django.db import migrations

GROUP = "Support staff"
PERMISSIONS = [
    ("transcription", "view_live_transcript"),
    ("transcription", "view_transcription"),
    ("transcription", "view_segment"),
]


def create_group(apps, schema_editor):
    # The permissions are transcription's: its migration 0003 creates them (before post_migrate would).
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("transcription", "0003_live_transcript_permission"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
