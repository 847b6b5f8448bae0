"""SFTP keys and errors: known host keys, the client's private key, and SSH/SFTP errors in the
product's error tree."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, TransientError
from amazoniax_dagster.sources.remote_tree import (
    network_error,
)

if TYPE_CHECKING:
    from paramiko import PKey


# Public-key algorithms that can present a key of each type (ssh-rsa keys sign with SHA-2).
_ALGORITHMS_FOR_TYPE = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
}


@dataclass(frozen=True)
class HostKeys:
    """The host keys a config accepts: (type, key blob) pairs and SHA256 fingerprints."""

    keys: frozenset[tuple[str, bytes]]
    fingerprints: frozenset[str]

    @classmethod
    def parse(cls, text: str | None) -> HostKeys:
        keys: set[tuple[str, bytes]] = set()
        fingerprints: set[str] = set()
        for number, line in enumerate((text or "").splitlines(), start=1):
            tokens = line.split()
            if not tokens or tokens[0].startswith("#"):
                continue
            if tokens[0].startswith("SHA256:"):
                fingerprints.add(tokens[0].rstrip("="))
                continue
            keys.add(_parse_key_tokens(tokens, number))
        return cls(frozenset(keys), frozenset(fingerprints))

    def __bool__(self) -> bool:
        return bool(self.keys or self.fingerprints)

    def accepts(self, key_type: str, blob: bytes, fingerprint: str) -> bool:
        return (key_type, blob) in self.keys or fingerprint.rstrip("=") in self.fingerprints

    def algorithms(self) -> list[str]:
        """Host key algorithms to offer, so the server presents a key we know (or [])."""
        if self.fingerprints:
            return []  # a fingerprint does not say its key type: let the server choose
        return [
            alg
            for key_type, _ in sorted(self.keys)
            for alg in _ALGORITHMS_FOR_TYPE.get(key_type, ())
        ]


def _parse_key_tokens(tokens: list[str], number: int) -> tuple[str, bytes]:
    """``[host] type base64 [comment]`` -> (type, blob); the blob must name the same type."""
    for i, token in enumerate(tokens[:-1]):
        if token in _ALGORITHMS_FOR_TYPE or token.startswith(("ssh-", "ecdsa-sha2-")):
            try:
                blob = base64.b64decode(tokens[i + 1], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ConfigError(f"host_key line {number}: the key is not base64") from exc
            if not blob.startswith(len(token).to_bytes(4, "big") + token.encode()):
                raise ConfigError(f"host_key line {number}: the key is not a {token} key")
            return token, blob
    raise ConfigError(
        f"host_key line {number} is neither an OpenSSH public key ('ssh-ed25519 AAAA...') "
        "nor a SHA256 fingerprint ('SHA256:...')"
    )


def sftp_errors() -> tuple[type[BaseException], ...]:
    """The exception types :func:`translate_sftp_error` accepts, for ``except`` clauses."""
    import paramiko

    return (paramiko.SSHException, OSError, EOFError)


def translate_sftp_error(exc: BaseException, what: str) -> AmazoniaxError:
    """Map a paramiko, SFTP status or socket error into the error tree."""
    import paramiko
    from paramiko.ssh_exception import IncompatiblePeer

    if isinstance(exc, AmazoniaxError):
        return exc
    if isinstance(exc, paramiko.AuthenticationException):
        return ConfigError(f"cannot {what}: authentication failed ({type(exc).__name__})")
    if isinstance(exc, paramiko.BadHostKeyException):
        return ConfigError(f"cannot {what}: the server's host key does not match")
    if isinstance(exc, IncompatiblePeer):
        return ConfigError(f"cannot {what}: no common SSH algorithms with the server ({exc})")
    if isinstance(exc, FileNotFoundError):
        return ConfigError(f"cannot {what}: no such file or directory")
    if isinstance(exc, PermissionError):
        return ConfigError(f"cannot {what}: permission denied")
    if isinstance(exc, paramiko.SSHException):
        return TransientError(f"cannot {what}: {type(exc).__name__}: {exc}")
    network = network_error(exc, what, str(exc))
    if network is not None:
        return network
    raise TypeError(f"not an SFTP error: {type(exc).__name__}") from exc


def load_private_key(text: str, passphrase: str | None) -> PKey:
    """An OpenSSH or PEM private key (RSA, ECDSA, Ed25519); never echoes the key."""
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    data = text.strip().encode() + b"\n"
    password = passphrase.encode() if passphrase else None
    try:
        try:
            loaded: Any = serialization.load_ssh_private_key(data, password)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password)
    except TypeError as exc:  # encrypted without passphrase, or passphrase for a plain key
        raise ConfigError(f"private_key: {exc}") from exc
    except (ValueError, paramiko.SSHException) as exc:
        raise ConfigError(
            "private_key is not an OpenSSH or PEM private key, or the passphrase is wrong"
        ) from exc
    key_class: type[PKey]
    if isinstance(loaded, rsa.RSAPrivateKey):
        key_class = paramiko.RSAKey
    elif isinstance(loaded, ed25519.Ed25519PrivateKey):
        key_class = paramiko.Ed25519Key
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        key_class = paramiko.ECDSAKey
    else:
        raise ConfigError(f"private_key: unsupported key type {type(loaded).__name__}")
    try:
        return key_class.from_private_key(io.StringIO(data.decode()), password=passphrase)
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"private_key could not be loaded ({type(exc).__name__})") from exc
