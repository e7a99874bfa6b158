"""Helpers for the backup/restore/transfer tests: fill a store through SMTP and
IMAP, and read every message (folder, flags, bytes) back through IMAP."""
import base64
import imaplib
import re
import smtplib

from harness import DOMAIN, PASSWORD

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
# "Ünïcode/Sübfolder" in IMAP's modified UTF-7 (RFC 3501 section 5.1.3).
UNICODE_FOLDER = "&ANw-n&AO8-code/S&APw-bfolder"


def message(i, extra=b""):
    attachment = base64.encodebytes(bytes(range(256)) * 40).replace(b"\n", b"\r\n")
    return (b"From: Sender <sender@remote.test>\r\nTo: alice@example.test\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@remote.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
            b"--BB\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            b"Gr\xc3\xbc\xc3\x9fe, number %d\r\nFrom the start of a line\r\n>From quoted\r\n%s\r\n"
            b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            % (i, i, i, extra)) + attachment + b"--BB--\r\n"


def deliver(port, body, to=ALICE):
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as s:
        s.sendmail("sender@remote.test", [to], body)


def imap(port, user=ALICE, password=PASSWORD):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    m.login(user, password)
    return m


def fill(server, n_smtp=10, n_append=6):
    """SMTP into INBOX, APPEND with flags into Work and a non-ASCII folder."""
    for i in range(n_smtp):
        deliver(server.smtp_port, message(i))
    m = imap(server.imap_port)
    m.create("Work")
    m.create(UNICODE_FOLDER)
    for i in range(n_append):
        box = "Work" if i % 2 == 0 else UNICODE_FOLDER
        flags = ["(\\Seen)", "(\\Flagged \\Answered)", "($Label1 \\Seen)"][i % 3]
        typ, _ = m.append(box, flags, imaplib.Time2Internaldate(1700000000 + i),
                          message(1000 + i, b"appended"))
        assert typ == "OK"
    m.select("INBOX")
    m.store("1:3", "+FLAGS", "(\\Seen \\Flagged)")
    m.logout()


def dump(port, user=ALICE, password=PASSWORD):
    """{folder: sorted [(bytes, frozenset(flags), internaldate)]} of every live message."""
    m = imap(port, user, password)
    out = {}
    typ, boxes = m.list()
    for line in boxes:
        if b"\\Noselect" in line or b"\\NonExistent" in line:
            continue
        name = re.search(rb'"([^"]*)"$|(\S+)$', line)
        folder = (name.group(1) or name.group(2)).decode()
        typ, data = m.select('"%s"' % folder, readonly=True)
        assert typ == "OK", (folder, data)
        msgs = []
        if int(data[0]) > 0:
            typ, data = m.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head = item[0].decode()
                flags = frozenset(re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()) - {"\\Recent"}
                date = re.search(r'INTERNALDATE "([^"]*)"', head).group(1)
                msgs.append((item[1], flags, date))
        out[folder] = sorted(msgs, key=lambda t: (t[0], sorted(t[1]), t[2]))
    m.logout()
    return out
