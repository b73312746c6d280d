"""Email over SMTP: STARTTLS (default) or implicit TLS, optional AUTH; one message per notification.

Uses the standard library's ``smtplib`` in a worker thread (one connection per batch), so no
extra dependency; the worker's timeout bounds each attempt.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from email.message import EmailMessage

from consumer.alerts.channels.base import Channel, Notification, PermanentError
from consumer.alerts.rules import EmailChannel


def subject(n: Notification) -> str:
    """``[FIRING] pay-5xx critical service_name=pay-gw url_path=/pay``."""
    head = "FIRING" if n.status == "firing" else "RESOLVED"
    groups = " ".join(f"{k}={v}" for k, v in n.labels.items() if k not in ("alertname", "severity", "component") and v)
    text = f"[{head}] {n.rule} {n.labels.get('severity', '')} {n.labels.get('component', '')} {groups}"
    return " ".join(text.split())[:200]


def body(n: Notification) -> str:
    """Plain text: annotations, labels, why, samples, the search command."""
    out = [subject(n), ""]
    for k, v in n.annotations.items():
        if k not in ("samples", "search"):
            out.append(f"{k}: {v}")
    if n.why:
        out.append(f"why: {n.why}")
    out.append("")
    out += [f"  {k} = {v}" for k, v in n.labels.items()]
    if n.samples:
        out += ["", "sample lines:"] + [f"  {s}" for s in n.samples]
    search = n.annotations.get("search")
    if search:
        out += ["", "context:", f"  {search}"]
    out += ["", f"source: {n.generator_url}"]
    return "\n".join(out) + "\n"


class EmailSender(Channel):
    """Sends each notification as a text/plain email to ``to``."""

    config: EmailChannel

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _password(self) -> str | None:
        if self.config.password_env:
            return os.environ.get(self.config.password_env)
        return self.config.password

    def _message(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = subject(n)
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(self.config.to)
        msg.set_content(body(n))
        return msg

    def _send_sync(self, batch: list[Notification]) -> None:
        cfg = self.config
        timeout = cfg.timeout
        smtp: smtplib.SMTP
        if cfg.ssl:
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
        try:
            smtp.ehlo()
            if cfg.starttls and not cfg.ssl:
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if cfg.username:
                try:
                    smtp.login(cfg.username, self._password() or "")
                except smtplib.SMTPAuthenticationError as exc:
                    raise PermanentError(f"SMTP authentication failed: {exc}") from exc
            for n in batch:
                smtp.send_message(self._message(n))
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    async def deliver(self, batch: list[Notification]) -> None:
        await asyncio.to_thread(self._send_sync, batch)
