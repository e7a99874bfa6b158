"""Differential test of Hato's MIME parser (src/mime) against an independent
implementation: Python's `email` package (policy=email.policy.default).

The unit test binary dumps its view of every corpus message as JSON
(MimeGolden.Dump in tests/unit/mime_golden_test.cc, enabled by MIME_DUMP_DIR);
this test parses the same tests/mime/corpus/*.eml with Python and compares:
part tree shape, content types, the charset/name parameters (RFC 2231 decoded),
the disposition filename, the decoded text of text/* leaves (transfer encoding +
charset), and for each message node (the root and every encapsulated
message/rfc822) the RFC 2047-decoded Subject and the first From address
(decoded display name and addr-spec).

The binary is $(dirname HATO_BIN)/tests/hato_unit_tests (or MIME_UNIT_TESTS).

Deliberate differences from Python, not compared:
  * Depth: Hato stops expanding composites at mime::kMaxDepth (32) and marks
    them opaque; Python expands everything. Children below an opaque node are
    not compared.
  * Text is compared after normalising line endings to LF and dropping trailing
    white space per line and trailing empty lines: the CRLF before a boundary
    belongs to the boundary (RFC 2046 section 5.1.1) in Hato, and
    quoted-printable decoding removes trailing white space (RFC 2045 section 6.7
    rule 3), which binascii.a2b_qp does not.
  * A missing Content-Type gives Hato the explicit parameter charset=us-ascii
    (RFC 2045 section 5.2); Python reports no parameter. Both sides are
    compared through "charset or us-ascii".
  * Raw 8-bit header bytes: Python keeps them as surrogate escapes; they are
    converted back to bytes and read as UTF-8 (RFC 6532) before comparing.
  * Shift_JIS is decoded as CP932 by Hato (ASCII-compatible, with vendor
    extensions, as mail clients do); the corpus avoids the few code points
    where Python's strict shift_jis codec differs.
"""

import email
import email.policy
import email.utils
import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.normpath(os.path.join(HERE, "..", "mime", "corpus"))
MAX_DEPTH = 32  # mime::kMaxDepth


def unit_binary():
    if os.environ.get("MIME_UNIT_TESTS"):
        return os.environ["MIME_UNIT_TESTS"]
    hato = os.environ.get("HATO_BIN", "")
    return os.path.join(os.path.dirname(hato), "tests", "hato_unit_tests")


def fix_surrogates(s):
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def norm_text(s):
    lines = s.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip(" \t") for line in lines).rstrip("\n")


def charset_of(params):
    return (params.get("charset") or "us-ascii").lower()


def python_node(part):
    node = {"type": part.get_content_type(), "children": []}
    ct = part.get("content-type")
    params = {}
    if ct is not None and hasattr(ct, "params"):
        params = {k.lower(): fix_surrogates(str(v)) for k, v in ct.params.items()}
    params.pop("boundary", None)
    node["params"] = params
    filename = part.get_filename()
    if filename is not None:
        node["filename"] = fix_surrogates(filename)
    if part.get("subject") is not None:
        node["subject"] = fix_surrogates(str(part.get("subject")))
    if part.get("from") is not None and part["from"].addresses:
        a = part["from"].addresses[0]
        node["from"] = {"name": fix_surrogates(a.display_name),
                        "addr": fix_surrogates(a.addr_spec)}
    if part.is_multipart():
        node["children"] = [python_node(c) for c in part.get_payload()]
    elif part.get_content_maintype() == "text":
        node["text"] = part.get_content()
    return node


class MimeOracleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        binary = unit_binary()
        if not os.path.exists(binary):
            raise unittest.SkipTest("no unit test binary at %s" % binary)
        cls.tmp = tempfile.TemporaryDirectory()
        env = dict(os.environ, MIME_DUMP_DIR=cls.tmp.name)
        subprocess.run([binary, "--gtest_filter=MimeGolden.Dump"], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compare(self, mine, theirs, where, depth):
        self.assertEqual(mine["type"], theirs["type"], where)
        self.assertEqual(charset_of(mine["params"]), charset_of(theirs["params"]), where)
        self.assertEqual(mine["params"].get("name"), theirs["params"].get("name"), where)
        self.assertEqual(mine.get("filename"), theirs.get("filename"), where)
        self.assertEqual(mine.get("subject"), theirs.get("subject"), where)
        self.assertEqual(mine.get("from"), theirs.get("from"), where)
        if "text" in mine or "text" in theirs:
            self.assertEqual(norm_text(mine.get("text", "")), norm_text(theirs.get("text", "")),
                             where)
        if mine["opaque"]:
            self.assertEqual(depth, MAX_DEPTH, where + ": opaque only at the depth limit")
            return
        self.assertEqual(len(mine["children"]), len(theirs["children"]), where)
        for i, (m, t) in enumerate(zip(mine["children"], theirs["children"])):
            self.compare(m, t, "%s.%d" % (where, i + 1), depth + 1)

    def test_corpus_agrees_with_python_email(self):
        names = sorted(f for f in os.listdir(CORPUS) if f.endswith(".eml"))
        self.assertGreaterEqual(len(names), 15)
        for name in names:
            with self.subTest(message=name):
                with open(os.path.join(CORPUS, name), "rb") as f:
                    msg = email.message_from_binary_file(f, policy=email.policy.default)
                with open(os.path.join(self.tmp.name, name[:-4] + ".json"), encoding="utf-8") as f:
                    mine = json.load(f)
                self.compare(mine, python_node(msg), name, 0)


if __name__ == "__main__":
    unittest.main()
