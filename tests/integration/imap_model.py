"""A model-checking IMAP client (issue 20): sessions that keep their own model
of the selected mailbox (sequence number -> UID -> flags), updated only from
the server's responses, and fail on any response that contradicts the model
or RFC 3501 section 7.4.1.

Used by test_imap_model.py against Hato and against Dovecot (the proof that
the checker itself is right). Each session issues random pipelined commands
from a seed; on a contradiction the run stops and reports the seed, the
contradiction and the last lines of every session involved.

Pipelining modes:
  * liberal (Hato's promise, issue 20): any command may be pipelined behind
    any other; sequence numbers always mean what they meant when the client
    sent them, because the server holds EXPUNGE/VANISHED while a received
    command that uses sequence numbers is waiting.
  * strict (RFC 3501 section 5.5, what every server must get right): a command
    with sequence numbers is pipelined only behind FETCH, STORE and SEARCH.
"""
import collections
import random
import re
import socket
import threading
import time

SYSTEM_FLAGS = ["\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft"]
KEYWORDS = ["$Kw1", "Work"]
SEQ_VERBS = {"FETCH", "STORE", "SEARCH", "COPY", "MOVE"}
NO_EXPUNGE_VERBS = {"FETCH", "STORE", "SEARCH"}  # RFC 3501 section 7.4.1 (without UID)


class Violation(AssertionError):
    pass


# ---- Response parsing --------------------------------------------------------

def tokenize(data):
    """IMAP response data (bytes, literals inline as (b'{n}', payload)) into nested lists."""
    pos = 0
    stack = [[]]
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            top = stack.pop()
            stack[-1].append(top)
            pos += 1
        elif c == b'"':
            pos += 1
            out = bytearray()
            while pos < n and data[pos:pos + 1] != b'"':
                if data[pos:pos + 1] == b"\\":
                    pos += 1
                out += data[pos:pos + 1]
                pos += 1
            pos += 1
            stack[-1].append(bytes(out).decode("utf-8", "replace"))
        elif c == b"\x00":  # literal marker: \x00 + 8-byte index into the literal table
            stack[-1].append(("lit", int(data[pos + 1:pos + 9])))
            pos += 9
        else:
            m = re.compile(rb"[^ ()\x00]+(\[[^\]]*\](<\d+>)?)?").match(data, pos)
            if not m:
                pos += 1
                continue
            stack[-1].append(m.group(0).decode("utf-8", "replace"))
            pos = m.end()
    while len(stack) > 1:
        top = stack.pop()
        stack[-1].append(top)
    return stack[0]


def parse_seqset(text):
    out = []
    for part in text.split(","):
        if ":" in part:
            a, b = part.split(":")
            a, b = int(a), int(b)
            out.extend(range(min(a, b), max(a, b) + 1))
        elif part:
            out.append(int(part))
    return out


def seqset(numbers):
    numbers = sorted(set(numbers))
    parts = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append(str(numbers[i]) if i == j else f"{numbers[i]}:{numbers[j]}")
        i = j + 1
    return ",".join(parts)


class Transcript:
    """Every line of every session, kept bounded, for the failure report."""

    def __init__(self, keep=4000):
        self.lines = collections.deque(maxlen=keep)
        self.lock = threading.Lock()

    def add(self, session, direction, text):
        with self.lock:
            self.lines.append((time.monotonic(), session, direction, text))

    def dump(self, sessions=None, last=60):
        with self.lock:
            rows = [r for r in self.lines if sessions is None or r[1] in sessions]
        rows = rows[-last:]
        if not rows:
            return ""
        t0 = rows[0][0]
        return "\n".join(f"{t - t0:8.3f} s{s} {d} {text[:200]}" for t, s, d, text in rows)


