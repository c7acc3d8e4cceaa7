"""The "Support staff" group: members may follow live calls and search transcripts on the dashboard."""

from django.db import migrations

GROUP = "Support staff"
PERMISSIONS = [
    ("transcription", "transcription", "view_live_transcript", "Can follow live calls and search transcripts on the dashboard"),
    ("transcription", "transcription", "view_transcription", "Can view transcription"),
    ("transcription", "segment", "view_segment", "Can view segment"),
]


def create_group(apps, schema_editor):
    # Permissions are normally created after migrations run; create the ones the group needs now.
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, model, codename, name in PERMISSIONS:
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        group.permissions.add(permission)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("transcription", "0003_live_transcript_permission"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
