"""clean_transcript(): what a live chunk's Whisper text becomes before it is published (SPEC §7 step 5)."""

import pytest

from agent.cleaning import clean_transcript


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        # Whisper's favourite hallucinations, whole-text only, whatever the case and punctuation
        ("Thank you.", ""),
        (" thank you", ""),
        ("THANK YOU!", ""),
        ("Thank you very much.", ""),
        ("Thanks for watching!", ""),
        ("Thank you for watching.", ""),
        ("you", ""),
        ("Please subscribe.", ""),
        ("Thank you. Thank you. Thank you.", ""),  # collapsed to one, then dropped
        ("Thank you for coming, everyone.", "Thank you for coming, everyone."),
        ("I wanted to say thank you", "I wanted to say thank you."),
        ("Thanks.", "Thanks."),
        ("You too.", "You too."),
        # lone punctuation, annotations and fillers
        ("...", ""),
        (" - ", ""),
        ("?", ""),
        ("", ""),
        ("[Music]", ""),
        ("[BLANK_AUDIO]", ""),
        ("(upbeat music) Hello there", "Hello there."),
        ("♪ la la ♪", "La la."),
        ("Um.", ""),
        ("uh", ""),
        ("Hmm...", ""),
        ("Um, thank you.", ""),
        ("I, um, think so", "I think so."),
        ("So, uh, yes,", "So yes."),
        ("Yes, um.", "Yes."),
        ("Hmm... okay", "Okay."),
        ("uh-huh", "Uh-huh."),
        ("Ah, I see.", "Ah, I see."),
        # decoding loops: 3+ in a row once, twice is speech
        ("the the the the cat sat", "The cat sat."),
        ("I think I think I think so.", "I think so."),
        ("No, no, no, no.", "No."),
        ("very very good", "Very very good."),
        ("we go we go we go we go home", "We go home."),
        # capitalised, ending with punctuation
        ("hello world", "Hello world."),
        ("is it ready?", "Is it ready?"),
        ("wait,", "Wait."),
        ("'quoted' start", "'Quoted' start."),
        ("10 o'clock it is", "10 o'clock it is."),
    ],
)
def test_clean_transcript(raw, cleaned):
    assert clean_transcript(raw) == cleaned


def test_extra_phrases_extend_the_list_as_whole_texts():
    phrases = ["Subtitles by the Amara.org community", "goodbye everyone"]
    assert clean_transcript("Subtitles by the Amara.org community", phrases) == ""
    assert clean_transcript("Goodbye, everyone!", phrases) == ""
    assert clean_transcript("I said goodbye everyone and left", phrases) == "I said goodbye everyone and left."
    assert clean_transcript("Goodbye, everyone!") == "Goodbye, everyone!"
