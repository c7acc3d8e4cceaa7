"""Signals of the live path, so apps that show live transcripts (the dashboard) need no hooks in here."""

from django.dispatch import Signal

# sent with transcription=: a live session started, stopped, or its speaker names changed (after commit)
live_session_changed = Signal()
# sent with transcription=, segments= (the rows just stored, including any that were already there)
live_segments_stored = Signal()
# sent with should_stop= (a callable) when `manage.py persistlive` starts; a receiver starts its own work for the
# process's lifetime (the dashboard: its relay of the agent's transient events) and returns a Future that is done
# soon after should_stop() turns true, which the command waits for before it exits
persister_started = Signal()
