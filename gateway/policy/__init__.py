"""The policy gate: ``authorize(AccessRequest) -> Decision`` (R2).

Every egress asks the gate before video or data leaves. This package holds the contract (subjects,
actions, resources, typed requests, decisions that are capabilities); the gate in force is
``Gateway.policy``, assembled by the composition root.
"""

from .access import grpc_access, http_access, subject_access
from .model import (Action, AccessRequest, AccessRequestError, CapabilityError, Decision, InternalAccess, LIVE,
                    PLAYBACK, PolicyGate, RECORDED, Resource, Subject, TimeWindow, require)

__all__ = ["Action", "AccessRequest", "AccessRequestError", "CapabilityError", "Decision", "InternalAccess", "LIVE",
           "PLAYBACK", "PolicyGate", "RECORDED", "Resource", "Subject", "TimeWindow", "grpc_access", "http_access", "require", "subject_access"]
