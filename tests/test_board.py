"""The lead board's HTTP surface without a broker: who may read which page
(a team its own, with its token; operators all; nobody else anything), the
Host check against DNS rebinding, forms from other sites, the bound on a
form, the security headers on every answer, and the page in Chromium."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.apps.board import LeadBoard, Sessions, host_name, serve_board
from hub.domain.teams import load_teams
from hub.settings import REPO_ROOT
from hub.trust import Role, TrustStore
from hub.trust.keys import board_token, create_key
from hub.trust.signatures import TrustStoreFile

TEAMS = load_teams(REPO_ROOT / "ops" / "teams.toml")
NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[int, dict[str, str], Path, LeadBoard]]:
    """The board on a free port, the tokens of two teams, an operator and a
    worker, the trust store, and the leads it shows."""
    store = TrustStore({})
    tokens = {name: board_token(create_key(tmp_path, store, role, name, None, NOW).private)
              for role, name in [(Role.TEAM, "samr-taigu"), (Role.TEAM, "police-jinzhong-food-crime"),
                                 (Role.OPERATOR, "operator"), (Role.WORKER, "worker")]}
    store.save(tmp_path / "trust.json")
    sessions = Sessions(TrustStoreFile(tmp_path / "trust.json", interval_s=0), hours=8)
    leads = LeadBoard(TEAMS)
    server = serve_board(leads, "127.0.0.1", 0, sessions, ("board.ops.example",))
    try:
        yield int(server.server_port), tokens, tmp_path / "trust.json", leads
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
    port, tokens, *_ = board
    assert _request(port, TAIGU, f"{host}:{port}", tokens["samr-taigu"]).status == 200


@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1.attacker.example", "", "board.ops.example.evil"])
def test_a_foreign_host_header_is_refused_without_echo(board, host: str) -> None:
    port, tokens, *_ = board
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
    port, tokens, *_ = board
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
    port, tokens, trust, _ = board
    assert _request(port, "/login", method="POST", body="token=wrong").status == 401
    foreign = _request(port, "/login", method="POST", body=f"token={tokens['samr-taigu']}",
                       headers={"Origin": "http://attacker.example"})
    assert foreign.status == 403  # a login form posted from another site
    sandboxed = _request(
        port, "/login", method="POST", body=f"token={tokens['samr-taigu']}", headers={"Origin": "null"}
    )
    assert sandboxed.status == 403  # or from a sandboxed frame
    # issue 31: another port on the same host is another origin (another program's page), and so is a
    # scheme that is no web page's
    for other in (f"http://127.0.0.1:{port + 1}", "http://127.0.0.1", f"file://127.0.0.1:{port}"):
        refused = _request(
            port, "/login", method="POST", body=f"token={tokens['samr-taigu']}", headers={"Origin": other}
        )
        assert refused.status == 403, other
    own = _request(
        port,
        "/login",
        method="POST",
        body=f"token={tokens['samr-taigu']}",
        headers={"Origin": f"http://127.0.0.1:{port}"},
    )
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


# no inline script or style, no framing, no sniffing, no referrer, nothing cached: on every answer, as they were
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _secured(response: http.client.HTTPResponse) -> bool:
    return all(response.getheader(name) == value for name, value in SECURITY_HEADERS.items())


def _raw(port: int, data: bytes) -> http.client.HTTPResponse:
    """An answer to bytes no well-behaved client sends."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    sock.close()
    return response


