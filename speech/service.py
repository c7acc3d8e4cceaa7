"""The Whisper REST service: one loaded model shared by agents and workers (its own process, no Django).

    python -m speech.service --host 0.0.0.0 --port 9000

`POST /asr` speaks whisper-asr-webservice's dialect, `POST /v1/audio/transcriptions` OpenAI's; `GET /health`
answers at once (503 while the model loads in the background). Decoding runs in a thread pool, bounded by
the engine's semaphore (WHISPER_MAX_CONCURRENT), so the event loop stays free.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import logging
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from envvars import env_int, env_optional, env_port, env_str, parse_bool

from . import formats
from .engine import WhisperConfig, WhisperEngine, normalise_language
from .transcript import ModelUnavailable, Transcript, UndecodableAudio

logger = logging.getLogger("speech.service")

DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024
ASR_OUTPUTS = {"txt": "text", "text": "text", "json": "json", "srt": "srt", "vtt": "vtt", "tsv": "tsv"}
OPENAI_FORMATS = {"json", "text", "srt", "vtt", "verbose_json"}


class BodyTooLarge(Exception):  # noqa: N818 - internal signal, never leaves this module
    """A chunked upload grew past the limit."""


class RequestFailed(Exception):  # noqa: N818 - internal signal, rendered by `failure()`
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def failure(request: Request, status: int, message: str, code: str) -> JSONResponse:
    """Errors in the caller's dialect: OpenAI's `{"error": {...}}` under /v1, else `{"detail", "code"}`."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status == 503:
        headers["Retry-After"] = "5"
    if request.url.path.startswith("/v1/"):
        kind = {401: "authentication_error", 413: "invalid_request_error", 400: "invalid_request_error"}.get(
            status, "server_error"
        )
        return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status, headers=headers)
    return JSONResponse({"detail": message, "code": code}, status, headers=headers)


