#!/usr/bin/env python3
"""fdfs-httpd vs nginx benchmark driver (started by bench/run; see docs/benchmark.md).

Starts both servers over the same stores, runs wrk per scenario with the two
sides interleaved (warm-up discarded, median of the repetitions), checks every
response status, and writes bench/RESULTS.md.
"""

import argparse
import datetime
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request  # noqa: F401  (kept for ad-hoc debugging)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")

FDFS_PORT = 8888
NGX_PORT = 8889
NGX_PORT2 = 8890  # keepalive proxy (front) / redirect (main)
FO_PORT = 8891  # failover: nothing listens on the source's 127.0.0.3:8891, a peer on 127.0.0.5 does


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- processes

def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


class Proc:
    """A server process (plus its children, for nginx workers)."""

    def __init__(self, name, argv, pin):
        self.name = name
        if pin is not None:
            argv = ["taskset", "-c", str(pin)] + argv
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(f"/tmp/fdfs-bench-{name}.err", "w"))

    def pids(self):
        return [self.p.pid] + children(self.p.pid)

    def cpu_ticks(self):
        t = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                t += int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                pass
        return t

    def _status_kb(self, key):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith(key + ":"):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                pass
        return total

    def rss_kb(self):
        return self._status_kb("VmRSS")

    def hwm_kb(self):
        return self._status_kb("VmHWM")

    def reset_hwm(self):
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM if not self.name.startswith("nginx") else signal.SIGQUIT)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


# ---------------------------------------------------------------- configs

def fdfs_conf(path, store, ip, mode, workers, peers, extra=""):
    with open(path, "w") as f:
        f.write(
            f"base_path = {store}\nload_fdfs_parameters_from_tracker = false\n"
            f"storage_sync_file_max_delay = 86400\nuse_storage_id = false\n"
            f"group_name = group1\nurl_have_group_name = true\n"
            f"store_path_count = 1\nstore_path0 = {store}\nlog_level = warn\n"
            f"response_mode = {mode}\nlocal_ip_addrs = {ip}\npeer_ip_addrs = {peers}\n"
            f"listen = {ip}:{FDFS_PORT}\naccess_log = off\nworker_threads = {workers}\n"
            f"http.default_content_type = application/octet-stream\n{extra}"
        )


def nginx_conf(path, prefix, workers, servers):
    os.makedirs(prefix, exist_ok=True)
    with open(path, "w") as f:
        f.write(f"""worker_processes {workers};
worker_rlimit_nofile {os.sysconf('SC_OPEN_MAX')};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{'user root;' if os.geteuid() == 0 else ''}
events {{ worker_connections 8192; multi_accept on; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    open_file_cache max={min(100000, os.sysconf('SC_OPEN_MAX') // 2)} inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{servers}
}}
""")


def static_server(ip, port, store):
    return f"""    server {{
        listen {ip}:{port} reuseport backlog=1024;
        location ~ ^/group1/M00/(.*)$ {{ alias {store}/data/$1; }}
    }}"""


