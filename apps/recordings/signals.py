"""Signals of the recording lifecycle, so apps that act on a finished recording (transcription) need no hooks in
here."""

from django.dispatch import Signal

# sent with recording= when LiveKit reports its egress ended (completed, failed or aborted), inside the
# transaction that stored the recording's final state
recording_finished = Signal()
