"""Open video sessions, each under the decision that opened it (R11–R13).

Every live view, stream pull and playback registers here with its capability; when the grant or
emergency behind it expires, is revoked or ends, or the subject's login is revoked, the session is
closed with a stated reason. Start and end (with duration and the range read) go to the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
import logging
import uuid

from gateway.audit import AuditSink

from .model import CapabilityError, Decision, Subject

log = logging.getLogger(__name__)
Closer = Callable[[str], None]


@dataclass(eq=False, slots=True)
class VideoSession:
    id: str
    decision: Decision
    kind: str  # "live" | "playback"
    closer: Closer
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    reason: str | None = None  # why the gateway closed it; None while open or ended by the client
    position: datetime | None = None  # playback: the latest picture time sent
    start_record: asyncio.Future[None] | None = field(default=None, repr=False)

    @property
    def subject(self) -> Subject:
        assert self.decision.request is not None
        return self.decision.request.subject

    def subjects(self) -> tuple[Subject, ...]:
        """The subject and any narrowing identity it acts for: revoking either ends the session."""
        request = self.decision.request
        assert request is not None
        return (request.subject,) if request.on_behalf_of is None else (request.subject, request.on_behalf_of)

    def close(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self.closer(reason)


class VideoSessions:
    def __init__(self, audit: AuditSink) -> None:
        self.audit = audit
        self.open: dict[str, VideoSession] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def opened(self, decision: Decision, kind: str, closer: Closer) -> AsyncIterator[VideoSession]:
        """Hold a session for the body's duration; it ends (and is audited) however the body leaves."""
        session = await self.start(decision, kind, closer)
        try:
            yield session
        finally:
            await self.end(session)

    async def start(self, decision: Decision, kind: str, closer: Closer) -> VideoSession:
        if not decision.is_capability:
            raise CapabilityError("a video session opens only under an allowing decision of the gate")
        session = VideoSession(uuid.uuid4().hex[:16], decision, kind, closer)
        self.open[session.id] = session
        self._changed.set()
        # the decision that allowed it is already durable; the start record need not delay the viewer
        session.start_record = asyncio.ensure_future(self._record(session, "session.start", "opened"))
        return session

    async def end(self, session: VideoSession) -> None:
        if self.open.pop(session.id, None) is None:
            return
        if session.start_record is not None:
            await session.start_record  # start before end in the trail
        await self._record(session, "session.end", session.reason or "ended by the client")

    def revoke(self, *, grant_id: str | None = None, subject_session: str | None = None,
               subject_id: str | None = None, reason: str) -> int:
        """Close every session opened under ``grant_id`` (a grant or an emergency) or by that login."""
        hits = [s for s in self.open.values()
                if (grant_id is not None and s.decision.grant_id == grant_id)
                or (subject_session is not None and any(x.session == subject_session for x in s.subjects()))
                or (subject_id is not None and any(x.id == subject_id for x in s.subjects()))]
        for session in hits:
            session.close(reason)
        return len(hits)

    def expire(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        hits = [s for s in self.open.values() if s.decision.expires is not None and s.decision.expires <= now]
        for session in hits:
            session.close("the grant that allowed this session has expired")
        return len(hits)

    # -- the expiry clock --------------------------------------------------------------
    async def run(self) -> None:
        while True:
            self.expire()
            upcoming = [s.decision.expires for s in self.open.values()
                        if s.decision.expires is not None and s.reason is None]
            now = datetime.now(UTC)
            wait = min(((t - now).total_seconds() for t in upcoming), default=3600.0)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.01, wait))
            except TimeoutError:
                pass

    def started(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="video-session-expiry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for session in list(self.open.values()):
            session.close("the gateway is stopping")
        await asyncio.gather(*(s.start_record for s in self.open.values() if s.start_record is not None),
                             return_exceptions=True)

    async def _record(self, session: VideoSession, action: str, reason: str) -> None:
        decision, request = session.decision, session.decision.request
        assert request is not None
        extra: dict = {"session": session.id, "kind": session.kind, "egress": request.egress,
                       "grant": decision.grant_id}
        if action == "session.end":
            extra["seconds"] = round((datetime.now(UTC) - session.started).total_seconds(), 3)
        if request.window is not None:
            extra["start"] = request.window.start.isoformat()
            extra["end"] = (session.position or request.window.end).isoformat() if action == "session.end" \
                else request.window.end.isoformat()
        await self.audit.record(actor=request.subject.id, action=action,
                                resource=f"{request.resource.kind}:{request.resource.id}", decision="allow",
                                reason=reason, address=request.subject.address, request_id=request.request_id,
                                extra={k: v for k, v in extra.items() if v is not None})

