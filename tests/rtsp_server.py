"""A real third-party RTSP camera for the tests: GStreamer's gst-rtsp-server (Debian, GI bindings).

The server runs as a subprocess of the Debian system python (``/usr/bin/python3``), which has the
GStreamer bindings the venv lacks. Mounts:

- ``/h264``  H.264 (x264, zerolatency, GOP 25)
- ``/h265``  H.265 (x265, zerolatency, GOP 25)
- ``/mjpeg`` Motion JPEG, a codec the gateway refuses (bad-input test)

With ``user``/``password`` the server demands digest (default) or basic authentication.
Run directly: ``/usr/bin/python3 tests/rtsp_server.py --port 0 [--user U --password P --basic]``;
it prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from urllib.parse import quote

SYSTEM_PYTHON = "/usr/bin/python3"
WIDTH, HEIGHT, FPS = 320, 240, 25

PIPELINES = {
    "/h264": "videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate={fps}/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=300 "
    "! rtph264pay name=pay0 pt=96 config-interval=-1",
    "/h265": "videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate={fps}/1 "
    "! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=300 "
    "! rtph265pay name=pay0 pt=96 config-interval=-1",
    "/mjpeg": "videotestsrc is-live=true ! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 "
    "! jpegenc ! rtpjpegpay name=pay0 pt=26",
}


class RtspServer:
    """Starts, kills and restarts the GStreamer server on one loopback port (venv side)."""

    def __init__(self, user: str = "", password: str = "", basic: bool = False) -> None:
        self.user, self.password, self.basic = user, password, basic
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> RtspServer:
        args = [SYSTEM_PYTHON, os.path.abspath(__file__), "--port", str(self.port)]
        if self.user:
            args += ["--user", self.user, "--password", self.password] + (["--basic"] if self.basic else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"gst-rtsp-server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        """SIGKILL: the camera vanishes without a TEARDOWN, as when it loses power."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def url(self, mount: str = "/h264", user: str | None = None, password: str | None = None) -> str:
        user = self.user if user is None else user
        password = self.password if password is None else password
        userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        return f"rtsp://{userinfo}127.0.0.1:{self.port}{mount}"

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(port: int, user: str, password: str, basic: bool) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    mounts = server.get_mount_points()
    for path, launch in PIPELINES.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f"( {launch.format(w=WIDTH, h=HEIGHT, fps=FPS)} )")
        factory.set_shared(False)  # a pipeline per client: no teardown races between tests
        if user:
            perms = GstRtspServer.RTSPPermissions()
            perms.add_permission_for_role("camera-user", "media.factory.access", True)
            perms.add_permission_for_role("camera-user", "media.factory.construct", True)
            factory.set_permissions(perms)
        mounts.add_factory(path, factory)
    if user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
        if basic:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(user, password, token)
        server.set_auth(auth)
    server.attach(None)
    print(f"PORT {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    parent = os.getppid()
    GLib.timeout_add(500, lambda: os.getppid() == parent or loop.quit())  # never outlive the tests
    loop.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--basic", action="store_true")
    a = parser.parse_args()
    sys.exit(_serve(a.port, a.user, a.password, a.basic))
