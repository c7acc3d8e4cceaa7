from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "apps.transcription"
    label = "transcription"
    verbose_name = "Transcription"

    def ready(self) -> None:
        from apps.core import health as core_health
        from apps.recordings.signals import recording_finished

        from . import health, receivers

        core_health.register_check("whisper", health.check_whisper)
        core_health.register_capability("transcriptionLive", health.live_available)
        core_health.register_capability("transcriptionPost", health.post_call_available)
        recording_finished.connect(receivers.recording_finished, dispatch_uid="transcription.recording_finished")