def start_all(root, bin_, workers, pin):
    """Starts main, front and source nodes of both sides; returns name→Proc."""
    procs = {}
    cfg = os.path.join(root, "conf")
    os.makedirs(cfg, exist_ok=True)
    main, front, source = (os.path.join(root, n) for n in ("main", "front", "source"))
    nodes = [("main", main, "127.0.0.1", "redirect"), ("front", front, "127.0.0.2", "proxy"),
             ("source", source, "127.0.0.3", "redirect")]
    for name, store, ip, mode in nodes:
        c = os.path.join(cfg, f"fdfs-{name}.conf")
        fdfs_conf(c, store, ip, mode, workers, "127.0.0.3" if name != "source" else "127.0.0.2")
        procs[f"fdfs-{name}"] = Proc(f"fdfs-{name}", [bin_, "--config", c], pin)
    # Access log on (combined format, to a file): the main store on 127.0.0.4.
    logs = os.path.join(root, "logs")
    os.makedirs(logs, exist_ok=True)
    for f in os.listdir(logs):
        os.remove(os.path.join(logs, f))
    c = os.path.join(cfg, "fdfs-logs.conf")
    fdfs_conf(c, main, "127.0.0.4", "redirect", workers, "127.0.0.3",
              f"access_log = {logs}/fdfs-access.log\naccess_log_format = combined\n")
    procs["fdfs-logs"] = Proc("fdfs-logs", [bin_, "--config", c], pin)
    # Failover (fdfs-httpd only): a front on 127.0.0.6 whose peers' HTTP port
    # is FO_PORT; the source 127.0.0.3 has nothing there, the peer 127.0.0.5
    # serves a copy of the source's store.
    peer = os.path.join(root, "peer")
    shutil.rmtree(peer, ignore_errors=True)
    shutil.copytree(source, peer, symlinks=True)
    c = os.path.join(cfg, "fdfs-fo-peer.conf")
    fdfs_conf(c, peer, "127.0.0.5", "redirect", workers, "127.0.0.6")
    with open(c, "a") as f:
        f.write(f"listen = 127.0.0.5:{FO_PORT}\n")
    procs["fdfs-fo-peer"] = Proc("fdfs-fo-peer", [bin_, "--config", c], pin)
    c = os.path.join(cfg, "fdfs-fo-front.conf")
    fdfs_conf(c, front, "127.0.0.6", "proxy", workers, "127.0.0.3,127.0.0.5",
              f"peer_http_port = {FO_PORT}\n")
    procs["fdfs-fo-front"] = Proc("fdfs-fo-front", [bin_, "--config", c], pin)
    ngx = {
        "main": static_server("127.0.0.1", NGX_PORT, main) + f"""
    server {{
        listen 127.0.0.1:{NGX_PORT2} reuseport backlog=1024;
        location /group1/M00/ {{ return 302 http://127.0.0.3:{NGX_PORT}$request_uri; }}
    }}""",
        "front": f"""    upstream src_keepalive {{ server 127.0.0.3:{NGX_PORT}; keepalive 64; }}
    server {{
        listen 127.0.0.2:{NGX_PORT} reuseport backlog=1024;
        location /group1/M00/ {{ proxy_pass http://127.0.0.3:{NGX_PORT}; }}
    }}
    server {{
        listen 127.0.0.2:{NGX_PORT2} reuseport backlog=1024;
        location /group1/M00/ {{
            proxy_pass http://src_keepalive;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}""",
        "source": static_server("127.0.0.3", NGX_PORT, source),
        "logs": static_server("127.0.0.4", NGX_PORT, main).replace(
            "reuseport backlog=1024;",
            f"reuseport backlog=1024;\n        access_log {logs}/nginx-access.log combined;"),
    }
    for name, servers in ngx.items():
        prefix = os.path.join(root, f"nginx-{name}")
        c = os.path.join(prefix, "nginx.conf")
        nginx_conf(c, prefix, workers, servers)
        procs[f"nginx-{name}"] = Proc(f"nginx-{name}", ["nginx", "-p", prefix, "-e", f"{prefix}/error.log",
                                                         "-c", c, "-g", "daemon off;"], pin)
    time.sleep(1.0)
    for name, p in procs.items():
        if p.p.poll() is not None:
            sys.exit(f"{name} exited at start; see /tmp/fdfs-bench-{name}.err")
    return procs


# ---------------------------------------------------------------- wrk

UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
LAT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(out):
    r = {"rps": 0.0, "bps": 0.0, "requests": 0, "bad": 0, "sockerr": 0, "p50": None, "p99": None}
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    if m:
        r["bps"] = float(m.group(1)) * UNITS.get(m.group(2), 1)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["bad"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["sockerr"] = sum(int(x) for x in m.groups())
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            r[key] = float(m.group(1)) * LAT[m.group(2)]
    return r


def ab_head(url, conns, secs, pin):
    """wrk waits for a body after HEAD, so HEAD runs through ab (keep-alive)."""
    argv = ["ab", "-q", "-k", "-i", "-c", str(conns), "-t", str(secs), "-n", "100000000", url]
    if pin is not None:
        argv = ["taskset", "-c", str(pin)] + argv
    out = subprocess.run(argv, capture_output=True, text=True)
    out = out.stdout + out.stderr
    r = {"rps": 0.0, "bps": 0.0, "requests": 0, "bad": 0, "sockerr": 0, "p50": None, "p99": None}
    for key, pat, conv in (("requests", r"Complete requests:\s+(\d+)", int),
                           ("rps", r"Requests per second:\s+([\d.]+)", float),
                           ("bad", r"Non-2xx responses:\s+(\d+)", int),
                           ("sockerr", r"Failed requests:\s+(\d+)", int),
                           ("bps", r"Transfer rate:\s+([\d.]+)", lambda v: float(v) * 1024)):
        m = re.search(pat, out)
        if m:
            r[key] = conv(m.group(1))
    return r, out


def wrk(url, conns, threads, secs, pin, script=None, headers=(), latency=False):
    if script == "HEAD":
        return ab_head(url, conns, secs, pin)
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--timeout", "10s"]
    if latency:
        argv.append("--latency")
    for h in headers:
        argv += ["-H", h]
    if script:
        argv += ["-s", script]
    argv.append(url)
    if pin is not None:
        argv = ["taskset", "-c", str(pin)] + argv
    p = subprocess.run(argv, capture_output=True, text=True)
    return parse_wrk(p.stdout + p.stderr), p.stdout + p.stderr


def curl_check(url, headers, method, expect):
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time", "10"]
    if method == "HEAD":
        argv.append("-I")
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True).stdout.split()
    code = int(out[0]) if out else 0
    return code == expect, code


