"""vsgw: a public-security video sharing-platform gateway (see ../README.md)."""

__version__ = "0.1.0"
