"""The read-only lead board a worker serves: each team's open leads, as the
team's own topic carries them (so redacted exactly as the team receives
them), updating live. Also the source of the open/overdue lead gauges.

Each team logs in with its board token (derived from its key: ``hub keys
token``) and sees its own page only; operators see every page.

Every worker follows every team topic (they are small and compacted), so any
worker's board shows everything; the gauges are therefore the same on each
worker: aggregate them with max(), not sum().

The pages are an aiohttp application (``board_app``): routes in two tables
(those anyone may open, those that need a session) and four middlewares,
outermost first: the security headers, the Host check, the check on forms
posted from other sites, the session. ``serve_board`` runs it on a thread
and event loop of its own, beside the worker's, within ``HttpSettings``
(``hub.edge.httpd.serve_app``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import html
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.audit.entries import UNPROVEN, AuditAction, Note
from hub.domain import labels
from hub.domain.events import CST
from hub.domain.lifecycle import ACTIVE, Escalation, LeadStatus, is_overdue
from hub.domain.teams import SEVERITIES, Team
from hub.edge.httpd import AppServer, serve_app
from hub.edge.retry import shown
from hub.kafka.clients import KafkaClients
from hub.kafka.readers import LeadReader, follow_topics
from hub.settings import HttpSettings
from hub.trust import Role
from hub.trust.keys import TrustedKey
from hub.trust.signatures import TrustStoreFile

log = logging.getLogger(__name__)


class LeadBoard:
    """The latest copy of every lead on each team's topic."""

    def __init__(self, teams: dict[str, Team]) -> None:
        self.teams = teams
        self.topics = {t.topic: t.name for t in teams.values()}
        self._leads: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in teams}
        self._lock = threading.Lock()
        self.version = 0  # changes whenever a lead does: the page polls cheaply
        self.reading: LeadReader | None = None  # the current pass over the team topics

    def apply(self, topic: str, lead: dict[str, Any]) -> None:
        with self._lock:
            self._leads[self.topics[topic]][lead["lead_id"]] = lead
            self.version += 1

    def open_leads(self, team: str) -> list[dict[str, Any]]:
        with self._lock:
            leads = [lead for lead in self._leads[team].values() if lead["status"] in ACTIVE]
        return sorted(leads, key=lambda lead: (-SEVERITIES.index(lead["severity"]), lead["first_seen"]))

    def followups(self, team: str) -> list[dict[str, Any]]:
        """Leads closed or rejected whose follow-through is still due or
        overdue: a 回头看 not yet proven, a referral closed without transfer
        (NOT_TRANSFERRED): what the oversight teams exist for."""
        with self._lock:
            leads = [lead for lead in self._leads[team].values() if lead["status"] not in ACTIVE
                     and lead["status"] not in (LeadStatus.SUPERSEDED, LeadStatus.RECHECKED)
                     and (lead.get("recheck_on") is not None or set(lead.get("escalations") or ())
                          & {Escalation.NOT_TRANSFERRED, Escalation.RECHECK_OVERDUE})]
        return sorted(leads, key=lambda lead: (-SEVERITIES.index(lead["severity"]), lead["first_seen"]))

    def counts(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """Open leads per (team, severity) and overdue leads per team."""
        open_: dict[tuple[str, str], int] = {(t, s): 0 for t in self.teams for s in SEVERITIES}
        overdue = dict.fromkeys(self.teams, 0)
        for team in self.teams:
            for lead in self.open_leads(team):
                open_[team, lead["severity"]] += 1
                overdue[team] += is_overdue(lead)
        return open_, overdue


class BoardCollector(Collector):
    def __init__(self, board: LeadBoard) -> None:
        self.board = board

    def collect(self) -> Iterable[GaugeMetricFamily]:
        open_, overdue = self.board.counts()
        opened = GaugeMetricFamily("hub_leads_open", "Open leads (not closed, rejected or superseded) on each "
                                   "team's topic, by severity; the same on every worker", labels=["team", "severity"])
        for (team, severity), n in open_.items():
            opened.add_metric([team, severity], n)
        late = GaugeMetricFamily("hub_leads_overdue", "Open leads escalated for a missed acknowledge or close "
                                 "deadline, per team; the same on every worker", labels=["team"])
        for team, n in overdue.items():
            late.add_metric([team], n)
        yield opened
        yield late
        reading = self.board.reading
        stale = GaugeMetricFamily("hub_board_stale_lead_records", "Lead records on the team topics left out as "
                                  "replays: a version not above one read before for the same lead (the board's "
                                  "current pass over the topics)")
        stale.add_metric([], reading.stale if reading else 0)
        yield stale


def follow_into(board: LeadBoard, clients: KafkaClients, stop: threading.Event,
                retry_s: tuple[float, float] = (1.0, 60.0)) -> threading.Thread:
    """Keep ``board`` up to date on a daemon thread until ``stop``. A failure
    (the broker, the registry) neither takes the worker down (the board is a
    view) nor leaves the board stale: it follows again from the beginning,
    after a wait that doubles up to ``retry_s[1]``. Each pass follows with a
    consumer of its own, made from the process's ``clients``."""
    def run() -> None:
        wait = retry_s[0]
        while not stop.is_set():
            try:
                board.reading = LeadReader(clients.settings)  # from the beginning again: versions from nothing
                for topic, lead in follow_topics(clients, sorted(board.topics), True, stop.is_set, board.reading):
                    board.apply(topic, lead)
                    wait = retry_s[0]
            except Exception as exc:
                log.warning("lead board: following the team topics failed (%s); again in %.0f s", shown(exc), wait)
                stop.wait(wait)
                wait = min(wait * 2, retry_s[1])

    thread = threading.Thread(target=run, name="lead-board", daemon=True)
    thread.start()
    return thread


def _minute(value: dt.datetime | None) -> str | None:
    """An instant as a desk reads it: Beijing time, to the minute."""
    if value is None:
        return None
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M")


_DEADLINES = (("acknowledge_by", "签收期限"), ("close_by", "办结期限"), ("transfer_by", "移送公安期限"),
              ("police_filing_by", "公安立案期限"), ("recheck_on", "回头看日期"))
_NO_USCC = "统一社会信用代码未识别"


def _credit(lead: dict[str, Any]) -> str | None:
    """The business's standing on the list of serious violators (严重违法失信名单), if it has one."""
    if lead.get("credit_status") == "LISTED":
        return f"已列入严重违法失信名单（{lead['credit_listed_on']}，{lead.get('credit_reason') or '事由未载明'}）"
    if lead.get("credit_status") == "REMOVED":
        return f"曾列入严重违法失信名单，已于{lead['credit_removed_on']}移出"
    return None


def _escalations(lead: dict[str, Any]) -> list[str]:
    """Why the lead was escalated, each reason in words (older records carry one, as ``escalation``)."""
    codes = lead.get("escalations") or ([lead["escalation"]] if lead.get("escalation") else [])
    return [labels.escalation(code) for code in codes]


def _status_label(lead: dict[str, Any]) -> str:
    reopened = f"（重新打开{lead['reopened']}次）" if lead.get("reopened") else ""
    return labels.status(lead["status"]) + reopened


def _deadlines(lead: dict[str, Any]) -> list[str]:
    """Each deadline the lead has, in Beijing time, and a late report last."""
    due = [f"{label} {_minute(lead[key])}" for key, label in _DEADLINES if lead.get(key) is not None]
    if lead.get("reported_late_days"):
        due.append(f"迟报：记录日期后{lead['reported_late_days']}天才报送")
    return due


def _evidence(lead: dict[str, Any]) -> list[dict[str, Any]]:
    """Each finding, or that it is withheld from this team (not cleared for it)."""
    return [{"text": f"{e['occurred_on']} {labels.agency(e['agency'])} "
                     + (e["finding"] if e["finding"] is not None else "详情不予显示（未获授权）"),
             "withheld": e["finding"] is None} for e in lead["evidence"]]


def _parties(lead: dict[str, Any]) -> list[str]:
    return [f"{labels.PARTY_ROLES.get(p['role'], p['role'])}：{p['name']}（{p['business_id'] or _NO_USCC}）"
            for p in lead.get("parties") or []]


def _link(link: dict[str, Any]) -> str:
    """What followed the lead: the event or the lead it led to."""
    text = f"{link['occurred_on']} {labels.LINKS.get(link['kind'], link['kind'])}"
    if link.get("event_id"):
        text += f" {link['event_id']}"
    if link.get("lead_id"):
        text += f" 线索 {link['lead_id']}"
    return text


def _step(step: dict[str, Any]) -> str:
    """One step of the lead's history: when, what, which team, its note."""
    text = f"{_minute(step['at'])} {labels.history(step['status'])}"
    if step["team"]:
        text += f" {step['team']}"
    if step["note"]:
        text += f"：{step['note']}"
    return text


def displayed(lead: dict[str, Any]) -> dict[str, Any]:
    """A lead as the board shows it: in Chinese, Beijing time to the minute,
    with the recommended action, the parties and the credit standing; the
    codes (lead_id, status, severity) stay for the page's own use."""
    return {
        "lead_id": lead["lead_id"], "status": lead["status"], "severity": lead["severity"],
        "overdue": bool(is_overdue(lead)),
        "severity_label": labels.SEVERITIES[lead["severity"]],
        "rules": " + ".join(labels.rule(r) for r in lead["rules"]),
        "status_label": _status_label(lead),
        "escalations": _escalations(lead),
        "business": f"{lead['business_name']}（{lead['business_id'] or _NO_USCC}）",
        "region": lead["region"]["name"] or "区划不明",
        "deadlines": _deadlines(lead),
        "evidence": _evidence(lead),
        "action": lead["recommended_action"],
        "parties": _parties(lead),
        "credit": _credit(lead),
        "links": [_link(link) for link in lead.get("links") or []],
        "history": [_step(step) for step in lead["history"]],
    }


def chart(open_leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open and overdue leads per severity, for the page's chart."""
    return [{"severity": labels.SEVERITIES[s], "code": s, "open": sum(lead["severity"] == s for lead in open_leads),
             "overdue": sum(lead["severity"] == s and bool(is_overdue(lead)) for lead in open_leads)}
            for s in reversed(SEVERITIES)]


_STYLE = """
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; margin: 1.2em; color: #222; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
td, th { border-bottom: 1px solid #ccc; padding: .35em; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; font-size: 14px; }
th { background: #f3f3f3; } col.severity { width: 6%; } col.lead { width: 11%; } col.business { width: 16%; }
col.status { width: 11%; } col.deadlines { width: 15%; } col.evidence { width: 24%; } col.action { width: 17%; }
.CRITICAL { color: #b00; font-weight: bold; } .HIGH { color: #d60; } .overdue { background: #fee; }
.withheld { color: #888; font-style: italic; } ul { margin: 0; padding-left: 1.1em; } li { margin: .1em 0; }
.code { color: #777; font-size: 12px; } .escalated { color: #b00; } .muted { color: #666; }
form.logout { display: inline; } .tabs button { font-size: 15px; padding: .3em 1em; margin-right: .3em; }
.tabs button.active { background: #246; color: #fff; border: 1px solid #246; }
#chart { margin: .5em 0 1em; } details { margin-top: .3em; } summary { cursor: pointer; color: #246; }
"""

_SCRIPT = """
const team = document.body.dataset.team;
const SVG = "http://www.w3.org/2000/svg";
let version = -1;
function cell(row, content, cls) { const td = document.createElement("td"); td.append(content);
  if (cls) td.className = cls; row.append(td); return td; }
function list(items) {
  const ul = document.createElement("ul");
  for (const [text, cls] of items) { const li = document.createElement("li"); li.textContent = text;
    if (cls) li.className = cls; ul.append(li); }
  return ul;
}
function block(...parts) { const div = document.createElement("div"); div.append(...parts); return div; }
function span(text, cls) { const s = document.createElement("span"); s.textContent = text; if (cls) s.className = cls;
  return s; }
function more(title, items) {
  const d = document.createElement("details"); const s = document.createElement("summary"); s.textContent = title;
  d.append(s, list(items)); return d;
}
function rows(body, leads) {
  body.replaceChildren();
  for (const lead of leads) {
    const row = document.createElement("tr");
    row.dataset.leadId = lead.lead_id; row.dataset.status = lead.status;
    if (lead.overdue) row.className = "overdue";
    cell(row, lead.severity_label, lead.severity);
    cell(row, block(span(lead.rules), document.createElement("br"), span(lead.lead_id, "code")));
    cell(row, block(span(lead.business), document.createElement("br"), span(lead.region, "muted"),
      ...(lead.credit ? [document.createElement("br"), span(lead.credit, "escalated")] : [])));
    cell(row, list([[lead.status_label], ...lead.escalations.map(e => ["升级：" + e, "escalated"])]));
    cell(row, list(lead.deadlines.map(d => [d, d.startsWith("迟报") ? "overdue" : ""])));
    cell(row, block(list(lead.evidence.map(e => [e.text, e.withheld ? "withheld" : ""])),
      ...(lead.parties.length ? [more("涉及主体（" + lead.parties.length + "）", lead.parties.map(p => [p]))] : []),
      ...(lead.links.length ? [more("后续（" + lead.links.length + "）", lead.links.map(k => [k]))] : []),
      more("处理经过（" + lead.history.length + "）", lead.history.map(h => [h]))));
    cell(row, lead.action);
    body.append(row);
  }
}
function drawChart(data) {
  const svg = document.getElementById("chart"); svg.replaceChildren();
  const top = Math.max(1, ...data.map(d => d.open)); const width = 90, gap = 30, height = 120;
  data.forEach((d, i) => {
    for (const [n, cls, dx] of [[d.open, "#4a7bb7", 0], [d.overdue, "#c0392b", 36]]) {
      const bar = document.createElementNS(SVG, "rect"); const h = Math.round(height * n / top);
      bar.setAttribute("x", 40 + i * (width + gap) + dx); bar.setAttribute("y", 20 + height - h);
      bar.setAttribute("width", 32); bar.setAttribute("height", h); bar.setAttribute("fill", cls);
      const label = document.createElementNS(SVG, "text"); label.textContent = n;
      label.setAttribute("x", 40 + i * (width + gap) + dx + 10); label.setAttribute("y", 16 + height - h);
      label.setAttribute("font-size", "12"); svg.append(bar, label);
    }
    const name = document.createElementNS(SVG, "text"); name.textContent = d.severity;
    name.setAttribute("x", 40 + i * (width + gap) + 18); name.setAttribute("y", 20 + height + 18);
    name.setAttribute("font-size", "13"); svg.append(name);
  });
  for (const [text, color, x] of [["待办", "#4a7bb7", 40 + 4 * (width + gap)], ["超期", "#c0392b",
                                                                              40 + 4 * (width + gap)]]) {
    const key = document.createElementNS(SVG, "text"); key.textContent = "■ " + text; key.setAttribute("fill", color);
    key.setAttribute("x", x); key.setAttribute("y", text === "待办" ? 40 : 60); key.setAttribute("font-size", "13");
    svg.append(key);
  }
}
function show(tab) {
  for (const name of ["open", "followup"]) {
    document.getElementById("tab-" + name).hidden = name !== tab;
    document.getElementById("show-" + name).className = name === tab ? "active" : "";
  }
}
document.getElementById("show-open").addEventListener("click", () => show("open"));
document.getElementById("show-followup").addEventListener("click", () => show("followup"));
async function refresh() {
  try {
    const response = await fetch("/teams/" + encodeURIComponent(team) + "/leads.json?since=" + version);
    if (!response.ok) { document.getElementById("updated").textContent = "刷新失败：" + response.status; return; }
    const data = await response.json();
    if (data.version !== version) {
      version = data.version;
      rows(document.getElementById("leads"), data.leads);
      rows(document.getElementById("followups"), data.followup);
      drawChart(data.chart);
      document.getElementById("count").textContent = data.leads.length;
      document.getElementById("count-followup").textContent = data.followup.length;
    }
    document.getElementById("updated").textContent = new Date().toLocaleTimeString("zh-CN",
      {timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit"});
  } catch (err) { document.getElementById("updated").textContent = "刷新失败：" + err; }
}
show("open"); refresh(); setInterval(refresh, 1000);
"""

_COLUMNS = ('<colgroup><col class="severity"><col class="lead"><col class="business"><col class="status">'
            '<col class="deadlines"><col class="evidence"><col class="action"></colgroup>'
            '<thead><tr><th>紧急程度</th><th>线索</th><th>主体</th><th>状态</th><th>期限（北京时间）</th>'
            '<th>证据与经过</th><th>建议措施</th></tr></thead>')

_HEAD = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>'
         '<link rel="stylesheet" href="/static/board.css"></head>')

_PAGE = _HEAD + """
<body data-team="{team}"><h1>{title}</h1>
<p>只读页面，队伍 <b>{team}</b>。待办线索 <span id="count">加载中</span> 条；更新于 <span id="updated">尚未</span>。
<form class="logout" method="post" action="/logout"><button id="logout">退出</button></form></p>
<svg id="chart" width="640" height="170" role="img" aria-label="待办与超期线索（按紧急程度）"></svg>
<div class="tabs"><button id="show-open">待办线索</button><button id="show-followup">办结后跟进
（<span id="count-followup">0</span>）</button></div>
<div id="tab-open"><table>""" + _COLUMNS + """<tbody id="leads"></tbody></table></div>
<div id="tab-followup" hidden><p class="muted">
已办结或不予采纳、但后续仍到期或逾期的线索：回头看待核实、应移未移（以罚代刑）。</p>
<table>""" + _COLUMNS + """<tbody id="followups"></tbody></table></div>
<script src="/static/board.js"></script></body></html>
"""

_LOGIN = _HEAD + """
<body><h1>执法线索看板：登录</h1>
<p>{message}本队伍的看板令牌（<code>hub keys token --key 本队伍密钥文件</code>）：</p>
<form method="post" action="/login"><input type="password" name="token" id="token" size="50" autocomplete="off">
<button type="submit" id="login">登录</button></form></body></html>
"""

# Every response: no inline script or style, no framing, no sniffing, no
# referrer, nothing cached (the pages carry case details).
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a form's Origin "null"
    "Cache-Control": "no-store",
}
SESSION_COOKIE = "hub_session"

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def host_name(header: str | None) -> str:
    """The name in a Host header, without its port ("[::1]:9410" -> "[::1]")."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.split(":", 1)[0]


def same_origin(origin: str, host: str | None) -> bool:
    """Whether a form's ``Origin`` is the board's own: a web scheme and the
    same host and port as the request's ``Host`` (another port on the same
    host is another origin: another program's page)."""
    scheme, _, netloc = origin.strip().lower().partition("://")
    return scheme in ("http", "https") and bool(netloc) and netloc == (host or "").strip().lower()


