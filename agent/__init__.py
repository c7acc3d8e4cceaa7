"""The live transcription agent: a LiveKit Agents worker (no Django), see `python -m agent --help`."""
