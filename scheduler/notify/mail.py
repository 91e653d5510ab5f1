"""Sending e-mail: SMTP with STARTTLS (smtplib lives here only). A server that does not offer
STARTTLS gets nothing, so the password never crosses the network in the clear; the server's
certificate is checked against the system's trust store (SSL_CERT_FILE names another, e.g. a
private CA's). Every failure becomes an Undelivered that says what happened without the
password: the server's reply code and first line, or the kind of network error."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.utils import formatdate, make_msgid

from scheduler.notify.channels import Mail, Undelivered

REPLY_MAX = 120  # characters of a server's reply kept in history


class SmtpMailer:
    def __init__(
        self, timeout_s: float, tls: Callable[[], ssl.SSLContext] = ssl.create_default_context
    ) -> None:
        self._timeout_s = timeout_s
        self._tls = tls

    def send(self, mail: Mail) -> Undelivered | None:
        """None when the server accepted the message for every recipient."""
        password = mail.smtp.password.reveal() if mail.smtp.password else None
        try:
            refused = self._send(mail)
        except (smtplib.SMTPException, OSError) as exc:
            return undelivered(exc, password)
        if refused:  # accepted for the others: sending again would repeat it to them
            listed = ", ".join(f"{to} ({code})" for to, (code, _) in sorted(refused.items()))
            return Undelivered(f"refused for {listed}", final=True)
        return None

    def _send(self, mail: Mail) -> dict[str, tuple[int, bytes]]:
        smtp, message = mail.smtp, mail.message
        if "Date" not in message:  # once per message: a retry is the same message
            message["Date"] = formatdate(usegmt=True)
            message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2])
        with smtplib.SMTP(smtp.host, smtp.port, timeout=self._timeout_s) as client:
            client.ehlo()
            if not client.has_extn("starttls"):
                raise NoStartTls
            client.starttls(context=self._tls())
            client.ehlo()
            if smtp.user is not None and smtp.password is not None:
                client.login(smtp.user, smtp.password.reveal())
            return client.send_message(
                message, from_addr=smtp.sender, to_addrs=list(mail.recipients)
            )


class NoStartTls(smtplib.SMTPException):
    """The server offers no STARTTLS: nothing is sent over a connection in the clear."""


def undelivered(exc: BaseException, password: str | None) -> Undelivered:
    """What history records of a failed attempt; a refusal (5xx, a certificate that does not
    verify, no STARTTLS) is final, anything else is worth another try."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = {to: code for to, (code, _) in exc.recipients.items()}
        listed = ", ".join(f"{to} ({code})" for to, code in sorted(codes.items()))
        return Undelivered(f"refused for {listed}", final=all(c >= 500 for c in codes.values()))
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = _reply(exc.smtp_error, password)
        what = "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else reply
        return Undelivered(f"SMTP {exc.smtp_code}: {what}", final=exc.smtp_code >= 500)
    return _not_sent(exc)


def _not_sent(exc: BaseException) -> Undelivered:
    """A failure before the server could answer a command: TLS, a missing extension, the
    network."""
    if isinstance(exc, NoStartTls):
        return Undelivered("the server does not offer STARTTLS", final=True)
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # smtplib's own words
        return Undelivered(str(exc)[:REPLY_MAX], final=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = getattr(exc, "verify_message", None) or "certificate verify failed"
        return Undelivered(f"TLS: {why}", final=True)
    if isinstance(exc, ssl.SSLError):
        return Undelivered(f"TLS: {exc.reason}")
    return Undelivered(type(exc).__name__)


def _reply(raw: bytes | str, password: str | None) -> str:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    text = text.splitlines()[0] if text else ""
    if password:
        text = text.replace(password, "***")
    return text[:REPLY_MAX]