class Sessions:
    """Who a request comes from: a board token (``Authorization: Bearer``,
    or once at ``/login``, which sets a session cookie). A session names
    the key whose token opened it and ends with it: a revoked key logs out.
    The cookie is an HMAC under a secret of this process, so a restart logs
    everyone out and nothing is stored."""

    def __init__(self, trust: TrustStoreFile, hours: float, clock: Callable[[], float] = time.time) -> None:
        self.trust, self.seconds, self.clock = trust, int(hours * 3600), clock
        self.secret = secrets.token_bytes(32)

    def by_token(self, token: str) -> TrustedKey | None:
        return self.trust.refresh().holder_of_token(token) if token else None

    def cookie(self, holder: TrustedKey) -> str:
        body = f"{holder.key_id}.{int(self.clock()) + self.seconds}"
        return f"{body}.{self._mac(body)}"

    def by_cookie(self, value: str) -> TrustedKey | None:
        key_id, _, rest = value.partition(".")
        expires, _, mac = rest.partition(".")
        if not (expires.isdigit() and hmac.compare_digest(mac, self._mac(f"{key_id}.{expires}"))):
            return None
        if int(expires) < self.clock():
            return None
        holder = self.trust.refresh().keys.get(key_id)
        return holder if holder is not None and not holder.revoked else None

    def _mac(self, body: str) -> str:
        return hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()