class Touches:
    """When each session changed flags or removed messages, per mailbox: a
    STORE's result is only checked when no other session did so meanwhile."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = collections.defaultdict(list)  # mailbox -> [(session, start, end)]

    def begin(self, mailbox, session, removal):
        with self.lock:
            ev = [session, time.monotonic(), None, removal]
            self.events[mailbox].append(ev)
            if len(self.events[mailbox]) > 2000:
                del self.events[mailbox][:1000]
            return ev

    def end(self, ev):
        with self.lock:
            ev[2] = time.monotonic()

    # A removal by another session reaches this one only when the server
    # announces it, which may be held a while: look back this far for them.
    REMOVAL_LOOKBACK = 5.0

    def foreign_overlap(self, mailbox, session, start, end):
        with self.lock:
            for s, a, b, removal in self.events[mailbox]:
                if s == session:
                    continue
                lo = start - self.REMOVAL_LOOKBACK if removal else start
                if a <= end and (b is None or b >= lo):
                    return True
        return False


# ---- One session -------------------------------------------------------------

class Pending:
    def __init__(self, tag, verb, uid, text, **kw):
        self.tag, self.verb, self.uid, self.text = tag, verb, uid, text
        self.uses_seq = (verb in SEQ_VERBS and not uid) or kw.pop("seq_key", False)
        self.sent = time.monotonic()
        self.fetched = {}  # uid -> flags seen in this command's responses
        self.touch = None
        self.__dict__.update(kw)


class Session:
    def __init__(self, index, port, user, password, mailboxes, rng, transcript, touches,
                 liberal=True, qresync=False, condstore=False, in_order=True, timeout=30):
        self.index, self.rng, self.tr, self.touches = index, rng, transcript, touches
        self.mailboxes = mailboxes
        self.liberal, self.qresync, self.condstore = liberal, qresync, condstore
        self.in_order = in_order  # tagged responses in command order (no concurrent execution)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.tagn = 0
        self.pending = collections.deque()
        self.selected = None      # mailbox name once a SELECT is answered OK
        self.model = []           # index = seq - 1: UID or None (not known yet)
        self.flags = {}           # UID -> frozenset of flags
        self.gone = set()         # UIDs announced expunged in this selection
        self.stats = collections.Counter()
        self.literals = []
        self.readline()  # greeting
        self.command(f"LOGIN {quote(user)} {quote(password)}")
        if qresync:
            self.command("ENABLE QRESYNC")
        elif condstore:
            self.command("ENABLE CONDSTORE")

    # -- wire --
    def fail(self, what):
        raise Violation(f"session {self.index}: {what}")

    def send(self, data):
        for line in data.split(b"\r\n"):
            if line:
                self.tr.add(self.index, ">", line.decode("utf-8", "replace"))
        self.sock.sendall(data)

    def readline(self):
        """One response line, literals inline (as \\x00 + index into self.literals)."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Violation(f"session {self.index}: connection closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                out += line
                self.tr.add(self.index, "<", out.decode("utf-8", "replace"))
                return out
            size = int(m.group(1))
            while len(self.buf) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Violation(f"session {self.index}: connection closed in a literal")
                self.buf += chunk
            self.literals.append(self.buf[:size])
            self.buf = self.buf[size:]
            out += line[:m.start()] + b"\x00" + b"%08d" % (len(self.literals) - 1)

    def next_tag(self):
        self.tagn += 1
        return f"s{self.index}.{self.tagn}"

    def command(self, text):
        """A setup command, answered before anything else is sent."""
        tag = self.next_tag()
        verb = text.split(" ")[0].upper()
        self.pending.append(Pending(tag, verb, False, text))
        self.send(f"{tag} {text}\r\n".encode())
        return self.drain()

    def drain(self):
        """Reads responses until every pending command is answered."""
        last = None
        while self.pending:
            last = self.handle(self.readline())
        return last

    def poll_unsolicited(self):
        """Data that arrived while no command was in progress (RFC 3501 7.4.1)."""
        self.sock.setblocking(False)
        try:
            try:
                chunk = self.sock.recv(65536)
                if chunk:
                    self.buf += chunk
            except BlockingIOError:
                pass
        finally:
            self.sock.setblocking(True)
        while b"\r\n" in self.buf:
            self.handle(self.readline())

    # -- responses --
    def handle(self, line):
        if line.startswith(b"+"):
            return ("cont", line)
        if line.startswith(b"* "):
            self.untagged(line[2:])
            return ("untagged", line)
        tag, _, rest = line.partition(b" ")
        tag = tag.decode()
        status, _, text = rest.partition(b" ")
        status = status.decode().upper()
        found = [p for p in self.pending if p.tag == tag]
        if not found or (self.in_order and self.pending[0].tag != tag):
            self.fail(f"tagged response {tag} out of order (waiting for "
                      f"{[p.tag for p in self.pending]})")
        p = found[0]
        self.pending.remove(p)
        self.finish(p, status, text.decode("utf-8", "replace"))
        return ("tagged", p, status)

    def current(self):
        return self.pending[0] if self.pending else None

    def untagged(self, data):
        toks = tokenize(data)
        if not toks:
            return
        head = toks[0]
        cur = self.current()
        if head.isdigit() and len(toks) > 1:
            n, kind = int(head), toks[1].upper()
            if kind == "EXISTS":
                self.on_exists(n, cur)
            elif kind == "EXPUNGE":
                self.on_expunge_seq(n, cur)
            elif kind == "FETCH":
                self.on_fetch(n, toks[2] if len(toks) > 2 else [], cur)
            return
        kind = head.upper()
        if kind == "VANISHED":
            if isinstance(toks[1], list):  # (EARLIER): not used by these sessions
                return
            self.on_vanished(parse_seqset(toks[1]), cur)
        elif kind == "SEARCH":
            self.on_search([int(t) for t in toks[1:] if isinstance(t, str) and t.isdigit()], cur)
        elif kind == "BYE" and (cur is None or cur.verb != "LOGOUT"):
            self.fail("unexpected BYE: " + data.decode("utf-8", "replace"))

    def selecting(self, cur):
        return cur is not None and cur.verb in ("SELECT", "EXAMINE")

    def check_expunge_allowed(self, cur, what):
        if cur is None:
            self.fail(f"{what} while no command was in progress (RFC 3501 7.4.1)")
        # A server that answers in order is responding to the oldest command;
        # one that runs pipelined commands at once may be responding to any.
        for p in [cur] if self.in_order else self.pending:
            if p.verb in NO_EXPUNGE_VERBS and not p.uid:
                self.fail(f"{what} during {p.verb} {p.tag} (RFC 3501 7.4.1)")
        waiting = [p for p in list(self.pending)[1:] if p.uses_seq]
        if self.liberal and waiting:
            self.fail(f"{what} while {waiting[0].tag} ({waiting[0].text}) waits with "
                      f"sequence numbers (issue 20)")

    def on_exists(self, n, cur):
        if self.selecting(cur):
            self.model = [None] * n
            return
        if n < len(self.model):
            self.fail(f"EXISTS went backwards: {n} after {len(self.model)}")
        self.model.extend([None] * (n - len(self.model)))
        self.stats["exists"] += 1

    def remove(self, index):
        uid = self.model.pop(index)
        if uid is not None:
            self.gone.add(uid)
            self.flags.pop(uid, None)

    def on_expunge_seq(self, n, cur):
        self.check_expunge_allowed(cur, f"EXPUNGE {n}")
        if not 1 <= n <= len(self.model):
            self.fail(f"EXPUNGE {n} outside the model's 1:{len(self.model)}")
        self.remove(n - 1)
        self.stats["expunge"] += 1

    def on_vanished(self, uids, cur):
        self.check_expunge_allowed(cur, f"VANISHED {seqset(uids)}")
        for uid in uids:
            if uid in self.model:
                self.remove(self.model.index(uid))
                continue
            # Not known by UID: an unknown entry between its known neighbours.
            lo = 0
            for i, u in enumerate(self.model):
                if u is not None and u < uid:
                    lo = i + 1
            hi = len(self.model)
            for i in range(len(self.model) - 1, -1, -1):
                if self.model[i] is not None and self.model[i] > uid:
                    hi = i
            for i in range(lo, hi):
                if self.model[i] is None:
                    self.model.pop(i)
                    break
        self.stats["vanished"] += 1

    def on_fetch(self, n, items, cur):
        if self.selecting(cur):
            return  # QRESYNC SELECT data: not used by these sessions
        if not 1 <= n <= len(self.model):
            self.fail(f"FETCH for {n} outside the model's 1:{len(self.model)}")
        attrs = {}
        for i in range(0, len(items) - 1, 2):
            if isinstance(items[i], str):
                attrs[items[i].upper()] = items[i + 1]
        uid = self.model[n - 1]
        if "UID" in attrs:
            u = int(attrs["UID"])
            if uid is not None and uid != u:
                self.fail(f"FETCH {n} has UID {u}, the model has {uid} there")
            if u in self.gone:
                self.fail(f"FETCH {n} of UID {u}, which was announced expunged")
            before = [x for x in self.model[:n - 1] if x is not None]
            after = [x for x in self.model[n:] if x is not None]
            if (before and before[-1] >= u) or (after and after[0] <= u):
                self.fail(f"FETCH {n} UID {u} out of UID order in the model")
            self.model[n - 1] = uid = u
        if "FLAGS" in attrs and uid is not None:
            flags = frozenset(f for f in attrs["FLAGS"] if f.lower() != "\\recent")
            self.flags[uid] = flags
            for p in [cur] if self.in_order else self.pending:
                if p is not None:
                    p.fetched[uid] = flags
        self.stats["fetch"] += 1

    def on_search(self, numbers, cur):
        if not self.in_order:
            cur = next((p for p in self.pending if p.verb == "SEARCH"), None)
        if cur is None or cur.verb != "SEARCH":
            self.fail("SEARCH response outside SEARCH")
        if cur.uid:
            for u in numbers:
                if u in self.gone:
                    self.fail(f"UID SEARCH returned UID {u}, which was announced expunged")
            if getattr(cur, "all", False):
                if len(numbers) != len(self.model):
                    self.fail(f"UID SEARCH ALL found {len(numbers)}, the model has "
                              f"{len(self.model)}")
                missing = [u for u in self.model if u is not None and u not in numbers]
                if missing:
                    self.fail(f"UID SEARCH ALL misses UIDs {missing[:5]}")
        else:
            for s in numbers:
                if not 1 <= s <= len(self.model):
                    self.fail(f"SEARCH returned {s} outside the model's 1:{len(self.model)}")
            if getattr(cur, "all", False) and sorted(numbers) != list(
                    range(1, len(self.model) + 1)):
                self.fail(f"SEARCH ALL gave {seqset(numbers)}, the model has "
                          f"1:{len(self.model)}")
        self.stats["search"] += 1

    def finish(self, p, status, text):
        if p.touch is not None:
            self.touches.end(p.touch)
        if status == "BAD":
            self.fail(f"BAD for {p.tag} {p.text} that the model holds valid: {text}")
        self.stats[f"{p.verb}:{status}"] += 1
        if p.verb in ("SELECT", "EXAMINE"):
            self.selected = p.mailbox if status == "OK" else None
            if status != "OK":
                self.model = []
            self.flags, self.gone = {}, set()
        elif p.verb == "CLOSE" and status == "OK":
            self.selected, self.model, self.flags, self.gone = None, [], {}, set()
        elif p.verb == "STORE" and status == "OK" and not p.silent:
            if not self.touches.foreign_overlap(p.mailbox, self.index, p.sent, time.monotonic()):
                for uid in p.targets:
                    if uid is None or uid not in p.fetched:
                        continue
                    got = p.fetched[uid]
                    if p.mode == "+" and not p.flag_set <= got:
                        self.fail(f"STORE +FLAGS {sorted(p.flag_set)} on UID {uid} gave {sorted(got)}")
                    if p.mode == "-" and p.flag_set & got:
                        self.fail(f"STORE -FLAGS {sorted(p.flag_set)} on UID {uid} gave {sorted(got)}")
                    if p.mode == "" and p.flag_set != got:
                        self.fail(f"STORE FLAGS {sorted(p.flag_set)} on UID {uid} gave {sorted(got)}")
                self.stats["store-checked"] += 1

    # -- the random client --
    def queue(self, batch, text, verb, uid=False, literal=None, **kw):
        tag = self.next_tag()
        p = Pending(tag, verb, uid, text, **kw)
        if verb in ("STORE", "EXPUNGE", "MOVE", "CLOSE") and self.selected:
            p.touch = self.touches.begin(self.selected, self.index, verb != "STORE")
        p.mailbox = kw.get("mailbox", self.selected)
        wire = f"{tag} {'UID ' if uid else ''}{text}"
        if literal is not None:
            batch.append((p, wire.encode() + b" {%d+}\r\n" % len(literal) + literal + b"\r\n"))
        else:
            batch.append((p, wire.encode() + b"\r\n"))

    def random_set(self, known_only=False):
        n = len(self.model)
        if known_only:
            uids = [u for u in self.model if u is not None]
            if not uids:
                return None, []
            pick = sorted(self.rng.sample(uids, min(len(uids), self.rng.randint(1, 3))))
            if self.rng.random() < 0.3:
                return f"{pick[0]}:*", [u for u in self.model if u is None or u >= pick[0]]
            return seqset(pick), pick
        if n == 0:
            return None, []
        r = self.rng.random()
        if r < 0.2:
            return "1:*", list(self.model)
        a = self.rng.randint(1, n)
        b = min(n, a + self.rng.randint(0, 3))
        return (f"{a}:{b}" if a != b else str(a)), self.model[a - 1:b]

    def step(self, message_counter):
        """One batch of pipelined commands; waits for all their answers."""
        self.poll_unsolicited()
        rng = self.rng
        batch = []
        selected = self.selected is not None
        may_seq = True  # strict mode: sequence numbers only behind FETCH/STORE/SEARCH
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if not selected:
                if r < 0.2:
                    box = rng.choice(self.mailboxes)
                    self.queue(batch, f"APPEND {box} (\\Seen)", "APPEND", mailbox=box,
                               literal=message_counter())
                    continue
                box = rng.choice(self.mailboxes)
                self.queue(batch, f"SELECT {box}", "SELECT", mailbox=box)
                self.queue(batch, "FETCH 1:* (UID FLAGS)", "FETCH", uid=True)
                break
            seq_ok = may_seq or self.liberal
            if r < 0.12:
                box = rng.choice(self.mailboxes)
                flags = rng.choice(["()", "(\\Seen)", "(\\Deleted)", "(\\Flagged $Kw1)"])
                self.queue(batch, f"APPEND {box} {flags}", "APPEND", mailbox=box,
                           literal=message_counter())
                may_seq = False
            elif r < 0.32:
                uid = rng.random() < 0.4 or not seq_ok
                s, targets = self.random_set(known_only=uid)
                if s is None:
                    continue
                mode = rng.choice(["+", "-", ""])
                flag_set = frozenset(rng.sample(SYSTEM_FLAGS[:4] + KEYWORDS, rng.randint(1, 2)))
                silent = rng.random() < 0.2
                self.queue(batch, f"STORE {s} {mode}FLAGS{'.SILENT' if silent else ''} "
                           f"({' '.join(sorted(flag_set))})", "STORE", uid=uid, mode=mode,
                           flag_set=flag_set, silent=silent, targets=list(targets))
                may_seq = may_seq and not uid
            elif r < 0.50:
                uid = rng.random() < 0.4 or not seq_ok
                s, _ = self.random_set(known_only=uid)
                if s is None:
                    continue
                items = rng.choice(["(UID FLAGS)", "(FLAGS)", "(UID)", "(UID RFC822.SIZE)"])
                self.queue(batch, f"FETCH {s} {items}", "FETCH", uid=uid)
                may_seq = may_seq and not uid
            elif r < 0.60:
                if any(p.verb == "SEARCH" for p, _ in batch):
                    continue  # one per batch: a server may answer them in any order
                uid = rng.random() < 0.5 or not seq_ok
                key = rng.choice(["ALL", "ALL", "FLAGGED", "DELETED", "UNSEEN"])
                self.queue(batch, f"SEARCH {key}", "SEARCH", uid=uid, all=key == "ALL")
                may_seq = may_seq and not uid
            elif r < 0.68:
                uid = rng.random() < 0.5
                if uid:
                    s, _ = self.random_set(known_only=True)
                    if s is None:
                        continue
                    self.queue(batch, f"EXPUNGE {s}", "EXPUNGE", uid=True)
                else:
                    self.queue(batch, "EXPUNGE", "EXPUNGE")
                may_seq = False
            elif r < 0.78:
                verb = rng.choice(["COPY", "MOVE"])
                uid = rng.random() < 0.5 or not seq_ok
                s, _ = self.random_set(known_only=uid)
                if s is None:
                    continue
                # Sometimes into the selected mailbox itself (EXPUNGE before EXISTS).
                dest = rng.choice(self.mailboxes)
                self.queue(batch, f"{verb} {s} {dest}", verb, uid=uid)
                may_seq = False
            elif r < 0.86:
                self.queue(batch, "NOOP", "NOOP")
                may_seq = False
            elif r < 0.92:
                self.queue(batch, "IDLE", "IDLE")
                break
            elif r < 0.95:
                self.queue(batch, "CLOSE", "CLOSE")
                break
            else:
                box = rng.choice(self.mailboxes)
                self.queue(batch, f"SELECT {box}", "SELECT", mailbox=box)
                self.queue(batch, "FETCH 1:* (UID FLAGS)", "FETCH", uid=True)
                break
        if not batch:
            return
        for p, _ in batch:
            self.pending.append(p)
        self.send(b"".join(w for _, w in batch))
        if batch[-1][0].verb == "IDLE":
            while True:
                kind = self.handle(self.readline())
                if kind[0] == "cont":
                    break
            deadline = time.monotonic() + rng.uniform(0.02, 0.3)
            self.sock.settimeout(0.05)
            while time.monotonic() < deadline:
                try:
                    self.handle(self.readline())
                except (socket.timeout, TimeoutError):
                    pass
            self.sock.settimeout(30)
            self.send(b"DONE\r\n")
        self.drain()

    def logout(self):
        try:
            self.command("LOGOUT")
        except (Violation, OSError):
            pass
        self.sock.close()


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def message(n):
    return (f"From: model{n}@example.test\r\nSubject: model check {n}\r\n"
            f"Message-ID: <model{n}@example.test>\r\nX-Id: {n}\r\n\r\nbody {n}\r\n").encode()


