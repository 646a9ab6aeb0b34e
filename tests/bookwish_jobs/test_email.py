"""Email over real SMTP (plain, STARTTLS, implicit TLS, AUTH) and the file outbox."""

from __future__ import annotations

import email
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bookwish_jobs.config import SmtpSettings
from bookwish_jobs.services.email import OutboxMailer, SmtpMailer, build_message, make_mailer
from pyqueue.embedded import free_port

from .conftest import SmtpSink


def message() -> Any:
    return build_message(sender="BookWish <no-reply@bookwish.test>", to="a@example.com",
                         subject="Hello\r\nBcc: evil@example.com", text="plain",
                         html_body="<p>html</p>")


def check_login(server: Any, session: Any, envelope: Any, mechanism: str,
                auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = str(folder / "key.pem"), str(folder / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    return crt, key


def server_context(cert: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


@pytest.fixture
def sink() -> SmtpSink:
    return SmtpSink()


def serve(sink: SmtpSink, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port,
                            authenticator=check_login, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_plain_smtp_with_auth(sink: SmtpSink) -> None:
    for port in serve(sink, auth_require_tls=False):
        SmtpMailer(SmtpSettings.parse(f"smtp://mailer:s3cret@127.0.0.1:{port}?starttls=off",
                                      Path("unused"))).send(message())
        bad = SmtpMailer(SmtpSettings.parse(f"smtp://mailer:wrong@127.0.0.1:{port}",
                                            Path("unused")))
        with pytest.raises(Exception, match=r"535|[Aa]uthentication"):
            bad.send(message())
    [got] = sink.messages
    assert got["Subject"] == "Hello Bcc: evil@example.com"  # no header injection
    assert got["Bcc"] is None


def test_starttls_then_auth(sink: SmtpSink, cert: tuple[str, str]) -> None:
    for port in serve(sink, tls_context=server_context(cert), require_starttls=True):
        url = f"smtp://mailer:s3cret@127.0.0.1:{port}?starttls=require&verify=off"
        SmtpMailer(SmtpSettings.parse(url, Path("unused"))).send(message())
    assert len(sink.messages) == 1


def test_implicit_tls(sink: SmtpSink, cert: tuple[str, str]) -> None:
    # aiosmtpd does not count implicit TLS as TLS for its AUTH rule; the link is TLS here.
    for port in serve(sink, ssl_context=server_context(cert), auth_require_tls=False):
        url = f"smtps://mailer:s3cret@127.0.0.1:{port}?verify=off"
        SmtpMailer(SmtpSettings.parse(url, Path("unused"))).send(message())
    assert len(sink.messages) == 1


def test_outbox_writes_eml_files(tmp_path: Path) -> None:
    mailer = make_mailer(SmtpSettings.parse(None, tmp_path / "outbox"))
    assert isinstance(mailer, OutboxMailer)
    mailer.send(message())
    [path] = (tmp_path / "outbox").glob("*.eml")
    parsed = email.message_from_bytes(path.read_bytes())
    assert parsed["To"] == "a@example.com"
    assert {p.get_content_type() for p in parsed.walk()} >= {"text/plain", "text/html"}
