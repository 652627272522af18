"use strict";
// zh-CN and English strings for the wall; the choice is kept in localStorage.
window.VSGW_I18N = {
  "zh-CN": {
    title: "视频墙", username: "用户名", password: "密码", totp: "动态口令（如需要）", login: "登录",
    or_token: "或使用 API 令牌", token: "API 令牌", use_token: "使用令牌", logout: "退出", search: "搜索摄像机…",
    fullscreen: "全屏", close: "关闭", empty: "拖入或点击左侧摄像机", connecting: "正在连接…",
    reconnect: "连接中断（{why}），{s} 秒后重连", forbidden: "无权查看：{why}", unknown: "摄像机不存在",
    offline: "摄像机离线", login_failed: "登录失败：{why}", live: "实时", events_down: "事件流断开",
    events_up: "事件流已连接", emergency: "紧急事件：{kind} — {why}（至 {until}）", no_frames: "无画面",
    lang: "English", ended: "视频流结束", latency: "延迟", playback: "录像回放", report: "上报可疑情况",
    report_prompt: "向公安机关上报（看到了什么）：", report_sent: "已上报公安机关", report_failed: "上报失败：{why}",
    no_recording: "最近一小时无录像", play_failed: "回放失败：{why}",
    kind_public_order: "社会治安事件", kind_natural_disaster: "自然灾害", kind_accident: "事故灾难",
    kind_public_health: "公共卫生事件",
  },
  en: {
    title: "Video wall", username: "User name", password: "Password", totp: "One-time code (if required)",
    login: "Log in", or_token: "or an API token", token: "API token", use_token: "Use token", logout: "Log out",
    search: "Search cameras…", fullscreen: "Full screen", close: "Close", empty: "Drop or click a camera",
    connecting: "Connecting…", reconnect: "Stream lost ({why}); reconnecting in {s} s",
    forbidden: "Not allowed: {why}", unknown: "No such camera", offline: "Camera offline",
    login_failed: "Login failed: {why}", live: "live", events_down: "events disconnected",
    events_up: "events connected", emergency: "EMERGENCY: {kind} — {why} (until {until})", no_frames: "no picture",
    lang: "中文", ended: "stream ended", latency: "latency", playback: "Playback", report: "Report to the police",
    report_prompt: "Report to the police (what do you see?):", report_sent: "reported to the police",
    report_failed: "report failed: {why}", no_recording: "nothing recorded in the last hour",
    play_failed: "playback failed: {why}",
    kind_public_order: "public order", kind_natural_disaster: "natural disaster", kind_accident: "accident",
    kind_public_health: "public health",
  },
};
