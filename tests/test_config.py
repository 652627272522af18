"""Config: TOML plus VSGW_* overrides, validated with errors that name the key."""

from __future__ import annotations

import pytest

from gateway.config import CameraConfig, Config, ConfigError, HttpConfig, MediaConfig


def test_environment_overrides_toml(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "vsgw.toml"
    path.write_text('[http]\nport = 9000\n[media]\nlinger = 3\n[[cameras]]\nid = "c1"\nkind = "rtsp"\nurl = "rtsp://x/"\n')
    cfg = Config.load(path, env={"VSGW_HTTP_PORT": "9100", "VSGW_MEDIA_READER_MAX_DELAY": "1.5"})
    assert cfg.get(HttpConfig).port == 9100
    assert cfg.get(MediaConfig).linger == 3.0 and cfg.get(MediaConfig).reader_max_delay == 1.5
    assert cfg.cameras == [CameraConfig(id="c1", kind="rtsp", url="rtsp://x/")]


@pytest.mark.parametrize(
    ("raw", "env", "message"),
    [
        ({"http": {"port": "eighty"}}, {}, "http.port: expected an integer"),
        ({}, {"VSGW_HTTP_PORT": "x"}, "http.port: expected an integer"),
        ({"http": {"prot": 1}}, {}, "http.prot: unknown key"),
        ({"htp": {}}, {}, "unknown section [htp]"),
        ({"cameras": [{"kind": "rtsp"}]}, {}, "cameras[0].id: required"),
        ({"bus": {"proxy": "maybe"}}, {}, "bus.proxy: expected true or false"),
    ],
)
def test_bad_values_name_the_key(raw: dict, env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config(raw, env=env)
    assert message in str(err.value)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        Config({"cameras": [{"id": "c", "kind": "rtsp", "password": 12345678}]}, env={})
    assert "12345678" not in str(err.value) and "cameras[0].password" in str(err.value)


def test_broken_toml_is_a_config_error(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "bad.toml"
    path.write_text("[http\nport=1")
    with pytest.raises(ConfigError, match="bad.toml"):
        Config.load(path, env={})


@pytest.mark.parametrize(
    ("sip", "message"),
    [
        ({"enabled": True}, "sip.password: required"),
        ({"enabled": True, "accept_unknown": False}, "sip.device_passwords: no device could register"),
        ({"enabled": True, "password": "p", "device_passwords": ["34020000001320000001:"]}, "non-empty password"),
    ],
)
def test_sip_server_never_admits_a_device_without_digest(sip: dict, message: str) -> None:
    """Security by default: an enabled SIP server with no password to check is a startup error."""
    with pytest.raises(ConfigError) as err:
        Config({"sip": sip}, env={})
    assert message in str(err.value)


def test_grpc_plaintext_is_refused_off_loopback() -> None:
    """Plaintext gRPC is a development aid: tokens and video must not cross a network in the clear."""
    with pytest.raises(ConfigError) as err:
        Config({"grpc": {"enabled": True, "plaintext": True, "host": "0.0.0.0"}}, env={})
    assert "grpc.plaintext: only on a loopback" in str(err.value)
    Config({"grpc": {"enabled": True, "plaintext": True, "host": "127.0.0.1"}}, env={})  # accepted
