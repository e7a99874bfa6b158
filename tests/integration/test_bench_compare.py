"""bench/compare.py (issue 17): a headline figure worse by more than 20%
against the baseline is flagged and fails the comparison; better figures,
small changes and missing kinds do not."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

COMPARE = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "compare.py")


def ingest(msgs, cpu, p99):
    return {"messages": 5000, "hato": {"msgs_per_s_e2e": msgs, "cpu_ms_per_msg": cpu,
                                       "p99_ms": p99}, "postfix_dovecot": None}


def imap(ops, idle_kb):
    return {"users": 4, "hato": {"ops_per_s": ops, "cpu_ms_per_op": 0.2,
                                 "login_select_p99_ms": 6.0},
            "idle": {"hato": {"rss_per_conn_kb": idle_kb}, "dovecot": None}}


def login(sessions_per_s, cpu):
    return {"users": 10, "mix": "login",
            "hato": {"ops_per_s": sessions_per_s, "cpu_ms_per_op": cpu, "session_commands": 4,
                     "commands": {"SESSION": {"per_s": sessions_per_s}}},
            "idle": {"hato": None, "dovecot": None}}


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, side, name, doc):
        d = os.path.join(self.tmp.name, side)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "w") as f:
            json.dump(doc, f)
        return d

    def run_compare(self, *args):
        return subprocess.run([sys.executable, COMPARE, *args], capture_output=True, text=True,
                              timeout=60)

    def test_regression_over_threshold_fails_and_is_named(self):
        old = self.write("old", "bench-results.json", ingest(4000, 0.30, 15))
        new = self.write("new", "bench-results.json", ingest(3000, 0.31, 15))
        r = self.run_compare(old, new)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("REGRESSION", r.stdout)
        self.assertIn("ingest msgs/s", r.stdout.split("compare:")[-1])
        self.assertIn("-25.0%", r.stdout)

    def test_lower_is_better_figures_regress_when_they_grow(self):
        old = self.write("old", "imap-bench-results.json", imap(7000, 16))
        new = self.write("new", "imap-bench-results.json", imap(7100, 52))
        r = self.run_compare(old, new)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("idle kB/connection", r.stdout.split("compare:")[-1])

    def test_improvements_and_small_changes_pass(self):
        old = self.write("old", "bench-results.json", ingest(3000, 0.5, 20))
        self.write("old", "imap-bench-results.json", imap(7000, 50))
        new = self.write("new", "bench-results.json", ingest(4100, 0.45, 21))
        self.write("new", "imap-bench-results.json", imap(6000, 16))  # -14%: within 20%
        r = self.run_compare(old, new)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("REGRESSION", r.stdout)
        self.assertIn("+36.7%", r.stdout)

    def test_files_given_directly_and_kind_missing_on_one_side(self):
        old = self.write("old", "bench-results.json", ingest(3000, 0.5, 20))
        self.write("old", "imap-bench-results.json", imap(7000, 50))
        new = self.write("new", "bench-results.json", ingest(3000, 0.5, 20))
        r = self.run_compare(os.path.join(old, "bench-results.json"),
                             os.path.join(new, "bench-results.json"))
        self.assertEqual(r.returncode, 0, r.stdout)
        r = self.run_compare(old, new)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("imap-bench-results.json only in the baseline", r.stdout)

    def test_login_load_is_its_own_kind_even_renamed(self):
        # A renamed copy of the login load's results is told from the IMAP mix's by its
        # "mix", and a fall in sessions/s is a regression of the login load alone.
        old = self.write("old", "kept-login.json", login(3500, 0.27))
        new = self.write("new", "login-bench-results.json", login(2000, 0.27))
        r = self.run_compare(os.path.join(old, "kept-login.json"),
                             os.path.join(new, "login-bench-results.json"))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("login load sessions/s", r.stdout.split("compare:")[-1])
        self.assertNotIn("IMAP mix ops/s", r.stdout)

    def test_nothing_to_compare_is_an_error(self):
        r = self.run_compare(os.path.join(self.tmp.name, "none"), self.tmp.name)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
