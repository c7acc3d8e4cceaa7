"""The one Whisper client: REST (WHISPER_URL) and in-process give the same transcript; failures are typed."""

from collections.abc import Iterator

import pytest

from speech.client import (
    TranscriptionError,
    UndecodableAudio,
    WhisperClient,
    WhisperUnavailable,
)
from speech.engine import get_engine
from tests.support.audio import SENTENCES, read_wav, speech, utterances, wer, write_wav
from tests.support.servers import WHISPER_TOKEN, free_port, whisper_service

pytestmark = pytest.mark.slow  # the Whisper service process and the in-process model

MAX_WER = 0.2  # see test_whisper_engine.py


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    with whisper_service(WHISPER_API_TOKEN=WHISPER_TOKEN) as url:
        yield url


@pytest.fixture
def remote(service: str) -> WhisperClient:
    return WhisperClient(url=service, token=WHISPER_TOKEN)


@pytest.fixture
def local() -> WhisperClient:
    return WhisperClient()


def test_from_env_picks_the_service_or_the_engine(monkeypatch):
    monkeypatch.delenv("WHISPER_URL", raising=False)
    assert not WhisperClient.from_env().remote
    monkeypatch.setenv("WHISPER_URL", "http://whisper:9000/")
    monkeypatch.setenv("WHISPER_API_TOKEN", "t")
    monkeypatch.setenv("WHISPER_TIMEOUT_SECONDS", "12.5")
    client = WhisperClient.from_env()
    assert (client.remote, client.url, client.token, client.timeout) == (True, "http://whisper:9000", "t", 12.5)


def test_remote_and_local_give_the_same_transcript(remote, local, tmp_path):
    audio = write_wav(tmp_path / "three.wav", utterances(*SENTENCES[:3]))  # the same 16-bit samples both ways
    over_http = remote.transcribe(audio)
    in_process = local.transcribe(audio)
    assert over_http.text == in_process.text
    assert wer(" ".join(SENTENCES[:3]), over_http.text) <= MAX_WER
    assert over_http.language == in_process.language == "en"
    assert over_http.duration == pytest.approx(in_process.duration, abs=0.01)
    assert [(s.start, s.end) for s in over_http.segments] == [(s.start, s.end) for s in in_process.segments]


def test_remote_accepts_every_input_kind(remote):
    path = speech(SENTENCES[4])
    texts = {
        remote.transcribe(path).text,
        remote.transcribe(str(path)).text,
        remote.transcribe(path.read_bytes()).text,
        remote.transcribe(path.open("rb")).text,
        remote.transcribe(read_wav(path), language="en-US").text,
    }
    assert len(texts) == 1
    assert wer(SENTENCES[4], texts.pop()) <= MAX_WER


def test_remote_options(remote):
    transcript = remote.transcribe(speech(SENTENCES[3]), word_timestamps=True, language="auto")
    assert transcript.language == "en"
    assert transcript.segments[0].words


def test_remote_undecodable_and_bad_language(remote):
    with pytest.raises(UndecodableAudio):
        remote.transcribe(b"this is not audio")
    with pytest.raises(ValueError, match="Unknown language"):
        remote.transcribe(speech(SENTENCES[0]), language="xx")


def test_wrong_token_is_not_transient(service):
    with pytest.raises(TranscriptionError, match="401") as raised:
        WhisperClient(url=service, token="wrong").transcribe(speech(SENTENCES[0]))
    assert not isinstance(raised.value, WhisperUnavailable)


def test_service_down_is_unavailable():
    client = WhisperClient(url=f"http://127.0.0.1:{free_port()}", connect_timeout=1)
    with pytest.raises(WhisperUnavailable, match="unreachable"):
        client.transcribe(speech(SENTENCES[0]))
    with pytest.raises(WhisperUnavailable):
        client.health()


def test_timeout_is_unavailable(service):
    client = WhisperClient(url=service, token=WHISPER_TOKEN, timeout=0.01)
    with pytest.raises(WhisperUnavailable, match="timed out"):
        client.transcribe(utterances(*SENTENCES))


def test_health(remote, local):
    assert remote.health()["status"] == "ok"
    get_engine().load()
    assert local.health()["status"] == "ok"


def test_service_without_a_model_is_unavailable():
    with whisper_service(ready_status=503, WHISPER_MODEL="/no/such/model") as url:
        with pytest.raises(WhisperUnavailable, match="503"):
            WhisperClient(url=url).transcribe(speech(SENTENCES[0]))
        with pytest.raises(WhisperUnavailable):
            WhisperClient(url=url).health()
