"""GB/T 28181 device access: SIP signalling, MANSCDP, PS/RTP media (R1)."""
