"""Speech: the Whisper engine, the one Whisper client, transcript formats and the agent↔platform Redis contract.

Owned by neither Django nor the live agent, so both may import it; it imports neither (and no Django), which
`lint-imports` checks (pyproject.toml). The Whisper REST service runs from here: `python -m speech.service`.
"""
