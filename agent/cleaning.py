"""Turn Whisper's text for one live chunk into what a caller should see (SPEC §7 step 5).

Whisper, fed a chunk with little or no speech (a cough, a door, line noise), tends to answer with phrases
from its training subtitles ("Thank you.", "Thanks for watching!") or to loop on a word. Those are removed
only when they are the whole text: "thank you" inside a real sentence is speech.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

HALLUCINATIONS = (
    "thank you",
    "thank you very much",
    "thank you so much",
    "thank you for watching",
    "thanks for watching",
    "thanks for listening",
    "thank you for listening",
    "please subscribe",
    "like and subscribe",
    "subscribe to my channel",
    "you",
)
FILLERS = ("um", "umm", "uh", "uhh", "uhm", "erm", "er", "hmm", "hm", "mm", "mmm", "ah")
# Fillers removed inside a sentence too: "ah" and "er" stay there ("Ah, I see"), they can carry meaning.
_INLINE_FILLER = re.compile(r"(?:,\s*)?(?<![\w'-])(?:u+m+|u+h+|e+r+m+|h+m+|m{2,})(?![\w'-])(?:\s*,)?", re.IGNORECASE)
# Whisper's sound annotations: "[Music]", "(upbeat music)", "[BLANK_AUDIO]", "♪".
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫]+")
_WORD_KEY = re.compile(r"[^\w']+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.!?;:])")
_FINAL_PUNCTUATION = ".!?…\u3002\uff01\uff1f"  # and the CJK full stop, exclamation and question marks
_MAX_REPEATED_PHRASE = 8  # words


def clean_transcript(text: str, extra_phrases: Iterable[str] = ()) -> str:
    """The cleaned text, or "" when nothing real is left (the caller then publishes nothing)."""
    text = collapse_repeats(_INLINE_FILLER.sub(" ", _ANNOTATION.sub(" ", text)))
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text).lstrip(" ,;:-.…").rstrip(" ,;:-")
    if _key(text) in _dropped_phrases(extra_phrases):  # also "" for lone punctuation
        return ""
    return _sentence_case(text)


def collapse_repeats(text: str) -> str:
    """A word or phrase said 3+ times in a row (Whisper's decoding loop) → once; twice is left alone."""
    words = text.split()
    keys = [_key(word) for word in words]
    for size in range(1, _MAX_REPEATED_PHRASE + 1):
        kept_words: list[str] = []
        kept_keys: list[str] = []
        i = 0
        while i < len(words):
            phrase = keys[i : i + size]
            count = 1
            if len(phrase) == size and all(phrase):
                while keys[i + count * size : i + (count + 1) * size] == phrase:
                    count += 1
            step = size if count >= 3 else 1
            kept_words += words[i : i + step]
            kept_keys += keys[i : i + step]
            i += count * size if count >= 3 else 1
        words, keys = kept_words, kept_keys
    return " ".join(words)


def _dropped_phrases(extra_phrases: Iterable[str]) -> set[str]:
    return {_key(phrase) for phrase in (*HALLUCINATIONS, *FILLERS, *extra_phrases)} | {""}


def _key(text: str) -> str:
    """Case- and punctuation-insensitive form used for every comparison."""
    return " ".join(_WORD_KEY.sub(" ", text.lower()).split())


def _sentence_case(text: str) -> str:
    for index, char in enumerate(text):
        if char.isalnum():  # the first word: "10 o'clock" stays as it is
            text = text[:index] + char.upper() + text[index + 1 :]
            break
    if text[-1] in ",;:":
        text = text[:-1]
    if text[-1] not in _FINAL_PUNCTUATION:
        text += "."
    return text