def run_model(port, user, password, mailboxes, seed, sessions=8, seconds=20.0, liberal=True,
              in_order=True):
    """Runs `sessions` random clients for `seconds`; raises Violation (with the
    seed and a transcript) on the first contradiction. Returns the merged stats."""
    transcript, touches = Transcript(), Touches()
    counter = [0]
    lock = threading.Lock()

    def next_message():
        with lock:
            counter[0] += 1
            return message(counter[0])

    failure = []
    stats = collections.Counter()
    stop = threading.Event()

    def worker(i):
        rng = random.Random(seed * 1000 + i)
        s = None
        try:
            s = Session(i, port, user, password, mailboxes, rng, transcript, touches,
                        liberal=liberal, qresync=i % 4 == 3, condstore=i % 4 == 2,
                        in_order=in_order)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not stop.is_set():
                s.step(next_message)
        except Exception as e:  # noqa: BLE001 - reported with the transcript
            if not stop.is_set():
                failure.append((i, e))
            stop.set()
        finally:
            if s is not None:
                with lock:
                    stats.update(s.stats)
                if not stop.is_set():
                    s.logout()
                else:
                    s.sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    if failure:
        i, e = failure[0]
        raise Violation(
            f"model check failed (seed {seed}, {sessions} sessions, "
            f"{'liberal' if liberal else 'strict'} pipelining): {e}\n"
            f"--- session {i}, last lines:\n{transcript.dump({i}, 40)}\n"
            f"--- all sessions, last lines:\n{transcript.dump(None, 60)}")
    return stats
