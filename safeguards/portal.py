"""The public transparency portal as a page: `/` and `/transparency.html`.

For a resident, a journalist and an auditor: the Denver portal's sections (the policy
file's own words, `Policy.portal`), every figure with what it counts, and what the
Denver portal lacks: searches by offence category and by agency, refusals by reason, hit
outcomes by list (with the false-hit rate), the MOU list, the policy change log and the
audit trail's current head. No script: one inline style sheet, a viewport tag, text
that wraps on a phone. "Last updated" is the policy's effective date; the figures say
when they were computed ("as of"). Every value is escaped. A policy that cannot be read
is a plain HTML error page (503), never the raw JSON of an error.

The breakdowns are counted from the audit trail's records of the last 30 days (a
verification that was `undone` is not counted); the change log from every
`policy_changed` record. A page is computed at most once a minute (`cache_s`).
"""

from __future__ import annotations

import html
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from safeguards.audit import UNDONE, AuditLog, Head
from safeguards.policy import Policy, PolicyError
from safeguards.policy_audit import ACTION as POLICY_CHANGED
from safeguards.transparency import (
    ACCEPTABLE_USE,
    ACCESS_POLICY,
    HOTLIST_POLICY,
    WINDOW_MS,
    TransparencyReport,
)
from safeguards.verification import ACTION as VERIFY_ACTION
from safeguards.verification import HitOutcome
from safeguards.wiring import Safeguards

__all__ = ["PortalFigures", "add_public_pages", "count_figures", "render_portal"]

SEARCH_ACTION = "search"
FALSE_HITS = (HitOutcome.MISREAD.value, HitOutcome.WRONG_STATE.value,
              HitOutcome.NO_LONGER_WANTED.value, "dismissed")
OUTCOME_LABELS = {
    HitOutcome.CONFIRMED.value: "Confirmed",
    HitOutcome.VEHICLE_NOT_LOCATED.value: "Vehicle not located",
    HitOutcome.MISREAD.value: "Misread",
    HitOutcome.WRONG_STATE.value: "Wrong state",
    HitOutcome.NO_LONGER_WANTED.value: "No longer wanted",
    "verified": "Verified (no outcome given)",
    "dismissed": "Dismissed (no outcome given)",
}
LIST_NAMES = {"NCIC": "NCIC", "NCMEC": "NCMEC Amber Alert",
              "CCIC": "Colorado Crime Information Center (CCIC)", "LOCAL": "Agency list"}
REFUSAL_LABELS = {
    "prohibited_purpose": "Prohibited purpose (immigration, traffic, personal use, ...)",
    "offence_not_permitted": "Offence not on the permitted list",
    "invalid_case_number": "No valid case number",
    "reason_too_short": "No reason given",
    "rate_limited": "Over the hourly search budget",
    "daily_cap_reached": "Over a daily cap on reads (per case, user or agency)",
    "no_mou": "Agency without a memorandum of understanding",
    "federal_agency": "Federal agency",
    "invalid_token": "Invalid login",
    "missing_token": "No login",
}


@dataclass
class PortalFigures:
    """Breakdowns counted from the audit trail, and its head."""

    as_of: datetime
    searches_by_offence: Counter[str] = field(default_factory=Counter)
    searches_by_agency: Counter[str] = field(default_factory=Counter)
    refusals_by_reason: Counter[str] = field(default_factory=Counter)
    outcomes_by_list: dict[str, Counter[str]] = field(default_factory=dict)
    policy_changes: list[dict[str, Any]] = field(default_factory=list)
    head: Head | None = None


def count_figures(audit: AuditLog, now_ms: int) -> PortalFigures:
    """One pass over the trail: the last 30 days' breakdowns, every policy change."""
    since = now_ms - WINDOW_MS
    figures = PortalFigures(as_of=datetime.fromtimestamp(now_ms / 1000, UTC))
    outcomes: dict[int, tuple[str, str]] = {}  # request seq -> (list, outcome)
    undone: set[int] = set()
    for record in audit.records():
        if record.action == POLICY_CHANGED:
            figures.policy_changes.append({
                "ts": record.ts, "seq": record.seq,
                "terms": record.details.get("terms_changed", []),
                "added": record.details.get("added", []),
                "removed": record.details.get("removed", []),
                "sha256": str(record.details.get("file_sha256", ""))})
        if record.ts < since:
            continue
        details = record.details
        if record.action == SEARCH_ACTION:
            if record.decision == "allowed":
                figures.searches_by_offence[str(details.get("offence", "?"))] += 1
                figures.searches_by_agency[record.agency] += 1
            elif record.decision.startswith("refused:"):
                figures.refusals_by_reason[record.decision.removeprefix("refused:")] += 1
        elif record.action == VERIFY_ACTION and isinstance(details.get("request_seq"), int):
            if record.decision in ("verified", "dismissed"):
                outcome = details.get("hit_outcome") or record.decision
                outcomes[details["request_seq"]] = (str(details.get("source", "?")),
                                                     str(outcome))
            elif record.decision == UNDONE:
                undone.add(details["request_seq"])
    for seq, (source, outcome) in outcomes.items():
        if seq not in undone:
            figures.outcomes_by_list.setdefault(source, Counter())[outcome] += 1
    figures.head = audit.head()
    return figures


