#!/usr/bin/env python3
"""bench/dns/run.py - `mistborn serve` (release, query log on, on SQLite and on PostgreSQL) against
dnsmasq and unbound in the same run, each loaded with the same 1,000,000 blocked names, on loopback
with no upstream. Server pinned to CPU 0, dnsperf to CPU 1.

Per server: load time (exec to the first correct answer for the LAST listed name), RSS, max qps
(dnsperf -q 100), then at a fixed RATE (default 20,000 qps) server CPU per query and lost queries,
REPS times (median and spread printed). For Mistborn, during every fixed-rate run GET /dns/stats is
polled every second (its slowest answer is printed) and the log is checked: lost log entries =
queries counted by the statistics minus rows the log gained (retention is set out of the way) and
the `log_dropped` counter. Then 10 reloads (a rule added through the CLI: each rebuilds the whole
1M-name filter) under RATE, with RSS and peak RSS (VmHWM) after them.

Needs: apt-get install -y --no-install-recommends dnsperf dnsmasq-base unbound dnsutils; for the
PostgreSQL case MISTBORN_TEST_POSTGRES_URL (an admin URL; a fresh database is created and dropped).
Env: W=/tmp/mbdns N=1000000 DUR=10 REPS=3 RATE=20000 CASES="mistborn-sqlite mistborn-postgres
dnsmasq unbound" MB=target/release/mistborn (built if missing: cargo build --release -p mistborn-http).
Prints a markdown table and writes it to $W/results.md. Only loopback traffic; kills only the
servers it started.
"""
import json, os, re, shutil, statistics, subprocess, sys, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
W = os.environ.get("W", "/tmp/mbdns")
N = int(os.environ.get("N", "1000000"))
DUR = int(os.environ.get("DUR", "10"))
REPS = int(os.environ.get("REPS", "3"))
RATE = int(os.environ.get("RATE", "20000"))
RELOADS = int(os.environ.get("RELOADS", "10"))
CASES = os.environ.get("CASES", "mistborn-sqlite mistborn-postgres dnsmasq unbound").split()
MB = os.environ.get("MB", os.path.join(ROOT, "target", "release", "mistborn"))
PG = os.environ.get("MISTBORN_TEST_POSTGRES_URL")
LAST = f"blk{N - 1:06d}.example-ads.test"
CLK = os.sysconf("SC_CLK_TCK")
PORTS = {"dnsmasq": 5301, "unbound": 5303, "mistborn-sqlite": 5305, "mistborn-postgres": 5307}
HTTP = {"mistborn-sqlite": 5385, "mistborn-postgres": 5387}


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def mem(pid):
    s = open(f"/proc/{pid}/status").read()
    get = lambda k: int(re.search(rf"^{k}:\s+(\d+)", s, re.M).group(1)) / 1024
    return get("VmRSS"), get("VmHWM")


def dig(port, name):
    out = subprocess.run(["dig", "+time=1", "+tries=1", "@127.0.0.1", "-p", str(port), name, "A"],
                         capture_output=True, text=True).stdout
    a = re.findall(r"^\S+\s+\d+\s+IN\s+A\s+(\S+)", out, re.M)
    st = re.search(r"status: (\w+)", out)
    return a[0] if a else (st.group(1) if st else "")


def dnsperf(port, extra):
    out = sh("taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d",
             f"{W}/in/queries.txt", "-l", str(DUR), "-c", "16", "-T", "1", *extra)
    num = lambda k: float(re.search(rf"{k}:\s+([\d.]+)", out).group(1))
    return {"sent": num("Queries sent"), "completed": num("Queries completed"),
            "lost": num("Queries lost"), "qps": num("Queries per second"),
            "avg_ms": num("Average Latency \\(s\\)") * 1000}


