// vsgw admin pages: retrieval requests (R11), emergencies and reviews (R12), relatives' grants (R13),
// audit search (R16). Talks only to the JSON API; the session is the HttpOnly vsgw_token cookie.
"use strict";
const T = {
  "zh-CN": {title: "vsgw 管理", login: "登录", logout: "退出", username: "用户名", password: "密码", totp: "动态口令（特权角色）",
    retrievals: "调取申请", emergencies: "紧急事件", relatives: "亲属查看", audit: "审计", new_request: "新建调取申请",
    purpose: "用途", judicial: "司法", enforcement: "行政执法", emergency: "应急", legal_basis: "法律依据", case_number: "案件编号",
    document: "审批文书", cameras: "摄像机（逗号分隔）", start: "开始", end: "结束", access: "权限", view: "查看", copy: "复制",
    submit: "提交", declare: "宣布紧急事件", kind: "类型", public_order: "社会安全", natural_disaster: "自然灾害",
    accident: "事故灾难", public_health: "公共卫生", justification: "理由", units: "单位", districts: "辖区", hours: "时长（小时）",
    active: "进行中", reviews: "待复核", relative_grant: "授予亲属查看（仅查看）", relative_name: "亲属姓名",
    missing_person: "走失人员", elderly: "老人", child: "儿童", cognitive: "智力障碍者", actor: "操作者", action: "操作",
    decision: "结果", search: "查询", export: "导出（签名 JSON 行）", confirm: "第二民警确认", approve: "批准", refuse: "拒绝",
    end_now: "结束", sign_off: "复核签字", reason: "理由？", notes: "复核意见？", link: "亲属观看链接（仅一次显示）："},
  en: {title: "vsgw admin", login: "Log in", logout: "Log out", username: "Username", password: "Password",
    totp: "TOTP code (privileged roles)", retrievals: "Retrievals", emergencies: "Emergencies", relatives: "Relatives",
    audit: "Audit", new_request: "New retrieval request", purpose: "Purpose", judicial: "Judicial",
    enforcement: "Administrative enforcement", emergency: "Emergency", legal_basis: "Legal basis", case_number: "Case number",
    document: "Approval document", cameras: "Cameras (comma-separated)", start: "Start", end: "End", access: "Access",
    view: "View", copy: "Copy", submit: "Submit", declare: "Declare an emergency", kind: "Kind", public_order: "Public order",
    natural_disaster: "Natural disaster", accident: "Accident", public_health: "Public health", justification: "Justification",
    units: "Units", districts: "Districts", hours: "Hours", active: "Active", reviews: "Awaiting review",
    relative_grant: "Grant a relative view-only access", relative_name: "Relative's name", missing_person: "Missing person",
    elderly: "Elderly", child: "Child", cognitive: "Cognitively impaired", actor: "Actor", action: "Action",
    decision: "Decision", search: "Search", export: "Export (signed JSON lines)", confirm: "Confirm as second officer",
    approve: "Approve", refuse: "Refuse", end_now: "End", sign_off: "Sign off review", reason: "Reason?",
    notes: "Review notes?", link: "Relative's viewing link (shown once):"},
};
let lang = localStorage.getItem("vsgw.lang") || (navigator.language.startsWith("zh") ? "zh-CN" : "en");
const $ = s => document.querySelector(s);
const t = k => T[lang][k] || k;

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
  $("#lang").textContent = lang === "en" ? "中文" : "EN";
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
const iso = v => new Date(v).toISOString();

function table(el, rows, cols, actions) {
  el.replaceChildren();
  const head = el.insertRow();
  cols.forEach(c => { const th = document.createElement("th"); th.textContent = c; head.append(th); });
  for (const row of rows) {
    const tr = el.insertRow();
    if (row.decision === "deny") tr.className = "deny";
    cols.forEach(c => { tr.insertCell().textContent = Array.isArray(row[c]) ? row[c].join(", ") : (row[c] ?? ""); });
    const cell = tr.insertCell();
    for (const [label, fn] of actions ? actions(row) : []) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = t(label);
      b.onclick = () => fn().then(refresh).catch(e => show(e.message));
      cell.append(b);
    }
  }
}

