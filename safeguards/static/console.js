// The dispatch console's page. Every value from an alert is put on the page as text
// (textContent, attribute values), never as markup: a hotlist reason with <script> in it
// stays text. The page keeps no plate data once the session ends.
"use strict";

const OUTCOMES = [
  ["confirmed", "Confirmed: the vehicle and the wanted entry match"],
  ["vehicle_not_located", "Vehicle not located (the hit was right)"],
  ["misread", "Misread: the plate image does not show the read plate"],
  ["wrong_state", "Wrong state: same characters, another state's plate"],
  ["no_longer_wanted", "No longer wanted: the entry was cleared"],
];
const OUTCOME_WORDS = Object.fromEntries(OUTCOMES.map(([k, v]) => [k, v.split(":")[0].split(" (")[0]]));

const alerts = new Map();  // alert_id -> view with .state
let selected = null;
let me = null;
let source = null;
let live = false;
let lastActivity = Date.now();
let lastTouch = 0;
let idleTimer = null;
let audio = null;
// The last refusal of an action, kept across re-renders (an SSE update redraws the
// details pane and would otherwise wipe the message before the dispatcher reads it).
let actionError = {alertId: null, text: ""};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? {"Content-Type": "application/json"} : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (response.status === 401 && path !== "/console/login") {
    endSession("Your session ended: log in again.");
  }
  return {ok: response.ok, status: response.status, data};
}

function fmtTime(ms) { return ms ? new Date(ms).toLocaleString() : "unknown"; }
function fmtAge(ms) {
  if (ms === null || ms === undefined) return "unknown";
  const min = Math.max(0, Math.round((Date.now() - ms) / 60000));
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  return h < 48 ? `${h} h ${min % 60} min` : `${Math.floor(h / 24)} days`;
}
function pct(x) { return x === null || x === undefined ? "n/a" : `${Math.round(x * 100)}%`; }
function isOpen(a) { return !a.state || !a.state.outcome; }

// --- session -------------------------------------------------------------------------

function wipe() {
  // Drop every plate the page holds: the list, the details and the data behind them.
  if (source) { source.close(); source = null; }
  live = false;
  alerts.clear();
  selected = null;
  $("alerts").replaceChildren();
  $("detail").replaceChildren(el("h2", {id: "detail-title"}, "Select an alert"));
  $("count").textContent = "";
  if (idleTimer) { clearInterval(idleTimer); idleTimer = null; }
}

function showLogin(message) {
  wipe();
  me = null;
  $("console").hidden = true;
  $("who").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-message").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

function endSession(message) { if (me !== null || message) showLogin(message); }

function start(user) {
  me = user;
  $("login").hidden = true;
  $("console").hidden = false;
  $("who").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `Logged in: ${user.name} (${user.user_id})`;
  lastActivity = Date.now();
  idleTimer = setInterval(() => {
    if (me && Date.now() - lastActivity > me.idle_timeout_s * 1000) {
      endSession("Your session expired after inactivity: log in again.");
    }
  }, 1000);
  connect();
}

function activity() {
  lastActivity = Date.now();
  if (me && Date.now() - lastTouch > 15000) {
    lastTouch = Date.now();
    api("POST", "/console/touch");
  }
}

// --- feed ----------------------------------------------------------------------------

function connect() {
  if (source) source.close();
  live = false;
  $("feed-status").textContent = "Connecting…";
  source = new EventSource("/console/events");
  source.addEventListener("alert", (e) => {
    const view = JSON.parse(e.data);
    const isNew = !alerts.has(view.alert_id);
    alerts.set(view.alert_id, view);  // a repeat replaces, never adds a row
    if (isNew && live && view.priority === 1 && isOpen(view)) sound();
    render();
  });
  source.addEventListener("state", (e) => {
    const state = JSON.parse(e.data);
    const view = alerts.get(state.alert_id);
    if (view) { view.state = state; render(); }
  });
  source.addEventListener("ready", () => {
    live = true;
    $("feed-status").textContent = "Live: new alerts appear here.";
  });
  source.addEventListener("expired", () => endSession("Your session expired: log in again."));
  source.onerror = () => {
    $("feed-status").textContent = "Connection lost: reconnecting…";
    if (source && source.readyState === EventSource.CLOSED) {
      // Refused (not a network drop): find out whether the session is still there.
      api("GET", "/console/me").then((r) => { if (r.ok) setTimeout(connect, 1000); })
        .catch(() => setTimeout(connect, 2000));
    }
  };
}

function sound() {
  // Two rising tones; the count is on <body> so a test (and a supervisor) can see it.
  document.body.dataset.sounds = String(Number(document.body.dataset.sounds || 0) + 1);
  try {
    audio = audio || new AudioContext();
    [660, 880].forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + i * 0.25);
      osc.stop(audio.currentTime + i * 0.25 + 0.2);
    });
  } catch (e) { /* no audio device: the colour and the label still say it */ }
}

