"""Signed evidence manifests (R10, WX 29 ¶2): what was exported, from which hashed segments, by whom
and why, signed with the gateway's Ed25519 key so a verifier can check it offline.

The manifest embeds the public key, which proves the manifest and file are unchanged since signing;
that the key is the gateway's is checked against its published key (``--key``), as with any
self-contained signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .segments import hash_file

FORMAT = "vsgw-evidence/1"
SUFFIX = ".manifest.json"


class VerificationError(Exception):
    """The file, the manifest or its signature does not check out; the message says which."""


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The gateway's signing key, created once (mode 0600) under the data directory."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: Ed25519PublicKey) -> str:
    return "sha256:" + hashlib.sha256(_raw(public)).hexdigest()


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    public = key.public_key()
    body = {**body, "format": FORMAT,
            "key": {"alg": "Ed25519", "public": base64.b64encode(_raw(public)).decode(),
                    "fingerprint": fingerprint(public)}}
    return {**body, "signature": base64.b64encode(key.sign(canonical(body))).decode()}


def write_manifest(video: Path, body: dict[str, Any], key: Ed25519PrivateKey) -> Path:
    path = video.with_name(video.name + SUFFIX)
    path.write_text(json.dumps(sign(body, key), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def verify(file: Path, trusted: Ed25519PublicKey | None = None) -> dict[str, Any]:
    """Check a manifest (or the MP4 beside it): signature over every field, then the MP4's SHA-256
    and size. Returns the manifest; raises :class:`VerificationError` on any difference."""
    manifest_path = file if file.name.endswith(SUFFIX) else file.with_name(file.name + SUFFIX)
    try:
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw.decode("utf-8"))
        body = {k: v for k, v in manifest.items() if k != "signature"}
        signature = base64.b64decode(manifest["signature"], validate=True)
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(body["key"]["public"], validate=True))
        video_name = body["export"]["file"]
        expected_hash, expected_size = body["export"]["sha256"], body["export"]["size"]
    except FileNotFoundError:
        raise VerificationError(f"{manifest_path}: no manifest") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{manifest_path}: malformed manifest ({type(exc).__name__})") from None
    if body.get("format") != FORMAT:
        raise VerificationError(f"{manifest_path}: unknown format {body.get('format')!r}")
    try:
        public.verify(signature, canonical(body))
    except InvalidSignature:
        raise VerificationError(f"{manifest_path}: the signature does not match; the manifest was changed") from None
    if trusted is not None and _raw(trusted) != _raw(public):
        raise VerificationError(f"{manifest_path}: signed by {fingerprint(public)}, not by the trusted key "
                                f"{fingerprint(trusted)}")
    video = manifest_path.with_name(Path(video_name).name)
    if not video.exists():
        raise VerificationError(f"{video}: the exported file is missing")
    digest, size = hash_file(video)
    if size != expected_size or digest != expected_hash:
        raise VerificationError(f"{video}: SHA-256 {digest} (size {size}) differs from the signed {expected_hash} "
                                f"(size {expected_size}); the file was changed")
    return manifest


def load_public(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key
