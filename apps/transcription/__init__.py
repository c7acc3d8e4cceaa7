"""Transcription: post-call jobs, live sessions and their persister, the API and admin (Django).

The Whisper engine, client, formats and the agent's Redis contract live in `speech/`, which imports no Django.
"""