def etag(url):
    out = sh(f"curl -sI --max-time 5 '{url}'").stdout
    m = re.search(r"^etag:\s*(.+?)\s*$", out, re.M | re.I)
    return m.group(1) if m else '"none"'


# ---------------------------------------------------------------- scenarios

def read_ids(root, name):
    with open(os.path.join(root, "ids", f"{name}.txt")) as f:
        return [l.strip() for l in f if l.strip()]


def scenarios(root, scripts):
    ids = {n: read_ids(root, n)[0] for n in
           ("size_1k", "size_4k", "size_16k", "size_256k", "size_1m", "size_64m", "lag_4k", "lag_1m")}
    f1, n1 = f"http://127.0.0.1:{FDFS_PORT}", f"http://127.0.0.1:{NGX_PORT}"
    s = []

    def add(name, target, fdfs_url, ngx_url, expect=200, conns=64, headers=(), script=None,
            method="GET", latency=False, min_ratio=None):
        s.append(dict(name=name, target=target, fdfs=fdfs_url, nginx=ngx_url, expect=expect, conns=conns,
                      headers=list(headers), script=script, method=method, latency=latency, min_ratio=min_ratio))

    # Targets of the performance issue (ratio ≥); with 2 workers every
    # scenario also needs ≥ 1.0 (fmt_row).
    for lbl, tgt in (("1k", 1.1), ("4k", 1.1), ("16k", 1.1), ("256k", 1.0), ("1m", 1.0)):
        add(f"GET {lbl}", tgt, f1 + ids[f"size_{lbl}"], n1 + ids[f"size_{lbl}"])
    # 64 connections × 64 MiB would not complete enough responses in a few seconds.
    add("GET 64m c=8", 0.9, f1 + ids["size_64m"], n1 + ids["size_64m"], conns=8)
    add("GET 4k c=1 (latency)", None, f1 + ids["size_4k"], n1 + ids["size_4k"], conns=1, latency=True)
    add("GET 4k c=1024", 1.0, f1 + ids["size_4k"], n1 + ids["size_4k"], conns=1024)
    add("Range 64k of 1m", 1.1, f1 + ids["size_1m"], n1 + ids["size_1m"], expect=206,
        headers=["Range: bytes=262144-327679"])
    tree = f"random {len(read_ids(root, 'tree')) // 1000}k tree"
    add(tree, 1.1, f1, n1, script=scripts["tree"])
    # More files than either open-file cache holds (fdfs-httpd ≤ 10,000,
    # nginx ≤ 100,000) when the tree has ≥ 200,000.
    add(tree + " c=1024", 1.0, f1, n1, script=scripts["tree"], conns=1024)
    add("GET 4k access log", 1.0, f"http://127.0.0.4:{FDFS_PORT}" + ids["size_4k"],
        f"http://127.0.0.4:{NGX_PORT}" + ids["size_4k"])
    add("HEAD 4k (ab -k)", 1.1, f1 + ids["size_4k"], n1 + ids["size_4k"], script="HEAD", method="HEAD")
    add("304 If-None-Match 4k", 1.1, f1 + ids["size_4k"], n1 + ids["size_4k"], expect=304,
        headers=["If-None-Match: {etag}"])
    add("redirect 302", 1.2, f1 + ids["lag_4k"], f"http://127.0.0.1:{NGX_PORT2}" + ids["lag_4k"], expect=302)
    fr = f"http://127.0.0.2:{FDFS_PORT}"
    add("proxy 4k vs module-style", 2.5, fr + ids["lag_4k"], f"http://127.0.0.2:{NGX_PORT}" + ids["lag_4k"])
    add("proxy 4k vs keepalive", 1.0, fr + ids["lag_4k"], f"http://127.0.0.2:{NGX_PORT2}" + ids["lag_4k"])
    add("proxy 1m vs keepalive", 2.0, fr + ids["lag_1m"], f"http://127.0.0.2:{NGX_PORT2}" + ids["lag_1m"])
    # No nginx equivalent: the module has no failover.
    add("lag failover 4k (source down)", None, f"http://127.0.0.6:{FDFS_PORT}" + ids["lag_4k"], None,
        latency=True)
    return s


