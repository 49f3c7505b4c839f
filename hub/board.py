"""The read-only lead board a worker serves: each team's open leads, as the
team's own topic carries them (so redacted exactly as the team receives
them), updating live. Also the source of the open/overdue lead gauges.

Every worker follows every team topic (they are small and compacted), so any
worker's board shows everything; the gauges are therefore the same on each
worker: aggregate them with max(), not sum().
"""
from __future__ import annotations

import html
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import unquote

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.domain.lifecycle import ACTIVE, is_overdue
from hub.domain.teams import SEVERITIES, Team
from hub.leadview import follow_topics
from hub.pipeline import to_json_ready
from hub.settings import Settings

log = logging.getLogger(__name__)


class LeadBoard:
    """The latest copy of every lead on each team's topic."""

    def __init__(self, teams: dict[str, Team]) -> None:
        self.teams = teams
        self.topics = {t.topic: t.name for t in teams.values()}
        self._leads: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in teams}
        self._lock = threading.Lock()
        self.version = 0  # changes whenever a lead does: the page polls cheaply

    def apply(self, topic: str, lead: dict[str, Any]) -> None:
        with self._lock:
            self._leads[self.topics[topic]][lead["lead_id"]] = lead
            self.version += 1

    def open_leads(self, team: str) -> list[dict[str, Any]]:
        with self._lock:
            leads = [lead for lead in self._leads[team].values() if lead["status"] in ACTIVE]
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


def follow_into(board: LeadBoard, settings: Settings, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        try:
            for topic, lead in follow_topics(settings, sorted(board.topics), True, stop.is_set):
                board.apply(topic, lead)
        except Exception:  # the board is a view: its failure must not take the worker down
            log.exception("lead board stopped following the team topics")

    thread = threading.Thread(target=run, name="lead-board", daemon=True)
    thread.start()
    return thread


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ccc; padding: .4em; vertical-align: top; text-align: left; }}
.CRITICAL {{ color: #b00; font-weight: bold; }} .HIGH {{ color: #d60; }} .overdue {{ background: #fee; }}
.withheld {{ color: #888; font-style: italic; }} ul {{ margin: 0; padding-left: 1.2em; }}
</style></head>
<body><h1>{title}</h1>
<p>Read-only. <span id="count">loading</span> open leads; updated <span id="updated">never</span>.</p>
<table><thead><tr><th>severity</th><th>lead</th><th>business</th><th>status</th><th>deadlines</th>
<th>evidence</th><th>history</th></tr></thead><tbody id="leads"></tbody></table>
<script>
const team = {team_json};
let version = -1;
function cell(row, content) {{ const td = document.createElement("td"); td.append(content); row.append(td); return td; }}
function list(items) {{
  const ul = document.createElement("ul");
  for (const [text, cls] of items) {{ const li = document.createElement("li"); li.textContent = text;
    if (cls) li.className = cls; ul.append(li); }}
  return ul;
}}
async function refresh() {{
  try {{
    const response = await fetch("/teams/" + encodeURIComponent(team) + "/leads.json?since=" + version);
    const data = await response.json();
    if (data.version !== version) {{
      version = data.version;
      const body = document.getElementById("leads");
      body.replaceChildren();
      for (const lead of data.leads) {{
        const row = document.createElement("tr");
        row.dataset.leadId = lead.lead_id; row.dataset.status = lead.status;
        if (lead.overdue) row.className = "overdue";
        cell(row, lead.severity).className = lead.severity;
        cell(row, lead.rules.join(" + ") + " " + lead.lead_id);
        cell(row, lead.business_name + " [" + (lead.business_id || "not identified") + "] " + (lead.region.name || ""));
        cell(row, lead.status + (lead.escalation ? " (" + lead.escalation + ")" : "") + (lead.reopened ? " reopened" : ""));
        cell(row, list([["acknowledge by " + (lead.acknowledge_by || "-")], ["close by " + (lead.close_by || "-")]]));
        cell(row, list(lead.evidence.map(e => e.finding === null
          ? [e.occurred_on + " " + e.agency + " " + e.kind + ": details withheld", "withheld"]
          : [e.occurred_on + " " + e.agency + " " + e.finding, e.chained ? "chained" : ""])));
        cell(row, list(lead.history.map(h => [h.at + " " + h.status + (h.team ? " by " + h.team : "") + (h.note ? ": " + h.note : "")])));
        body.append(row);
      }}
      document.getElementById("count").textContent = data.leads.length;
    }}
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  }} catch (err) {{ document.getElementById("updated").textContent = "failed: " + err; }}
}}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""


LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def host_name(header: str | None) -> str:
    """The name in a Host header, without its port ("[::1]:9410" -> "[::1]")."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1]
    return host.split(":", 1)[0]


def _handler(board: LeadBoard, allowed: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if host_name(self.headers.get("Host")) not in allowed:
                # A page asked for under a name the board does not answer to:
                # a DNS-rebinding page in an operator's browser would read it
                # as its own origin. The name is not echoed.
                return self.send_error(421, "unknown Host")
            parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/") if p]
            if not parts:
                links = "".join(f'<li><a href="/teams/{html.escape(t)}">{html.escape(t)}</a> '
                                f"{html.escape(board.teams[t].description)}</li>" for t in sorted(board.teams))
                return self._send("text/html", f"<!doctype html><meta charset='utf-8'><title>Teams</title>"
                                               f"<h1>Teams</h1><ul>{links}</ul>")
            if parts[0] != "teams" or len(parts) not in (2, 3) or parts[1] not in board.teams:
                return self.send_error(404, "no such page")
            team = parts[1]
            if len(parts) == 2:
                title = html.escape(f"{team}: open leads")
                return self._send("text/html", _PAGE.format(title=title, team_json=json.dumps(team)))
            if parts[2] != "leads.json":
                return self.send_error(404, "no such page")
            leads = [{**to_json_ready(lead), "overdue": bool(is_overdue(lead))} for lead in board.open_leads(team)]
            return self._send("application/json", json.dumps({"version": board.version, "leads": leads},
                                                             ensure_ascii=False))

        def _send(self, content_type: str, body: str) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("board: " + format, *args)

    return Handler


def serve_board(board: LeadBoard, host: str, port: int, allowed_hosts: tuple[str, ...] = ()) -> ThreadingHTTPServer:
    """Serve the board on a daemon thread; returns the server (``server_port``,
    ``shutdown()``). It answers to loopback names, ``host`` (unless a
    wildcard) and ``allowed_hosts``."""
    allowed = frozenset({*LOOPBACK, *(h.strip().lower() for h in allowed_hosts if h.strip()),
                         *([host.lower()] if host not in ("0.0.0.0", "::", "") else [])})
    server = ThreadingHTTPServer((host, port), _handler(board, allowed))
    threading.Thread(target=server.serve_forever, name="lead-board-http", daemon=True).start()
    return server
