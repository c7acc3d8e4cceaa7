"""Signals of the LiveKit webhook receiver (apps.rooms.events), so the apps that react to LiveKit's events
(recordings, and outgoing webhooks; transcription through recordings' own signal) connect to them instead
of being imported by it.

All are sent inside the atomic block that stores the event's dedupe row: a receiver that raises rolls the
event back (LiveKit retries it), and the work of every receiver lands together with that row or not at all.
"""

from django.dispatch import Signal

# sent with event= (livekit.api.WebhookEvent) before anything is stored; each receiver returns the strings of
# the event that its app stores, as (name in LiveKit's JSON, value, column size or None when only looked up)
livekit_event_strings = Signal()
# sent with event_type= (the outgoing webhook's name: room_started, room_finished, participant_joined,
# participant_left) and data= (its payload), after the room's records were updated
room_event = Signal()
# sent with event= for egress_started, egress_updated and egress_ended
egress_event = Signal()