def test_every_answer_carries_the_security_headers(board) -> None:
    """Pages, redirects and every refusal, whichever part of the server
    gives it: a handler, a middleware, aiohttp's router, its body limit, its
    parser, its Expect handling."""
    port, tokens, *_ = board
    team, operator, host = tokens["samr-taigu"], tokens["operator"], f"Host: 127.0.0.1:{port}\r\n".encode()
    answers = {
        200: [_request(port, TAIGU, token=team), _request(port, "/static/board.js"), _request(port, "/login")],
        303: [
            _request(port, "/", token=team),
            _request(port, "/login", method="POST", body=f"token={team}"),
            _request(port, "/logout", method="POST"),
        ],
        401: [_request(port, "/teams/samr-taigu"), _request(port, TAIGU), _request(port, "/nowhere")],
        403: [
            _request(port, "/teams/police-jinzhong-food-crime", token=team),
            _request(port, "/logout", method="POST", headers={"Origin": "http://attacker.example"}),
        ],
        404: [_request(port, "/nowhere", token=operator), _request(port, "/teams/no-such-team", token=operator)],
        405: [_request(port, "/login", method="PUT", token=operator)],
        413: [_request(port, "/login", method="POST", body="token=" + "x" * 5000)],
        421: [_request(port, TAIGU, host="attacker.example", token=team)],
        400: [
            _raw(port, b"NOT HTTP\r\n\r\n"),
            _raw(port, b"GET /login HTTP/1.1\r\n" + host + b"X: " + b"x" * 9000 + b"\r\n\r\n"),
        ],
        417: [_raw(port, b"POST /login HTTP/1.1\r\n" + host + b"Expect: nonsense\r\nContent-Length: 1\r\n\r\nx")],
    }
    for status, responses in answers.items():
        for response in responses:
            assert response.status == status and _secured(response), (status, response.status, response.getheaders())
    assert answers[405][0].getheader("Allow") == "GET,HEAD,POST"  # what the route takes, still said


