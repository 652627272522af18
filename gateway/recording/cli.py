"""``vsgw evidence verify FILE`` (offline: signature, MP4 hash) and ``vsgw evidence export`` (asks a
running gateway for an export, shows a progress bar, downloads the MP4 and manifest, verifies them)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
import sys

from .manifest import VerificationError, load_public, verify


def register(sub: argparse._SubParsersAction) -> None:
    evidence = sub.add_parser("evidence", help="verify or fetch signed evidence exports (R10)")
    commands = evidence.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    check = commands.add_parser("verify", help="check an export offline; fails on any changed byte")
    check.add_argument("file", help="the exported MP4 or its .manifest.json")
    check.add_argument("--key", help="PEM public key the manifest must be signed with "
                       "(GET /api/recordings/evidence-key)")
    check.set_defaults(func=_verify)
    export = commands.add_parser("export", help="export a camera range from a running gateway, with progress")
    export.add_argument("camera")
    export.add_argument("--start", required=True, help="ISO 8601 or Unix seconds")
    export.add_argument("--end", required=True, help="ISO 8601 or Unix seconds")
    export.add_argument("--reason", required=True)
    export.add_argument("--grant-id")
    export.add_argument("--mode", choices=["original", "public"], default="original")
    export.add_argument("--url", default=os.environ.get("VSGW_URL", "http://127.0.0.1:8080"))
    export.add_argument("--token", default=os.environ.get("VSGW_TOKEN", ""), help="API token (or VSGW_TOKEN)")
    export.add_argument("--out", default=".", help="directory for the MP4 and its manifest")
    export.set_defaults(func=_export)


def _verify(args: argparse.Namespace) -> int:
    try:
        trusted = load_public(Path(args.key)) if args.key else None
        manifest = verify(Path(args.file), trusted)
    except (VerificationError, OSError, ValueError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    key = manifest["key"]["fingerprint"]
    export = manifest["export"]
    print(f"OK: {export['file']} ({export['size']} bytes, sha256 {export['sha256']})")
    print(f"    camera {manifest['camera']} {manifest['start']} → {manifest['end']}, {len(manifest['segments'])} "
          f"source segments, mode {manifest['mode']}")
    print(f"    exported by {manifest['requested_by']} for: {manifest['reason']}"
          + (f" (grant {manifest['grant_id']})" if manifest.get("grant_id") else ""))
    print(f"    signed by {key}" + (" (the trusted key)" if trusted else "; pin it with --key to check who signed"))
    if manifest.get("review_required"):
        print("    public-release copy: needs human review before release")
    return 0


def _export(args: argparse.Namespace) -> object:
    return _export_run(args)


async def _export_run(args: argparse.Namespace) -> int:
    import aiohttp

    headers = {"Authorization": f"Bearer {args.token}"}
    body = {"start": args.start, "end": args.end, "reason": args.reason, "mode": args.mode}
    if args.grant_id:
        body["grant_id"] = args.grant_id
    base = args.url.rstrip("/")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base}/api/recordings/{args.camera}/export", json=body) as r:
            job = await r.json()
            if r.status != 202:
                print(f"vsgw: export refused: {job.get('message', r.status)}", file=sys.stderr)
                return 1
        while job["status"] in ("queued", "running"):
            _bar(job["progress"])
            await asyncio.sleep(0.5)
            async with http.get(f"{base}/api/exports/{job['id']}") as r:
                job = await r.json()
        _bar(1.0 if job["status"] == "done" else job["progress"])
        print(file=sys.stderr)
        if job["status"] != "done":
            print(f"vsgw: export failed: {job.get('error')}", file=sys.stderr)
            return 1
        names = {}
        for what in ("file", "manifest"):
            async with http.get(f"{base}/api/exports/{job['id']}/{what}") as r:
                r.raise_for_status()
                name = Path(r.content_disposition.filename if r.content_disposition else f"{job['id']}.{what}").name
                (out / name).write_bytes(await r.read())
                names[what] = out / name
    args.file, args.key = str(names["manifest"]), None
    return _verify(args)


def _bar(fraction: float, width: int = 40) -> None:
    done = round(max(0.0, min(1.0, fraction)) * width)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {fraction * 100:5.1f}%")
    sys.stderr.flush()


