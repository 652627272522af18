"""R9 source-retention audit: GB/T 28181 devices are asked (RecordInfo via ``query_records``) for the
day 30 days back; channels that hold nothing there, or cannot answer, get findings citing QD 19(7)
and WX 28; other adapter kinds are not asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from adapters.base import Adapter, Channel, RecordRange
from gateway.app import Gateway
from tests.conftest import auth, gateway_config, synthetic


class _Devices(Adapter):
    """Stands in for GB/T 28181 devices answering RecordInfo (the adapter interface, not SIP)."""

    kind = "gb28181"

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, datetime, datetime]] = []

    async def start(self, ctx) -> None:  # noqa: ANN001
        await super().start(ctx)
        for cid in ("34020000001320000001", "34020000001320000002", "34020000001320000003"):
            ctx.channel_seen(Channel(cid, cid, self.kind, online=True))

    def channels(self) -> list[Channel]:
        return []

    def open(self, channel_id: str, substream: int = 0):  # noqa: ANN201
        raise NotImplementedError

    async def query_records(self, channel_id: str, start: datetime, end: datetime) -> list[RecordRange]:
        self.asked.append((channel_id, start, end))
        if channel_id.endswith("1"):
            return [RecordRange(channel_id, start, end)]
        if channel_id.endswith("2"):
            return []
        raise ConnectionError("no answer")


async def test_r9_devices_not_holding_30_days_get_findings_citing_the_articles(tmp_path) -> None:  # noqa: ANN001
    gw = Gateway(gateway_config(tmp_path, cameras=[synthetic("syn-1")]))
    devices = _Devices()
    gw.add_adapter(devices)
    await gw.start()
    try:
        async with aiohttp.ClientSession(headers=auth()) as http:
            async with http.get(f"http://127.0.0.1:{gw.http_port}/api/recordings/source-retention") as r:
                report = await r.json()
    finally:
        await gw.stop()
    day = (datetime.now(UTC) - timedelta(days=30)).date()
    assert report["day"] == day.isoformat() and report["channels_checked"] == 3
    assert sorted(c for c, _, _ in devices.asked) == [f"3402000000132000000{i}" for i in (1, 2, 3)]
    assert all(s == datetime(day.year, day.month, day.day, tzinfo=UTC) and e - s == timedelta(days=1)
               for _, s, e in devices.asked)
    findings = {f["channel_id"]: f for f in report["findings"]}
    assert set(findings) == {"34020000001320000002", "34020000001320000003"}
    assert findings["34020000001320000002"]["severity"] == "violation"
    assert findings["34020000001320000003"]["severity"] == "unknown"
    assert all(f["articles"] == ["QD 19(7)", "WX 28"] and f["requirement"] == "R9" for f in findings.values())
