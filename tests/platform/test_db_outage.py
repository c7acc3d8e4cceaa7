"""PostgreSQL unreachable: every /v1 request that needs it gets a 503 problem, and a token needs no database.

The database is the real test database behind a TCP proxy on loopback; cutting the proxy drops every open
connection and refuses new ones, as a stopped server does. Restoring it brings the same port back.
"""

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from django.db import connection

from apps.apikeys import keystore
from apps.apikeys.guard import get_guard
from apps.apikeys.models import ApiKey
from apps.apikeys.signer import RTCstackAuth
from tests.conftest import SignedClient, problem
from tests.support.servers import free_port, granian_wsgi

TOKEN_BODY = {"roomId": "standup", "userId": "alice", "name": "Alice", "role": "participant"}


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to the database until `cut()`; `restore()` listens on the same port again.

    `stall()` keeps accepting connections but forwards nothing: a database host that has stopped answering.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.stalled = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stall(self) -> None:
        self.cut()
        self.stalled = True
        self.restore()

    def cut(self) -> None:
        with self._lock:
            sockets, self._open = [*self._open, self._listener], set()
            self._listener = None
        for sock in filter(None, sockets):
            with contextlib.suppress(OSError):  # already closed by the other side
                sock.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked in accept/recv
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.stalled:
                with self._lock:
                    self._open.add(client)
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the proxy was cut
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def database(transactional_db: None) -> Iterator[CuttableProxy]:
    """This process (and any server started from the settings) reaches the test database through the proxy."""
    settings_dict = connection.settings_dict
    original = settings_dict["HOST"], settings_dict["PORT"]
    proxy = CuttableProxy((original[0] or "127.0.0.1", int(original[1] or 5432)))
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        proxy.cut()
        connection.close()
        settings_dict["HOST"], settings_dict["PORT"] = original


def assert_database_problem(response) -> None:
    assert response.status_code == 503, response.content
    body = problem(response)
    assert body["type"].endswith("/service-unavailable")
    assert body["detail"] == "The database cannot be reached; retry shortly."


def test_unknown_to_this_process_key_with_the_database_down_is_503(database, make_key, caplog) -> None:
    credentials = make_key()
    database.cut()
    with caplog.at_level(logging.INFO):
        response = SignedClient(credentials).post_json("/v1/token", TOKEN_BODY)
    assert_database_problem(response)
    assert [r for r in caplog.records if r.exc_info or r.exc_text] == [], "no traceback for an outage"
    outage = [r for r in caplog.records if r.levelno == logging.ERROR and "database" in r.getMessage().lower()]
    assert len(outage) == 1, [r.getMessage() for r in caplog.records]


def test_listing_with_the_database_gone_mid_connection_is_503(database, api: SignedClient) -> None:
    assert api.send("GET", "/v1/transcriptions").status_code == 200  # key cached, a connection open through the proxy
    database.cut()
    assert_database_problem(api.send("GET", "/v1/transcriptions"))
    assert_database_problem(api.send("GET", "/v1/transcriptions?status=completed"))


def test_token_with_a_cached_key_needs_no_database(database, api: SignedClient, credentials, caplog) -> None:
    """The once-a-minute `last_used_at` write is due on this request; its failure is logged, not returned."""
    keystore.lookup(credentials.key_id, get_guard())  # cached, as after an earlier request that was not recorded
    database.cut()
    with caplog.at_level(logging.WARNING):
        response = api.post_json("/v1/token", TOKEN_BODY)
    assert response.status_code == 200, response.content
    assert response.json()["token"]
    assert any("last use" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    database.restore()
    assert api.post_json("/v1/token", {**TOKEN_BODY, "userId": "bob"}).status_code == 200


@pytest.mark.slow  # waits out the connect timeout
def test_database_that_stops_answering_is_503_within_the_connect_timeout(database, make_key) -> None:
    """Without a connect timeout a request would wait for PostgreSQL's answer forever."""
    credentials = make_key()
    timeout = int(connection.settings_dict["OPTIONS"]["connect_timeout"])
    assert timeout == 3  # DATABASE_CONNECT_TIMEOUT_SECONDS
    database.stall()
    outcome = {}

    def request() -> None:
        outcome["response"] = SignedClient(credentials).post_json("/v1/token", TOKEN_BODY)

    thread = threading.Thread(target=request, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout + 10)
    assert not thread.is_alive(), "the request is still waiting for the database"
    assert time.monotonic() - started < timeout + 5
    assert_database_problem(outcome["response"])


@pytest.mark.slow  # granian processes
def test_real_server_answers_503_while_the_database_is_down_and_recovers(database, make_key) -> None:
    cached, uncached = make_key("cached"), make_key("uncached")
    users = iter(range(100))  # distinct bodies: the same request twice in one second would be a replay
    with granian_wsgi(workers=1) as url:

        def post_token(credentials) -> requests.Response:
            auth = RTCstackAuth(credentials.key_id, credentials.secret)
            body = {**TOKEN_BODY, "userId": f"user-{next(users)}"}
            return requests.post(url + "/v1/token", json=body, auth=auth, timeout=10)

        def list_transcriptions() -> requests.Response:
            auth = RTCstackAuth(cached.key_id, cached.secret)
            return requests.get(url + f"/v1/transcriptions?limit={next(users) + 1}", auth=auth, timeout=10)

        assert post_token(cached).status_code == 200
        database.cut()
        assert post_token(cached).status_code == 200
        for response in (post_token(uncached), list_transcriptions()):
            assert response.status_code == 503, response.text
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["detail"] == "The database cannot be reached; retry shortly."
        database.restore()
        assert post_token(uncached).status_code == 200
        assert list_transcriptions().status_code == 200
    connection.close()  # this process's own connection went down with the proxy
    assert ApiKey.objects.get(key_id=uncached.key_id).last_used_at is not None
