"""RTP for GB/T 28181 PS media (R1): header fields, loss, reordering, RFC 4571 framing."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from adapters.gb28181.rtp import (
    Deframer, Reorderer, SeqTracker, build_rtp, frame_4571, packetize_ps, parse_rtp,
)


def test_r1_rtp_header_round_trip_with_csrc_extension_and_padding() -> None:
    raw = build_rtp(b"payload", 65535, 2**32 - 1, 0x12345678, pt=96, marker=True,
                    csrcs=(1, 2), extension=b"\xbe\xde\x01\x02\x03", padding=3)
    pkt = parse_rtp(raw)
    assert pkt is not None
    assert (pkt.marker, pkt.pt, pkt.seq, pkt.ts, pkt.ssrc) == (True, 96, 65535, 2**32 - 1, 0x12345678)
    assert pkt.csrcs == (1, 2)
    assert pkt.extension == b"\xbe\xde\x01\x02\x03\x00"
    assert pkt.payload == b"payload"


def test_r1_rtp_rejects_what_is_not_rtp() -> None:
    good = build_rtp(b"x" * 20, 1, 2, 3)
    assert parse_rtp(good) is not None
    assert parse_rtp(good[:11]) is None  # short
    assert parse_rtp(b"\x40" + good[1:]) is None  # version 1
    assert parse_rtp(bytes([0x8F]) + good[1:12]) is None  # 15 CSRCs announced, none there
    assert parse_rtp(bytes([0x90]) + good[1:14]) is None  # extension header cut short
    assert parse_rtp(bytes([0xA0]) + good[1:-1] + b"\x00") is None  # padding count 0
    assert parse_rtp(bytes([0xA0]) + good[1:-1] + b"\xff") is None  # padding longer than packet


def test_r1_packetize_ps_splits_at_mtu_and_marks_the_last() -> None:
    ps = bytes(range(256)) * 20
    pkts = packetize_ps(ps, 65534, 123, 0xABCDEF, mtu=1000)
    parsed = [parse_rtp(p) for p in pkts]
    assert all(len(p) <= 1000 for p in pkts)
    assert b"".join(p.payload for p in parsed) == ps
    assert [p.seq for p in parsed][:3] == [65534, 65535, 0]
    assert [p.marker for p in parsed] == [False] * (len(pkts) - 1) + [True]
    assert {(p.ts, p.ssrc, p.pt) for p in parsed} == {(123, 0xABCDEF, 96)}


def test_r1_seq_tracker_counts_loss_across_wrap_and_drops_late() -> None:
    t = SeqTracker()
    assert [t.update(s) for s in (65533, 65534, 1, 2, 65535, 2)] == [0, 0, 2, 0, -1, -1]
    assert (t.lost, t.late) == (2, 2)
    assert t.update(40000) == 0 and t.restarts == 1  # sender restarted


def test_r1_reorderer_restores_order_and_reports_gaps() -> None:
    r = Reorderer(window=4)
    pkts = {s: parse_rtp(build_rtp(bytes([s % 256]), s, 0, 1)) for s in range(100, 120)}
    order = [100, 102, 101, 103, 105, 106, 107, 108, 109, 110]  # 104 lost
    out = [(gap, p.seq) for s in order for gap, p in r.push(s, pkts[s])]
    assert [seq for _, seq in out] == [100, 101, 102, 103, 105, 106, 107, 108, 109, 110]
    assert dict((seq, gap) for gap, seq in out)[105] == 1
    assert r.tracker.lost == 1
    assert r.push(104, pkts[104]) == []  # too late now


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_r1_reorderer_shuffled_window_loses_nothing(start: int, seed: int) -> None:
    seqs = [(start + i) % 65536 for i in range(200)]
    shuffled = list(seqs)
    rnd = random.Random(seed)
    for i in range(1, 200, 6):  # local shuffles smaller than the window, after the first packet
        block = shuffled[i:i + 6]
        rnd.shuffle(block)
        shuffled[i:i + 6] = block
    r = Reorderer(window=16)
    out = [seq for s in shuffled for _, seq in r.push(s, s)]
    out += [seq for _, seq in r.flush()]
    assert out == seqs and r.tracker.lost == 0


def test_r1_rfc4571_deframer_reassembles_and_resyncs() -> None:
    pkts = [build_rtp(bytes([i]) * (50 + i), i, 0, 7) for i in range(30)]
    stream = b"".join(frame_4571(p) for p in pkts)
    d = Deframer()
    out = []
    rnd = random.Random(3)
    i = 0
    while i < len(stream):
        k = rnd.randint(1, 90)
        out += d.feed(stream[i:i + k])
        i += k
    assert out == pkts and d.errors == 0
    # a sender that starts mid-packet: the tail of a frame, then whole frames
    d = Deframer()
    got = d.feed(frame_4571(pkts[0])[7:] + b"".join(frame_4571(p) for p in pkts[1:5]))
    assert got[-3:] == pkts[2:5]
    assert d.errors >= 1


@given(st.binary(max_size=3000))
def test_r1_rtp_parsers_never_raise(data: bytes) -> None:
    parse_rtp(data)
    Deframer().feed(data)
