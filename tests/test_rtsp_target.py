"""RTSP camera URLs: credentials are used for login and never displayed (R4, R18)."""

from __future__ import annotations

import pytest

from adapters.rtsp import BadUrl
from adapters.rtsp.describe import video_codec
from adapters.rtsp.target import parse_target
from gateway.config import CameraConfig
from adapters.rtsp import UnsupportedCodec


def cam(url: str, **kw: str) -> CameraConfig:
    return CameraConfig(id="c1", kind="rtsp", url=url, **kw)


def test_r18_displayed_url_has_no_userinfo_and_secret_query_values_are_redacted() -> None:
    t = parse_target(cam("rtsp://admin:p%40ss%3Aword@cam.local/Streaming/101?channel=1&token=abc123"))
    assert (t.username, t.password) == ("admin", "p@ss:word")
    assert t.display == "rtsp://cam.local:554/Streaming/101?channel=1&token=***"
    assert "p@ss" not in repr(t) and "p%40ss" not in repr(t)
    assert t.with_credentials() == "rtsp://admin:p%40ss%3Aword@cam.local:554/Streaming/101?channel=1&token=abc123"


def test_config_keys_override_url_userinfo() -> None:
    t = parse_target(cam("rtsp://old:old@10.0.0.7:8554/live", username="new", password="s3cret", transport="udp"))
    assert (t.username, t.password, t.port, t.transport) == ("new", "s3cret", 8554, "udp")
    assert t.display == "rtsp://10.0.0.7:8554/live"


@pytest.mark.parametrize("url", ["http://u:hunter2@cam/x", "rtsp://u:hunter2@cam:70000/x", "rtsp:///nohost", ""])
def test_bad_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(BadUrl) as err:
        parse_target(cam(url))
    assert "hunter2" not in str(err.value) and "c1" in str(err.value)


def test_sdp_codec_names_map_to_the_gateway_codecs_or_a_clear_refusal() -> None:
    assert video_codec("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n") == "h264"
    assert video_codec("m=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 97\r\na=rtpmap:97 H265/90000\r\n") == "h265"
    with pytest.raises(UnsupportedCodec, match="codec mjpeg is not supported"):
        video_codec("m=video 0 RTP/AVP 26\r\n")
    with pytest.raises(UnsupportedCodec, match="no video stream"):
        video_codec("m=audio 0 RTP/AVP 0\r\n")
