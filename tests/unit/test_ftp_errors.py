"""ftplib, paramiko, ssl and socket errors map into the error tree (house rule 3).

The foreign exceptions are built directly; the integration tests raise the same ones
through real servers. Also: the host check FTP/SFTP use instead of ``check_url``.
"""

from __future__ import annotations

import base64
import ftplib
import socket
import ssl

import paramiko
import pytest
from paramiko.ssh_exception import IncompatiblePeer

from amazoniax_dagster.core.errors import (
    AmazoniaxError,
    ConfigError,
    TransientError,
    UnsafeURLError,
)
from amazoniax_dagster.core.messages import FtpSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.sources.ftp import FtpSource
from amazoniax_dagster.sources.ftp_protocol import ftp_errors, translate_ftp_error
from amazoniax_dagster.sources.sftp import SftpSource
from amazoniax_dagster.sources.sftp_keys import load_private_key, sftp_errors, translate_sftp_error


def _cert_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate in certificate chain"
    return exc


def _public_key() -> paramiko.PKey:
    blob = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    return paramiko.Ed25519Key(data=base64.b64decode(blob))


FTP_CASES: list[tuple[BaseException, type[AmazoniaxError]]] = [
    (ftplib.error_perm("530 Login incorrect."), ConfigError),
    (ftplib.error_perm("550 /data: No such file or directory."), ConfigError),
    (ftplib.error_temp("421 Too many connections, try later."), TransientError),
    (ftplib.error_temp("426 Connection closed; transfer aborted."), TransientError),
    (ftplib.error_temp("451 Local error."), TransientError),
    (ftplib.error_reply("250 unexpected"), TransientError),
    (ftplib.error_proto("garbage"), TransientError),
    (EOFError(), TransientError),
    (TimeoutError("timed out"), TransientError),
    (ConnectionRefusedError(111, "Connection refused"), TransientError),
    (ConnectionResetError(104, "Connection reset by peer"), TransientError),
    (BrokenPipeError(32, "Broken pipe"), TransientError),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), TransientError),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ConfigError),
    (_cert_error(), ConfigError),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), TransientError),
    (ssl.SSLError(1, "decryption failed"), TransientError),
]


@pytest.mark.parametrize(("exc", "expected"), FTP_CASES, ids=lambda v: type(v).__name__)
def test_ftp_errors_map_into_the_tree(exc: BaseException, expected: type[AmazoniaxError]) -> None:
    assert isinstance(exc, ftp_errors())
    translated = translate_ftp_error(exc, "list ftp://h:21/data")
    assert type(translated) is expected
    assert "list ftp://h:21/data" in str(translated)


def test_ftp_certificate_error_says_what_to_do() -> None:
    message = str(translate_ftp_error(_cert_error(), "connect"))
    assert "self-signed certificate" in message and "ca_cert_pem" in message


def test_ftp_error_never_quotes_the_password() -> None:
    exc = ftplib.error_perm("530 Login incorrect for hunter2")
    assert "hunter2" not in str(translate_ftp_error(exc, "log in", secret="hunter2"))


def test_ftp_translation_refuses_foreign_errors() -> None:
    with pytest.raises(TypeError):
        translate_ftp_error(KeyError("x"), "list")


SFTP_CASES: list[tuple[BaseException, type[AmazoniaxError]]] = [
    (paramiko.AuthenticationException("Authentication failed."), ConfigError),
    (paramiko.BadAuthenticationType("Bad authentication type", ["publickey"]), ConfigError),
    (paramiko.PasswordRequiredException("Private key file is encrypted"), ConfigError),
    (paramiko.BadHostKeyException("h", _public_key(), _public_key()), ConfigError),
    (IncompatiblePeer("no acceptable kex algorithm"), ConfigError),
    (FileNotFoundError(2, "No such file"), ConfigError),
    (PermissionError(13, "Permission denied"), ConfigError),
    (paramiko.SSHException("Error reading SSH protocol banner"), TransientError),
    (paramiko.SSHException("Server connection dropped: "), TransientError),
    (paramiko.ChannelException(2, "Connect failed"), TransientError),
    (EOFError(), TransientError),
    (TimeoutError(), TransientError),
    (ConnectionRefusedError(111, "Connection refused"), TransientError),
    (ConnectionResetError(104, "Connection reset by peer"), TransientError),
    (OSError("Failure"), TransientError),  # SFTP_FAILURE: the server's generic status
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), TransientError),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ConfigError),
]