# --- rendering -----------------------------------------------------------------------

_STYLE = """
:root{color-scheme:light;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans",sans-serif;color:#1a1a1a;background:#f6f6f4}
*{box-sizing:border-box}body{margin:0}
main{max-width:60rem;margin:0 auto;padding:1rem 1rem 3rem}
header.top{background:#12355b;color:#fff;padding:1rem 0}
header.top .inner{max-width:60rem;margin:0 auto;padding:0 1rem}
header.top h1{margin:0;font-size:1.6rem}header.top p{margin:.2rem 0 0}
h2{font-size:1.3rem;margin:2rem 0 .6rem;border-bottom:2px solid #12355b;padding-bottom:.2rem}
h3{font-size:1.05rem;margin:1rem 0 .3rem}
section p{margin:.3rem 0 .8rem}
.meta{display:flex;flex-wrap:wrap;gap:.3rem 1.5rem;font-size:.95rem}
dl.policy dt{font-weight:700;margin-top:.8rem}dl.policy dd{margin:.1rem 0 0}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.7rem;
padding:0;margin:0;list-style:none}
.figure{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.6rem .8rem}
.figure .label{font-weight:600;display:block}
.figure .value{font-size:1.6rem;font-weight:800;display:block;color:#12355b}
.figure .def{font-size:.85rem;color:#444;display:block}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.95rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.lists{display:grid;grid-template-columns:repeat(auto-fill,minmax(16rem,1fr));gap:.7rem}
ul.mou{columns:16rem;padding-left:1.2rem;margin:.3rem 0}
.hash{font-family:"DejaVu Sans Mono",monospace;overflow-wrap:anywhere;font-size:.9rem}
.note{font-size:.9rem;color:#444}
a{color:#0b4f9c}
footer{margin-top:2rem;font-size:.9rem}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=False)  # text only, never an attribute


def _n(value: int) -> str:
    return f"{value:,}"


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _some(items: list[str], what: str, *, replace_underscores: bool = False) -> str:
    """A change log cell: the names, or how many when a whole list was recorded at once
    (the first policy a trail sees lists every term and agency as added)."""
    if not items:
        return "-"
    if len(items) > 8:
        return f"{len(items)} {what} (the whole list)"
    return ", ".join(i.replace("_", " ") if replace_underscores else i for i in items)


def _figure(label: str, value: str, definition: str) -> str:
    return (f'<li class="figure"><span class="label">{_e(label)}</span>'
            f'<span class="value">{_e(value)}</span><span class="def">{_e(definition)}</span>'
            "</li>")


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]], empty: str, *,
           counts: bool = True) -> str:
    """A table; with `counts`, every column after the first is a number (right-aligned)."""
    if not rows:
        return f"<p>{_e(empty)}</p>"
    n = " class=n" if counts else ""
    cells = "".join(f'<th scope="col"{n if i else ""}>{_e(h)}</th>'
                    for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(
        f'<td{n if i else ""}>{_e(c)}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{body}"
            "</body></html>")


def render_error(status: int, title: str, message: str) -> str:
    """A plain page for a public error: what happened, in words, and nothing internal."""
    return _page(title, f'<header class="top"><div class="inner"><h1>{_e(title)}</h1></div>'
                 f"</header><main><p>{_e(message)}</p><p class=note>HTTP {status}. "
                 '<a href="/">Transparency portal</a></p></main>')


def render_portal(report: TransparencyReport, policy: Policy, figures: PortalFigures,
                  agency_names: dict[str, str]) -> str:
    """The portal page; every value escaped, no script."""
    text = policy.portal
    owner = report.agency
    updated = (text.effective_date.strftime("%a %b %d %Y") if text.effective_date
               else "the policy gives no effective date")
    as_of = figures.as_of.strftime("%Y-%m-%d %H:%M UTC")
    days = f"{report.data_retention_days:g}"
    policies = [
        ("What's Detected", report.whats_detected),
        ("What's Not Detected", report.whats_not_detected),
        ("Acceptable Use Policy", text.acceptable_use_policy
         or ACCEPTABLE_USE.format(owner=owner)),
        ("Prohibited Uses", "; ".join(report.prohibited_uses) + "."),
        ("Access Policy", text.access_policy or ACCESS_POLICY.format(owner=owner)),
        ("System Access History", f"Data is only retained for {days} days. However, an "
         "audit trail of the users who accessed the system is stored indefinitely."),
        ("Hotlist Policy", text.hotlist_policy or HOTLIST_POLICY),
        ("Non-Law Enforcement Access to ALPR Data", text.non_law_enforcement_access
         or "Not stated in the policy."),
    ]
    hits, historical = report.hotlist_hits_last_30_days, report.historical_hits_last_30_days
    figures_html = "".join([
        _figure("Data retention (in days)", days, "Reads, and the alerts that carry them, "
                "are deleted this many days after capture."),
        _figure("Number of owned cameras", "not stated" if text.owned_cameras is None
                else _n(text.owned_cameras), "Cameras the department owns (from its policy)."),
        _figure("Cameras reporting in the last 30 days", _n(report.cameras),
                "Cameras with at least one retained read in the last 30 days."),
        _figure("Vehicles detected in the last 30 days",
                _n(report.vehicles_detected_last_30_days),
                "Vehicle passes read: one per vehicle passing one camera, however many "
                "frames it was seen in."),
        _figure("Hotlist hits in the last 30 days", _n(hits),
                f"Alerts raised, real-time and historical alike ({_n(historical)} "
                "historical: an entry added after the read was taken)."),
        _figure("Historical hits in the last 30 days", _n(historical),
                "Reads already stored that match a hotlist entry added later; included in "
                "the hotlist hits."),
        _figure("Searches in the last 30 days", _n(report.searches_last_30_days),
                "Searches allowed and run (each had a case number, a reason and a "
                "permitted offence); refused searches are counted apart."),
        _figure("Searches refused in the last 30 days",
                _n(report.searches_refused_last_30_days),
                "Attempts the system refused and recorded (reasons below)."),
        _figure("Alerts verified in the last 30 days",
                _n(report.alerts_verified_last_30_days),
                "Hits a person confirmed: the image matched and NCIC/CCIC said the entry "
                "was active."),
        _figure("Alerts dismissed in the last 30 days",
                _n(report.alerts_dismissed_last_30_days),
                "Hits a person closed as not actionable (misread, wrong state, no longer "
                "wanted, ...)."),
    ])
    offences = [(label, _n(figures.searches_by_offence.get(key, 0)))
                for key, label in policy.permitted_offences.items()]
    agencies = sorted(((agency_names.get(a, a), _n(n))
                       for a, n in figures.searches_by_agency.items()), key=lambda r: r[0])
    refusals = sorted(((REFUSAL_LABELS.get(code, code.replace("_", " ")), _n(n))
                       for code, n in figures.refusals_by_reason.items()),
                      key=lambda r: r[0])
    outcome_cards = []
    for source, counts in sorted(figures.outcomes_by_list.items()):
        total = sum(counts.values())
        false = sum(counts.get(k, 0) for k in FALSE_HITS)
        rows = "".join(f"<dt>{_e(OUTCOME_LABELS.get(k, k))}</dt><dd>{_n(v)}</dd>"
                       for k, v in sorted(counts.items()))
        outcome_cards.append(
            f'<div class="figure"><span class="label">{_e(LIST_NAMES.get(source, source))}'
            f'</span><span class="value">{false / total:.0%} false hits</span>'
            f'<span class="def">{_n(false)} of {_n(total)} closed hits</span>'
            f'<dl class="policy">{rows}</dl></div>')
    changes = [(_date(c["ts"]), _some(c["terms"], "terms", replace_underscores=True),
                _some(c["added"], "agencies"), _some(c["removed"], "agencies"),
                c["sha256"][:12]) for c in reversed(figures.policy_changes)]
    head = figures.head
    head_html = ("<p>The trail is empty.</p>" if head is None or head.seq == 0 else
                 f"<p>Record {_n(head.seq)}, written {_e(_date(head.ts))}.</p>"
                 f'<p class="hash">sha256 {_e(head.hash)}</p>')
    body = f"""<header class="top"><div class="inner"><h1>{_e(owner)}</h1>