class BoardAudit:
    """What the board tells the audit trail: logins, refusals, and which leads
    a team's page showed, each time that set changes (the page polls every
    second: one entry per poll would drown the trail)."""

    def __init__(self, record: Callable[[list[Note]], object]) -> None:
        self.record = record
        self.shown: dict[tuple[str, str], frozenset[str]] = {}
        self.lock = threading.Lock()

    def login(self, holder: TrustedKey | None) -> None:
        self.record([Note(holder.identity, AuditAction.BOARD_LOGIN, holder.name, "granted") if holder else
                     Note(UNPROVEN, AuditAction.BOARD_LOGIN, "board", "denied", "unknown_token")])

    def denied(self, holder: TrustedKey | None, team: str, reason: str) -> None:
        self.record([Note(holder.identity if holder else UNPROVEN, AuditAction.BOARD_DENIED, team, "denied",
                          reason)])

    def viewed(self, holder: TrustedKey, team: str, leads: list[str]) -> None:
        now = frozenset(leads)
        with self.lock:
            if self.shown.get((holder.key_id, team)) == now:
                return
            self.shown[holder.key_id, team] = now
        self.record([Note(holder.identity, AuditAction.BOARD_VIEW, team, f"{len(now)} leads shown",
                          detail={"leads": ",".join(sorted(now))})])


