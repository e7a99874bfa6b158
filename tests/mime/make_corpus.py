#!/usr/bin/env python3
"""Writes the MIME golden corpus, tests/mime/corpus/*.eml (stdlib only).

Each message is built here so that the tricky bytes (CRLF vs LF, ESC
sequences of ISO-2022-JP, Shift_JIS, 8-bit headers) are explicit and
reviewable. Run it after editing, then regenerate the goldens with
  MIME_UPDATE_GOLDEN=1 build/tests/hato_unit_tests --gtest_filter=MimeGolden.Corpus
and review the diff of tests/mime/corpus/*.golden by hand.
"""
import base64
import os
import quopri

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
CASES = {}


def case(name, text, crlf=True):
    """Registers a message; `text` is str (UTF-8) or bytes, written with LF -> CRLF."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    CASES[name] = data


def b64(data, width=76):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + width] for i in range(0, len(s), width))


case("01-simple", """\
Return-Path: <alice@example.org>
Received: from mx.example.org by mail.example.net; Mon, 1 Jan 2024 10:00:00 +0000
Date: Mon, 1 Jan 2024 10:00:00 +0000
From: Alice Example <alice@example.org>
To: Bob <bob@example.net>
Subject: Hello
Message-ID: <simple-1@example.org>

Hi Bob,

just a plain message.
""")

case("02-alternative-qp", """\
From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.de>
To: team@example.de
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus =?UTF-8?Q?K=C3=B6ln?=
Date: Tue, 2 Jan 2024 11:00:00 +0100
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt-boundary"

--alt-boundary
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: quoted-printable

Sch=C3=B6ne Gr=C3=BC=C3=9Fe aus K=C3=B6ln. Diese Zeile ist ziemlich lang und wird =
deshalb mit einem weichen Zeilenumbruch fortgesetzt.

--alt-boundary
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

<p>Sch=C3=B6ne Gr=C3=BC=C3=9Fe</p>
--alt-boundary--
""")

PNG = bytes(range(256)) * 2
PDF = b"%PDF-1.4\n" + bytes(range(200)) + b"\n%%EOF\n"
case("03-nested-mixed", """\
From: carol@example.com
To: dave@example.com
Subject: Report with attachments
Date: Wed, 3 Jan 2024 12:00:00 -0500
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is a multi-part message in MIME format.

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=us-ascii

See the report.
--alt
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=us-ascii

<img src="cid:logo@example.com"> See the report.
--rel
Content-Type: image/png; name="logo.png"
Content-Transfer-Encoding: base64
Content-ID: <logo@example.com>
Content-Disposition: inline; filename="logo.png"

""" + b64(PNG) + """
--rel--

--alt--

--outer
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report.pdf"; size=210
Content-Description: Quarterly report
Content-Language: en

""" + b64(PDF) + """
--outer--
Epilogue text.
""")

case("04-forwarded-rfc822", """\
From: Erin <erin@example.com>
To: frank@example.com
Subject: Fwd: Lunch
Date: Thu, 4 Jan 2024 09:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="fwd"

--fwd
Content-Type: text/plain; charset=utf-8

Forwarding this.

--fwd
Content-Type: message/rfc822
Content-Disposition: attachment

From: Grace <grace@example.org>
To: Erin <erin@example.com>
Cc: "Hopper, Grace" <grace.hopper@example.org>
Subject: Lunch
Date: Wed, 3 Jan 2024 08:00:00 +0000
Message-ID: <lunch@example.org>
In-Reply-To: <plans@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Noon?
--inner
Content-Type: text/html; charset=utf-8

<b>Noon?</b>
--inner--

--fwd--
""")

case("05-missing-final-boundary", """\
From: ivan@example.com
To: judy@example.com
Subject: truncated
Content-Type: multipart/mixed; boundary=XYZ

--XYZ
Content-Type: text/plain

first part
--XYZ
Content-Type: text/plain