class BodyLimit:
    """413 before reading when Content-Length is too big; for chunked bodies, stop once the limit is passed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            response = failure(Request(scope), 413, self._message(), "request_too_large")
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"The upload is larger than WHISPER_MAX_UPLOAD_BYTES ({self.limit} bytes)."


class Service:
    """The endpoints, bound to one engine and the service's settings."""

    def __init__(self, engine: WhisperEngine, *, token: str | None, max_upload_bytes: int) -> None:
        self.engine = engine
        self.token = token
        self.max_upload_bytes = max_upload_bytes
        self.load_error: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------
    def load_in_background(self) -> threading.Thread:
        def load() -> None:
            try:
                self.engine.load()
            except ModelUnavailable as exc:
                self.load_error = str(exc)
                logger.error("%s", exc)

        thread = threading.Thread(target=load, name="whisper-model-loader", daemon=True)
        thread.start()
        return thread

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.load_in_background()
        yield

    # --- helpers -------------------------------------------------------------------------------------------
    def check(self, request: Request) -> None:
        """Bearer token (when configured), then a loaded model."""
        if self.token:
            header = request.headers.get("authorization", "")
            scheme, _, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self.token.encode()):
                raise RequestFailed(
                    401, "Missing or wrong bearer token (Authorization: Bearer <WHISPER_API_TOKEN>).", "invalid_api_key"
                )
        if not self.engine.ready:
            if self.load_error:
                raise RequestFailed(
                    503, f"The Whisper model could not be loaded: {self.load_error}", "model_unavailable"
                )
            raise RequestFailed(503, "The Whisper model is still loading; retry shortly.", "model_loading")

    async def upload(self, request: Request, *fields: str) -> tuple[bytes, dict[str, list[str]]]:
        """The audio bytes from the first present multipart field, plus the other (text) form fields."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise RequestFailed(
                400, f"Send the audio as multipart/form-data in the field {fields[0]!r}.", "invalid_request"
            )
        try:
            async with request.form(max_files=4, max_fields=50) as form:
                texts: dict[str, list[str]] = {}
                for key, value in form.multi_items():
                    if isinstance(value, str):
                        texts.setdefault(key, []).append(value)
                for name in fields:
                    value = form.get(name)
                    if isinstance(value, UploadFile):
                        return await value.read(), texts
        except HTTPException as exc:  # python-multipart could not parse the body
            raise RequestFailed(400, f"Malformed multipart body: {exc.detail}", "invalid_request") from exc
        names = " or ".join(repr(name) for name in fields)
        raise RequestFailed(400, f"No audio file: send it as the multipart file field {names}.", "invalid_request")

    async def run(self, audio: bytes | np.ndarray, **options: Any) -> Transcript:
        try:
            return await run_in_threadpool(self.engine.transcribe, audio, **options)
        except UndecodableAudio as exc:
            raise RequestFailed(400, f"The upload is not audio we can decode. {exc}", "undecodable_audio") from exc
        except ValueError as exc:
            raise RequestFailed(400, str(exc), "invalid_request") from exc
        except ModelUnavailable as exc:
            raise RequestFailed(503, str(exc), "model_unavailable") from exc

    # --- endpoints -----------------------------------------------------------------------------------------
    async def health(self, request: Request) -> JSONResponse:
        config = self.engine.config
        status = "ok" if self.engine.ready else ("error" if self.load_error else "loading")
        body: dict[str, Any] = {"status": status, "model": config.model, "device": config.device}
        if self.load_error:
            body["detail"] = self.load_error
        return JSONResponse(body, 200 if status == "ok" else 503)

    async def asr(self, request: Request) -> Response:
        """whisper-asr-webservice's POST /asr."""
        query = request.query_params
        output = query.get("output", "txt").lower()
        if output not in ASR_OUTPUTS:
            raise RequestFailed(400, f"output must be one of {', '.join(ASR_OUTPUTS)}.", "invalid_request")
        options = self.options(
            language=query.get("language"),
            task=query.get("task", "transcribe"),
            word_timestamps=query.get("word_timestamps"),
            vad_filter=query.get("vad_filter"),
        )
        encode = self.flag(query.get("encode"), True, "encode")
        self.check(request)
        data, _ = await self.upload(request, "audio_file", "file")
        audio: bytes | np.ndarray = data
        if not encode:  # whisper-asr-webservice: encode=false means raw 16 kHz mono s16le PCM
            if len(data) % 2:
                raise RequestFailed(
                    400, "encode=false expects raw 16-bit PCM: an even number of bytes.", "undecodable_audio"
                )
            audio = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        transcript = await self.run(audio, **options)
        rendered = formats.render(transcript, ASR_OUTPUTS[output])
        headers = {"Asr-Engine": "faster_whisper"}
        if isinstance(rendered, dict):
            return JSONResponse(rendered, headers=headers)
        return Response(rendered, media_type=formats.MEDIA_TYPES[ASR_OUTPUTS[output]], headers=headers)

    async def openai_transcriptions(self, request: Request) -> Response:
        """OpenAI's POST /v1/audio/transcriptions (`model` is accepted and ignored: this service has one model)."""
        self.check(request)
        data, fields = await self.upload(request, "file")
        response_format = fields.get("response_format", ["json"])[0].lower()
        if response_format not in OPENAI_FORMATS:
            raise RequestFailed(
                400, f"response_format must be one of {', '.join(sorted(OPENAI_FORMATS))}.", "invalid_request"
            )
        granularities = set(fields.get("timestamp_granularities[]", []) + fields.get("timestamp_granularities", []))
        words = response_format == "verbose_json" and "word" in granularities
        options = self.options(language=(fields.get("language") or [None])[0], task="transcribe", word_timestamps=words)
        transcript = await self.run(data, **options)
        if response_format == "json":
            return JSONResponse({"text": transcript.text})
        if response_format == "verbose_json":
            body: dict[str, Any] = {
                "task": "transcribe",
                "language": transcript.language,
                "duration": transcript.duration,
                "text": transcript.text,
                "segments": [
                    {"id": i, "start": s.start, "end": s.end, "text": s.text} for i, s in enumerate(transcript.segments)
                ],
            }
            if words:
                body["words"] = [w.as_json() for s in transcript.segments for w in s.words or []]
            return JSONResponse(body)
        name = "text" if response_format == "text" else response_format
        rendered = formats.render(transcript, name)
        if name == "text":  # OpenAI's text is the whole transcript, not one line per segment
            rendered = transcript.text + "\n"
        return Response(str(rendered), media_type=formats.MEDIA_TYPES[name])

    # --- parameter parsing ---------------------------------------------------------------------------------
    @staticmethod
    def flag(value: str | None, default: bool | None, name: str) -> bool | None:
        if value is None or value == "":
            return default
        try:
            return parse_bool(value, name=name)
        except ValueError as exc:
            raise RequestFailed(400, str(exc), "invalid_request") from exc

    def options(
        self,
        *,
        language: str | None,
        task: str,
        word_timestamps: str | bool | None = None,
        vad_filter: str | None = None,
    ) -> dict[str, Any]:
        """Validate before reading the upload: missing language = the service's STT_LANGUAGE, `auto` = detect."""
        if task not in ("transcribe", "translate"):
            raise RequestFailed(400, "task must be 'transcribe' or 'translate'.", "invalid_request")
        if language is not None:
            try:
                language = normalise_language(language) or "auto"
            except ValueError as exc:
                raise RequestFailed(400, str(exc), "invalid_request") from exc
        words = (
            word_timestamps
            if isinstance(word_timestamps, bool)
            else self.flag(word_timestamps, None, "word_timestamps")
        )
        return {
            "language": language,
            "task": task,
            "word_timestamps": words,
            "vad_filter": self.flag(vad_filter, None, "vad_filter"),
        }


