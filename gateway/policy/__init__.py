"""The policy gate: ``authorize(subject, action, resource, context) -> Decision`` (R2).

Every egress asks the gate before video or data leaves. This module holds the contract
(subjects, actions, resources, decisions); the gate in force is ``Gateway.policy``.
"""

from .model import Action, Decision, PolicyGate, Resource, Subject, AuthenticatedOnly

__all__ = ["Action", "AuthenticatedOnly", "Decision", "PolicyGate", "Resource", "Subject"]
