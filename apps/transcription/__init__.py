"""Transcription: the Whisper engine, the one Whisper client and the Whisper REST service.

The modules here (engine, client, formats, transcript, whisper_server) do not import Django, so the live
agent and the standalone Whisper service can use them; the Django wiring lives elsewhere.
"""