def write_scripts(root):
    d = os.path.join(root, "lua")
    os.makedirs(d, exist_ok=True)
    tree = os.path.join(root, "ids", "tree.txt")
    scripts = {"tree": os.path.join(d, "tree.lua"), "head": os.path.join(d, "head.lua")}
    with open(scripts["tree"], "w") as f:
        f.write(f"""local paths = {{}}
local n = 0
function init(args)
  for line in io.lines("{tree}") do n = n + 1; paths[n] = line end
  math.randomseed(os.time() + tonumber(tostring({{}}):sub(8), 16))
end
function request()
  return wrk.format("GET", paths[math.random(n)])
end
""")
    with open(scripts["head"], "w") as f:
        f.write('wrk.method = "HEAD"\n')
    return scripts


# ---------------------------------------------------------------- run

def side_procs(procs, side, sc):
    if "failover" in sc["name"]:
        return [procs["fdfs-fo-front"], procs["fdfs-fo-peer"]]
    if "access log" in sc["name"]:
        return [procs[f"{side}-logs"]]
    if "proxy" in sc["name"]:
        return [procs[f"{side}-front"], procs[f"{side}-source"]]
    return [procs[f"{side}-main"]]


def warm_page_cache(root):
    """Reads every file of the tree once, so neither side pays for the
    other's (or its own first) disk reads: both are measured on a warm page
    cache, as a busy storage node serves its hot set."""
    data = os.path.join(root, "main", "data")
    for url in read_ids(root, "tree"):
        rel = url.split("/M00/", 1)[1]
        with open(os.path.join(data, rel), "rb") as f:
            f.read()


def run_config(root, bin_, cfg, args, log):
    workers, pinned = cfg
    srv_pin, wrk_pin = (0, 1) if pinned else (None, None)
    threads = 1 if pinned else 2
    procs = start_all(root, bin_, workers, srv_pin)
    idle = {"fdfs": procs["fdfs-main"].rss_kb(), "nginx": procs["nginx-main"].rss_kb()}
    scripts = write_scripts(root)
    results = []
    try:
        for sc in scenarios(root, scripts):
            if args.only and not re.search(args.only, sc["name"]):
                continue
            res = {"sc": sc, "fdfs": [], "nginx": [], "fail": {}}
            if sc["script"] == scripts["tree"]:
                warm_page_cache(root)
            hdrs = {}
            if sc["nginx"] is None:
                res["fail"]["nginx"] = "no nginx equivalent"
            for side in ("fdfs", "nginx"):
                if side in res["fail"]:
                    hdrs[side] = []
                    continue
                h = [x.replace("{etag}", etag(sc[side])) for x in sc["headers"]]
                hdrs[side] = h
                ok, code = curl_check(sc[side] if sc["script"] in (None, "HEAD")
                                      else sc[side] + read_ids(root, "tree")[0], h, sc["method"], sc["expect"])
                if not ok:
                    res["fail"][side] = f"status {code}, expected {sc['expect']}"
            conns = sc["conns"]
            thr = 1 if conns == 1 else threads
            for rep in range(args.reps):
                order = ("fdfs", "nginx") if rep % 2 == 0 else ("nginx", "fdfs")
                for side in order:
                    if side in res["fail"]:
                        continue
                    ps = side_procs(procs, side, sc)
                    wrk(sc[side], conns, thr, args.warmup, wrk_pin, sc["script"], hdrs[side])
                    for p in ps:
                        p.reset_hwm()
                    c0 = sum(p.cpu_ticks() for p in ps)
                    r, out = wrk(sc[side], conns, thr, args.duration, wrk_pin, sc["script"], hdrs[side],
                                 sc["latency"])
                    r["cpu"] = (sum(p.cpu_ticks() for p in ps) - c0) / TICK
                    r["hwm"] = sum(p.hwm_kb() for p in ps)
                    log.write(f"## {cfg} {sc['name']} {side} rep {rep}\n{out}\n")
                    log.flush()
                    if r["bad"] or r["requests"] == 0:
                        res["fail"][side] = f"{r['bad']} non-2xx/3xx of {r['requests']}"
                    res[side].append(r)
            results.append(res)
            print(fmt_row(res, cfg[0]), flush=True)
    finally:
        idle_after = {"fdfs": procs["fdfs-main"].rss_kb(), "nginx": procs["nginx-main"].rss_kb()}
        for name in ("fdfs", "nginx"):
            log_file = os.path.join(root, "logs", f"{name}-access.log")
            if os.path.exists(log_file):
                with open(log_file, "rb") as f:
                    n = sum(1 for _ in f)
                print(f"{name} access log: {n:,} lines", flush=True)
        for p in procs.values():
            p.stop()
    return results, idle, idle_after


