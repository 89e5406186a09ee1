"""The weekly pipeline-risk digest per manager: "here is what the agent flagged", as an
HTML email (a file, and through SMTP when configured) and as Slack Block Kit JSON.

SMTP is used only when ``REVSTACK_SMTP_HOST`` is set (with ``REVSTACK_SMTP_PORT``,
``REVSTACK_SMTP_USER``, ``REVSTACK_SMTP_PASSWORD``, ``REVSTACK_SMTP_FROM``;
``REVSTACK_SMTP_STARTTLS=0`` turns STARTTLS off) and ``--send`` is given.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from html import escape
from pathlib import Path
from typing import Any

import polars as pl

from revstack.metrics.risk_flags import deal_flags

__all__ = [
    "Digest",
    "build_digests",
    "write_digests",
    "send_digests",
    "SIGNAL_LABELS",
    "slack_text",
]

SIGNAL_LABELS = {
    "gone_quiet": "Gone quiet",
    "close_date_slipped": "Close date slipped",
    "champion_departed": "Champion departed",
    "low_multithreading": "Low multithreading",
    "stage_age_outlier": "Stuck in stage",
    "close_date_passed": "Close date passed",
    "amount_cut": "Amount cut",
    "phantom": "Probably lost already",
    "model": "Risk score",
}
_SLACK_TEXT = 2900  # a section's text may hold 3000 characters
_SLACK_BLOCKS = 50


@dataclass
class Digest:
    manager_id: str
    manager: str
    email: str | None
    subject: str
    html: str
    blocks: dict[str, Any]
    deals: int


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}"


def _label(s: str) -> str:
    return SIGNAL_LABELS.get(s, s)


def slack_text(value: object) -> str:
    """``value`` as text for a Slack ``mrkdwn`` field: ``&``, ``<`` and ``>`` as Slack's
    formatting docs ask, so a value cannot open a link (``<url|text>``), a mention
    (``<@U...>``) or ``<!channel>``. Slack has no escape for ``*``, ``_``, ``~`` and
    backticks: a value holding them can change emphasis within its own line, nothing
    more. Fields holding data are also ``verbatim``, so Slack does not turn a bare
    address or a channel's name in them into a link."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _html(manager: str, week: str, deals: pl.DataFrame, total: int, mode: str) -> str:
    rows = []
    for d in deals.iter_rows(named=True):
        risk = "-" if d["risk"] is None else f"{d['risk']:.0%}"
        reasons = "".join(f"<li>{escape(r)}</li>" for r in d["reasons"])
        rows.append(
            f"<tr><td><b>{escape(d['deal'] or d['opportunity_id'])}</b><br>"
            f"<small>{escape(d['owner'] or '')} &middot; {escape(d['stage'])} &middot; "
            f"close {escape(str(d['close_date'] or '-'))}</small></td>"
            f'<td style="text-align:right">{_money(d["amount"])}</td>'
            f'<td style="text-align:right">{risk}</td>'
            f"<td>{escape(', '.join(_label(s) for s in d['signals']))}<ul>{reasons}</ul></td></tr>"
        )
    note = (
        "Shadow mode: the agent only reports; it changed nothing in the CRM."
        if mode == "shadow"
        else "Live: flags feed deal prep and the forecast."
    )
    more = f"<p>Showing {len(deals)} of {total} flagged deals, highest risk first.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Pipeline risk, week of {escape(week)}</title></head><body "
        'style="font-family:Arial,sans-serif">'
        f"<h2>Pipeline risk for {escape(manager)}, week of {escape(week)}</h2>"
        f"<p>Here is what the pipeline health agent flagged. {note}</p>{more}"
        '<table border="1" cellpadding="6" cellspacing="0" style="border-collapse:collapse">'
        "<thead><tr><th>Deal</th><th>Amount</th><th>Risk</th><th>Signals and reasons</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )


