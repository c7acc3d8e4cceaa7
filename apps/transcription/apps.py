from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "apps.transcription"
    label = "transcription"
    verbose_name = "Transcription"
