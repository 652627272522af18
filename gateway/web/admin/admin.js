// vsgw admin console: retrieval requests (R11), approvals, emergencies and reviews (R12), relatives'
// grants (R13), audit search (R16). Talks only to the JSON API; the session is the HttpOnly vsgw_token
// cookie. Each signed-in user sees the tabs and forms their roles (GET /api/me) can use; times are
// shown, and datetime inputs read, in the node's zone (GET /api/ui-config).
"use strict";
const T = window.VSGW_ADMIN_I18N;
let lang = localStorage.getItem("vsgw.lang") || (navigator.language.startsWith("zh") ? "zh-CN" : "en");
let zone = "Asia/Shanghai";
let me = null;
const $ = s => document.querySelector(s);
const t = (k, args = {}) => (T[lang][k] ?? k).replace(/\{(\w+)\}/g, (_, a) => args[a] ?? "");
const enumText = (prefix, v) => T[lang][prefix + v] ?? v;  // unknown values stay as they are

// -- time in the node's zone ----------------------------------------------------------------------
function zoneParts(ms) {
  const f = new Intl.DateTimeFormat("en-US", {timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
  return Object.fromEntries(f.formatToParts(new Date(ms)).map(p => [p.type, p.value]));
}
const when = v => {  // ISO 8601 (UTC) -> "2026-11-20 08:00:00" in the zone
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) return v;
  const p = zoneParts(ms);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
};
const offset = ms => { const p = zoneParts(ms); return Date.UTC(+p.year, p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - ms; };
function fromZone(local) {  // a datetime-local value read as the zone's wall-clock time -> ISO 8601 UTC
  const [d, tm] = local.split("T"), [y, mo, da] = d.split("-").map(Number), [h, mi] = tm.split(":").map(Number);
  const guess = Date.UTC(y, mo - 1, da, h, mi);
  return new Date(guess - offset(guess - offset(guess))).toISOString();
}

// -- cells: column names, enumerated values and times in the reader's language ------------------------
const TIMES = new Set(["start", "end", "expires", "ended_at", "time"]);
const ENUMS = {status: "status_", purpose: "purpose_", kind: "kind_", action: "action_", decision: "decision_"};
function cell(col, v) {
  if (v === null || v === undefined || v === "") return "";
  if (Array.isArray(v)) return v.join(", ");
  if (TIMES.has(col)) return when(v);
  return ENUMS[col] ? enumText(ENUMS[col], v) : String(v);
}

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll("a[data-langq]").forEach(a => { a.search = lang === "en" ? "?lang=en" : ""; });
  $("#lang").textContent = lang === "en" ? "中文" : "EN";
  $("#zone").textContent = t("zone", {zone});
  if (me) { who(); showAudit(); refresh(); }
}

async function api(method, path, body) {
  const resp = await fetch(path, {method, credentials: "same-origin",
    headers: body ? {"Content-Type": "application/json"} : {}, body: body ? JSON.stringify(body) : undefined});
  const data = resp.headers.get("Content-Type")?.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) throw new Error(data.message || resp.statusText);
  return data;
}

const show = msg => { $("#status").textContent = msg || ""; };
const ids = v => v.split(",").map(s => s.trim()).filter(Boolean);
const has = (...roles) => roles.some(r => me.roles.includes(r));

function table(el, rows, cols, actions) {
  el.replaceChildren();
  const head = el.insertRow();
  cols.forEach(c => { const th = document.createElement("th"); th.textContent = t("col_" + c); th.dataset.col = c; head.append(th); });
  if (!rows.length) { const td = el.insertRow().insertCell(); td.colSpan = cols.length; td.textContent = t("none"); }
  for (const row of rows) {
    const tr = el.insertRow();
    if (row.decision === "deny") tr.className = "deny";
    cols.forEach(c => { const td = tr.insertCell(); td.dataset.col = c; td.textContent = cell(c, row[c]); });
    const buttons = actions ? actions(row) : [];
    if (!buttons.length) continue;
    const td = tr.insertCell();
    for (const [label, fn] of buttons) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = t(label);
      b.onclick = () => fn().then(refresh).catch(e => show(e.message));
      td.append(b);
    }
  }
}

const REQUEST_COLS = ["id", "status", "purpose", "case_number", "cameras", "start", "end", "action", "requester",
                      "second_officer", "decided_by", "reason", "grant_id"];
const refuse = id => api("POST", `/api/retrievals/${id}/refuse`, {reason: prompt(t("reason")) || ""});
const open = r => r.status === "awaiting_second_officer" || r.status === "awaiting_approval";

function requestActions(r) {
  const out = [];
  if (r.status === "awaiting_second_officer" && r.requester !== me.id && has("police_officer", "police_chief", "department_admin"))
    out.push(["confirm", () => api("POST", `/api/retrievals/${r.id}/confirm`, {})]);
  if (open(r) && has("department_admin")) out.push(["refuse", () => refuse(r.id)]);
  return out;
}

