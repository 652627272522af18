"""Small client programs that use the gateway's public APIs."""