<p>ALPR Transparency Portal</p></div></header>
<main>
<div class="meta"><span><strong>Last Updated:</strong> {_e(updated)}</span>
<span><strong>Figures as of:</strong> {_e(as_of)} (recomputed at most once a minute)</span>
<span><a href="/transparency">These figures as JSON</a></span>
<span><a href="/docs">API documentation</a></span></div>
<section><h2>Overview</h2><p>{_e(text.overview or "Not stated in the policy.")}</p></section>
<section><h2>Policies</h2><dl class="policy">{"".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in policies)}</dl></section>
<section><h2>Usage</h2><ul class="figures">{figures_html}</ul>
<h3>Hotlists Alerted On</h3><ul>{"".join(
        f"<li>{_e(h)}</li>" for h in report.hotlists_alerted_on) or "<li>none</li>"}</ul>
</section>
<section><h2>Searches by offence category (last 30 days)</h2>
<p class="note">Allowed searches only; a search names one permitted offence.</p>
{_table(("Offence category", "Searches"), offences, "No permitted offences.")}
<h2>Searches by agency (last 30 days)</h2>
{_table(("Agency", "Searches"), agencies, "No searches in the last 30 days.")}
<h2>Refused searches by reason (last 30 days)</h2>
{_table(("Reason", "Refused"), refusals, "No refused searches in the last 30 days.")}
</section>
<section><h2>Hit outcomes by list (last 30 days)</h2>
<p class="note">How dispatchers closed the hits they verified. A <em>false hit</em> is one
closed as misread, wrong state, no longer wanted, or dismissed without an outcome; the
rate is false hits over all closed hits of that list. Hits still open are not counted.</p>
{('<div class="lists">' + "".join(outcome_cards) + "</div>") if outcome_cards
     else "<p>No hits were closed in the last 30 days.</p>"}
