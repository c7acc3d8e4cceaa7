"""envvars, the one environment parser: its readers, and every process that reads settings through it."""

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

import pytest
from django.core.exceptions import ImproperlyConfigured

from agent import worker
from agent.config import AgentConfig
from envvars import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_optional,
    env_port,
    env_str,
    parse_bool,
)
from speech.client import WhisperClient
from speech.engine import WhisperConfig, WhisperEngine
from speech.service import create_app
from tests.support.servers import ROOT

UNSET = {}


# --- the readers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_unset_or_blank_means_the_default(blank):
    environ = UNSET if blank is None else {"X": blank}
    assert env_str("X", "d", environ=environ) == "d"
    assert env_optional("X", environ=environ) is None
    assert env_bool("X", True, environ=environ) is True
    assert env_int("X", 7, environ=environ) == 7
    assert env_float("X", 0.5, environ=environ) == 0.5
    assert env_port("X", 8081, environ=environ) == 8081
    assert env_list("X", ["a", "b"], environ=UNSET) == ["a", "b"]


def test_strings_are_stripped():
    assert env_str("X", "d", environ={"X": "  value \n"}) == "value"
    assert env_optional("X", environ={"X": " https://whisper:9000 "}) == "https://whisper:9000"
    assert env_str("X", environ=UNSET) == ""


@pytest.mark.parametrize("text", ["1", "true", "True", "YES", "on", " On "])
def test_true_words(text):
    assert env_bool("X", False, environ={"X": text}) is True
    assert parse_bool(text, name="flag") is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "off", " Off "])
def test_false_words(text):
    assert env_bool("X", True, environ={"X": text}) is False
    assert parse_bool(text, name="flag") is False


@pytest.mark.parametrize(("text", "value"), [("42", 42), (" -3 ", -3), ("0", 0), ("+5", 5)])
def test_integers(text, value):
    assert env_int("X", 1, environ={"X": text}) == value


@pytest.mark.parametrize(("text", "value"), [("0.25", 0.25), ("3", 3.0), ("1e3", 1000.0), ("-1.5", -1.5)])
def test_numbers(text, value):
    assert env_float("X", 1.0, environ={"X": text}) == value


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("8081", 8081), ("65535", 65_535)])
def test_ports(text, value):
    assert env_port("X", 1, environ={"X": text}) == value


def test_lists_are_comma_separated_and_stripped():
    assert env_list("X", environ={"X": " a, b,,c ,"}) == ["a", "b", "c"]
    assert env_list("X", environ={"X": "10.0.0.0/8"}) == ["10.0.0.0/8"]
    assert env_list("X", environ=UNSET) == []
    assert env_list("X", ["a"], environ={"X": " "}) == []  # set but blank: explicitly none (TRUSTED_PROXIES="")
    default = ["x"]
    read = env_list("X", default, environ=UNSET)
    assert read == default
    assert read is not default  # the caller may change its list without changing the default


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("RTCSTACK_TEST_FLAG", "yes")
    monkeypatch.setenv("RTCSTACK_TEST_COUNT", "12")
    assert env_bool("RTCSTACK_TEST_FLAG", False) is True
    assert env_int("RTCSTACK_TEST_COUNT", 0) == 12
    monkeypatch.delenv("RTCSTACK_TEST_COUNT")
    assert env_int("RTCSTACK_TEST_COUNT", 3) == 3