@pytest.mark.parametrize(("exc", "expected"), SFTP_CASES, ids=lambda v: type(v).__name__)
def test_sftp_errors_map_into_the_tree(exc: BaseException, expected: type[AmazoniaxError]) -> None:
    assert isinstance(exc, sftp_errors())
    translated = translate_sftp_error(exc, "list sftp://h:22/data")
    assert type(translated) is expected
    assert "list sftp://h:22/data" in str(translated)


def test_sftp_translation_refuses_foreign_errors() -> None:
    with pytest.raises(TypeError):
        translate_sftp_error(KeyError("x"), "list")


# --- configs refused before any connection --------------------------------------------------


POLICY = NetworkPolicy.from_env("127.0.0.0/8")


def test_bad_ca_pem_and_wrong_protocol_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="ca_cert_pem"):
        FtpSource(
            FtpSourceConfig(host="127.0.0.1", protocol="ftps", ca_cert_pem="nope"), policy=POLICY
        )
    with pytest.raises(ConfigError):
        FtpSource(FtpSourceConfig(host="127.0.0.1", protocol="sftp"), policy=POLICY)
    with pytest.raises(ConfigError):
        SftpSource(FtpSourceConfig(host="127.0.0.1"), policy=POLICY)


def test_a_bad_private_key_is_a_config_error_that_does_not_echo_it() -> None:
    with pytest.raises(ConfigError) as info:
        load_private_key("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n", None)
    assert "c2VjcmV0" not in str(info.value)


def test_an_encrypted_key_needs_its_passphrase() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(b"open sesame"),
        )
        .decode()
    )
    with pytest.raises(ConfigError):
        load_private_key(pem, None)
    with pytest.raises(ConfigError):
        load_private_key(pem, "wrong")
    assert load_private_key(pem, "open sesame").get_name() == "ssh-ed25519"


def test_config_defaults_are_safe() -> None:
    config = FtpSourceConfig(host="example.com")
    assert config.tls_verify and config.host_key_policy == "verify"
    assert config.timeout_seconds == 30 and config.max_connections == 16
    assert config.private_key is None and "secret" not in repr(
        FtpSourceConfig(host="h", private_key="secret", password="secret")
    )


# --- NetworkPolicy.check_host ---------------------------------------------------------------


def fake_dns(host: str, port: int) -> list[str]:
    return {
        "public.example": ["93.184.216.34", "93.184.216.34"],
        "mixed.example": ["93.184.216.34", "10.0.0.1"],
        "localhost": ["127.0.0.1"],
    }[host]


def test_check_host_returns_the_checked_addresses() -> None:
    policy = NetworkPolicy()
    assert policy.check_host("public.example", 21, resolve=fake_dns) == ["93.184.216.34"]
    assert policy.check_host("93.184.216.34", 22) == ["93.184.216.34"]
    assert POLICY.check_host("localhost", 21, resolve=fake_dns) == ["127.0.0.1"]
    assert POLICY.check_host("0x7f.1", 21) == ["127.0.0.1"]  # read as inet_aton does


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "mixed.example",
        "127.0.0.1",
        "2130706433",
        "[::1]",
        "169.254.169.254",
        "metadata.google.internal",
        "user@public.example",
        "public.example/path",
        "public.example\r\nUSER x",
        "",
    ],
)
def test_check_host_refuses(host: str) -> None:
    with pytest.raises(UnsafeURLError):
        NetworkPolicy().check_host(host, 21, resolve=fake_dns)