</section>
<section><h2>External organizations with access</h2>
<p class="note">{_n(len(report.external_organisations_with_access))} agencies with a
memorandum of understanding with {_e(owner)}. Federal agencies have no access.</p>
<ul class="mou">{"".join(f"<li>{_e(a)}</li>"
        for a in report.external_organisations_with_access)}</ul></section>
<section><h2>Policy and MOU list change log</h2>
<p class="note">Every change to a term of the policy in force, as the audit trail
recorded it (newest first).</p>
{_table(("When", "Terms changed", "MOU agencies added", "MOU agencies removed",
         "Policy file sha256"), changes, "No policy change recorded yet.", counts=False)}
</section>
<section><h2>Current audit trail head</h2>
<p class="note">Every search, verification and change is a record of a hash-chained audit
trail. Anyone keeping this head can later check that no record before it was changed or
removed (<code>alpr audit verify --anchor 'seq=N hash=H'</code>).</p>{head_html}</section>
<footer><a href="/transparency">JSON</a> · <a href="/docs">API documentation</a></footer>
</main>"""
    return _page(f"{owner} - ALPR Transparency Portal", body)


# --- routes --------------------------------------------------------------------------

_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                 "img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
                 "X-Content-Type-Options": "nosniff"}


class _Cached:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: tuple[float, str] | None = None

    def get(self, make: Any) -> str:
        with self._lock:
            if self._value is not None and time.monotonic() - self._value[0] < self.ttl_s:
                return self._value[1]
        page = make()
        with self._lock:
            self._value = (time.monotonic(), page)
        return page


def add_public_pages(app: FastAPI, sg: Safeguards, *, cache_s: float = 60) -> None:
    """The portal at `/` and `/transparency.html` (GET and HEAD), and the API docs from
    the Swagger UI files installed with the package (no CDN: works offline)."""
    router = APIRouter()
    cache = _Cached(cache_s)

    def make_page() -> str:
        policy = sg.policy
        report = sg.transparency.report()
        figures = count_figures(sg.audit, int(report.generated_at.timestamp() * 1000))
        names = {a.agency_id: a.name for a in sg.access.agencies()}
        return render_portal(report, policy, figures, names)

    def portal() -> Response:
        try:
            page = cache.get(make_page)
        except PolicyError:
            return HTMLResponse(render_error(
                503, "Transparency portal unavailable", "The policy in force cannot be "
                "read, so it is not shown. Please try again later."), status_code=503,
                headers=_PAGE_HEADERS)
        except Exception:
            # A Redis down or hung: a plain page, not a raw error.
            return HTMLResponse(render_error(
                503, "Transparency portal unavailable", "The figures cannot be computed "
                "right now. Please try again later."), status_code=503,
                headers=_PAGE_HEADERS)
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    for path in ("/", "/transparency.html"):
        router.add_api_route(path, portal, methods=["GET"], response_class=HTMLResponse,
                             tags=["transparency"], include_in_schema=path != "/",
                             summary="The transparency portal (HTML, no script)")
        # HEAD apart, out of the schema: one route with both would give the OpenAPI
        # spec two operations of the same id.
        router.add_api_route(path, portal, methods=["HEAD"], include_in_schema=False)
    app.include_router(router)
    app.mount("/docs-static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} - API docs",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png")
