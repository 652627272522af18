"""Who a gRPC call is from (R18, R2): the registered certificate is the subject; a bearer token
beside it may only narrow what the certificate allows; an unregistered certificate is refused
whatever token it carries. Real gRPC over loopback with mTLS, certificates made per run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from gateway.audit.chain import AuditRow
from gateway.cli import main as cli_main
from gateway.tools.pull import channel as client_channel
from proto.vsgw.v1 import vsgw_pb2 as pb
from proto.vsgw.v1 import vsgw_pb2_grpc as rpc
from tests.conftest import TOKEN, synthetic

from .test_policy_support import FAST_ARGON2, PASSWORD

pytestmark = pytest.mark.asyncio
PLATFORM = "police-image-platform"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):  # noqa: ANN001, ANN201
    folder = tmp_path_factory.mktemp("pki")
    assert cli_main(["grpc", "dev-pki", str(folder), "--client", PLATFORM, "--client", "stranger"]) == 0
    return {path.name: path for path in folder.iterdir()}


@pytest_asyncio.fixture
async def gw(make_gateway, pki):  # noqa: ANN001, ANN201
    gateway = await make_gateway(
        cameras=[synthetic("cam-open"), synthetic("cam-secret")],
        identity={**FAST_ARGON2, "clients": [f"{PLATFORM}=police:5"]},
        grpc={"enabled": True, "port": 0, "cert": str(pki["server.pem"]), "key": str(pki["server.key"]),
              "client_ca": str(pki["ca.pem"])})
    base = gateway.resource_resolver
    gateway.resource_resolver = lambda cid: replace(base(cid), security_level=4 if cid == "cam-secret" else 1)
    return gateway


def connect(gw, pki, cn: str, token: str | None = None) -> grpc.aio.Channel:  # noqa: ANN001
    return client_channel(f"127.0.0.1:{gw.grpc.port}", str(pki["ca.pem"]), str(pki[f"{cn}.pem"]),
                          str(pki[f"{cn}.key"]), token)


def _ts(when: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


async def _code(call) -> tuple[grpc.StatusCode, str]:  # noqa: ANN001
    with pytest.raises(grpc.aio.AioRpcError) as err:
        result = call()
        if hasattr(result, "__aiter__"):
            async for _ in result:
                pass
        else:
            await result
    return err.value.code(), err.value.details() or ""


async def test_r18_grpc_unregistered_certificate_refused_even_with_token(gw, pki) -> None:  # noqa: ANN001
    """A CA-signed certificate whose CN is not a registered client gets nothing, even carrying the
    service token or a user's session token: the token cannot replace the certificate's identity."""
    await gw.identity.add_user("li", PASSWORD, ["police_officer"], clearance=5, tier="police")
    user_token, _, _ = await gw.identity.login("li", PASSWORD, None, "127.0.0.1")
    now = datetime.now(UTC)
    for token in (TOKEN, user_token):
        async with connect(gw, pki, "stranger", token) as ch:
            streams, cameras = rpc.StreamServiceStub(ch), rpc.CameraServiceStub(ch)
            for call in (lambda: cameras.ListCameras(pb.ListCamerasRequest()),
                         lambda: streams.PullLive(pb.PullLiveRequest(camera_id="cam-open")),
                         lambda: streams.PullPlayback(pb.PullPlaybackRequest(
                             camera_id="cam-open", start=_ts(now - timedelta(minutes=5)), end=_ts(now)))):
                code, details = await _code(call)
                assert code == grpc.StatusCode.UNAUTHENTICATED and "stranger" in details
    assert gw.metrics.value("vsgw_grpc_rejected_total", reason="unknown_certificate") == 6


async def test_r18_grpc_token_narrows_the_certificate_never_widens(gw, pki) -> None:  # noqa: ANN001
    await gw.identity.add_user("op", PASSWORD, ["wall_operator"], clearance=1)
    narrow, _, _ = await gw.identity.login("op", PASSWORD, None, "127.0.0.1")
    async with connect(gw, pki, PLATFORM, narrow) as ch:  # police platform (5) acting for a clearance-1 user
        code, details = await _code(lambda: rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-secret")))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "on behalf of user:op" in details
        listed = await rpc.CameraServiceStub(ch).ListCameras(pb.ListCamerasRequest())
        assert [c.id for c in listed.cameras] == ["cam-open"]
    await gw.identity.add_client("stranger", "sharing", 2, None)  # now registered: a sharing-tier platform
    async with connect(gw, pki, "stranger", TOKEN) as ch:  # the all-powerful service token does not widen it
        code, details = await _code(lambda: rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-secret")))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "clearance 2 is below security level 4" in details
    await gw.identity.add_user("li", PASSWORD, ["police_officer"], clearance=5, tier="police")
    officer, _, _ = await gw.identity.login("li", PASSWORD, None, "127.0.0.1")
    async with connect(gw, pki, PLATFORM, officer) as ch:  # an officer may watch live what the platform may pull
        call = rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-secret"))
        assert (await call.read()).info.codec == "h264"
        call.cancel()
    async with connect(gw, pki, PLATFORM) as ch:  # the certificate alone keeps its own rights
        call = rpc.StreamServiceStub(ch).PullLive(pb.PullLiveRequest(camera_id="cam-secret"))
        assert (await call.read()).info.codec == "h264"
        call.cancel()
    async with gw.db.session() as s:
        rows = list(await s.scalars(select(AuditRow).where(AuditRow.action == "pull_stream").order_by(AuditRow.seq)))
    assert rows[0].actor == f"cert:{PLATFORM}"
    assert rows[0].decision == "deny" and rows[0].extra["on_behalf_of"] == "user:op" and rows[0].extra["egress"] == "grpc"
    assert rows[-2].decision == "allow" and rows[-2].extra["on_behalf_of"] == "user:li"
    assert rows[-1].decision == "allow" and "on_behalf_of" not in rows[-1].extra
