"""Email: real SMTP (plain, STARTTLS, implicit TLS, AUTH) or ``.eml`` files in an outbox."""

from __future__ import annotations

import html
import os
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from bookwish_jobs.config import SmtpSettings
from bookwish_jobs.logs import log_event


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` (blocking). Raises on failure; nothing is retried here."""


def build_message(
    *, sender: str, to: str, subject: str, text: str, html_body: str
) -> EmailMessage:
    """A multipart/alternative message. Header values are flattened to one line."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = " ".join(subject.split())
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="bookwish.local")
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    return message


def paragraphs(text: str) -> str:
    """User text as escaped HTML paragraphs (never raw)."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return "".join(
        "<p>" + html.escape(b).replace("\n", "<br>") + "</p>" for b in blocks
    )


class SmtpMailer:
    """Sends through an SMTP server with smtplib."""

    def __init__(self, settings: SmtpSettings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        client: smtplib.SMTP
        if s.tls == "implicit":
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=self._context())
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        with client:
            client.ehlo()
            if s.tls in ("starttls", "starttls-required"):
                if client.has_extn("starttls"):
                    client.starttls(context=self._context())
                    client.ehlo()
                elif s.tls == "starttls-required":
                    raise smtplib.SMTPNotSupportedError("the SMTP server does not offer STARTTLS")
            if s.username:
                client.login(s.username, s.password or "")
            client.send_message(message)
        log_event("email.sent", to=message["To"], subject=message["Subject"], via="smtp")


class OutboxMailer:
    """Writes each message as an ``.eml`` file (the embedded default)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.folder / f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        os.replace(tmp, path)  # readers never see half a message
        log_event("email.sent", to=message["To"], subject=message["Subject"], via="outbox",
                  path=str(path))


def make_mailer(settings: SmtpSettings) -> Mailer:
    if settings.outbox is not None:
        return OutboxMailer(settings.outbox)
    return SmtpMailer(settings)
