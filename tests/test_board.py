"""The lead board's HTTP surface without a broker: it answers only to the
names it was told (loopback, its host, HUB_WEB_ALLOWED_HOSTS), so a
DNS-rebinding page cannot read it through an operator's browser."""
from __future__ import annotations

import http.client
from typing import Iterator

import pytest

from hub.board import LeadBoard, host_name, serve_board
from hub.domain.teams import load_teams
from hub.settings import REPO_ROOT


@pytest.fixture
def port() -> Iterator[int]:
    server = serve_board(LeadBoard(load_teams(REPO_ROOT / "ops" / "teams.toml")), "127.0.0.1", 0,
                         ("board.ops.example",))
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()


def _get(port: int, host: str, path: str = "/teams/samr-taigu/leads.json") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("GET", path, skip_host=True)
    connection.putheader("Host", host)
    connection.endheaders()
    response = connection.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]", "board.ops.example"])
def test_the_board_answers_to_its_own_names(port: int, host: str) -> None:
    status, body = _get(port, f"{host}:{port}")
    assert status == 200 and b'"leads": []' in body


@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1.attacker.example", "", "board.ops.example.evil"])
def test_a_foreign_host_header_is_refused_without_echo(port: int, host: str) -> None:
    status, body = _get(port, f"{host}:{port}" if host else "")
    assert status == 421 and (not host or host.encode() not in body)


def test_host_names_are_read_without_their_port() -> None:
    assert [host_name(h) for h in ("a.example:9410", "[::1]:9410", "[::1]", "A.Example", None)] == \
        ["a.example", "[::1]", "[::1]", "a.example", ""]
