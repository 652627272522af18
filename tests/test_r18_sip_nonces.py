"""R18: a REGISTER's digest is good once, for the device and the socket its nonce was issued to,
and only while the nonce is fresh. A captured Authorization replayed from another socket (or the
same one), a nonce answered from another socket or for another device, and an expired nonce are
all refused with a new challenge and counted; the device's binding does not move."""

from __future__ import annotations

import pytest

from adapters.gb28181 import digest
from adapters.gb28181.simulator import SimConfig, Simulator
from adapters.gb28181.sip import SipMessage

from .test_gb28181_signalling import DEV, DEV2, sip, start_sim
from .test_r18_sip_transport_binding import impostor, rejected


def spy_on_register(sim: Simulator) -> list[SipMessage]:
    """The REGISTER requests ``sim`` sends (what an eavesdropper on the link sees)."""
    sent: list[SipMessage] = []
    original = sim.endpoint.request

    async def spy(msg, peer, **kw):
        if msg.method == "REGISTER":
            sent.append(msg)
        return await original(msg, peer, **kw)

    sim.endpoint.request = spy  # type: ignore[method-assign]
    return sent


def register_like(sim: Simulator, captured: SipMessage, authorization: str) -> SipMessage:
    """A new REGISTER transaction from ``sim``'s socket carrying ``captured``'s Contact and Expires."""
    req = sim._request("REGISTER", call_id=captured.call_id)
    req.add("Contact", captured.get("contact") or "")
    req.add("Expires", captured.get("expires") or "3600")
    req.add("Authorization", authorization)
    return req


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_r18_sip_register_authorization_replayed_from_another_socket_is_refused(make_gateway,
                                                                                      transport) -> None:
    gw = await make_gateway(sip=sip())
    sim = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port, transport=transport))
    sent = spy_on_register(sim)
    await sim.start()
    fake = await impostor(gw, transport)
    try:
        dev = gw.gb28181.server.devices.get(DEV)
        bound = dev.peer
        captured = sent[-1]
        assert captured.get("authorization")  # the answer to the challenge, as it crossed the wire
        resp = await fake.endpoint.request(register_like(fake, captured, captured.get("authorization")), fake.server)
        assert resp.status == 401 and resp.get("www-authenticate")  # refused, challenged afresh
        assert rejected(gw, "nonce_replayed") == 1
        # the same Authorization again from the device's own socket is just as spent
        resp = await sim.endpoint.request(register_like(sim, captured, captured.get("authorization")), sim.server)
        assert resp.status == 401 and rejected(gw, "nonce_replayed") == 2
        assert dev.peer == bound and gw.metrics.value("vsgw_gb28181_register_total", result="ok") == 1
    finally:
        await fake.stop(unregister=False)
        await sim.stop()


async def challenge(sim: Simulator, device_id: str = DEV) -> tuple[SipMessage, str]:
    """Send an unauthenticated REGISTER for ``device_id``; the request and its WWW-Authenticate."""
    req = sim._request("REGISTER")
    req.set("From", f"<sip:{device_id}@3402000000>;tag=t")
    req.add("Contact", f"<sip:{device_id}@{sim.endpoint.host}:{sim.endpoint.port}>")
    req.add("Expires", "3600")
    resp = await sim.endpoint.request(req, sim.server)
    assert resp.status == 401
    return req, resp.get("www-authenticate") or ""


async def test_r18_sip_nonce_is_bound_to_its_socket_and_device_and_expires(make_gateway) -> None:
    gw = await make_gateway(sip=sip())
    a, b = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port)), Simulator(
        SimConfig("127.0.0.1", gw.gb28181.server.port))
    await a.open()
    await b.open()
    nonces = gw.gb28181.server.auth.nonces
    try:
        # answered (with the right password) from another socket than the one challenged
        req, www = await challenge(a)
        answer = register_like(b, req, digest.authorization(www, DEV, "12345678", "REGISTER", req.uri))
        assert (await b.endpoint.request(answer, b.server)).status == 401
        assert rejected(gw, "nonce_other_source") == 1
        # a nonce issued to one device, answered for another
        req, www = await challenge(a, DEV)
        answer = register_like(a, req, digest.authorization(www, DEV2, "12345678", "REGISTER", req.uri))
        answer.set("From", f"<sip:{DEV2}@3402000000>;tag=t")
        assert (await a.endpoint.request(answer, a.server)).status == 401
        assert rejected(gw, "nonce_other_device") == 1
        # a nonce answered after its lifetime
        req, www = await challenge(a)
        real = nonces.clock
        nonces.clock = lambda: real() + nonces.lifetime + 1
        answer = register_like(a, req, digest.authorization(www, DEV, "12345678", "REGISTER", req.uri))
        assert (await a.endpoint.request(answer, a.server)).status == 401
        assert rejected(gw, "nonce_expired") == 1
        nonces.clock = real
        # and one the server never issued
        forged = 'Digest realm="3402000000", nonce="00112233445566778899aabbccddeeff", algorithm=MD5'
        answer = register_like(a, req, digest.authorization(forged, DEV, "12345678", "REGISTER", req.uri))
        assert (await a.endpoint.request(answer, a.server)).status == 401
        assert rejected(gw, "nonce_unknown") == 1
        assert gw.gb28181.server.devices.get(DEV) is None and gw.gb28181.server.devices.get(DEV2) is None
        # the ordinary exchange still works
        req, www = await challenge(a)
        answer = register_like(a, req, digest.authorization(www, DEV, "12345678", "REGISTER", req.uri))
        assert (await a.endpoint.request(answer, a.server)).status == 200
    finally:
        await a.stop(unregister=False)
        await b.stop(unregister=False)


async def test_r18_sip_digest_username_must_be_the_registering_device(make_gateway) -> None:
    """With the shared domain password, one device's credentials must not register another ID."""
    gw = await make_gateway(sip=sip())
    sim = await start_sim(gw)
    other = Simulator(SimConfig("127.0.0.1", gw.gb28181.server.port))
    await other.open()
    try:
        req, www = await challenge(other, DEV2)
        answer = register_like(other, req, digest.authorization(www, DEV, "12345678", "REGISTER", req.uri))
        answer.set("From", f"<sip:{DEV2}@3402000000>;tag=t")
        assert (await other.endpoint.request(answer, other.server)).status == 403
        assert gw.metrics.value("vsgw_gb28181_register_total", result="digest_identity") == 1
        assert gw.gb28181.server.devices.get(DEV2) is None
    finally:
        await other.stop(unregister=False)
        await sim.stop()