# -- the web application -------------------------------------------------------

# A form (the login's token, the logout) is a few hundred bytes at most; the
# application's client_max_size refuses more (413), and _form refuses a
# larger Content-Length before reading any of it.
_MAX_FORM_BYTES = 4096
_LOGIN_TITLE = "执法线索看板：登录"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="lead board"'}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# aiohttp's own refusals, in the board's words (the router's 404, client_max_size's 413)
_REASONS: dict[int, str] = {HTTPStatus.NOT_FOUND: "no such page", HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too large"}


@dataclass(frozen=True)
class _Context:
    """What the board's handlers and middlewares share (the application's ``CONTEXT``)."""

    board: LeadBoard
    sessions: Sessions
    audit: BoardAudit
    allowed_hosts: frozenset[str]
    limits: HttpSettings
    open_handlers: frozenset[Handler]  # the routes that need no session


CONTEXT = web.AppKey("board_context", _Context)
HOLDER = web.RequestKey("board_holder", TrustedKey)  # who the session or token is, on the routes that need one

_OPEN = web.RouteTableDef()  # anyone who reaches the board: its script and style, the login, the logout
_SIGNED_IN = web.RouteTableDef()  # those who hold a session or a board token


class _Refusal(Exception):
    """A request refused: its status and a short reason, never anything the
    request said (a Host, a team, a path)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = int(status), reason


def _context(request: web.Request) -> _Context:
    return request.app[CONTEXT]


def _plain(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=f"{status} {reason}\n", content_type="text/plain", headers=headers)


def _html(page: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=page, content_type="text/html", headers=headers)


def _login_page(message: str = "") -> str:
    return _LOGIN.format(title=_LOGIN_TITLE, message=message)


def _redirect(where: str) -> web.Response:
    return web.Response(status=HTTPStatus.SEE_OTHER, headers={"Location": where})


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(_SECURITY_HEADERS)
    return response


# -- middlewares, outermost first --------------------------------------------

@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer of the application carries the security headers: pages,
    redirects, refusals, and aiohttp's own (no such route 404, a method a
    route does not take 405, a body over client_max_size 413), those in the
    board's plain-text form. The answers aiohttp writes outside the
    application (a malformed request, a handler's failure) get them from
    ``serve_app`` (``hub.edge.httpd``)."""
    try:
        response = await handler(request)
    except _Refusal as refusal:
        response = _plain(refusal.status, refusal.reason)
    except web.HTTPException as exc:
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = _plain(exc.status, _REASONS.get(exc.status, exc.reason), allow)
    return _secured(response)


@web.middleware
async def known_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A page asked for under a name the board does not answer to: a
    DNS-rebinding page in a browser would read it as its own origin. The name
    is not echoed."""
    if host_name(request.headers.get("Host")) not in _context(request).allowed_hosts:
        raise _Refusal(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host")
    return await handler(request)


@web.middleware
async def cross_site_forms(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The board's defence against cross-site request forgery: a state-changing
    request (the login, the logout) that a browser says came from a page of
    another origin (``Origin``: another site, another port, a sandboxed frame's
    "null") is refused. With the session cookie's SameSite=Strict, that is the
    whole scheme: the forms carry no token of their own. A request without
    ``Origin`` is no browser's cross-site form (a script, curl)."""
    origin = request.headers.get("Origin")
    if request.method not in _SAFE_METHODS and origin is not None \
            and not same_origin(origin, request.headers.get("Host")):
        raise _Refusal(HTTPStatus.FORBIDDEN, "a form from another site")
    return await handler(request)


@web.middleware
async def session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who asks: a board token (``Authorization: Bearer``) or the session
    cookie ``/login`` set. Every route but the open ones needs one, and so
    does a path that is no route (a stranger learns nothing of which exist);
    without it the answer is 401 and the login form."""
    context = _context(request)
    if request.match_info.handler in context.open_handlers:
        return await handler(request)
    holder = _holder(request, context.sessions)
    if holder is None:
        return _unauthenticated(request, context)
    request[HOLDER] = holder
    return await handler(request)


def _holder(request: web.Request, sessions: Sessions) -> TrustedKey | None:
    auth = request.headers.get("Authorization") or ""
    if auth.startswith("Bearer "):
        return sessions.by_token(auth.removeprefix("Bearer ").strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    return sessions.by_cookie(cookie) if cookie is not None else None


def _unauthenticated(request: web.Request, context: _Context) -> web.Response:
    # the page's team, if it names one: nothing else of the path is repeated
    team = request.match_info.get("team")
    context.audit.denied(None, team if team in context.board.teams else "board", "no_credential")
    if request.path.rstrip("/").rpartition("/")[2] == "leads.json":
        return web.Response(status=HTTPStatus.UNAUTHORIZED, text='{"error": "log in first"}',
                            content_type="application/json", headers=_CHALLENGE)
    return _html(_login_page(), HTTPStatus.UNAUTHORIZED, _CHALLENGE)


# -- routes anyone may open ----------------------------------------------------

@_OPEN.get("/static/board.js")
async def script(request: web.Request) -> web.Response:
    return web.Response(text=_SCRIPT, content_type="text/javascript")


@_OPEN.get("/static/board.css")
async def style(request: web.Request) -> web.Response:
    return web.Response(text=_STYLE, content_type="text/css")


@_OPEN.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return _html(_login_page())


@_OPEN.post("/login")
async def login(request: web.Request) -> web.Response:
    """A team's or an operator's board token, once: a session cookie from
    then on, for ``Sessions.seconds`` or until the key is revoked."""
    context = _context(request)
    holder = context.sessions.by_token((await _form(request)).get("token", [""])[0].strip())
    context.audit.login(holder)
    if holder is None:
        log.warning("board: a login with a token no live key has")
        return _html(_login_page("该令牌不能打开任何看板。"), HTTPStatus.UNAUTHORIZED)
    log.info("board: %s logged in", holder.identity)
    response = _redirect("/" if holder.role is Role.OPERATOR else f"/teams/{holder.name}")
    _set_session(response, request, context.sessions.cookie(holder), context.sessions.seconds)
    return response


@_OPEN.post("/logout")
async def logout(request: web.Request) -> web.Response:
    await _form(request)  # nothing in it, but bounded like any form
    response = _redirect("/login")
    _set_session(response, request, "", 0)
    return response


async def _form(request: web.Request) -> dict[str, list[str]]:
    """A posted form, whatever its Content-Type says: at most
    ``_MAX_FORM_BYTES`` (refused from its Content-Length before any of it is
    read; aiohttp's client_max_size refuses a chunked one that grows past it),
    and all of it within the idle timeout (a body that never comes holds no
    connection until its deadline)."""
    if (request.content_length or 0) > _MAX_FORM_BYTES:
        raise _Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too large")
    try:
        async with asyncio.timeout(_context(request).limits.idle_timeout_s):
            body = await request.read()
    except TimeoutError:
        raise _Refusal(HTTPStatus.REQUEST_TIMEOUT, "too slow") from None
    return parse_qs(body.decode("utf-8", "replace"))


def _set_session(response: web.Response, request: web.Request, value: str, seconds: int) -> None:
    """The session cookie (or its end: empty, Max-Age=0): never for scripts
    (HttpOnly), never sent with another site's request (SameSite=Strict), and
    Secure when the request came over TLS (the board itself serves none)."""
    response.set_cookie(SESSION_COOKIE, value, max_age=seconds, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)


# -- routes that need a session --------------------------------------------------

@_SIGNED_IN.get("/")
async def index(request: web.Request) -> web.Response:
    """A team to its own page; an operator to the list of every team's."""
    holder, board = request[HOLDER], _context(request).board
    if holder.role is Role.TEAM:
        return _redirect(f"/teams/{holder.name}")
    links = "".join(f'<li><a href="/teams/{html.escape(t)}">{html.escape(t)}</a> '
                    f"{html.escape(board.teams[t].description)}</li>" for t in sorted(board.teams))
    return _html(_HEAD.format(title="各队伍") + f"<body><h1>各队伍看板</h1><ul>{links}</ul></body></html>")


@_SIGNED_IN.get("/teams/{team}")
async def team_page(request: web.Request) -> web.Response:
    team = _readable_team(request)
    title = html.escape(f"{_context(request).board.teams[team].description or team}：执法线索看板")
    return _html(_PAGE.format(title=title, team=html.escape(team)))


@_SIGNED_IN.get("/teams/{team}/leads.json")
async def team_leads(request: web.Request) -> web.Response:
    """What the page polls every second: its open leads, the follow-ups, the chart."""
    team = _readable_team(request)
    context = _context(request)
    open_leads, followups = context.board.open_leads(team), context.board.followups(team)
    context.audit.viewed(request[HOLDER], team, [lead["lead_id"] for lead in (*open_leads, *followups)])
    return web.Response(text=json.dumps(
        {"version": context.board.version, "leads": [displayed(lead) for lead in open_leads],
         "followup": [displayed(lead) for lead in followups], "chart": chart(open_leads)}, ensure_ascii=False),
        content_type="application/json")


def _readable_team(request: web.Request) -> str:
    """The page's team, if there is one and it is the asker's (or the asker an operator)."""
    context, holder, team = _context(request), request[HOLDER], request.match_info["team"]
    if team not in context.board.teams:
        raise _Refusal(HTTPStatus.NOT_FOUND, "no such page")
    if holder.role is not Role.OPERATOR and not (holder.role is Role.TEAM and holder.name == team):
        # Another team's page: never, whatever it asks. Its name is not echoed.
        log.warning("board: %s asked for another team's page", holder.identity)
        context.audit.denied(holder, team, "not_your_team")
        raise _Refusal(HTTPStatus.FORBIDDEN, "not your team's page")
    return team


def board_app(board: LeadBoard, sessions: Sessions, allowed_hosts: frozenset[str], audit: BoardAudit,
              limits: HttpSettings) -> web.Application:
    """The board's pages as an aiohttp application (``serve_board`` serves it)."""
    app = web.Application(middlewares=[security_headers, known_host, cross_site_forms, session],
                          client_max_size=_MAX_FORM_BYTES)
    app[CONTEXT] = _Context(board, sessions, audit, allowed_hosts, limits,
                            frozenset(route.handler for route in _OPEN if isinstance(route, web.RouteDef)))
    app.add_routes(_OPEN)
    app.add_routes(_SIGNED_IN)
    return app


def serve_board(board: LeadBoard, host: str, port: int, sessions: Sessions, allowed_hosts: tuple[str, ...] = (),
                audit: Callable[[list[Note]], object] = lambda notes: None,
                limits: HttpSettings | None = None) -> AppServer:
    """Serve the board on a daemon thread; returns the server (``server_port``,
    ``shutdown()``). It answers to loopback names, ``host`` (unless a
    wildcard) and ``allowed_hosts``, and to those who log in (``sessions``);
    ``limits`` (by default ``HttpSettings()``) bound its connections
    (``hub.edge.httpd.serve_app``)."""
    allowed = frozenset({*LOOPBACK, *(h.strip().lower() for h in allowed_hosts if h.strip()),
                         *([host.lower()] if host not in ("0.0.0.0", "::", "") else [])})
    limits = limits or HttpSettings()
    app = board_app(board, sessions, allowed, BoardAudit(audit), limits)
    return serve_app(app, host, port, limits, "lead-board", _SECURITY_HEADERS)
