"""``vsgw grpc dev-pki DIR``: a private CA, a server certificate (localhost, 127.0.0.1, ::1) and
client certificates, so a developer can try the gRPC API over mTLS without the city's PKI."""

from __future__ import annotations

import argparse
from pathlib import Path

from .certs import write_dev_pki


def register(sub: argparse._SubParsersAction) -> None:
    grpc = sub.add_parser("grpc", help="gRPC API for the police image platform (R1)")
    commands = grpc.add_subparsers(dest="grpc_command", metavar="ACTION", required=True)
    pki = commands.add_parser("dev-pki", help="write a development CA, server and client certificates (PEM)")
    pki.add_argument("folder", type=Path)
    pki.add_argument("--client", action="append", dest="clients", metavar="CN",
                     help="client certificate common name (repeatable; default police-image-platform)")
    pki.set_defaults(func=_dev_pki)


def _dev_pki(args: argparse.Namespace) -> int:
    files = write_dev_pki(args.folder, tuple(args.clients or ("police-image-platform",)))
    for name, path in files.items():
        print(f"{name:32} {path}")
    print("gateway config: [grpc] enabled = true, cert/key = server.pem/server.key, client_ca = ca.pem;"
          " register each client CN in [identity] clients = [\"CN=police:5\"]")
    return 0