function ordered() {
  const pinned = (a) => (a.priority === 1 && isOpen(a) ? 0 : 1);
  return [...alerts.values()].sort((a, b) =>
    pinned(a) - pinned(b) || b.produced_at - a.produced_at);
}

function stateText(a) {
  const s = a.state || {};
  if (s.outcome) return `Closed: ${OUTCOME_WORDS[s.hit_outcome] || s.outcome}${s.closed_by ? " by " + s.closed_by : ""}`;
  if (s.claimed_by) return `Claimed by ${s.claimed_by}`;
  return "Unclaimed";
}

function render() {
  const list = $("alerts");
  const items = ordered().map((a) => {
    const p1 = a.priority === 1;
    const li = el("li", {
      tabindex: 0, "data-alert-id": a.alert_id,
      class: [p1 ? "p1" : "", isOpen(a) ? "" : "closed"].join(" ").trim(),
      "aria-selected": a.alert_id === selected ? "true" : "false",
      onclick: () => select(a.alert_id),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(a.alert_id); } },
    },
    el("div", {class: "row1"},
      p1 ? el("span", {class: "tag p1"}, "▲ PRIORITY 1 · AMBER") : el("span", {class: "tag"}, `P${a.priority}`),
      el("span", {class: "plate"}, a.read.plate)),
    el("div", {class: "sub"}, `${a.entry.source_name}: ${a.entry.reason}`),
    el("div", {class: "sub"}, `${a.read.camera_id} · ${fmtTime(a.read.seen_at)}${a.historical ? " · historical hit" : ""}`),
    el("div", {class: "state"}, stateText(a)));
    return li;
  });
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.alertId : null;
  list.replaceChildren(...items);
  if (focused) {
    const again = list.querySelector(`li[data-alert-id="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
  $("count").textContent = `(${alerts.size})`;
  if (selected && alerts.has(selected)) renderDetail(alerts.get(selected));
}

function select(alertId) {
  selected = alertId;
  render();
  const heading = $("detail-title");
  if (heading) heading.focus();
}

// --- one alert -----------------------------------------------------------------------

function charBoxes(chars, withConf) {
  return el("div", {class: "chars"}, chars.map((ch) => {
    const label = [ch.c, withConf ? `confidence ${pct(ch.conf)}` : "",
                   ch.unsure ? "unsure" : "", ch.differs ? "differs from the hotlist plate" : ""]
      .filter(Boolean).join(", ");
    return el("span", {class: ["ch", ch.unsure ? "unsure" : "", ch.differs ? "differs" : ""].join(" "),
                       title: label, "aria-label": label},
      el("b", {}, ch.c),
      el("small", {}, withConf ? (ch.unsure ? `? ${pct(ch.conf)}` : pct(ch.conf)) : (ch.differs ? "≠" : " ")));
  }));
}

function facts(rows) {
  return el("dl", {class: "facts"}, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function renderDetail(a) {
  const r = a.read, e = a.entry, s = a.state || {};
  const place = [r.lat !== null && r.lon !== null ? `${r.lat.toFixed(5)}, ${r.lon.toFixed(5)}` : "no position",
                 r.heading !== null ? `heading ${Math.round(r.heading)}°` : "",
                 r.lane ? `lane ${r.lane}` : ""].filter(Boolean).join(" · ");
  let stateRow = "the read has no state yet";
  if (r.state) {
    const same = e.state ? r.state === e.state : null;
    stateRow = el("span", {class: same === false ? "mismatch" : ""},
      `read ${r.state}${r.state_confidence !== null ? ` (${pct(r.state_confidence)})` : ""}` +
      ` · entry ${e.state || "no state"}` + (same === false ? " · DIFFERENT STATE" : same ? " · same" : ""));
  }
  const detail = $("detail");
  const nodes = [
    el("h2", {id: "detail-title", tabindex: -1},
      a.priority === 1 ? "▲ PRIORITY 1 · AMBER · " : "", `${e.source_name} hit: ${r.plate}`),
    el("p", {class: "instruction"}, a.instruction),
    el("div", {class: "detail-grid"},
      el("div", {},
        r.crop ? el("img", {class: "crop", src: r.crop, alt: `plate crop of the read ${r.plate}`})
               : el("div", {class: "nocrop"}, "no plate image in this alert"),
        el("h3", {}, "Read (per-character confidence)"),
        charBoxes(r.chars, true),
        el("h3", {}, `Hotlist plate (${a.match.method} match)`),
        charBoxes(a.match.hotlist_chars, false),
        el("p", {class: "legend"}, "Dashed box with ? = unsure character; thick box = differs from the hotlist plate.")),
      el("div", {},
        facts([
          ["Camera", r.camera_id], ["Place", place], ["Seen", fmtTime(r.seen_at)],
          ["Read confidence", pct(r.confidence)],
          ["State", stateRow],
          ["List", e.source_name], ["Reason", e.reason], ["Entry state", e.state || "none given"],
          ["Entry id", e.entry_id], ["Category", e.category || "none"],
          ["List age", e.list_imported_at ? `${fmtAge(e.list_imported_at)} (version of ${fmtTime(e.list_imported_at)})` : "unknown"],
          ["Hit", a.historical ? "historical (entry added after the read)" : "real-time"],
          ["Alert id", a.alert_id], ["Status", stateText(a)],
        ]),
        actions(a, s))),
  ];
  detail.replaceChildren(...nodes);
}

function actions(a, s) {
  const box = el("div", {id: "actions"});
  const message = el("p", {class: "error", role: "alert", id: "action-message"},
                     actionError.alertId === a.alert_id ? actionError.text : "");
  if (s.outcome) {
    box.append(el("p", {class: "done"}, stateText(a)));
    return box;
  }
  if (!me || !me.can_close) {
    box.append(el("p", {}, "You can watch alerts; closing them needs the verify role."));
    return box;
  }
  if (s.claimed_by_id !== me.user_id) {
    box.append(el("div", {class: "actions"},
      el("button", {type: "button", class: "primary", id: "claim",
                    disabled: s.claimed_by_id ? true : null,
                    onclick: () => claim(a.alert_id)},
        s.claimed_by ? `Claimed by ${s.claimed_by}` : "Claim this alert")), message);
    return box;
  }
  const checkDefault = e => (["NCIC", "CCIC", "NCMEC"].includes(e) ? e : "NCIC");
  const form = el("form", {id: "outcome-form", onsubmit: (ev) => { ev.preventDefault(); record(a.alert_id, ev.target); }},
    el("fieldset", {class: "outcomes"}, el("legend", {}, "Outcome"),
      OUTCOMES.map(([value, label], i) => el("label", {},
        el("input", {type: "radio", name: "hit_outcome", value, required: true, checked: i === 0 ? true : null}), " ", label))),
    el("div", {class: "actions"},
      el("label", {for: "check_system"}, "Checked in"),
      el("select", {id: "check_system", name: "check_system"},
        ["NCIC", "CCIC", "NCMEC"].map((v) => el("option", {value: v, selected: v === checkDefault(a.entry.source) ? true : null}, v))),
      el("label", {}, el("input", {type: "checkbox", name: "rechecked", id: "rechecked"}),
        " I checked this entry in NCIC/CCIC just now")),
    el("label", {for: "note"}, "Note (optional)"),
    el("textarea", {id: "note", name: "note", maxlength: 500, rows: 2, style: "width:100%"}),
    el("div", {class: "actions"}, el("button", {type: "submit", class: "primary", id: "record"}, "Record outcome")));
  box.append(form, message);
  return box;
}

async function claim(alertId) {
  const r = await api("POST", `/console/alerts/${encodeURIComponent(alertId)}/claim`);
  if (!r.ok) { showError(alertId, r.data.detail || `refused (${r.status})`); return; }
  actionError = {alertId: null, text: ""};
  const view = alerts.get(alertId);
  if (view) view.state = {...(view.state || {}), claimed_by: r.data.name, claimed_by_id: r.data.user_id};
  render();
}

async function record(alertId, form) {
  const data = new FormData(form);
  const r = await api("POST", `/console/alerts/${encodeURIComponent(alertId)}/outcome`, {
    hit_outcome: data.get("hit_outcome"), check_system: data.get("check_system"),
    rechecked: data.get("rechecked") === "on", note: data.get("note") || "",
  });
  if (!r.ok) { showError(alertId, r.data.detail || `refused (${r.status})`); return; }
  actionError = {alertId: null, text: ""};
  const view = alerts.get(alertId);
  if (view) view.state = {...(view.state || {}), outcome: r.data.outcome, hit_outcome: r.data.hit_outcome, closed_by: r.data.user_id};
  render();
}

function showError(alertId, text) {
  actionError = {alertId, text};
  const box = $("action-message");
  if (box) box.textContent = text;
}

// --- keyboard and start-up -----------------------------------------------------------

document.addEventListener("keydown", (e) => {
  activity();
  if (e.target.closest && e.target.closest("input, textarea, select")) return;
  if (e.key !== "j" && e.key !== "k") return;
  const items = [...document.querySelectorAll("#alerts li")];
  if (!items.length) return;
  const at = items.indexOf(document.activeElement);
  const next = e.key === "j" ? Math.min(items.length - 1, at + 1) : Math.max(0, at - 1);
  items[next].focus();
});
document.addEventListener("pointerdown", activity);

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await api("POST", "/console/login", {token: $("token").value.trim()});
    $("token").value = "";
    if (r.ok) start(r.data);
    else $("login-message").textContent = r.data.detail || `login refused (${r.status})`;
  });
  $("logout").addEventListener("click", async () => {
    await api("POST", "/console/logout");
    showLogin("Logged out.");
  });
  const r = await fetch("/console/me", {credentials: "same-origin"});
  if (r.ok) start(await r.json());
  else showLogin("");
});