def _blocks(manager: str, week: str, deals: pl.DataFrame, total: int, mode: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Pipeline risk, week of {week}"[:150]},
        },
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    f"For *{slack_text(manager)}*: {total} flagged deal(s), top {len(deals)} "
                    "by risk. "
                    + ("Shadow mode: nothing was changed." if mode == "shadow" else "Live.")
                )
            ],
        },
        {"type": "divider"},
    ]
    for d in deals.iter_rows(named=True):
        if len(blocks) >= _SLACK_BLOCKS - 1:
            break
        risk = "" if d["risk"] is None else f" · risk {d['risk']:.0%}"
        reasons = "\n".join(f"• {slack_text(r)}" for r in d["reasons"])
        signals = slack_text(", ".join(_label(s) for s in d["signals"]))
        text = (
            f"*{slack_text(d['deal'] or d['opportunity_id'])}* ({slack_text(d['owner'])}, "
            f"{slack_text(d['stage'])}, {_money(d['amount'])}{risk})\n_{signals}_\n{reasons}"
        )
        blocks.append({"type": "section", "text": _mrkdwn(_cut(text, _SLACK_TEXT))})
    return {
        "text": f"Pipeline risk for {slack_text(manager)}: {total} flagged deals",
        "blocks": blocks,
    }


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, never inside an entity (``&am`` would show)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    amp = cut.rfind("&")
    return cut[:amp] if amp != -1 and ";" not in cut[amp:] else cut


def build_digests(
    rows: pl.DataFrame, *, week: str, top: int = 25, mode: str = "shadow"
) -> list[Digest]:
    """One digest per manager from ``metrics.risk_flags.flags`` rows."""
    deals = deal_flags(rows)
    out = []
    for (manager_id,), part in deals.group_by("manager_id", maintain_order=True):
        name = part["manager"][0] or (
            "Deals without an owner" if manager_id is None else str(manager_id)
        )
        shown = part.head(top)
        out.append(
            Digest(
                manager_id=str(manager_id or "none"),
                manager=name,
                email=part["manager_email"][0],
                subject=f"Pipeline risk, week of {week}: {len(part)} flagged deals",
                html=_html(name, week, shown, len(part), mode),
                blocks=_blocks(name, week, shown, len(part), mode),
                deals=len(part),
            )
        )
    return sorted(out, key=lambda d: d.manager)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "manager"


def write_digests(digests: list[Digest], out: Path) -> list[Path]:
    """``<manager>.html`` and ``<manager>.slack.json`` per digest in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in digests:
        stem = f"{_slug(d.manager)}-{_slug(d.manager_id)}"
        html, blocks = out / f"{stem}.html", out / f"{stem}.slack.json"
        html.write_text(d.html, encoding="utf-8")
        blocks.write_text(json.dumps(d.blocks, indent=2), encoding="utf-8")
        paths += [html, blocks]
    return paths


def send_digests(digests: list[Digest]) -> int:
    """Email each digest with an address through the configured SMTP server."""
    host = os.environ.get("REVSTACK_SMTP_HOST")
    if not host:
        raise ValueError("REVSTACK_SMTP_HOST is not set: SMTP is not configured")
    port = int(os.environ.get("REVSTACK_SMTP_PORT", "587"))
    sender = os.environ.get("REVSTACK_SMTP_FROM", "revstack@localhost")
    sent = 0
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        if os.environ.get("REVSTACK_SMTP_STARTTLS", "1") != "0":
            smtp.starttls()
        if os.environ.get("REVSTACK_SMTP_USER"):
            smtp.login(
                os.environ["REVSTACK_SMTP_USER"], os.environ.get("REVSTACK_SMTP_PASSWORD", "")
            )
        for d in digests:
            if not d.email:
                continue
            msg = EmailMessage()
            msg["Subject"], msg["From"], msg["To"] = d.subject, sender, d.email
            msg.set_content(f"{d.subject}. Open the HTML part to read it.")
            msg.add_alternative(d.html, subtype="html")
            smtp.send_message(msg)
            sent += 1
    return sent