async function refresh() {
  show("");
  const tasks = [];
  const visible = id => !$(`nav [data-tab=${id}]`).hidden;
  if (visible("retrievals") || visible("approvals")) tasks.push(api("GET", "/api/retrievals").then(d => {
    table($("#retrieval-list"), d.requests, REQUEST_COLS, requestActions);
    table($("#approval-list"), d.requests.filter(r => r.status === "awaiting_approval"), REQUEST_COLS,
      r => [["approve", () => api("POST", `/api/retrievals/${r.id}/approve`, {})], ["refuse", () => refuse(r.id)]]);
  }));
  if (visible("emergencies")) tasks.push(api("GET", "/api/emergencies").then(d => table($("#emergency-list"), d.active,
    ["id", "kind", "cameras", "units", "districts", "expires"],
    e => has("emergency_commander") ? [["end_now", () => api("POST", `/api/emergencies/${e.id}/end`, {})]] : [])));
  if (visible("reviews")) tasks.push(api("GET", "/api/reviews").then(d => table($("#review-list"), d.open,
    ["id", "kind", "declared_by", "justification", "ended_at", "end_reason"],
    e => e.ended_at ? [["sign_off", () => api("POST", `/api/emergencies/${e.id}/review`, {notes: prompt(t("notes")) || ""})]] : [])));
  (await Promise.allSettled(tasks)).filter(r => r.status === "rejected").forEach(r => show(r.reason.message));
}

let audited = null;  // the last audit page, shown again in the other language
async function searchAudit(form) {
  const q = new URLSearchParams([...new FormData(form)].filter(([, v]) => v));
  audited = (await api("GET", `/api/audit?${q}`)).records;
  showAudit();
}
const showAudit = () => audited && table($("#audit-list"), audited,
  ["seq", "time", "actor", "action", "resource", "decision", "reason", "address"]);

function bind(id, fn) {
  $(id).addEventListener("submit", e => {
    e.preventDefault();
    fn(new FormData(e.target), e.target).then(refresh).catch(err => show(err.message));
  });
}

function select(tab) {
  document.querySelectorAll("main section").forEach(s => { s.hidden = s.id !== tab; });
  document.querySelectorAll("nav button").forEach(x => x.toggleAttribute("aria-current", x.dataset.tab === tab));
}

const who = () => { $("#who").textContent = `${me.name} (${me.roles.map(r => enumText("role_", r)).join(", ")})`; };

async function signedIn(user) {
  me = user;
  const login = $("#login");
  login.reset();  // no password left in the page
  login.hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
  document.querySelectorAll("[data-roles]").forEach(el => { el.hidden = !has(...el.dataset.roles.split(" ")); });
  const tabs = [...document.querySelectorAll("nav [data-tab]")].filter(b => !b.hidden);
  $("#nothing").hidden = tabs.length > 0;
  select(tabs.length ? tabs[0].dataset.tab : null);
  who();
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  api("GET", "/api/ui-config").then(c => { zone = c.time_zone; translate(); }).catch(() => {});
  $("#lang").onclick = () => { lang = lang === "en" ? "zh-CN" : "en"; localStorage.setItem("vsgw.lang", lang); translate(); };
  $("#logout").onclick = () => api("POST", "/api/logout").finally(() => location.reload());
  document.querySelectorAll("nav button").forEach(b => b.onclick = () => select(b.dataset.tab));
  bind("#login", async f => {
    const d = await api("POST", "/api/login", {username: f.get("username"), password: f.get("password"),
                                               totp: f.get("totp") || undefined});
    await signedIn(await api("GET", "/api/me").catch(() => d.user));
  });
  bind("#new-retrieval", async f => {
    const bytes = new Uint8Array(await f.get("document").arrayBuffer());
    let bin = ""; bytes.forEach(b => { bin += String.fromCharCode(b); });
    await api("POST", "/api/retrievals", {purpose: f.get("purpose"), legal_basis: f.get("legal_basis"),
      case_number: f.get("case_number"), approval_document_name: f.get("document").name, approval_document: btoa(bin),
      cameras: ids(f.get("cameras")), start: fromZone(f.get("start")), end: fromZone(f.get("end")), action: f.get("action")});
  });
  bind("#declare", f => api("POST", "/api/emergencies", {kind: f.get("kind"), justification: f.get("justification"),
    cameras: ids(f.get("cameras")), units: ids(f.get("units")), districts: ids(f.get("districts")), hours: Number(f.get("hours"))}));
  bind("#relative", async f => {
    const d = await api("POST", "/api/relative-grants", {relative_name: f.get("relative_name"),
      missing_person: f.get("missing_person"), case_number: f.get("case_number"), cameras: ids(f.get("cameras")),
      start: fromZone(f.get("start")), end: fromZone(f.get("end")), hours: Number(f.get("hours"))});
    $("#relative-link").textContent = `${t("link")} ${location.origin}${d.wall_url}`;
  });
  $("#audit-search").addEventListener("submit", e => { e.preventDefault(); searchAudit(e.target).catch(err => show(err.message)); });
  api("GET", "/api/me").then(signedIn).catch(() => {});
});
