"""The read-only lead board a worker serves: each team's open leads, as the
team's own topic carries them (so redacted exactly as the team receives
them), updating live. Also the source of the open/overdue lead gauges.

Each team logs in with its board token (derived from its key: ``hub keys
token``) and sees its own page only; operators see every page.

Every worker follows every team topic (they are small and compacted), so any
worker's board shows everything; the gauges are therefore the same on each
worker: aggregate them with max(), not sum().
"""
from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import secrets
import threading
import time
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.domain import labels
from hub.domain.events import CST
from hub.domain.lifecycle import ACTIVE, Escalation, LeadStatus, is_overdue
from hub.domain.teams import SEVERITIES, Team
from hub.edge.httpd import http_server
from hub.kafka.readers import LeadReader, follow_topics
from hub.edge.retry import shown
from hub.settings import HttpSettings, Settings
from hub.audit.entries import UNPROVEN, AuditAction, Note
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
        return sorted(leads, key=lambda l: (-SEVERITIES.index(l["severity"]), l["first_seen"]))

    def followups(self, team: str) -> list[dict[str, Any]]:
        """Leads closed or rejected whose follow-through is still due or
        overdue: a 回头看 not yet proven, a referral closed without transfer
        (NOT_TRANSFERRED): what the oversight teams exist for."""
        with self._lock:
            leads = [lead for lead in self._leads[team].values() if lead["status"] not in ACTIVE
                     and lead["status"] not in (LeadStatus.SUPERSEDED, LeadStatus.RECHECKED)
                     and (lead.get("recheck_on") is not None or set(lead.get("escalations") or ())
                          & {Escalation.NOT_TRANSFERRED, Escalation.RECHECK_OVERDUE})]
        return sorted(leads, key=lambda l: (-SEVERITIES.index(l["severity"]), l["first_seen"]))

    def counts(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """Open leads per (team, severity) and overdue leads per team."""
        open_: dict[tuple[str, str], int] = {(t, s): 0 for t in self.teams for s in SEVERITIES}
        overdue = {t: 0 for t in self.teams}
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


def follow_into(board: LeadBoard, settings: Settings, stop: threading.Event,
                retry_s: tuple[float, float] = (1.0, 60.0)) -> threading.Thread:
    """Keep ``board`` up to date on a daemon thread until ``stop``. A failure
    (the broker, the registry) neither takes the worker down (the board is a
    view) nor leaves the board stale: it follows again from the beginning,
    after a wait that doubles up to ``retry_s[1]``."""
    def run() -> None:
        wait = retry_s[0]
        while not stop.is_set():
            try:
                board.reading = LeadReader(settings)  # from the beginning again: versions from nothing
                for topic, lead in follow_topics(settings, sorted(board.topics), True, stop.is_set, board.reading):
                    board.apply(topic, lead)
                    wait = retry_s[0]
            except Exception as exc:
                log.warning("lead board: following the team topics failed (%s); again in %.0f s", shown(exc), wait)
                stop.wait(wait)
                wait = min(wait * 2, retry_s[1])

    thread = threading.Thread(target=run, name="lead-board", daemon=True)
    thread.start()
    return thread


def _minute(value: Any) -> str | None:
    """An instant as a desk reads it: Beijing time, to the minute."""
    if value is None:
        return None
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M")


_DEADLINES = (("acknowledge_by", "签收期限"), ("close_by", "办结期限"), ("transfer_by", "移送公安期限"),
              ("police_filing_by", "公安立案期限"), ("recheck_on", "回头看日期"))


def displayed(lead: dict[str, Any]) -> dict[str, Any]:
    """A lead as the board shows it: in Chinese, Beijing time to the minute,
    with the recommended action, the parties and the credit standing; the
    codes (lead_id, status, severity) stay for the page's own use."""
    credit = None
    if lead.get("credit_status") == "LISTED":
        credit = f"已列入严重违法失信名单（{lead['credit_listed_on']}，{lead.get('credit_reason') or '事由未载明'}）"
    elif lead.get("credit_status") == "REMOVED":
        credit = f"曾列入严重违法失信名单，已于{lead['credit_removed_on']}移出"
    escalations = [labels.escalation(e) for e in lead.get("escalations") or
                   ([lead["escalation"]] if lead.get("escalation") else [])]
    return {
        "lead_id": lead["lead_id"], "status": lead["status"], "severity": lead["severity"],
        "overdue": bool(is_overdue(lead)),
        "severity_label": labels.SEVERITIES[lead["severity"]],
        "rules": " + ".join(labels.rule(r) for r in lead["rules"]),
        "status_label": labels.status(lead["status"]) + (f"（重新打开{lead['reopened']}次）" if lead.get("reopened")
                                                         else ""),
        "escalations": escalations,
        "business": f"{lead['business_name']}（{lead['business_id'] or '统一社会信用代码未识别'}）",
        "region": lead["region"]["name"] or "区划不明",
        "deadlines": [f"{label} {_minute(lead[key])}" for key, label in _DEADLINES if lead.get(key) is not None]
        + ([f"迟报：记录日期后{lead['reported_late_days']}天才报送"] if lead.get("reported_late_days") else []),
        "evidence": [{"text": f"{e['occurred_on']} {labels.agency(e['agency'])} "
                              + (e["finding"] if e["finding"] is not None else "详情不予显示（未获授权）"),
                      "withheld": e["finding"] is None} for e in lead["evidence"]],
        "action": lead["recommended_action"],
        "parties": [f"{labels.PARTY_ROLES.get(p['role'], p['role'])}：{p['name']}"
                    f"（{p['business_id'] or '统一社会信用代码未识别'}）" for p in lead.get("parties") or []],
        "credit": credit,
        "links": [f"{k['occurred_on']} {labels.LINKS.get(k['kind'], k['kind'])}"
                  + (f" {k['event_id']}" if k.get("event_id") else "") + (f" 线索 {k['lead_id']}" if k.get("lead_id")
                                                                        else "") for k in lead.get("links") or []],
        "history": [f"{_minute(h['at'])} {labels.history(h['status'])}" + (f" {h['team']}" if h["team"] else "")
                    + (f"：{h['note']}" if h["note"] else "") for h in lead["history"]],
    }


def chart(open_leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open and overdue leads per severity, for the page's chart."""
    return [{"severity": labels.SEVERITIES[s], "code": s, "open": sum(l["severity"] == s for l in open_leads),
             "overdue": sum(l["severity"] == s and bool(is_overdue(l)) for l in open_leads)}
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
  for (const [text, color, x] of [["待办", "#4a7bb7", 40 + 4 * (width + gap)], ["超期", "#c0392b", 40 + 4 * (width + gap)]]) {
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
<div id="tab-followup" hidden><p class="muted">已办结或不予采纳、但后续仍到期或逾期的线索：回头看待核实、应移未移（以罚代刑）。</p>
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


def _handler(board: LeadBoard, allowed: frozenset[str], sessions: Sessions,
             audit: BoardAudit) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if not self._host_ok():
                return None
            parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/") if p]
            if parts == ["static", "board.js"]:
                return self._send(200, "text/javascript", _SCRIPT)
            if parts == ["static", "board.css"]:
                return self._send(200, "text/css", _STYLE)
            if parts == ["login"]:
                return self._send(200, "text/html", _LOGIN.format(title="执法线索看板：登录", message=""))
            holder = self._holder()
            if holder is None:
                return self._unauthenticated(parts)
            if not parts:
                if holder.role is Role.TEAM:
                    return self._redirect(f"/teams/{holder.name}")
                links = "".join(f'<li><a href="/teams/{html.escape(t)}">{html.escape(t)}</a> '
                                f"{html.escape(board.teams[t].description)}</li>" for t in sorted(board.teams))
                return self._send(200, "text/html", _HEAD.format(title="各队伍") + f"<body><h1>各队伍看板</h1><ul>{links}</ul>"
                                  "</body></html>")
            if parts[0] != "teams" or len(parts) not in (2, 3) or parts[1] not in board.teams:
                return self.send_error(404, "no such page")
            team = parts[1]
            if holder.role is not Role.OPERATOR and not (holder.role is Role.TEAM and holder.name == team):
                # Another team's page: never, whatever it asks. Its name is not echoed.
                log.warning("board: %s asked for another team's page", holder.identity)
                audit.denied(holder, team, "not_your_team")
                return self.send_error(403, "not your team's page")
            if len(parts) == 2:
                title = html.escape(f"{board.teams[team].description or team}：执法线索看板")
                return self._send(200, "text/html", _PAGE.format(title=title, team=html.escape(team)))
            if parts[2] != "leads.json":
                return self.send_error(404, "no such page")
            open_leads, followups = board.open_leads(team), board.followups(team)
            audit.viewed(holder, team, [lead["lead_id"] for lead in (*open_leads, *followups)])
            return self._send(200, "application/json", json.dumps(
                {"version": board.version, "leads": [displayed(lead) for lead in open_leads],
                 "followup": [displayed(lead) for lead in followups], "chart": chart(open_leads)}, ensure_ascii=False))

        def do_POST(self) -> None:  # noqa: N802
            if not self._host_ok():
                return None
            origin = self.headers.get("Origin")
            if origin is not None and not same_origin(origin, self.headers.get("Host")):
                return self.send_error(403, "a form from another site")
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return self.send_error(400, "bad Content-Length")
            if not 0 <= length <= 4096:
                return self.send_error(413, "too large")
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            if self.path == "/logout":
                return self._redirect("/login", f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict")
            if self.path != "/login":
                return self.send_error(404, "no such page")
            holder = sessions.by_token((form.get("token") or [""])[0].strip())
            audit.login(holder)
            if holder is None:
                log.warning("board: a login with a token no live key has")
                return self._send(401, "text/html", _LOGIN.format(title="执法线索看板：登录",
                                                                  message="该令牌不能打开任何看板。"))
            log.info("board: %s logged in", holder.identity)
            cookie = (f"{SESSION_COOKIE}={sessions.cookie(holder)}; Max-Age={sessions.seconds}; Path=/; HttpOnly; "
                      "SameSite=Strict")
            return self._redirect("/" if holder.role is Role.OPERATOR else f"/teams/{holder.name}", cookie)

        def _host_ok(self) -> bool:
            if host_name(self.headers.get("Host")) in allowed:
                return True
            # A page asked for under a name the board does not answer to: a
            # DNS-rebinding page in a browser would read it as its own
            # origin. The name is not echoed.
            self.send_error(421, "unknown Host")
            return False

        def _holder(self) -> TrustedKey | None:
            auth = self.headers.get("Authorization") or ""
            if auth.startswith("Bearer "):
                return sessions.by_token(auth.removeprefix("Bearer ").strip())
            cookie = SimpleCookie()
            try:
                cookie.load(self.headers.get("Cookie") or "")
            except CookieError:
                return None
            morsel = cookie.get(SESSION_COOKIE)
            return sessions.by_cookie(morsel.value) if morsel is not None else None

        def _unauthenticated(self, parts: list[str]) -> None:
            # the page's team, if it names one: nothing else of the path is repeated
            audit.denied(None, parts[1] if len(parts) > 1 and parts[1] in board.teams else "board", "no_credential")
            if parts[-1:] == ["leads.json"]:
                return self._send(401, "application/json", '{"error": "log in first"}',
                                  {"WWW-Authenticate": 'Bearer realm="lead board"'})
            return self._send(401, "text/html", _LOGIN.format(title="执法线索看板：登录", message=""),
                              {"WWW-Authenticate": 'Bearer realm="lead board"'})

        def _redirect(self, where: str, cookie: str | None = None) -> None:
            self.send_response(303)
            self.send_header("Location", where)
            if cookie:
                self.send_header("Set-Cookie", cookie)
            self._security_headers()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send(self, status: int, content_type: str, body: str, extra: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self._security_headers()
            self.end_headers()
            self.wfile.write(data)

        def _security_headers(self) -> None:
            for name, value in _SECURITY_HEADERS.items():
                self.send_header(name, value)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            self._send(code, "text/plain", f"{code} {message or ''}\n")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("board: " + format, *args)

    return Handler


def serve_board(board: LeadBoard, host: str, port: int, sessions: Sessions, allowed_hosts: tuple[str, ...] = (),
                audit: Callable[[list[Note]], object] = lambda notes: None,
                limits: HttpSettings = HttpSettings()) -> HTTPServer:
    """Serve the board on a daemon thread; returns the server (``server_port``,
    ``shutdown()``). It answers to loopback names, ``host`` (unless a
    wildcard) and ``allowed_hosts``, and to those who log in (``sessions``);
    ``limits`` bound its connections (``hub.edge.httpd``)."""
    allowed = frozenset({*LOOPBACK, *(h.strip().lower() for h in allowed_hosts if h.strip()),
                         *([host.lower()] if host not in ("0.0.0.0", "::", "") else [])})
    server = http_server(host, port, _handler(board, allowed, sessions, BoardAudit(audit)), limits)
    threading.Thread(target=server.serve_forever, name="lead-board-http", daemon=True).start()
    return server
