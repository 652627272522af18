"use strict";
// One WHEP viewer in the page: offer → POST /api/whep/{camera} → answer; counts decoded frames
// (requestVideoFrameCallback), reads fps/bitrate from getStats, latency from RTCP SR capture time.
class WhepPlayer {
  constructor(video, cameraId, token, events) {
    this.video = video; this.cameraId = cameraId; this.token = token; this.events = events;
    this.frames = 0; this.firstFrameMs = null; this.latencyMs = null; this.fps = 0; this.bitrate = 0;
    this.watermark = null; this.location = null; this.closed = false; this._bytes = null;
  }

  async start() {
    const pc = this.pc = new RTCPeerConnection({ iceServers: [] });
    const tr = pc.addTransceiver("video", { direction: "recvonly" });
    if (RTCRtpReceiver.getCapabilities && tr.setCodecPreferences) {
      const codecs = RTCRtpReceiver.getCapabilities("video").codecs;  // H.265 first where the browser has it
      const h26x = [/h265/i, /h264/i].flatMap(re => codecs.filter(c => re.test(c.mimeType)));
      if (h26x.length) tr.setCodecPreferences(h26x);
    }
    pc.ontrack = e => { this.video.srcObject = e.streams[0] || new MediaStream([e.track]); this._watchFrames(); };
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc.connectionState) && !this.closed) this.events.lost(pc.connectionState);
      if (pc.connectionState === "disconnected") setTimeout(() => {
        if (pc.connectionState === "disconnected" && !this.closed) this.events.lost("disconnected");
      }, 3000);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 700);
    this.startedAt = performance.now();
    const resp = await fetch(`/api/whep/${encodeURIComponent(this.cameraId)}`, {
      method: "POST", body: pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${this.token}` },
    });
    if (resp.status !== 201) {
      let why = resp.statusText;
      try { why = (await resp.json()).message || why; } catch (e) { /* not JSON */ }
      const err = new Error(why); err.status = resp.status; throw err;
    }
    this.location = resp.headers.get("Location");
    const mark = resp.headers.get("X-Vsgw-Watermark");
    this.watermark = mark ? decodeURIComponent(mark) : null;
    await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
    this._timer = setInterval(() => this._stats(), 1000);
  }

  _watchFrames() {
    const v = this.video;
    if (!v.requestVideoFrameCallback) return;
    const tick = (now, meta) => {
      if (this.closed) return;
      this.frames += 1;
      this.lastFrameAt = performance.now();
      if (this.firstFrameMs === null) { this.firstFrameMs = this.lastFrameAt - this.startedAt; this.events.playing(); }
      if (meta.captureTime) this.latencyMs = Math.max(0, (meta.expectedDisplayTime || now) - meta.captureTime);
      v.requestVideoFrameCallback(tick);
    };
    v.requestVideoFrameCallback(tick);
    v.play().catch(() => {});
  }

  async _stats() {
    if (!this.pc || this.closed) return;
    const report = await this.pc.getStats();
    report.forEach(s => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      this.fps = s.framesPerSecond || 0;
      if (this._bytes !== null) this.bitrate = (s.bytesReceived - this._bytes) * 8;
      this._bytes = s.bytesReceived;
      if (this.latencyMs === null && s.estimatedPlayoutTimestamp) {
        this.latencyMs = Date.now() + 2208988800000 - s.estimatedPlayoutTimestamp;  // NTP ms → latency
      }
    });
    if (this.lastFrameAt && performance.now() - this.lastFrameAt > 6000) this.events.lost("no frames for 6 s");
    this.events.stats(this);
  }

  quality() {
    const q = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : {};
    return { frames: this.frames, decoded: q.totalVideoFrames || 0, dropped: q.droppedVideoFrames || 0,
             firstFrameMs: this.firstFrameMs, fps: this.fps, bitrate: this.bitrate, latencyMs: this.latencyMs,
             width: this.video.videoWidth, height: this.video.videoHeight };
  }

  stop() {
    this.closed = true;
    clearInterval(this._timer);
    if (this.location) {
      fetch(this.location, { method: "DELETE", headers: { Authorization: `Bearer ${this.token}` } }).catch(() => {});
    }
    if (this.pc) this.pc.close();
    this.video.srcObject = null;
  }
}

function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise(resolve => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}
window.WhepPlayer = WhepPlayer;