second part, and the message ends without the close delimiter
""")

case("06-8bit-headers", """\
From: Zoë Ångström <zoe@example.se>
To: Ørjan <orjan@example.no>
Subject: Smörgåsbord på fredag
Date: Fri, 5 Jan 2024 12:00:00 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Välkomna på smörgåsbord!
""")

case("07-rfc2231", """\
From: kim@example.com
To: lee@example.com
Subject: RFC 2231 parameters
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="2231"

--2231
Content-Type: text/plain; charset=us-ascii

Attachments with long and encoded names.
--2231
Content-Type: application/octet-stream;
 name*0="a-very-long-file-name-that-";
 name*1="continues-on-the-next-line.bin"
Content-Disposition: attachment;
 filename*0*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE;
 filename*1*=%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.txt
Content-Transfer-Encoding: base64

aGVsbG8=
--2231
Content-Type: text/plain; charset*=iso-8859-1'fr'iso-8859-1;
 title*=iso-8859-1'fr'Caf%E9%20cr%E8me
Content-Disposition: attachment; filename="plain.txt"
Content-Transfer-Encoding: quoted-printable

Caf=E9 cr=E8me
--2231--
""")

LONG = "".join(chr(ord("a") + i % 26) for i in range(5000))
case("08-long-lines", """\
From: long@example.com
To: lines@example.com
Subject: A very long subject line that is folded
 several times because it goes on and on
 and on
X-Long: """ + LONG + """
Content-Type: text/plain; charset=us-ascii

""" + LONG + """
short
""" + LONG * 2 + "\n")

case("09-iso-2022-jp", b"""\
From: =?ISO-2022-JP?B?""" + base64.b64encode("山田 太郎".encode("iso-2022-jp")) + b"""?= <yamada@example.jp>
To: suzuki@example.jp
Subject: =?ISO-2022-JP?B?""" + base64.b64encode("こんにちは".encode("iso-2022-jp")) + b"""?=
 =?ISO-2022-JP?B?""" + base64.b64encode("、試験です。".encode("iso-2022-jp")) + b"""?=
Date: Sat, 6 Jan 2024 09:00:00 +0900
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: 7bit

""" + "こんにちは。\n日本語のメールです。\n".encode("iso-2022-jp"))

SJIS_BODY = "シフトJISの本文です。\n漢字とカタカナ。\n".encode("shift_jis")
case("10-shift-jis", b"""\
From: tanaka@example.jp
To: sato@example.jp
Subject: =?Shift_JIS?B?""" + base64.b64encode("件名テスト".encode("shift_jis")) + b"""?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="sjis"

--sjis
Content-Type: text/plain; charset=Shift_JIS
Content-Transfer-Encoding: base64

""" + b64(SJIS_BODY).encode() + b"""
--sjis
Content-Type: text/plain; charset=Shift_JIS
Content-Transfer-Encoding: 8bit

""" + SJIS_BODY + b"""
--sjis--
""")

case("11-base64-qp", """\
From: enc@example.com
To: dec@example.com
Subject: encodings
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=enc

--enc
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

""" + b64("Base64 text with ümlauts\nand a second line.\n".encode(), 20) + """
--enc
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Soft=20line=
 breaks and =E9 accents=3D equals   =
continue here.
--enc
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: Quoted-Printable

Euro =80 and =93quotes=94
--enc--
""")

case("12-empty-body", """\
From: empty@example.com
To: void@example.com
Subject: nothing here
Date: Sun, 7 Jan 2024 00:00:00 +0000

""")

case("13-no-blank-line", b"From: headers@example.com\r\nTo: only@example.com\r\n"
     b"Subject: no blank line and no body", crlf=False)

case("14-digest", """\
From: list@example.org
To: subscriber@example.com
Subject: Digest, Vol 1, Issue 1
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="digest-outer"

--digest-outer
Content-Type: text/plain

Today's topics: one, two.
--digest-outer
Content-Type: multipart/digest; boundary="digest"

--digest

From: one@example.org
Subject: one
Message-ID: <one@example.org>

First message.