def test_a_failing_page_is_a_plain_500_with_the_headers(tmp_path: Path, caplog) -> None:
    """A handler's failure reaches aiohttp, outside the application's
    middlewares: still the headers, nothing of the failure in the answer."""

    class Broken(LeadBoard):
        def open_leads(self, team: str) -> list[dict[str, Any]]:
            raise RuntimeError("the case file of Zhang San")

    store = TrustStore({})
    token = board_token(create_key(tmp_path, store, Role.OPERATOR, "operator", None, NOW).private)
    store.save(tmp_path / "trust.json")
    server = serve_board(
        Broken(TEAMS), "127.0.0.1", 0, Sessions(TrustStoreFile(tmp_path / "trust.json", interval_s=0), 8)
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("GET", TAIGU, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        server.shutdown()
    assert response.status == 500 and _secured(response) and "Zhang San" not in body
    assert "Zhang San" not in caplog.text and "RuntimeError" in caplog.text  # what failed, not what it held


def test_a_post_from_another_origin_is_refused_and_changes_nothing(board) -> None:
    """The board's forms carry no token: the defence against cross-site
    request forgery is the browser's Origin on every form it posts (refused
    unless the board's own: another site, another port, a sandboxed frame)
    and the session cookie's SameSite=Strict. Login and logout alike."""
    port, tokens, *_ = board
    for path, body in (("/login", f"token={tokens['samr-taigu']}"), ("/logout", "")):
        for origin in ("http://attacker.example", "null", f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}x"):
            refused = _request(port, path, method="POST", body=body, headers={"Origin": origin})
            assert refused.status == 403 and refused.getheader("Set-Cookie") is None, (path, origin)
        own = _request(port, path, method="POST", body=body, headers={"Origin": f"http://127.0.0.1:{port}"})
        assert own.status == 303 and own.getheader("Set-Cookie")


def test_without_a_session_every_page_is_the_login_form(board) -> None:
    port, *_ = board
    for path in ("/", "/teams/samr-taigu", "/teams/no-such-team", "/nowhere"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        page = response.read().decode()
        assert response.status == 401 and 'id="token"' in page and "执法线索看板：登录" in page, path
        assert response.getheader("WWW-Authenticate") == 'Bearer realm="lead board"'
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", TAIGU)
    response = connection.getresponse()
    assert response.status == 401 and json.loads(response.read()) == {"error": "log in first"}  # the page's poll
    assert response.getheader("Content-Type") == "application/json; charset=utf-8"
    for path, kind in (
        ("/login", "text/html"),
        ("/static/board.js", "text/javascript"),
        ("/static/board.css", "text/css"),
    ):  # nosniff: each must say what it is
        opened = _request(port, path)
        assert opened.status == 200 and opened.getheader("Content-Type") == f"{kind}; charset=utf-8"


def test_a_logout_ends_the_session_cookie(board) -> None:
    port, tokens, *_ = board
    login = _request(port, "/login", method="POST", body=f"token={tokens['operator']}")
    assert login.status == 303 and login.getheader("Location") == "/"
    assert "Max-Age=28800" in (login.getheader("Set-Cookie") or "") and "Secure" not in login.getheader("Set-Cookie")
    logout = _request(port, "/logout", method="POST", headers={"Cookie": login.getheader("Set-Cookie").split(";")[0]})
    cookie = logout.getheader("Set-Cookie") or ""
    assert logout.status == 303 and logout.getheader("Location") == "/login"
    assert (
        cookie.startswith("hub_session=")
        and "Max-Age=0" in cookie
        and "HttpOnly" in cookie
        and "SameSite=Strict" in cookie
    )


def test_a_form_over_4_kib_is_refused(board) -> None:
    port, *_ = board
    assert _request(port, "/login", method="POST", body="token=" + "x" * 4090).status == 401  # 4 KiB: read
    too_large = _request(port, "/login", method="POST", body="token=" + "x" * 4091)
    assert too_large.status == 413
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    # announced and never sent: refused at once, from the Content-Length alone
    assert _raw(port, b"POST /login HTTP/1.1\r\n" + host + b"Content-Length: 1000000000\r\n\r\n").status == 413
    chunks = b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(6)) + b"0\r\n\r\n"  # no length: counted
    assert _raw(port, b"POST /login HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n" + chunks).status == 413


def test_host_names_are_read_without_their_port() -> None:
    assert [host_name(h) for h in ("a.example:9410", "[::1]:9410", "[::1]", "A.Example", None)] == [
        "a.example",
        "[::1]",
        "[::1]",
        "a.example",
        "",
    ]


# -- the page in a browser: its script runs under the CSP, in Chinese ----------------


def _lead(lead_id: str, severity: str, **fields: Any) -> dict[str, Any]:
    """A lead record as a team topic carries it (redacted: one finding withheld)."""
    return {
        "lead_id": lead_id,
        "status": "OPEN",
        "severity": severity,
        "first_seen": NOW,
        "rules": ["CRIMINAL_REFERRAL"],
        "business_name": "太谷区某白酒作坊",
        "business_id": "91140703MA0KXXXX1Q",
        "region": {"name": "山西省晋中市太谷区"},
        "acknowledge_by": NOW + dt.timedelta(hours=24),
        "close_by": NOW + dt.timedelta(days=15),
        "evidence": [
            {"occurred_on": "2026-11-20", "agency": "SAMR", "finding": "抽检不合格：甲醇超标"},
            {"occurred_on": "2026-11-25", "agency": "POLICE", "finding": None},
        ],
        "recommended_action": "移送公安机关，依法追究刑事责任",
        "parties": [{"role": "SELLER", "name": "某副食商店", "business_id": None}],
        "credit_status": "LISTED",
        "credit_listed_on": "2026-06-01",
        "credit_reason": "生产销售有毒有害食品",
        "history": [{"at": NOW, "status": "OPEN", "team": None, "note": None}],
        "escalations": [],
        "links": [],
        **fields,
    }


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_desk_logs_in_reads_its_leads_and_logs_out_in_chromium(board, browser, tmp_path: Path) -> None:
    """The login form, the session cookie, the page's script and style under
    the CSP, the poll of leads.json, the chart, the logout: in a browser."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port, tokens, *_ = board
    leads: LeadBoard = board[3]
    leads.apply("hub.team.samr-taigu", _lead("L-0001", "CRITICAL"))
    leads.apply(
        "hub.team.samr-taigu",
        _lead("L-0002", "HIGH", rules=["REPEAT_OFFENDER"], credit_status=None, reopened=1, reported_late_days=5),
    )
    leads.apply("hub.team.police-jinzhong-food-crime", _lead("L-POLICE", "CRITICAL"))
    url = f"http://127.0.0.1:{port}"
    browser.get(f"{url}/teams/samr-taigu")  # no session: the login form
    assert browser.find_elements(By.ID, "token") and "L-0001" not in browser.page_source
    browser.find_element(By.ID, "token").send_keys(tokens["samr-taigu"])
    browser.find_element(By.ID, "login").click()
    rows = WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#leads tr[data-lead-id]"))
    assert browser.current_url == f"{url}/teams/samr-taigu"
    assert [row.get_attribute("data-lead-id") for row in rows] == ["L-0001", "L-0002"]  # the most severe first
    first = rows[0].text
    assert "特急" in first and "涉嫌犯罪移送" in first and "太谷区某白酒作坊" in first and "待签收" in first
    assert "详情不予显示（未获授权）" in first and "已列入严重违法失信名单" in first and "移送公安机关" in first
    assert "签收期限 2026-12-01 08:00" in first  # Beijing time, to the minute
    assert "（重新打开1次）" in rows[1].text and "迟报" in rows[1].text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart rect")) == 8
    assert browser.execute_script("return getComputedStyle(document.querySelector('table')).tableLayout") == "fixed"
    assert "L-POLICE" not in browser.page_source
    shots = Path(os.environ.get("HUB_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / "board-brokerless.png"))
    browser.get(f"{url}/teams/police-jinzhong-food-crime/leads.json")  # another team's: refused
    assert "403" in browser.page_source and "L-POLICE" not in browser.page_source
    browser.get(f"{url}/teams/samr-taigu")
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "logout"))[0].click()
    WebDriverWait(browser, 20).until(lambda d: d.current_url == f"{url}/login")
    browser.get(f"{url}/teams/samr-taigu")  # the cookie is gone: the login form again
    assert browser.find_elements(By.ID, "token")


def test_a_lead_as_the_board_shows_it() -> None:
    """``displayed``, step by step: every part of a lead in the desks' words."""
    from hub.apps.board import displayed

    lead = _lead(
        "L-0003",
        "CRITICAL",
        reopened=2,
        reported_late_days=4,
        escalations=None,
        escalation="CLOSE_OVERDUE",
        business_id=None,
        region={"name": None},
        credit_status="REMOVED",
        credit_removed_on="2026-09-01",
        links=[
            {"occurred_on": "2026-12-01", "kind": "POLICE_FILED", "event_id": "police-9", "lead_id": None},
            {"occurred_on": "2026-12-02", "kind": "REFERRAL", "event_id": None, "lead_id": "L-0001"},
        ],
        history=[
            {"at": NOW, "status": "OPEN", "team": None, "note": None},
            {
                "at": NOW + dt.timedelta(minutes=90, seconds=59),
                "status": "ESCALATED_CLOSE_OVERDUE",
                "team": "samr-taigu",
                "note": "催办",
            },
        ],
    )
    assert displayed(lead) == {
        "lead_id": "L-0003",
        "status": "OPEN",
        "severity": "CRITICAL",
        "overdue": True,
        "severity_label": "特急",
        "rules": "涉嫌犯罪移送",
        "status_label": "待签收（重新打开2次）",
        "escalations": ["超期未办结"],
        "business": "太谷区某白酒作坊（统一社会信用代码未识别）",
        "region": "区划不明",
        "deadlines": ["签收期限 2026-12-01 08:00", "办结期限 2026-12-15 08:00", "迟报：记录日期后4天才报送"],
        "evidence": [
            {"text": "2026-11-20 市场监管 抽检不合格：甲醇超标", "withheld": False},
            {"text": "2026-11-25 公安 详情不予显示（未获授权）", "withheld": True},
        ],
        "action": "移送公安机关，依法追究刑事责任",
        "parties": ["销售方：某副食商店（统一社会信用代码未识别）"],
        "credit": "曾列入严重违法失信名单，已于2026-09-01移出",
        "links": ["2026-12-01 公安立案 police-9", "2026-12-02 原移送线索 线索 L-0001"],
        "history": ["2026-11-30 08:00 待签收", "2026-11-30 09:30 升级：超期未办结 samr-taigu：催办"],
    }
    listed = displayed(_lead("L-0004", "LOW", credit_reason=None))["credit"]
    assert listed == "已列入严重违法失信名单（2026-06-01，事由未载明）"
