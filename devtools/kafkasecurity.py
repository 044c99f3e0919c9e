"""A SASL_SSL listener for a local broker: TLS with a PEM keystore, SCRAM and PLAIN users.

The broker keeps its PLAINTEXT listener for itself (inter-broker traffic, readiness); clients that
are told ``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` use this one. SCRAM users are written into the
cluster's metadata when the storage is formatted (``--add-scram``); PLAIN users live in the
listener's JAAS line.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
NAME = "SASL_SSL"
PREFIX = f"listener.name.{NAME.lower()}"


def _jaas(module: str, users: Mapping[str, str]) -> str:
    entries = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    return f"{module} required {entries};".replace("  ", " ")


@dataclass(frozen=True)
class SecureListener:
    """``SASL_SSL://127.0.0.1:<port>`` presenting ``keystore`` (PEM: key, then certificate chain)."""

    port: int
    keystore: Path
    users: Mapping[str, str] = field(default_factory=dict)  # name -> password, for every mechanism
    name: str = NAME

    def properties(self) -> list[str]:
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
        plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
        return [
            f"{PREFIX}.sasl.enabled.mechanisms={','.join((*SCRAM_MECHANISMS, 'PLAIN'))}",
            # The server side of SCRAM reads its users from the metadata log: the module needs no options.
            *(f"{PREFIX}.{m.lower()}.sasl.jaas.config={scram} required;" for m in SCRAM_MECHANISMS),
            f"{PREFIX}.plain.sasl.jaas.config={_jaas(plain, self.users)}",
            f"{PREFIX}.ssl.keystore.type=PEM",
            f"{PREFIX}.ssl.keystore.location={self.keystore}",
        ]

    def format_args(self) -> list[str]:
        """``StorageTool format`` arguments that create the SCRAM users with the cluster."""
        return [arg for name, password in self.users.items() for mechanism in SCRAM_MECHANISMS
                for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")]


@dataclass(frozen=True)
class Certificates:
    ca: Path  # what clients trust (KAFKA_SSL_CAFILE)
    keystore: Path  # the broker's key and chain


def make_certificates(folder: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                      ca_name: str = "orderflow-local-ca") -> Certificates:
    """A throw-away CA and a broker certificate for ``hosts``, made with openssl (EC P-256, quick)."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    curve = ("-pkeyopt", "ec_paramgen_curve:P-256")
    openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", *curve, "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "30", "-subj", f"/CN={ca_name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    # Kafka's PEM keystore takes an unencrypted PKCS#8 key, which genpkey writes.
    openssl("genpkey", "-algorithm", "EC", *curve, "-out", "broker.key")
    openssl("req", "-new", "-key", "broker.key", "-out", "broker.csr", "-subj", f"/CN={hosts[0]}")
    names = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    (folder / "broker.ext").write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
                                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                       "extendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "broker.pem", "-days", "30", "-extfile", "broker.ext")
    keystore = folder / "broker.keystore.pem"
    keystore.write_text("".join((folder / name).read_text() for name in ("broker.key", "broker.pem", "ca.pem")))
    keystore.chmod(0o600)
    return Certificates(folder / "ca.pem", keystore)