def create_app(
    engine: WhisperEngine | None = None, *, token: str | None = None, max_upload_bytes: int | None = None
) -> ASGIApp:
    """The ASGI app; settings default to the environment (WHISPER_API_TOKEN, WHISPER_MAX_UPLOAD_BYTES)."""
    engine = engine or WhisperEngine(WhisperConfig.from_env())
    token = token if token is not None else env_optional("WHISPER_API_TOKEN")
    if max_upload_bytes is None:
        max_upload_bytes = env_int("WHISPER_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, minimum=1)
    service = Service(engine, token=token, max_upload_bytes=max_upload_bytes)

    async def on_failure(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestFailed)  # noqa: S101 - registered for RequestFailed only
        return failure(request, exc.status, exc.message, exc.code)

    async def on_too_large(request: Request, exc: Exception) -> Response:
        return failure(
            request,
            413,
            f"The upload is larger than WHISPER_MAX_UPLOAD_BYTES ({max_upload_bytes} bytes).",
            "request_too_large",
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101
        return failure(
            request, exc.status_code, str(exc.detail), "not_found" if exc.status_code == 404 else "invalid_request"
        )

    async def on_error(request: Request, exc: Exception) -> Response:
        logger.exception("Transcription failed")
        return failure(request, 500, "Internal error while transcribing; see the service's logs.", "internal_error")

    app = Starlette(
        routes=[
            Route("/health", service.health, methods=["GET"]),
            Route("/asr", service.asr, methods=["POST"]),
            Route("/v1/audio/transcriptions", service.openai_transcriptions, methods=["POST"]),
        ],
        exception_handlers={
            RequestFailed: on_failure,
            BodyTooLarge: on_too_large,
            HTTPException: on_http,
            Exception: on_error,
        },
        lifespan=service.lifespan,
    )
    app.state.service = service
    return BodyLimit(app, max_upload_bytes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="RTCstack's Whisper REST service (faster-whisper).")
    try:  # a bad WHISPER_* / STT_LANGUAGE / LOG_LEVEL setting
        parser.add_argument("--host", default=env_str("WHISPER_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=env_port("WHISPER_PORT", 9000))
        parser.add_argument("--log-level", default=env_str("LOG_LEVEL", "info").lower())
        args = parser.parse_args(argv)
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        app = create_app()
    except ValueError as exc:
        print(f"speech.service: configuration error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