class Mistborn:
    def __init__(self, case):
        self.case, self.dir = case, f"{W}/{case}"
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.db = None
        url = ""
        if case == "mistborn-postgres":
            if not PG:
                raise RuntimeError("MISTBORN_TEST_POSTGRES_URL is not set")
            self.db = f"mbbench_{os.getpid()}"
            sh("psql", PG, "-qc", f"CREATE DATABASE {self.db}")
            url = f'database_url = "{PG.rsplit("/", 1)[0]}/{self.db}"\n'
        self.conf = f"{self.dir}/mistborn.toml"
        open(self.conf, "w").write(
            f'data_dir = "{self.dir}/data"\n{url}http_listen = "127.0.0.1:{HTTP[case]}"\n'
            f'[wireguard]\nbackend = "none"\n'
            f'[dns]\nlisten = ["127.0.0.1:{PORTS[case]}"]\nupstreams = []\n'
            # Retention out of the way, so rows gained = rows written.
            f"log_max_rows = 100000000\n")
        self.env = dict(os.environ, MISTBORN_LOG="warn")
        t = time.time()
        self.cli("dns", "add", "big", "--file", f"{W}/in/blocklist.txt")
        self.upload_s = time.time() - t
        self.token = self.cli("token", "add", "bench").strip().split()[-1]

    def cli(self, *args):
        return sh(MB, "--config", self.conf, *args, env=self.env)

    def cmd(self):
        return [MB, "--config", self.conf, "serve"]

    def stats(self):
        req = urllib.request.Request(f"http://127.0.0.1:{HTTP[self.case]}/api/v1/dns/stats?since_ms=0",
                                     headers={"Authorization": f"Bearer {self.token}"})
        t = time.time()
        with urllib.request.urlopen(req, timeout=30) as r:
            body = json.load(r)
        return body, (time.time() - t) * 1000

    def close(self):
        if self.db:
            subprocess.run(["psql", PG, "-qc", f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"],
                           capture_output=True)


def conf_dnsmasq():
    p = f"{W}/dnsmasq.conf"
    open(p, "w").write(
        f"port={PORTS['dnsmasq']}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
        f"no-poll\nlog-facility=-\npid-file=\nlocal=/mistborn/\naddn-hosts={W}/in/dnsmasq-local.txt\n"
        f"conf-file={W}/in/dnsmasq-address.conf\n")
    return ["dnsmasq", "-k", "-C", p]


def conf_unbound():
    p = f"{W}/unbound.conf"
    open(p, "w").write(
        f'server:\n\tinterface: 127.0.0.1\n\tport: {PORTS["unbound"]}\n\tdo-daemonize: no\n\tchroot: ""\n'
        f'\tusername: ""\n\tdirectory: "{W}"\n\tpidfile: ""\n\tuse-syslog: no\n\tlogfile: ""\n'
        f'\tnum-threads: 1\n\tmodule-config: "iterator"\n\tdo-not-query-localhost: no\n'
        f'\taccess-control: 127.0.0.0/8 allow\n\tinclude: "{W}/in/unbound-local.conf"\n'
        f'\tinclude: "{W}/in/unbound-null.conf"\nforward-zone:\n\tname: "."\n\tforward-addr: 127.0.0.1@9\n')
    return ["unbound", "-d", "-c", p]


def spread(v, fmt="{:.1f}"):
    if not v:
        return "-"
    return (fmt + " ({}-{})").format(statistics.median(v), fmt.format(min(v)), fmt.format(max(v)))


def run_case(case):
    mb = Mistborn(case) if case.startswith("mistborn") else None
    cmd = mb.cmd() if mb else (conf_dnsmasq() if case == "dnsmasq" else conf_unbound())
    port = PORTS[case]
    row = {"case": case}
    log = open(f"{W}/{case}.log", "w")
    t = time.time()
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=log, stderr=subprocess.STDOUT,
                            env=mb.env if mb else None)
    try:
        for _ in range(1200):
            if dig(port, LAST) == "0.0.0.0":
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{case} exited: see {W}/{case}.log")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{case}: no blocked answer for {LAST}")
        row["load_ms"] = (time.time() - t) * 1000
        time.sleep(1)
        row["rss_load"] = mem(proc.pid)[0]
        print(f"== {case}: {LAST} blocked after {row['load_ms']:.0f} ms, RSS {row['rss_load']:.0f} MiB", flush=True)
        maxq, cpu, lost, stat_ms, log_lost, dropped = [], [], 0, [], [], []
        for rep in range(REPS):
            r = dnsperf(port, ["-q", "100"])
            maxq.append(r["qps"])
            before = mb.stats()[0] if mb else None
            stop = threading.Event()
            poll = []

            def poller():
                while not stop.wait(1.0):
                    poll.append(mb.stats()[1])

            th = threading.Thread(target=poller) if mb else None
            if th:
                th.start()
            c0, t0 = cpu_ticks(proc.pid), time.time()
            r = dnsperf(port, ["-Q", str(RATE)])
            c1, t1 = cpu_ticks(proc.pid), time.time()
            if th:
                stop.set(); th.join()
            cpu.append((c1 - c0) / CLK / r["completed"] * 1e6)
            lost += int(r["lost"])
            if mb:
                stat_ms += poll
                time.sleep(2.5)  # the writer's last batch and the stats persist
                after = mb.stats()[0]
                answered = after["total"] - before["total"]
                gained = after["log_rows"] - before["log_rows"]
                log_lost.append(answered - gained)
                dropped.append(after["log_dropped"] - before["log_dropped"])
            print(f"   rep {rep + 1}: max {maxq[-1]:.0f} qps; at {RATE}: {cpu[-1]:.1f} µs/query, lost {int(r['lost'])}"
                  + (f", log rows missing {log_lost[-1]}, dropped {dropped[-1]}, stats slowest {max(poll, default=0):.0f} ms" if mb else ""),
                  flush=True)
        row.update(maxq=maxq, cpu=cpu, lost=lost, stat_ms=stat_ms, log_lost=log_lost, dropped=dropped)
        row["rss_bench"] = mem(proc.pid)[0]
        if mb and RELOADS:
            # Reloads under the fixed rate: each CLI rule change rebuilds the 1M-name filter.
            res = {}
            th = threading.Thread(target=lambda: res.update(dnsperf(port, ["-Q", str(RATE)])))
            th.start()
            time.sleep(0.5)
            for i in range(RELOADS):
                name = f"reload{i}.bench.test"
                mb.cli("dns", "rule", "add", "deny", name)
                for _ in range(400):
                    if dig(port, name) == "0.0.0.0":
                        break
                    time.sleep(0.05)
                else:
                    raise RuntimeError(f"reload {i} not applied")
            th.join()
            row["reload_lost"] = int(res.get("lost", -1))
            row["reload_sent"] = int(res.get("sent", 0))
            time.sleep(1)
        row["rss_end"], row["hwm"] = mem(proc.pid)
        print(f"   RSS {row['rss_end']:.0f} MiB (peak {row['hwm']:.0f})"
              + (f"; {RELOADS} reloads under {RATE} qps lost {row['reload_lost']} of {row['reload_sent']}" if mb and RELOADS else ""),
              flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if mb:
            mb.close()
    return row


def main():
    if not os.path.exists(MB) and any(c.startswith("mistborn") for c in CASES):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "mistborn-http", "--bin", "mistborn"],
                       cwd=ROOT, check=True)
    os.makedirs(W, exist_ok=True)
    if not os.path.exists(f"{W}/in/.n{N}"):
        shutil.rmtree(f"{W}/in", ignore_errors=True)
        subprocess.run([sys.executable, f"{HERE}/gen.py", f"{W}/in", str(N)], check=True)
        open(f"{W}/in/.n{N}", "w").close()
    load = open("/proc/loadavg").read().split()[:3]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for c in CASES:
        try:
            rows.append(run_case(c))
        except Exception as e:  # one broken case must not hide the others
            print(f"== {c}: FAILED: {e}", flush=True)
            rows.append({"case": c, "error": str(e)})
    load_end = open("/proc/loadavg").read().split()[:3]
    peers = [r for r in rows if not r["case"].startswith("mistborn") and "cpu" in r]
    best_cpu = min((statistics.median(r["cpu"]) for r in peers), default=None)
    best_qps = max((statistics.median(r["maxq"]) for r in peers), default=None)
    out = [f"Run {started}: N = {N:,}, {REPS} runs of {DUR} s per figure (median, min-max), "
           f"load average {' '.join(load)} at start, {' '.join(load_end)} at the end.", "",
           f"| server | load to first answer | RSS after load / after bench / after {RELOADS} reloads (peak) | max qps | CPU µs/query at {RATE} qps | vs best peer | lost queries at {RATE} | lost log rows (dropped) | slowest /dns/stats | lost during {RELOADS} reloads |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['case']} | failed: {r['error']} |||||||||")
            continue
        mbr = r["case"].startswith("mistborn")
        vs = f"{statistics.median(r['cpu']) / best_cpu:.2f}x" if best_cpu else "-"
        slowest = "%.0f ms" % max(r["stat_ms"]) if mbr and r["stat_ms"] else "-"
        out.append(
            f"| {r['case']} | {r['load_ms']:.0f} ms | {r['rss_load']:.0f} / {r['rss_bench']:.0f} / {r['rss_end']:.0f} ({r['hwm']:.0f}) MiB"
            f" | {spread(r['maxq'], '{:.0f}')} | {spread(r['cpu'])} | {vs} | {r['lost']}"
            f" | {(str(sum(r['log_lost'])) + ' (' + str(sum(r['dropped'])) + ')') if mbr else '-'}"
            f" | {slowest}"
            f" | {(str(r.get('reload_lost')) + ' of ' + str(r.get('reload_sent'))) if mbr and 'reload_lost' in r else '-'} |")
    if best_qps:
        out += ["", f"Best peer: {best_cpu:.1f} µs/query at {RATE} qps, {best_qps:.0f} max qps (median)."]
    text = "\n".join(out) + "\n"
    open(f"{W}/results.md", "w").write(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