async function refresh() {
  show("");
  const tasks = [
    api("GET", "/api/retrievals").then(d => table($("#retrieval-list"), d.requests,
      ["id", "status", "purpose", "case_number", "cameras", "action", "requester", "second_officer", "reason", "grant_id"],
      r => r.status === "awaiting_second_officer" ? [["confirm", () => api("POST", `/api/retrievals/${r.id}/confirm`, {})],
                                                     ["refuse", () => refuse(r.id)]]
         : r.status === "awaiting_approval" ? [["approve", () => api("POST", `/api/retrievals/${r.id}/approve`, {})],
                                               ["refuse", () => refuse(r.id)]] : [])),
    api("GET", "/api/emergencies").then(d => table($("#emergency-list"), d.active,
      ["id", "kind", "cameras", "units", "districts", "expires"],
      e => [["end_now", () => api("POST", `/api/emergencies/${e.id}/end`)]])),
    api("GET", "/api/reviews").then(d => table($("#review-list"), d.open,
      ["id", "kind", "declared_by", "justification", "ended_at", "end_reason"],
      e => e.ended_at ? [["sign_off", () => api("POST", `/api/emergencies/${e.id}/review`, {notes: prompt(t("notes")) || ""})]] : [])),
  ];
  (await Promise.allSettled(tasks)).filter(r => r.status === "rejected").forEach(r => show(r.reason.message));
}

const refuse = id => api("POST", `/api/retrievals/${id}/refuse`, {reason: prompt(t("reason")) || ""});

async function searchAudit(form) {
  const q = new URLSearchParams([...new FormData(form)].filter(([, v]) => v));
  const d = await api("GET", `/api/audit?${q}`);
  table($("#audit-list"), d.records, ["seq", "time", "actor", "action", "resource", "decision", "reason", "address"]);
}

function bind(id, fn) {
  $(id).addEventListener("submit", e => {
    e.preventDefault();
    fn(new FormData(e.target), e.target).then(refresh).catch(err => show(err.message));
  });
}

async function signedIn(user) {
  $("#who").textContent = `${user.name} (${user.roles.join(", ")})`;
  $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  $("#lang").onclick = () => { lang = lang === "en" ? "zh-CN" : "en"; localStorage.setItem("vsgw.lang", lang); translate(); };
  $("#logout").onclick = () => api("POST", "/api/logout").finally(() => location.reload());
  document.querySelectorAll("nav button").forEach(b => b.onclick = () => {
    document.querySelectorAll("section").forEach(s => { s.hidden = s.id !== b.dataset.tab; });
    document.querySelectorAll("nav button").forEach(x => x.toggleAttribute("aria-current", x === b));
  });
  bind("#login", async f => {
    const d = await api("POST", "/api/login", {username: f.get("username"), password: f.get("password"),
                                               totp: f.get("totp") || undefined});
    await signedIn(d.user);
  });
  bind("#new-retrieval", async f => {
    const bytes = new Uint8Array(await f.get("document").arrayBuffer());
    let bin = ""; bytes.forEach(b => { bin += String.fromCharCode(b); });
    await api("POST", "/api/retrievals", {purpose: f.get("purpose"), legal_basis: f.get("legal_basis"),
      case_number: f.get("case_number"), approval_document_name: f.get("document").name, approval_document: btoa(bin),
      cameras: ids(f.get("cameras")), start: iso(f.get("start")), end: iso(f.get("end")), action: f.get("action")});
  });
  bind("#declare", f => api("POST", "/api/emergencies", {kind: f.get("kind"), justification: f.get("justification"),
    cameras: ids(f.get("cameras")), units: ids(f.get("units")), districts: ids(f.get("districts")), hours: Number(f.get("hours"))}));
  bind("#relative", async f => {
    const d = await api("POST", "/api/relative-grants", {relative_name: f.get("relative_name"),
      missing_person: f.get("missing_person"), case_number: f.get("case_number"), cameras: ids(f.get("cameras")),
      start: iso(f.get("start")), end: iso(f.get("end")), hours: Number(f.get("hours"))});
    $("#relative-link").textContent = `${t("link")} ${location.origin}${d.wall_url}`;
  });
  $("#audit-search").addEventListener("submit", e => { e.preventDefault(); searchAudit(e.target).catch(err => show(err.message)); });
  api("GET", "/api/me").then(signedIn).catch(() => {});
});
