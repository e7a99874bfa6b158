#!/usr/bin/env python3
"""Where a Sieve delivery's time goes, per thread (bench/README.md "Sieve at delivery").

One `hato serve` (as bench/sieve_run.sh sets it up: BENCH_ACCOUNTS accounts, each with the
script in MODE) takes one bounded load of MESSAGES messages of 4 KiB over 20 connections.
usage: python3 bench/sieve_threads.py BUILD_DIR MODE [MESSAGES] [--perf-stat | --perf-record FILE]
MODE: none | sieve (bench/sieve_rules.sieve, or $RULES) | flag (a one-rule `addflag` script)
Prints one JSON line: msgs/s and p99; per message over the load (the indexer thread, nice 19,
left out): CPU run time (schedstat), user and system time, voluntary and involuntary context
switches, bytes written; per thread, its run time and switches ("tids"). With --perf-stat,
`perf stat --per-thread` of task-clock, switches, migrations and the fdatasync, futex,
pwrite64, write and epoll_wait calls, summed per role ("perf_per_msg": writer = the thread
that calls fdatasync, loop = the session loops, pool and other = the blocking and checks pools
and the idle rest; pool is guessed from the thread order and is not always the blocking pool,
so read pool + other). With --perf-record, `perf record -F 999` of the server into FILE ($PERF_CG: the
call-graph option, "-g" by default). Needs root for perf.
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

BUILD = os.path.abspath(sys.argv[1])
MODE = sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 3000
PERF_RECORD = None
PERF_STAT = "--perf-stat" in sys.argv
if "--perf-record" in sys.argv:
    PERF_RECORD = sys.argv[sys.argv.index("--perf-record") + 1]
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "20"))
RULES = os.environ.get("RULES", os.path.join(os.path.dirname(os.path.abspath(__file__)), "sieve_rules.sieve"))
HATO = BUILD + "/hato"
LOAD = BUILD + "/bench/hato-smtp-load"
TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def tasks(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
            status = open(f"/proc/{pid}/task/{tid}/status").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        f = stat[stat.rindex(")") + 2:].split()
        vol = int(re.search(r"voluntary_ctxt_switches:\s+(\d+)", status).group(1))
        inv = int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status).group(1))
        try:
            run_ns = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except OSError:
            run_ns = 0
        try:
            wb = int(re.search(r"write_bytes:\s+(\d+)", open(f"/proc/{pid}/task/{tid}/io").read()).group(1))
        except (OSError, AttributeError):
            wb = 0
        out[tid] = dict(comm=comm, utime=int(f[11]), stime=int(f[12]), nice=int(f[16]),
                        vol=vol, inv=inv, run=run_ns, wb=wb)
    return out


def io(pid):
    d = {}
    for line in open(f"/proc/{pid}/io"):
        k, v = line.split(":")
        d[k] = int(v)
    return d


def main():
    d = tempfile.mkdtemp(prefix="hato-filt-")
    try:
        data = d + "/data"
        subprocess.run([HATO, "init", "--data", data, "--domain", "bench.test"], check=True,
                       stdout=subprocess.DEVNULL)
        script = d + "/rules.sieve"
        if MODE == "sieve":
            shutil.copy(RULES, script)
        elif MODE == "flag":
            open(script, "w").write('require ["imap4flags"];\naddflag "$bench";\n')
        for i in range(ACCOUNTS):
            subprocess.run([HATO, "user", "add", f"rcpt{i}@bench.test", "--password-stdin",
                            "--data", data], input=b"bench-password\n", check=True,
                           stdout=subprocess.DEVNULL)
            if MODE != "none":
                subprocess.run([HATO, "sieve", "put", f"rcpt{i}@bench.test", "rules", script,
                                "--data", data], check=True, stdout=subprocess.DEVNULL)
                subprocess.run([HATO, "sieve", "activate", f"rcpt{i}@bench.test", "rules",
                                "--data", data], check=True, stdout=subprocess.DEVNULL)
        smtp = free_port()
        args = [HATO, "serve", "--data", data, "--smtp", f"127.0.0.1:{smtp}"]
        for flag in ["--pop3", "--imap", "--http", "--managesieve", "--imaps", "--pop3s",
                     "--submission", "--submissions"]:
            args += [flag, f"127.0.0.1:{free_port()}"]
        log = open(d + "/hato.log", "w")
        srv = subprocess.Popen(args, stderr=log)
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", smtp)).close(); break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0)
        t0, io0 = tasks(srv.pid), io(srv.pid)
        perf = None
        if PERF_RECORD:
            perf = subprocess.Popen(["perf", "record"] + os.environ.get("PERF_CG", "-g").split() + ["-F", "999", "-o", PERF_RECORD,
                                     "-p", str(srv.pid)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        elif PERF_STAT:
            perf = subprocess.Popen(["perf", "stat", "--per-thread", "-x", ",", "-e",
                                     "task-clock,context-switches,cpu-migrations,"
                                     "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,"
                                     "syscalls:sys_enter_futex,syscalls:sys_enter_pwrite64,"
                                     "syscalls:sys_enter_write,syscalls:sys_enter_sendmsg,"
                                     "syscalls:sys_enter_epoll_wait", "-p",
                                     str(srv.pid)], stdout=subprocess.DEVNULL,
                                    stderr=open(d + "/perfstat", "w"))
            time.sleep(0.5)
        out = subprocess.run([LOAD, "--host", "127.0.0.1", "--port", str(smtp), "--connections",
                              "20", "--messages", str(N), "--size", "4096", "--rcpt",
                              "rcpt@bench.test", "--rcpt-users", str(ACCOUNTS), "--from",
                              "loadgen@hato-bench.example", "--timeout", "600", "--json"],
                             capture_output=True, text=True)
        t1, io1 = tasks(srv.pid), io(srv.pid)
        if perf:
            perf.send_signal(signal.SIGINT); perf.wait()
        r = json.loads(out.stdout)
        res = dict(mode=MODE, n=N, msgs_per_s=r["msgs_per_s"], p50=r.get("p50_ms"),
                   p99=r.get("p99_ms"), errors=r.get("errors"))
        per = {}
        tot = dict(utime=0, stime=0, vol=0, inv=0, run=0)
        for tid, b in t1.items():
            a = t0.get(tid, dict(utime=0, stime=0, vol=0, inv=0, run=0))
            if b["nice"] == 19:
                key = "indexer"
            else:
                key = re.sub(r"[-_:]?\d+$", "", b["comm"])
            g = per.setdefault(key, dict(utime=0, stime=0, vol=0, inv=0, run=0, threads=0))
            g["threads"] += 1
            for k in ("utime", "stime", "vol", "inv", "run"):
                g[k] += b[k] - a[k]
                if key != "indexer":
                    tot[k] += b[k] - a[k]
        ms = lambda ticks: round(1000.0 * ticks / TCK / N, 4)
        res["run_ms"] = round(tot["run"] / 1e6 / N, 4)
        res["user_ms"] = ms(tot["utime"]); res["sys_ms"] = ms(tot["stime"])
        res["vcs_per_msg"] = round(tot["vol"] / N, 2); res["ivcs_per_msg"] = round(tot["inv"] / N, 2)
        res["write_bytes_per_msg"] = round((io1["write_bytes"] - io0["write_bytes"]) / N)
        res["wchar_per_msg"] = round((io1["wchar"] - io0["wchar"]) / N)
        res["syscw_per_msg"] = round((io1["syscw"] - io0["syscw"]) / N, 2)
        res["syscr_per_msg"] = round((io1["syscr"] - io0["syscr"]) / N, 2)
        res["tids"] = sorted(((int(t), round((b["run"] - t0.get(t, dict(run=0))["run"]) / 1e6 / N, 4), b["vol"] - t0.get(t, dict(vol=0))["vol"]) for t, b in t1.items()))
        res["threads"] = {k: dict(run_ms=round(v["run"] / 1e6 / N, 4), user_ms=ms(v["utime"]), sys_ms=ms(v["stime"]),
                                  vcs=round(v["vol"] / N, 2), ivcs=round(v["inv"] / N, 2),
                                  n=v["threads"]) for k, v in sorted(per.items())}
        if PERF_STAT:
            ps = {}
            tids = sorted(int(t) for t in t1)
            big = sorted(tids, key=lambda t: t1[str(t)]["vol"] - t0.get(str(t), dict(vol=0))["vol"])[-3:]
            raw = {}
            for line in open(d + "/perfstat").read().strip().splitlines():
                f = line.split(",")
                if len(f) > 3 and f[1] and f[1][0].isdigit():
                    tid = int(f[0].rsplit("-", 1)[1])
                    raw.setdefault(tid, {})[f[3].replace("syscalls:sys_enter_", "")] = float(f[1])
            def role(tid):
                e = raw[tid]
                if tid == srv.pid: return "main"
                if str(tid) in t1 and t1[str(tid)]["nice"] == 19: return "indexer"
                if e.get("fdatasync", 0) > 0: return "writer"
                if e.get("epoll_wait", 0) > N / 4: return "loop"
                if srv.pid + 3 <= tid <= srv.pid + 8: return "pool"
                return "other"
            for tid, e in raw.items():
                a, b = t0.get(str(tid)), t1.get(str(tid))
                if a and b:
                    e["wbytes"] = b["wb"] - a["wb"]
                    e["user_ms"] = 1000.0 * (b["utime"] - a["utime"]) / TCK
                    e["sys_ms"] = 1000.0 * (b["stime"] - a["stime"]) / TCK
                g = ps.setdefault(role(tid), {})
                for ev, v in e.items():
                    g[ev] = g.get(ev, 0) + v / N
            res["perf_per_msg"] = {r: {k: round(v, 3) for k, v in g.items()} for r, g in sorted(ps.items())}
        srv.send_signal(signal.SIGTERM); srv.wait()
        print(json.dumps(res))
    finally:
        shutil.rmtree(d, ignore_errors=True)


main()
