"""Signals of the live path, so apps that show live transcripts (the dashboard) need no hooks in here."""

from django.dispatch import Signal

# sent with transcription=: a live session started, stopped, or its speaker names changed (after commit)
live_session_changed = Signal()
# sent with transcription=, segments= (the rows just stored, including any that were already there)
live_segments_stored = Signal()
