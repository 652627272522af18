"use strict";
// The video wall: login, camera tree with live online state (SSE), layouts 1/4/9/16, tiles that
// play WHEP streams and reconnect by themselves, PTZ, full screen, a recording timeline per tile,
// reports to the police (R16), emergency banner and preemption (R12).
(() => {
  const $ = s => document.querySelector(s);
  const store = window.localStorage;
  const state = { token: null, cameras: new Map(), layout: 4, tiles: [], selected: 0, lang: store.getItem("vsgw_lang") || "zh-CN",
                  emergencies: new Map(), events: null };
  const BACKOFF = [1, 2, 4, 8, 15];

  // -- i18n ---------------------------------------------------------------------------------
  const t = (key, args = {}) => (window.VSGW_I18N[state.lang][key] || key).replace(/\{(\w+)\}/g, (_, k) => args[k] ?? "");
  let zone = "Asia/Shanghai";  // [node] time_zone (GET /api/ui-config): clock times are the node's, not the browser's
  const clock = ms => new Intl.DateTimeFormat(state.lang, { timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(ms);
  fetch("/api/ui-config").then(r => r.json()).then(c => { zone = c.time_zone; translate(); }).catch(() => {});
  function translate() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(el => { el.placeholder = t(el.dataset.i18nPlaceholder); });
    document.querySelectorAll("[data-i18n-title]").forEach(el => { el.title = t(el.dataset.i18nTitle); });
    $("#lang").textContent = t("lang");
    state.tiles.forEach(tile => tile.render());
    renderBanner();
  }

  // -- auth -----------------------------------------------------------------------------------
  function takeTokenFromUrl() {
    const url = new URL(location.href);
    const token = url.searchParams.get("token");
    if (token) {
      store.setItem("vsgw_token", token);
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + (url.search || "") + url.hash);  // not left in the address bar
    }
    return store.getItem("vsgw_token");
  }
  const api = (path, opts = {}) => fetch(path, { ...opts, headers: { ...(opts.headers || {}), Authorization: `Bearer ${state.token}` } });

  function showLogin(message = "") {
    $("#app").hidden = true; $("#login").hidden = false; $("#login-error").textContent = message;
  }
  $("#login-form").addEventListener("submit", async e => {
    e.preventDefault();
    const f = e.target;
    const body = { username: f.username.value, password: f.password.value, totp: f.totp.value || null };
    try {
      const resp = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(data.message || resp.statusText);
      begin(data.token);
    } catch (err) { $("#login-error").textContent = t("login_failed", { why: err.message }); }
  });
  $("#use-token").addEventListener("click", () => { const v = $("#login-form").token.value.trim(); if (v) begin(v); });
  $("#logout").addEventListener("click", () => {
    api("/api/logout", { method: "POST" }).catch(() => {});
    store.removeItem("vsgw_token"); state.tiles.forEach(tile => tile.assign(null)); if (state.events) state.events.close();
    showLogin();
  });

  async function begin(token) {
    state.token = token;
    const resp = await api("/api/cameras").catch(() => null);
    if (!resp || resp.status === 401) { store.removeItem("vsgw_token"); showLogin(resp ? t("login_failed", { why: "401" }) : ""); return; }
    store.setItem("vsgw_token", token);
    const { cameras } = await resp.json();
    state.cameras = new Map(cameras.map(c => [c.id, c]));
    $("#login").hidden = true; $("#app").hidden = false;
    renderTree(); setLayout(Number(store.getItem("vsgw_layout")) || 4); connectEvents(); translate();
    const saved = JSON.parse(store.getItem("vsgw_tiles") || "null");
    const wanted = saved && saved.some(Boolean) ? saved : cameras.filter(c => c.online).slice(0, state.layout).map(c => c.id);
    wanted.forEach((id, i) => { if (id && state.cameras.has(id) && state.tiles[i]) state.tiles[i].assign(id); });
  }

  // -- camera tree ---------------------------------------------------------------------------
  function renderTree() {
    const q = $("#search").value.trim().toLowerCase();
    const groups = new Map();
    for (const cam of state.cameras.values()) {
      if (q && !cam.name.toLowerCase().includes(q) && !cam.id.toLowerCase().includes(q)) continue;
      const group = cam.parent || cam.adapter;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(cam);
    }
    const tree = $("#tree");
    tree.replaceChildren();
    for (const [group, cams] of [...groups].sort()) {
      const li = document.createElement("li");
      const head = document.createElement("span"); head.textContent = group; li.append(head);
      const ul = document.createElement("ul");
      for (const cam of cams.sort((a, b) => a.name.localeCompare(b.name))) {
        const item = document.createElement("li");
        item.className = "cam" + (cam.online ? " online" : "");
        item.textContent = cam.name; item.title = cam.id; item.dataset.camera = cam.id; item.draggable = true;
        item.addEventListener("click", () => placeCamera(cam.id));
        item.addEventListener("dragstart", e => e.dataTransfer.setData("text/x-vsgw-camera", cam.id));
        ul.append(item);
      }
      li.append(ul); tree.append(li);
    }
  }
  $("#search").addEventListener("input", renderTree);

  function placeCamera(id) {
    const free = state.tiles.slice(0, state.layout).findIndex(tile => !tile.cameraId);  // visible tiles only
    const index = state.tiles[state.selected] && !state.tiles[state.selected].cameraId ? state.selected : (free >= 0 ? free : state.selected);
    state.tiles[index].assign(id); select(index);
  }

  // -- layout and tiles -------------------------------------------------------------------------
  function setLayout(n) {
    state.layout = n; store.setItem("vsgw_layout", String(n));
    const side = Math.sqrt(n);
    const grid = $("#grid");
    grid.style.gridTemplateColumns = `repeat(${side}, 1fr)`; grid.style.gridTemplateRows = `repeat(${side}, 1fr)`;
    while (state.tiles.length < n) state.tiles.push(new Tile(state.tiles.length));
    state.tiles.slice(n).forEach(tile => tile.assign(null));
    state.tiles.forEach((tile, i) => { tile.el.hidden = i >= n; });
    grid.replaceChildren(...state.tiles.slice(0, n).map(tile => tile.el));
    document.querySelectorAll("[data-layout]").forEach(b => b.classList.toggle("active", Number(b.dataset.layout) === n));
    saveTiles();
  }
  document.querySelectorAll("[data-layout]").forEach(b => b.addEventListener("click", () => setLayout(Number(b.dataset.layout))));
  const saveTiles = () => store.setItem("vsgw_tiles", JSON.stringify(state.tiles.slice(0, state.layout).map(tile => tile.cameraId)));
  function select(i) { state.selected = i; state.tiles.forEach((tile, j) => tile.el.classList.toggle("selected", i === j)); }

  class Tile {
    constructor(index) {
      this.index = index; this.cameraId = null; this.player = null; this.status = "empty"; this.why = ""; this.attempt = 0;
      this.el = $("#tile-template").content.firstElementChild.cloneNode(true);
      this.video = this.el.querySelector("video");
      this.el.addEventListener("click", () => select(this.index));
      this.el.addEventListener("dragover", e => { e.preventDefault(); this.el.classList.add("drop"); });
      this.el.addEventListener("dragleave", () => this.el.classList.remove("drop"));
      this.el.addEventListener("drop", e => {
        e.preventDefault(); this.el.classList.remove("drop");
        const id = e.dataTransfer.getData("text/x-vsgw-camera"); if (id) { this.assign(id); select(this.index); }
      });
      this.el.querySelector(".close").addEventListener("click", e => { e.stopPropagation(); this.assign(null); });
      this.el.querySelector(".fs").addEventListener("click", e => {
        e.stopPropagation(); document.fullscreenElement ? document.exitFullscreen() : this.el.requestFullscreen().catch(() => {});
      });
      this.el.querySelector(".rec").addEventListener("click", e => { e.stopPropagation(); this.showTimeline(); });
      this.el.querySelector(".golive").addEventListener("click", e => { e.stopPropagation(); this.assign(this.cameraId); });
      this.el.querySelector(".track").addEventListener("click", e => {
        e.stopPropagation();
        const box = e.currentTarget.getBoundingClientRect();
        this.seekTo(this.span.start + (e.clientX - box.left) / box.width * (this.span.end - this.span.start));
      });
      const golive = this.el.querySelector(".golive");  // pause/resume and speed beside "live"
      this.pp = Object.assign(document.createElement("button"), { className: "pp", textContent: "⏸" });
      this.speedSel = Object.assign(document.createElement("select"), { className: "speed" });
      for (const x of [0.25, 0.5, 1, 2, 4, 8, 16]) this.speedSel.append(new Option(`${x}×`, String(x), x === 1, x === 1));
      golive.before(this.pp, this.speedSel);
      this.pp.addEventListener("click", e => { e.stopPropagation(); this.togglePause(); });
      this.speedSel.addEventListener("click", e => e.stopPropagation());
      this.speedSel.addEventListener("change", () => this.setSpeed(Number(this.speedSel.value)));
      this.el.querySelector(".report").addEventListener("click", e => { e.stopPropagation(); this.report(); });
      this.el.querySelectorAll("[data-ptz]").forEach(b => {
        const [axis, speed] = b.dataset.ptz.split(":");
        b.addEventListener("pointerdown", e => { e.stopPropagation(); this.ptz({ [axis]: Number(speed) * 0.5 }); });
        b.addEventListener("pointerup", () => this.ptz({ pan: 0, tilt: 0, zoom: 0 }));
      });
      this.render();
    }

    assign(id, preempted = false) {
      clearTimeout(this.retry);
      if (this.player) { this.player.stop(); this.player = null; }
      this.stopRecorded(); this.el.querySelector(".timeline").hidden = true;
      this.cameraId = id; this.attempt = 0; this.preempted = preempted;
      this.el.classList.toggle("preempted", preempted);
      this.status = id ? "connecting" : "empty"; this.why = "";
      this.render(); saveTiles();
      if (id) this.connect();
    }

    async connect() {
      const id = this.cameraId;
      const player = this.player = new WhepPlayer(this.video, id, state.token, {
        playing: () => { if (this.player === player) { this.status = "live"; this.attempt = 0; this.render(); } },
        lost: why => { if (this.player === player) this.reconnect(why); },
        stats: () => { if (this.player === player) this.render(); },
      });
      this.status = "connecting"; this.render();
      try {
        await player.start();
        this.render();
      } catch (err) {
        if (this.player !== player) return;
        if (err.status === 401) { showLogin(t("login_failed", { why: err.message })); return; }
        if (err.status === 404) { this.status = "unknown"; this.render(); return; }
        if (err.status === 403) { this.status = "forbidden"; this.why = err.message; this.render(); this.schedule(30); return; }
        this.reconnect(err.message);
      }
    }

    reconnect(why) {
      if (this.player) { this.player.stop(); this.player = null; }
      const cam = state.cameras.get(this.cameraId);
      this.status = cam && !cam.online ? "offline" : "reconnect"; this.why = why;
      this.schedule(BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)]);
      this.attempt += 1;
    }

    schedule(seconds) {
      clearTimeout(this.retry); clearInterval(this.countdown);
      this.wait = seconds; this.render();
      this.countdown = setInterval(() => { this.wait = Math.max(0, this.wait - 1); this.render(); }, 1000);
      this.retry = setTimeout(() => { clearInterval(this.countdown); if (this.cameraId) this.connect(); }, seconds * 1000);
    }

    // -- recordings: the last hour on a timeline; a click plays from there (fMP4 over HTTP) --
    async showTimeline() {
      const id = this.cameraId; if (!id) return;
      const end = Date.now() / 1000, start = end - 3600;
      const resp = await api(`/api/recordings/${encodeURIComponent(id)}/ranges?start=${start}&end=${end}`).catch(() => null);
      const data = resp && resp.ok ? await resp.json() : { ranges: [] };
      this.span = { start, end };
      const track = this.el.querySelector(".track");
      track.querySelectorAll(".range").forEach(r => r.remove());
      for (const r of data.ranges) {
        const a = Math.max(start, Date.parse(r.start) / 1000), b = Math.min(end, Date.parse(r.end) / 1000);
        const bar = document.createElement("div"); bar.className = "range";
        const width = Math.max(0.3, this.percent(b) - this.percent(a));  // at least visible; kept inside the track
        bar.style.left = `${Math.min(this.percent(a), 100 - width)}%`; bar.style.width = `${width}%`;
        track.append(bar);
      }
      this.ranges = data.ranges; this.playbackMark = data.watermark || null;
      this.el.querySelector(".timeline").hidden = false;
      this.el.querySelector(".when").textContent = data.ranges.length ? "" : t("no_recording");
    }

    percent(at) { return (at - this.span.start) / (this.span.end - this.span.start) * 100; }  // on the timeline

    playRecorded(at, speed = 1) {
      if (this.player) { this.player.stop(); this.player = null; }
      clearTimeout(this.retry); clearInterval(this.countdown);
      const cursor = this.el.querySelector(".cursor");
      cursor.hidden = false; cursor.style.left = `${this.percent(at)}%`;
      const when = clock(at * 1000);
      this.el.querySelector(".when").textContent = when;
      this.status = "playback"; this.why = when; this.render();
      this.video.srcObject = null;
      this.video.onerror = () => { this.status = "playfail"; this.why = this.video.error ? this.video.error.message || "error" : ""; this.render(); };
      const playing = this.playing = { at, end: at + 600, speed, paused: false, session: undefined };
      this.pp.textContent = "⏸"; this.speedSel.value = String(speed);
      this.video.onplaying = async () => {
        this.status = "playback"; this.render();
        // the device's playback is re-timed at its speed; the gateway's own keeps recorded time, so the player speeds up
        if (this.playing === playing) this.video.playbackRate = (await this.session()) ? 1 : playing.speed;
      };
      this.video.src = `/api/recordings/${encodeURIComponent(this.cameraId)}/play?start=${at}&end=${at + 600}` +
                       `&speed=${speed}&access_token=${encodeURIComponent(state.token)}`;
      this.video.play().catch(() => {});
    }

    // The device's playback is steered through its session (MANSRTSP); the gateway's own is asked
    // again from the new position or at the new speed. A <video> cannot read the session header:
    // the caller's running device playbacks are listed instead.
    async session() {
      const p = this.playing; if (!p) return null;
      if (p.session) return p.session;
      const resp = await api(`/api/playback?camera=${encodeURIComponent(this.cameraId)}`).catch(() => null);
      const found = resp && resp.ok ? (await resp.json()).playbacks.find(x => Math.abs(Date.parse(x.start) / 1000 - p.at) < 1) : null;
      if (found && this.playing === p) p.session = found.session;
      return found ? found.session : null;
    }

    async control(session, body) {
      const resp = await api(`/api/playback/${encodeURIComponent(session)}/control`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).catch(() => null);
      if (resp && resp.ok) return true;
      const data = resp ? await resp.json().catch(() => ({})) : {};
      this.notice = t("play_failed", { why: data.message || (resp ? resp.statusText : "network") }); this.render();
      setTimeout(() => { this.notice = ""; this.render(); }, 5000);
      return false;
    }

    position() { const p = this.playing; return p.at + this.video.currentTime; }  // recorded time shown now

    async togglePause() {
      const p = this.playing; if (!p) return;
      const session = await this.session();
      if (session && !(await this.control(session, { action: p.paused ? "resume" : "pause" }))) return;
      p.paused = !p.paused; this.pp.textContent = p.paused ? "▶" : "⏸";
      if (p.paused) this.video.pause(); else this.video.play().catch(() => {});
    }

    async setSpeed(speed) {
      const p = this.playing; if (!p) return;
      const session = await this.session();
      if (!session) { this.playRecorded(this.position(), speed); return; }
      if (await this.control(session, { action: "speed", speed })) {
        p.speed = speed; p.paused = false; this.pp.textContent = "⏸"; this.video.play().catch(() => {});
      } else this.speedSel.value = String(p.speed);
    }

    async seekTo(at) {
      const p = this.playing;
      const session = p && at >= p.at && at < p.end ? await this.session() : null;
      if (!session) { this.playRecorded(at, p ? p.speed : 1); return; }
      if (!(await this.control(session, { action: "seek", position: new Date(at * 1000).toISOString() }))) return;
      p.paused = false; this.pp.textContent = "⏸"; this.video.play().catch(() => {});
      this.el.querySelector(".cursor").style.left = `${this.percent(at)}%`;
      this.el.querySelector(".when").textContent = new Date(at * 1000).toLocaleTimeString(state.lang);
    }

    stopRecorded() {
      this.playing = null;
      this.video.onerror = null; this.video.onplaying = null;
      if (this.video.getAttribute("src")) { this.video.removeAttribute("src"); this.video.load(); }
    }

    // -- R16: what the operator sees that the police must know --
    async report() {
      const id = this.cameraId; if (!id) return;
      const note = window.prompt(t("report_prompt"));
      if (!note || !note.trim()) return;
      const resp = await api("/api/reports", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ camera_id: id, note }) }).catch(() => null);
      const data = resp ? await resp.json().catch(() => ({})) : {};
      const ok = resp !== null && resp.ok;
      this.notice = ok ? t("report_sent") : t("report_failed", { why: data.message || (resp ? resp.statusText : "network") });
      this.lastReport = ok ? data.id : null;
      this.render();
      setTimeout(() => { this.notice = ""; this.render(); }, 5000);
    }

    ptz(command) {
      if (this.cameraId) api(`/api/cameras/${encodeURIComponent(this.cameraId)}/ptz`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(command) }).catch(() => {});
    }

    render() {
      const cam = this.cameraId && state.cameras.get(this.cameraId);
      this.el.querySelector(".name").textContent = cam ? cam.name : "";
      this.el.querySelector(".bar").hidden = !cam;
      this.el.querySelector(".ptz").hidden = !(cam && cam.ptz);
      const p = this.player;
      const stats = p && this.status === "live"
        ? `${p.fps.toFixed(0)} fps · ${(p.bitrate / 1000).toFixed(0)} kbit/s` + (p.latencyMs !== null ? ` · ${t("latency")} ${p.latencyMs.toFixed(0)} ms` : "")
        : "";
      this.el.querySelector(".stats").textContent = this.notice || stats;
      const mark = this.el.querySelector(".watermark");
      const watermark = p ? p.watermark : (this.status === "playback" || this.status === "playfail") && this.playbackMark;
      mark.hidden = !watermark; mark.textContent = watermark || "";
      const text = { empty: t("empty"), connecting: t("connecting"), live: "", unknown: t("unknown"),
                     offline: t("offline") + (this.wait ? ` · ${this.wait} s` : ""),
                     forbidden: t("forbidden", { why: this.why }), playback: "",
                     playfail: t("play_failed", { why: this.why }),
                     reconnect: t("reconnect", { why: this.why, s: this.wait ?? "" }) }[this.status];
      this.el.querySelector(".status").textContent = text;
      this.el.dataset.status = this.status;
    }
  }

  // -- events: online state, emergencies ----------------------------------------------------------
  function connectEvents() {
    if (state.events) state.events.close();
    const es = state.events = new EventSource(`/api/events?topics=channel.,emergency.&access_token=${encodeURIComponent(state.token)}`);
    const pill = $("#sse-state");
    es.onopen = () => { pill.textContent = t("events_up"); pill.classList.remove("down"); };
    es.onerror = () => { pill.textContent = t("events_down"); pill.classList.add("down"); };  // EventSource retries by itself
    es.addEventListener("channel.state", e => {
      const ev = JSON.parse(e.data); const cam = state.cameras.get(ev.channel_id);
      if (cam) { cam.online = ev.online; renderTree(); }
    });
    const refresh = async () => {
      const resp = await api("/api/cameras").catch(() => null);
      if (resp && resp.ok) { const { cameras } = await resp.json(); state.cameras = new Map(cameras.map(c => [c.id, c])); renderTree(); }
    };
    es.addEventListener("channel.added", refresh);
    es.addEventListener("channel.removed", refresh);
    es.addEventListener("emergency.declared", e => {
      const ev = JSON.parse(e.data);
      state.emergencies.set(ev.emergency_id, ev);
      (ev.scope_cameras || []).slice(0, state.layout).forEach((id, i) => {
        if (state.tiles[i].cameraId !== id) state.tiles[i].assign(id, true); else state.tiles[i].el.classList.add("preempted");
      });
      renderBanner();
    });
    es.addEventListener("emergency.ended", e => {
      state.emergencies.delete(JSON.parse(e.data).emergency_id);
      if (!state.emergencies.size) state.tiles.forEach(tile => { tile.preempted = false; tile.el.classList.remove("preempted"); });
      renderBanner();
    });
  }

  function renderBanner() {
    const banner = $("#emergency");
    const now = Date.now() / 1000;
    for (const [id, ev] of state.emergencies) if (ev.expires_at && ev.expires_at < now) state.emergencies.delete(id);
    banner.hidden = !state.emergencies.size;
    banner.textContent = [...state.emergencies.values()].map(ev => t("emergency", {
      kind: window.VSGW_I18N[state.lang]["kind_" + ev.kind] || ev.kind, why: ev.justification,
      until: ev.expires_at ? clock(ev.expires_at * 1000) : "—" })).join(" | ");
  }
  setInterval(renderBanner, 10000);

  $("#lang").addEventListener("click", () => { state.lang = state.lang === "en" ? "zh-CN" : "en"; store.setItem("vsgw_lang", state.lang); translate(); });

  // test and troubleshooting hook: what each tile shows
  window.vsgwWall = { state, setLayout, placeCamera,
    tiles: () => state.tiles.slice(0, state.layout).map(tile => ({ camera: tile.cameraId, status: tile.status, why: tile.why,
      watermark: tile.player ? tile.player.watermark : tile.el.querySelector(".watermark").textContent || null, preempted: !!tile.preempted, ranges: tile.ranges || null,
      report: tile.lastReport || null, notice: tile.notice || "",
      playback: tile.playing ? { at: tile.playing.at, speed: tile.playing.speed, paused: tile.playing.paused,
                                 session: tile.playing.session || null } : null,
      ...(tile.player ? tile.player.quality()
                      : { decoded: tile.video.getVideoPlaybackQuality().totalVideoFrames, position: tile.video.currentTime }) })) };

  translate();
  const token = takeTokenFromUrl();
  if (token) begin(token); else showLogin();
})();
