"""Configuration: one TOML file plus ``VSGW_<SECTION>_<KEY>`` environment variables.

Each part of the gateway declares its section as a dataclass and registers it with
:func:`section`; values are checked against the field types and every error names its key.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass
import importlib
import os
from pathlib import Path
import tomllib
import types
import typing
from typing import Any, TypeVar, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")
SECTIONS: dict[str, type] = {}


class ConfigError(ValueError):
    """A configuration value is missing, unknown, or of the wrong type; says which key."""


def section(name: str):  # noqa: ANN201 - decorator
    """Register a dataclass as the schema of ``[name]``."""

    def register(cls: type[T]) -> type[T]:
        SECTIONS[name] = cls
        cls.__config_section__ = name  # type: ignore[attr-defined]
        return cls

    return register


@section("node")
@dataclass(slots=True)
class NodeConfig:
    name: str = "vsgw-1"
    data_dir: str = "var"
    log_level: str = "INFO"
    time_zone: str = "Asia/Shanghai"  # times shown to people (pages, watermarks); storage is UTC

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"node.time_zone: unknown time zone {self.time_zone!r} (expected e.g. Asia/Shanghai)") from None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@section("http")
@dataclass(slots=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    tokens: list[str] = field(default_factory=list)  # static API tokens; empty → one is generated


@section("storage")
@dataclass(slots=True)
class StorageConfig:
    url: str = ""  # empty → SQLite file in node.data_dir; postgresql+asyncpg://… for PostgreSQL


@section("bus")
@dataclass(slots=True)
class BusConfig:
    kind: str = "local"  # "local" | "zmq"
    xsub: str = "ipc:///tmp/vsgw-bus-in"
    xpub: str = "ipc:///tmp/vsgw-bus-out"
    proxy: bool = True  # this node runs the XSUB/XPUB proxy


@section("media")
@dataclass(slots=True)
class MediaConfig:
    linger: float = 5.0  # seconds ingest keeps running after the last reader leaves
    reader_max_bytes: int = 8 * 1024 * 1024
    reader_max_delay: float = 2.0


@dataclass(slots=True)
class CameraConfig:
    """A statically configured camera (``[[cameras]]``): synthetic or RTSP."""

    id: str
    kind: str  # "synthetic" | "rtsp"
    name: str = ""
    url: str = ""
    transport: str = "tcp"
    username: str = ""
    password: str = ""
    width: int = 1280
    height: int = 720
    fps: int = 25
    gop: int = 50
    bitrate: int = 2_000_000
    noise: int = 0  # synthetic: per-frame noise amplitude (raises the real bitrate)
    loop_seconds: float = 0.0  # synthetic: >0 encodes this much once and replays it (bench load)


class Config:
    """Validated sections, looked up by name: ``config.get(HttpConfig)``."""

    def __init__(self, raw: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> None:
        _import_parts()
        raw = dict(raw or {})
        merged = _merge_env(raw, os.environ if env is None else env)
        cameras = merged.pop("cameras", [])
        unknown = set(merged) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"unknown section [{sorted(unknown)[0]}]; known: {', '.join(sorted(SECTIONS))}")
        self._values: dict[str, Any] = {}
        for name, cls in SECTIONS.items():
            value = merged.get(name, {})
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: expected a table")
            self._values[name] = build(cls, value, name)
        if not isinstance(cameras, list):
            raise ConfigError("cameras: expected an array of tables ([[cameras]])")
        self.cameras = [build(CameraConfig, c, f"cameras[{i}]") for i, c in enumerate(cameras)]
        ids = [c.id for c in self.cameras]
        if len(ids) != len(set(ids)):
            raise ConfigError("cameras: duplicate id")

    @classmethod
    def load(cls, path: str | Path | None, env: dict[str, str] | None = None) -> Config:
        raw: dict[str, Any] = {}
        if path:
            try:
                raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            except OSError as exc:
                raise ConfigError(f"{path}: {exc.strerror}") from None
        return cls(raw, env)

    def get(self, cls: type[T]) -> T:
        return self._values[cls.__config_section__]  # type: ignore[attr-defined]

    def data_path(self, *parts: str) -> Path:
        path = Path(self.get(NodeConfig).data_dir, *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _import_parts() -> None:
    """Parts declare their sections on import; import them all before validating."""
    from gateway.parts import PARTS

    for name in PARTS:
        importlib.import_module(name)


def _merge_env(raw: dict[str, Any], env: typing.Mapping[str, str]) -> dict[str, Any]:
    """``VSGW_HTTP_PORT=8081`` → ``raw["http"]["port"] = "8081"`` (typed later)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key, value in env.items():
        if not key.startswith("VSGW_"):
            continue
        rest = key[5:].lower()
        for name in sorted(SECTIONS, key=len, reverse=True):
            if rest.startswith(name + "_"):
                out.setdefault(name, {})[rest[len(name) + 1 :]] = value
                break
    return out


def build(cls: type[T], values: dict[str, Any], where: str) -> T:
    assert is_dataclass(cls)
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(f"{where}.{key}: unknown key; known: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in values:
            kwargs[f.name] = _coerce(values[f.name], hints[f.name], f"{where}.{f.name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{where}.{f.name}: required")
    return cls(**kwargs)


SECRET_KEYS = ("password", "token", "secret", "key")


def _show(value: Any, where: str) -> str:
    """The value for an error message; secrets are never echoed."""
    return "<hidden>" if any(s in where.rsplit(".", 1)[-1] for s in SECRET_KEYS) else repr(value)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if value is None or value == "":
            return None
        return _coerce(value, options[0], where)
    if origin is list:
        (item,) = get_args(hint)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true or false, got {_show(value, where)}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {_show(value, where)}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {'an integer' if hint is int else 'a number'}, got {_show(value, where)}") from None
        if isinstance(value, float) and hint is int and value != number:
            raise ConfigError(f"{where}: expected an integer, got {_show(value, where)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_show(value, where)}")
        return value
    return value
