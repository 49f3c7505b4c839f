"""The lead board's HTTP surface without a broker: who may read which page
(a team its own, with its token; operators all; nobody else anything), the
Host check against DNS rebinding, and the security headers."""
from __future__ import annotations

import datetime as dt
import http.client
from pathlib import Path
from typing import Iterator

import pytest

from hub.apps.board import LeadBoard, Sessions, host_name, serve_board
from hub.domain.teams import load_teams
from hub.settings import REPO_ROOT
from hub.trust import Role, TrustStore
from hub.trust.keys import board_token, create_key
from hub.trust.signatures import TrustStoreFile

TEAMS = load_teams(REPO_ROOT / "ops" / "teams.toml")
NOW = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], Path]]:
    """The board on a free port, and the tokens of two teams and an operator."""
    store = TrustStore({})
    tokens = {name: board_token(create_key(tmp_path, store, role, name, None, NOW).private)
              for role, name in [(Role.TEAM, "samr-taigu"), (Role.TEAM, "police-jinzhong-food-crime"),
                                 (Role.OPERATOR, "operator"), (Role.WORKER, "worker")]}
    store.save(tmp_path / "trust.json")
    sessions = Sessions(TrustStoreFile(tmp_path / "trust.json", interval_s=0), hours=8)
    server = serve_board(LeadBoard(TEAMS), "127.0.0.1", 0, sessions, ("board.ops.example",))
    try:
        yield int(server.server_port), tokens, tmp_path / "trust.json"
    finally:
        server.shutdown()


def _request(port: int, path: str, host: str | None = None, token: str | None = None, method: str = "GET",
             body: str = "", headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, path, skip_host=True)
    connection.putheader("Host", f"127.0.0.1:{port}" if host is None else host)
    if token is not None:
        connection.putheader("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    if body:
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body.encode() if body else None)
    response = connection.getresponse()
    response.read()
    return response


TAIGU = "/teams/samr-taigu/leads.json"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]", "board.ops.example"])
def test_the_board_answers_to_its_own_names(board, host: str) -> None:
    port, tokens, _ = board
    assert _request(port, TAIGU, f"{host}:{port}", tokens["samr-taigu"]).status == 200


@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1.attacker.example", "", "board.ops.example.evil"])
def test_a_foreign_host_header_is_refused_without_echo(board, host: str) -> None:
    port, tokens, _ = board
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("GET", TAIGU, skip_host=True)
    connection.putheader("Host", f"{host}:{port}" if host else "")
    connection.putheader("Authorization", f"Bearer {tokens['samr-taigu']}")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 421 and (not host or host.encode() not in response.read())


def test_a_team_reads_its_own_page_only(board) -> None:
    """Issue 15: a county desk read the police's case number and finding on
    the police team's page, with no credential at all."""
    port, tokens, _ = board
    police = "/teams/police-jinzhong-food-crime/leads.json"
    assert _request(port, police).status == 401
    assert _request(port, "/teams/police-jinzhong-food-crime").status == 401
    assert _request(port, police, token="not-a-token").status == 401
    assert _request(port, police, token=tokens["samr-taigu"]).status == 403
    assert _request(port, "/teams/police-jinzhong-food-crime", token=tokens["samr-taigu"]).status == 403
    assert _request(port, police, token=tokens["police-jinzhong-food-crime"]).status == 200
    assert _request(port, police, token=tokens["worker"]).status == 401  # workers have no board token
    assert _request(port, police, token=tokens["operator"]).status == 200  # operators see every page
    index = _request(port, "/", token=tokens["samr-taigu"])
    assert index.status == 303 and index.getheader("Location") == "/teams/samr-taigu"


def test_a_login_opens_a_session_that_ends_with_the_key(board) -> None:
    port, tokens, trust = board
    assert _request(port, "/login", method="POST", body="token=wrong").status == 401
    foreign = _request(port, "/login", method="POST", body=f"token={tokens['samr-taigu']}",
                       headers={"Origin": "http://attacker.example"})
    assert foreign.status == 403  # a login form posted from another site
    sandboxed = _request(port, "/login", method="POST", body=f"token={tokens['samr-taigu']}", headers={"Origin": "null"})
    assert sandboxed.status == 403  # or from a sandboxed frame
    # issue 31: another port on the same host is another origin (another program's page), and so is a
    # scheme that is no web page's
    for other in (f"http://127.0.0.1:{port + 1}", "http://127.0.0.1", f"file://127.0.0.1:{port}"):
        refused = _request(port, "/login", method="POST", body=f"token={tokens['samr-taigu']}",
                           headers={"Origin": other})
        assert refused.status == 403, other
    own = _request(port, "/login", method="POST", body=f"token={tokens['samr-taigu']}",
                   headers={"Origin": f"http://127.0.0.1:{port}"})
    assert own.status == 303
    login = _request(port, "/login", method="POST", body=f"token={tokens['samr-taigu']}")
    assert login.status == 303 and login.getheader("Location") == "/teams/samr-taigu"
    cookie = login.getheader("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = {"Cookie": cookie.split(";")[0]}
    assert _request(port, TAIGU, headers=session).status == 200
    assert _request(port, "/teams/police-jinzhong-food-crime/leads.json", headers=session).status == 403
    name, value = session["Cookie"].split("=", 1)
    key_id, expires, mac = value.split(".")
    stretched = f"{name}={key_id}.{int(expires) + 10**6}.{mac}"  # a longer session, by hand
    assert _request(port, TAIGU, headers={"Cookie": stretched}).status == 401
    store = TrustStore.load(trust)
    store.revoke("team:samr-taigu", NOW)
    store.save(trust)
    assert _request(port, TAIGU, headers=session).status == 401
    assert _request(port, TAIGU, token=tokens["samr-taigu"]).status == 401


def test_every_answer_carries_the_security_headers(board) -> None:
    port, tokens, _ = board
    for response in (_request(port, TAIGU, token=tokens["samr-taigu"]), _request(port, "/teams/samr-taigu"),
                     _request(port, "/teams/police-jinzhong-food-crime", token=tokens["samr-taigu"]),
                     _request(port, "/static/board.js"), _request(port, "/nowhere", token=tokens["operator"])):
        assert "script-src 'self'" in (response.getheader("Content-Security-Policy") or "")
        assert "frame-ancestors 'none'" in (response.getheader("Content-Security-Policy") or "")
        assert response.getheader("X-Content-Type-Options") == "nosniff"
        assert response.getheader("X-Frame-Options") == "DENY"
        assert response.getheader("Cache-Control") == "no-store"


def test_host_names_are_read_without_their_port() -> None:
    assert [host_name(h) for h in ("a.example:9410", "[::1]:9410", "[::1]", "A.Example", None)] == \
        ["a.example", "[::1]", "[::1]", "a.example", ""]