@pytest.mark.parametrize(
    ("read", "value", "problem"),
    [
        (lambda environ: env_bool("X_SETTING", True, environ=environ), "maybe", "must be a boolean"),
        (lambda environ: env_bool("X_SETTING", True, environ=environ), "2", "must be a boolean"),
        (lambda environ: env_int("X_SETTING", 1, environ=environ), "many", "must be an integer"),
        (lambda environ: env_int("X_SETTING", 1, environ=environ), "1.5", "must be an integer"),
        (lambda environ: env_int("X_SETTING", 1, minimum=1, environ=environ), "0", "must be at least 1"),
        (lambda environ: env_int("X_SETTING", 1, maximum=9, environ=environ), "10", "must be at most 9"),
        (lambda environ: env_float("X_SETTING", 1.0, environ=environ), "soon", "must be a number"),
        (lambda environ: env_float("X_SETTING", 1.0, environ=environ), "nan", "must be a number"),
        (lambda environ: env_float("X_SETTING", 1.0, environ=environ), "inf", "must be a number"),
        (lambda environ: env_float("X_SETTING", 1.0, minimum=0, environ=environ), "-0.5", "must be at least 0"),
        (lambda environ: env_port("X_SETTING", 80, environ=environ), "http", "must be an integer"),
        (lambda environ: env_port("X_SETTING", 80, environ=environ), "65536", "must be at most 65535"),
        (lambda environ: env_port("X_SETTING", 80, environ=environ), "-1", "must be at least 0"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable_and_the_value(read, value, problem):
    with pytest.raises(ConfigError) as raised:
        read({"X_SETTING": f" {value} "})
    assert str(raised.value).startswith(f"X_SETTING {problem}")
    assert str(raised.value).endswith(f"got {value!r}.")
    assert isinstance(raised.value, ValueError)  # callers that catch ValueError keep working


def test_parse_bool_names_the_parameter_and_is_a_plain_value_error():
    with pytest.raises(ValueError, match=r"^word_timestamps must be a boolean .*got 'maybe'") as raised:
        parse_bool("maybe", name="word_timestamps")
    assert not isinstance(raised.value, ConfigError)  # a query parameter is not the process's configuration


# --- every process that reads its settings through envvars ------------------------------------------------


def run_settings(monkeypatch, tmp_path, **env: str) -> ModuleType:
    """Execute rtcstack_site/settings.py afresh (not the loaded module, which stays as it is) with these variables."""
    monkeypatch.setenv("RTCSTACK_VAR_DIR", str(tmp_path))  # no var/dev.env from a ./run.sh in this checkout
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(
        "rtcstack_site.settings_under_test", ROOT / "rtcstack_site/settings.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("SECURE_SSL_REDIRECT", "maybe", "must be a boolean"),
        ("AXES_FAILURE_LIMIT", "five", "must be an integer"),
        ("TOKEN_TTL_SECONDS", "6h", "must be an integer"),
    ],
)
def test_settings_raise_improperly_configured_naming_the_variable(monkeypatch, tmp_path, name, value, problem):
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} {problem}.*, got '{value}'\.$"):
        run_settings(monkeypatch, tmp_path, **{name: value})


def test_settings_read_the_shared_forms(monkeypatch, tmp_path):
    settings = run_settings(
        monkeypatch,
        tmp_path,
        DEBUG="off",
        AXES_ENABLED="no",
        AXES_FAILURE_LIMIT=" 9 ",
        ALLOWED_HOSTS="rtc.example.com, localhost",
        S3_REGION="  ",
    )
    assert settings.DEBUG is False
    assert settings.AXES_ENABLED is False
    assert settings.AXES_FAILURE_LIMIT == 9
    assert settings.ALLOWED_HOSTS == ["rtc.example.com", "localhost"]
    assert settings.S3_REGION == "us-east-1"


def test_manage_py_reports_the_bad_setting(tmp_path):
    env = {**os.environ, "RTCSTACK_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "rtcstack_site.settings"}
    env["AXES_ENABLED"] = "sometimes"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: AXES_ENABLED must be a boolean" in result.stderr
    assert "'sometimes'" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("WHISPER_VAD_FILTER", "maybe", "must be a boolean"),
        ("WHISPER_WORD_TIMESTAMPS", "sometimes", "must be a boolean"),
        ("WHISPER_BEAM_SIZE", "0", "must be at least 1"),
        ("WHISPER_CPU_THREADS", "-2", "must be at least 0"),
        ("WHISPER_MAX_CONCURRENT", "two", "must be an integer"),
        ("WHISPER_DEVICE", "tpu", "must be cpu, cuda or auto"),
        ("STT_LANGUAGE", "klingon", "Unknown language"),
    ],
)
def test_the_speech_engine_config_rejects_a_bad_value(monkeypatch, name, value, problem):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"^{name}\b.*{problem}"):
        WhisperConfig.from_env()