def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(res, side):
    rs = res[side]
    if side in res["fail"] or not rs:
        return None
    reqs = med(rs, "requests") or 0
    cpu10k = statistics.median([r["cpu"] / r["requests"] * 1e4 for r in rs if r["requests"]])
    return dict(rps=med(rs, "rps"), mbps=med(rs, "bps") / 1e6, cpu10k=cpu10k,
                hwm=max(r["hwm"] for r in rs) / 1024, p50=med(rs, "p50"), p99=med(rs, "p99"),
                sockerr=max(r["sockerr"] for r in rs), reqs=reqs)


def fmt_row(res, workers):
    sc = res["sc"]
    f, n = summarize(res, "fdfs"), summarize(res, "nginx")

    def num(x, fmtstr):
        return fmtstr.format(x) if x is not None else "–"

    ratio = f["rps"] / n["rps"] if f and n and n["rps"] else None
    if sc["latency"] and f and n:
        extra = f" p50 {f['p50']:.3f}/{n['p50']:.3f} ms, p99 {f['p99']:.3f}/{n['p99']:.3f} ms"
    elif sc["latency"] and f:
        extra = f" p50 {f['p50']:.3f} ms, p99 {f['p99']:.3f} ms (c=64)"
    else:
        extra = ""
    target = sc["target"]
    if target is not None and workers > 1:
        target = max(target, 1.0)
    verdict = "" if target is None or ratio is None else (" ✔" if ratio >= target else " ✘")
    fail = "; ".join(f"{k}: {v}" for k, v in res["fail"].items() if v != "no nginx equivalent")
    if res["fail"].get("nginx") == "no nginx equivalent":
        extra += " no nginx equivalent"
    return ("| {name} | {fr} | {nr} | {fm} | {nm} | {ratio}{v} | {tgt} | {fc} | {nc} | {fh} | {nh} |{extra}{fail} |"
            .format(name=sc["name"], fr=num(f and f["rps"], "{:,.0f}"), nr=num(n and n["rps"], "{:,.0f}"),
                    fm=num(f and f["mbps"], "{:,.1f}"), nm=num(n and n["mbps"], "{:,.1f}"),
                    ratio=num(ratio, "{:.2f}"), v=verdict, tgt=num(target, "≥ {:.1f}"),
                    fc=num(f and f["cpu10k"], "{:.3f}"), nc=num(n and n["cpu10k"], "{:.3f}"),
                    fh=num(f and f["hwm"], "{:.1f}"), nh=num(n and n["hwm"], "{:.1f}"),
                    extra=extra, fail=(" pending/failed: " + fail) if fail else ""))


HEADER = ("| scenario | fdfs req/s | nginx req/s | fdfs MB/s | nginx MB/s | ratio | target | "
          "fdfs CPU-s/10k | nginx CPU-s/10k | fdfs peak RSS MiB | nginx peak RSS MiB | notes |\n"
          "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")