--digest

From: two@example.org
Subject: two
Content-Type: text/plain; charset=utf-8

Second message.

--digest
Content-Type: text/plain

Not a message: an explicit text part.
--digest--
--digest-outer--
""")

deep = "From: deep@example.com\nSubject: deep nesting\nMIME-Version: 1.0\n"
for level in range(40):
    deep += "Content-Type: multipart/mixed; boundary=\"level%d\"\n\n--level%d\n" % (level, level)
deep += "Content-Type: text/plain\n\ndeepest text\n"
for level in reversed(range(40)):
    deep += "--level%d--\n" % level
case("15-deep-nesting", deep)

case("16-bare-lf", """\
From: unix@example.com
To: lf@example.com
Subject: bare LF line endings
Content-Type: multipart/mixed; boundary=lf

--lf
Content-Type: text/plain

line one
line two
--lf
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

soft =
break and =C3=A9
--lf--
""", crlf=False)

case("17-addresses", """\
From: "Doe, John" <john.doe@example.com> (work)
Sender: Secretary <sec@example.com>
Reply-To: replies@example.com
To: Team: alice@example.com, Bob <bob@example.com>;, undisclosed-recipients:;
Cc: Mary Smith <@relay.example,@r2.example:mary@example.net>,
 John Q. Public <jqp@[192.0.2.1]>, "quoted local"@example.org
Bcc: nodomain
Subject: addresses
Date: Mon, 8 Jan 2024 08:00:00 +0000
Message-ID: <addr@example.com>

Addresses of many shapes.
""")

case("18-preamble-whitespace", """\
From: ws@example.com
Subject: boundary padding
Content-Type: multipart/mixed;
\tboundary="pad"

preamble line 1
preamble line 2
--pad  \t
Content-Type: text/plain

padded delimiter
--pad
Content-Type: text/plain

--padding is not a delimiter
--pad--   
epilogue
--pad
not a part: after the close delimiter
""")

case("19-encoded-words", """\
From: ew@example.com
To: ew@example.com
Subject: =?ISO-8859-1?Q?Caf=E9?= =?UTF-8?B?IOKCrA==?=
 =?utf-8?q?_and?=  plain   =?us-ascii?Q?text?=
Content-Type: text/plain; charset=utf-8

Encoded words.
""")

case("20-euc-jp-windows", b"""\
From: mixed@example.jp
Subject: =?EUC-JP?B?""" + base64.b64encode("日本語".encode("euc-jp")) + b"""?=
Content-Type: multipart/mixed; boundary=mix

--mix
Content-Type: text/plain; charset=EUC-JP
Content-Transfer-Encoding: 8bit

""" + "ＥＵＣ・ＪＰの本文\n".encode("euc-jp") + b"""
--mix
Content-Type: text/plain; charset=windows-1252
Content-Transfer-Encoding: 8bit

""" + "Smart “quotes” – and € sign\n".encode("windows-1252") + b"""
--mix--
""")

case("21-duplicate-headers", """\
From: dup@example.com
Subject: first subject
Subject: second subject
Content-Type: text/html; charset=utf-8
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

<p>first Content-Type wins</p>
""")

case("22-nested-rfc822", """\
From: outer@example.com
Subject: outer
Content-Type: message/rfc822

From: middle@example.com
Subject: middle
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: message/rfc822

From: inner@example.com
Subject: =?utf-8?b?aW5uZXIg4pyT?=

innermost body
--m--
""")

case("23-no-headers-parts", """\
Subject: parts without headers
Content-Type: multipart/mixed; boundary=nh

--nh

part with no header fields
--nh
--nh--
""")

case("24-invalid-content-type", """\
Subject: broken content type
Content-Type: text

Treated as text/plain (RFC 2045 section 5.2).
""")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in CASES.items():
        with open(os.path.join(OUT, name + ".eml"), "wb") as f:
            f.write(data)
    print("wrote %d messages to %s" % (len(CASES), OUT))


if __name__ == "__main__":
    main()
