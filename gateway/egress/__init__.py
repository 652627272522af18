"""Egress: every way video and data leave the gateway; each asks the policy gate first."""