def test_the_speech_engine_config_treats_blank_as_the_default(monkeypatch):
    for name in ("WHISPER_VAD_FILTER", "WHISPER_BEAM_SIZE", "STT_LANGUAGE", "WHISPER_DEVICE"):
        monkeypatch.setenv(name, "")
    config = WhisperConfig.from_env()
    assert (config.vad_filter, config.beam_size, config.language, config.device) == (True, 5, "en", "cpu")


@pytest.mark.parametrize(
    ("name", "value"), [("WHISPER_TIMEOUT_SECONDS", "five minutes"), ("WHISPER_CONNECT_TIMEOUT_SECONDS", "inf")]
)
def test_the_whisper_client_rejects_a_bad_timeout(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"^{name} must be a number, got '{value}'"):
        WhisperClient.from_env()


def test_the_whisper_client_reads_url_and_token(monkeypatch):
    monkeypatch.setenv("WHISPER_URL", " http://whisper:9000/ ")
    monkeypatch.setenv("WHISPER_API_TOKEN", "   ")
    monkeypatch.setenv("WHISPER_TIMEOUT_SECONDS", "12.5")
    client = WhisperClient.from_env()
    assert (client.url, client.token, client.timeout) == ("http://whisper:9000", None, 12.5)


@pytest.mark.parametrize("value", ["100MB", "0"])
def test_the_whisper_service_rejects_a_bad_upload_limit(monkeypatch, value):
    monkeypatch.setenv("WHISPER_MAX_UPLOAD_BYTES", value)
    with pytest.raises(ConfigError, match=rf"^WHISPER_MAX_UPLOAD_BYTES .*got '{value}'"):
        create_app(WhisperEngine(WhisperConfig(model="tiny.en")))


@pytest.mark.parametrize(
    ("name", "value"),
    [("WHISPER_VAD_FILTER", "maybe"), ("WHISPER_PORT", "http"), ("WHISPER_MAX_UPLOAD_BYTES", "lots")],
)
def test_the_whisper_service_refuses_to_start_naming_the_setting(name, value):
    env = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "-m", "speech.service"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert f"speech.service: configuration error: {name} must be" in result.stderr
    assert repr(value) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("PAUSE_THRESHOLD_SECONDS", "soon", "must be a number"),
        ("WHISPER_MAX_CONCURRENT", "1.5", "must be an integer"),
        ("ROOM_EMPTY_TIMEOUT_SECONDS", "-1", "must not be negative"),
        ("STT_LANGUAGE", "klingon", "Unknown language"),
    ],
)
def test_the_agent_config_rejects_a_bad_value_from_the_process_environment(monkeypatch, name, value, problem):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"^{name}\b.*{problem}"):
        AgentConfig.from_env()


def test_the_agent_config_reads_the_shared_forms():
    config = AgentConfig.from_env(
        {"PAUSE_THRESHOLD_SECONDS": " 0.9 ", "WHISPER_FILTER_PHRASES": "thanks, bye,", "REDIS_URL": " "}
    )
    assert (config.pause_threshold_seconds, config.filter_phrases, config.redis_url) == (0.9, ("thanks", "bye"), None)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("AGENT_HEALTH_PORT", "http", "must be an integer"),
        ("AGENT_HEALTH_PORT", "70000", "must be at most 65535"),
        ("SHORT_PAUSE_SECONDS", "soon", "must be a number"),
        ("WHISPER_TIMEOUT_SECONDS", "never", "must be a number"),
    ],
)
def test_the_agent_refuses_to_start_naming_the_setting(monkeypatch, name, value, problem):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/12")
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        worker.main(["start"])
    assert exited.value.code == f"python -m agent: {name} {problem}, got {value!r}."
