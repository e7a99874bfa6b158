"""Subaddress folders (issue 18, RFC 5233): mail to user+tag@domain reaches
user@domain and, without a Sieve script, is filed into the folder "tag" when
the account has it ([delivery] subaddress_folders = "existing", the
default), created for it ("create"), or kept in INBOX ("off")."""
import imaplib
import signal
import smtplib
import unittest

from harness import DOMAIN, PASSWORD, Server, wait_for


def send(server, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as s:
        s.sendmail("someone@remote.example", [rcpt],
                   f"From: someone@remote.example\r\nSubject: {subject}\r\n\r\nbody\r\n".encode())


def subjects(server, user, folder):
    m = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        m.login(f"{user}@{DOMAIN}", PASSWORD)
        typ, _ = m.select(f'"{folder}"', readonly=True)
        if typ != "OK":
            return None
        _, ids = m.search(None, "ALL")
        out = []
        for i in ids[0].split():
            _, data = m.fetch(i, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(data[0][1].decode().strip().removeprefix("Subject: "))
        return sorted(out)
    finally:
        m.logout()


def folders(server, user):
    m = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        m.login(f"{user}@{DOMAIN}", PASSWORD)
        _, lines = m.list()
        return sorted(line.decode().rsplit(" ", 1)[-1].strip('"') for line in lines)
    finally:
        m.logout()


class SubaddressFolderTest(unittest.TestCase):
    def test_existing_create_and_off(self):
        with Server(users=("alice", "bob")) as server:
            m = imaplib.IMAP4("127.0.0.1", server.imap_port)
            m.login(f"alice@{DOMAIN}", PASSWORD)
            self.assertEqual(m.create("Lists")[0], "OK")
            m.logout()
            # "existing" (the default): the folder of that name in any case,
            # else INBOX; the plain address and other accounts are untouched.
            send(server, f"alice+lists@{DOMAIN}", "to lists")
            send(server, f"alice+Lists@{DOMAIN}", "to Lists")
            send(server, f"alice+nosuch@{DOMAIN}", "to nosuch")
            send(server, f"alice@{DOMAIN}", "plain")
            send(server, f"bob+lists@{DOMAIN}", "bob lists")
            wait_for(lambda: subjects(server, "alice", "INBOX") == ["plain", "to nosuch"],
                     what="alice's INBOX")
            self.assertEqual(subjects(server, "alice", "Lists"), ["to Lists", "to lists"])
            self.assertNotIn("nosuch", folders(server, "alice"))
            wait_for(lambda: subjects(server, "bob", "INBOX") == ["bob lists"], what="bob")

            # "create": a missing folder is made for the tag.
            server.set_config("delivery", "subaddress_folders", '"create"')
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in server.logs(), what="the reload")
            send(server, f"alice+Receipts@{DOMAIN}", "receipt")
            wait_for(lambda: subjects(server, "alice", "Receipts") == ["receipt"],
                     what="the created folder")
            self.assertIn("Receipts", folders(server, "alice"))

            # "off": INBOX, even when the folder exists.
            server.set_config("delivery", "subaddress_folders", '"off"')
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: server.logs().count("reloaded") >= 2, what="the second reload")
            send(server, f"alice+lists@{DOMAIN}", "off")
            wait_for(lambda: "off" in (subjects(server, "alice", "INBOX") or []),
                     what="INBOX with off")
            self.assertEqual(subjects(server, "alice", "Lists"), ["to Lists", "to lists"])


if __name__ == "__main__":
    unittest.main()