def versions(bin_):
    cpu = sh("grep -m1 'model name' /proc/cpuinfo").stdout.split(":", 1)[-1].strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} ({os.cpu_count()} CPUs)",
        "kernel": os.uname().release,
        "nginx": sh("nginx -v 2>&1").stdout.strip() + sh("nginx -v 2>&1").stderr.strip(),
        "wrk": (sh("wrk -v 2>&1").stdout.splitlines() or ["?"])[0][:40],
        "fdfs-httpd": sh(f"{bin_} --version").stdout.strip() + " @ " + sh(
            f"git -C {REPO} rev-parse --short HEAD").stdout.strip() + (
            " (dirty)" if sh(f"git -C {REPO} status --porcelain -- src").stdout.strip() else ""),
        "rustc": sh("rustc --version").stdout.strip(),
        "nofile": str(os.sysconf("SC_OPEN_MAX")),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--duration", type=int)
    ap.add_argument("--only", help="regex over scenario names")
    ap.add_argument("--configs", default="1p,2u", help="comma list: 1p = 1 worker pinned, 2u = 2 workers unpinned")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    args.reps = args.reps or (1 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 5)
    args.warmup = 1
    cfgs = []
    for c in args.configs.split(","):
        cfgs.append((int(c[:-1]), c.endswith("p")))
    if os.cpu_count() < 2:
        cfgs = [(w, False) for w, _ in cfgs]
    v = versions(args.bin)
    log = open(os.path.join(args.root, "wrk.log"), "w")
    sections = []
    t0 = time.time()
    for cfg in cfgs:
        title = (f"{cfg[0]} worker, server pinned to CPU 0, wrk (1 thread) on CPU 1" if cfg[1]
                 else f"{cfg[0]} workers unpinned, wrk 2 threads")
        print(f"\n### {title}\n\n{HEADER}", flush=True)
        results, idle, idle_after = run_config(args.root, args.bin, cfg, args, log)
        rows = "\n".join(fmt_row(r, cfg[0]) for r in results)
        lat = [r for r in results if r["sc"]["latency"]]
        lat_txt = ""
        for r in lat:
            f, n = summarize(r, "fdfs"), summarize(r, "nginx")
            if f and n:
                lat_txt = (f"\nc=1 latency, 4 KiB: fdfs-httpd p50 {f['p50']:.3f} ms, p99 {f['p99']:.3f} ms; "
                           f"nginx p50 {n['p50']:.3f} ms, p99 {n['p99']:.3f} ms.\n")
        sections.append(f"### {title}\n\n{HEADER}\n{rows}\n{lat_txt}\n"
                        f"Idle RSS at start: fdfs-httpd {idle['fdfs'] / 1024:.1f} MiB, nginx (master + workers) "
                        f"{idle['nginx'] / 1024:.1f} MiB; after the run: fdfs-httpd {idle_after['fdfs'] / 1024:.1f} "
                        f"MiB, nginx {idle_after['nginx'] / 1024:.1f} MiB.\n")
    wall = time.time() - t0
    mode = "quick" if args.quick else "full"
    text = (f"# Benchmark results: fdfs-httpd vs nginx\n\n"
            f"Generated by `bench/run{' --quick' if args.quick else ''}` ({mode}: {args.reps} repetition(s) of "
            f"{args.duration:g} s per side and scenario after a {args.warmup:g} s warm-up, sides interleaved, "
            f"median reported; wall time {wall / 60:.1f} min).\n\n"
            + "".join(f"- {k}: {val}\n" for k, val in v.items())
            + "\nratio = fdfs-httpd req/s ÷ nginx req/s (✔ target met, ✘ missed). MB/s = wrk Transfer/sec "
              "(headers + body, 10^6 B). CPU-s/10k = server user+system CPU seconds per 10,000 requests "
              "(proxy rows: front + source node). Peak RSS = VmHWM during the measured run, summed over "
              "the side's processes (nginx: master + workers; proxy rows: both nodes). A scenario whose "
              "responses were not all the expected status is shown as failed and not counted.\n\n"
            + "\n".join(sections))
    with open(args.out, "w") as f:
        f.write(text)
    print(f"\nwrote {args.out} ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
