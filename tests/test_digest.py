"""Weekly pipeline-risk digests: one per manager, valid HTML and Slack Block Kit JSON,
written by ``revstack digest``; reasons escaped, highest risk first."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import polars as pl

from revstack._digest import build_digests
from revstack.cli import main
from revstack.data.warehouse import Warehouse
from revstack.metrics.risk_flags import FLAG_COLUMNS, flags
from tests.risk_fixture import flagged  # noqa: F401 - the fixture

_VOID = {"meta", "br", "hr", "img", "input", "link"}
_BLOCK_TYPES = {"header", "context", "divider", "section"}


class _Strict(HTMLParser):
    """Fails on a closing tag that does not match the open one; collects the text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Strict:
    p = _Strict()
    p.feed(html)
    p.close()
    assert p.stack == [], f"unclosed {p.stack}"
    return p


def _check_blocks(doc: dict) -> None:
    assert isinstance(doc["text"], str) and 0 < len(doc["blocks"]) <= 50
    for b in doc["blocks"]:
        assert b["type"] in _BLOCK_TYPES
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and len(b["text"]["text"]) <= 150
        if b["type"] == "section":
            assert b["text"]["type"] == "mrkdwn" and len(b["text"]["text"]) <= 3000
        if b["type"] == "context":
            assert all(e["type"] == "mrkdwn" for e in b["elements"])


def test_one_digest_per_manager_highest_risk_first_and_escaped(flagged: Warehouse) -> None:  # noqa: F811
    with flagged.connect() as con:
        rows = flags(con)
    digests = build_digests(rows, week="2026-09-28", top=5)
    assert [d.manager for d in digests] == ["Max Manager", "Mia Manager"]
    mia = digests[1]
    assert mia.deals == 24 and mia.email == "mia@x.example"
    text = "".join(_parse(mia.html).text)
    assert "Showing 5 of 24 flagged deals" in text
    assert "reason <b>gone_quiet</b> for o34" in text  # shown as text, not markup
    shown = [b["text"]["text"] for b in mia.blocks["blocks"] if b["type"] == "section"]
    assert len(shown) == 5 and shown[0].startswith(
        "*Deal &lt;34&gt; &amp; Co*"
    )  # o34: highest score
    _check_blocks(mia.blocks)


FORGED = "<http://evil.example|Approve in Salesforce>"


def _hostile_rows() -> pl.DataFrame:
    row = {c: None for c in FLAG_COLUMNS} | {
        "run_id": "r1",
        "opportunity_id": "o1",
        "deal": f"Big deal {FORGED}",
        "stage": "<!channel> Negotiation & Review",
        "amount": 1000.0,
        "owner": "<@U024BE7LH>",
        "manager_id": "m1",
        "manager": "Mo <!here>",
        "signal": "gone_quiet",
        "score": 0.9,
        "reason": f"no reply since {FORGED} &lt;",
    }
    return pl.DataFrame([row], schema=FLAG_COLUMNS)


def test_slack_text_from_the_data_cannot_link_or_mention() -> None:
    [digest] = build_digests(_hostile_rows(), week="2026-09-28")
    _check_blocks(digest.blocks)
    texts = [digest.blocks["text"]] + [
        o["text"]
        for b in digest.blocks["blocks"]
        for o in ([b["text"]] if b["type"] == "section" else b.get("elements", []))
    ]
    assert [t for t in texts if "<" in t or ">" in t] == []  # no link, mention or <!channel>
    section = next(b["text"] for b in digest.blocks["blocks"] if b["type"] == "section")
    assert section["verbatim"] is True  # no bare address turned into a link either
    assert "*Big deal &lt;http://evil.example|Approve in Salesforce&gt;*" in section["text"]
    assert "&lt;@U024BE7LH&gt;, &lt;!channel&gt; Negotiation &amp; Review" in section["text"]
    assert (
        "• no reply since &lt;http://evil.example|Approve in Salesforce&gt; &amp;lt;"
        in (section["text"])
    )
    assert "For *Mo &lt;!here&gt;*" in texts[1]


def test_a_long_section_is_not_cut_inside_an_entity() -> None:
    rows = _hostile_rows().with_columns(reason=pl.lit("&" * 3000))
    [digest] = build_digests(rows, week="2026-09-28")
    text = next(b["text"]["text"] for b in digest.blocks["blocks"] if b["type"] == "section")
    assert len(text) <= 2900 and text.endswith("&amp;")


def test_revstack_digest_writes_valid_files(flagged: Warehouse, tmp_path: Path, capsys) -> None:  # noqa: F811
    out = tmp_path / "digests"
    code = main(["digest", "--db", str(flagged.path), "--out", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["digests"] == 2 and result["sent"] == 0 and result["run_id"] == "R000007"
    html = sorted(out.glob("*.html"))
    slack = sorted(out.glob("*.slack.json"))
    assert len(html) == len(slack) == 2
    for h in html:
        assert "Pipeline risk for" in "".join(_parse(h.read_text()).text)
    for s in slack:
        _check_blocks(json.loads(s.read_text()))


def test_digest_without_flags_is_a_clear_error(wh: Warehouse, tmp_path: Path, capsys) -> None:
    assert main(["digest", "--db", str(wh.path), "--out", str(tmp_path)]) == 2
    assert "no pipeline_health flags" in capsys.readouterr().err


def test_digests_are_sent_through_a_real_smtp_server_on_loopback(monkeypatch) -> None:
    """A minimal SMTP server (stdlib socket, real protocol) receives what send_digests sends."""
    import socket
    import threading
    from email import message_from_bytes

    from revstack._digest import Digest, send_digests

    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        f = conn.makefile("rb")
        conn.sendall(b"220 localhost test\r\n")
        while line := f.readline():
            cmd = line.strip().upper()
            if cmd.startswith((b"EHLO", b"HELO")):
                conn.sendall(b"250 localhost\r\n")
            elif cmd == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                body = b""
                while (chunk := f.readline()) != b".\r\n":
                    body += chunk
                received.append(body)
                conn.sendall(b"250 queued\r\n")
            elif cmd == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:  # MAIL FROM, RCPT TO, RSET, NOOP
                conn.sendall(b"250 ok\r\n")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("REVSTACK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("REVSTACK_SMTP_PORT", str(port))
    monkeypatch.setenv("REVSTACK_SMTP_STARTTLS", "0")
    monkeypatch.setenv("REVSTACK_SMTP_FROM", "revstack@example.test")
    digests = [
        Digest(
            "U1",
            "Ana Ruiz",
            "ana@example.test",
            "Pipeline risk, week 40: 2 deals",
            "<p>two <b>deals</b></p>",
            {},
            2,
        ),
        Digest("U2", "No Address", None, "skipped", "<p>x</p>", {}, 1),
    ]
    assert send_digests(digests) == 1
    thread.join(5)
    server.close()
    [raw] = received
    msg = message_from_bytes(raw)
    assert msg["To"] == "ana@example.test" and msg["From"] == "revstack@example.test"
    assert msg["Subject"] == "Pipeline risk, week 40: 2 deals"
    html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(
        decode=True
    )
    assert b"<b>deals</b>" in html
