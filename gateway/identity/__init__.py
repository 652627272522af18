"""Identity (R18, MLPS level 3): users with argon2 passwords, TOTP for privileged roles,
lock-out, expiring sessions; machine clients by certificate or API token."""
