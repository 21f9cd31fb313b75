#!/usr/bin/env python3
"""How the daemon's API answers under abuse (issue 16.1): GET /healthz latency, p50 and p99 over
REQUESTS requests, with nothing else going on, then with SLOW slowloris clients (a request line
and never the end of the headers) and FOLLOWERS log followers held open. Prints both and their
ratio; the goal is under 100 ms with 1,000 slow clients and 2,000 followers. It is not a test:
it exits 0 when the goal is missed.

usage: python3 bench/api-load.py [ENGINE]   (default: target/release/engine, built if missing)
env:   SLOW=1000 FOLLOWERS=2000 REQUESTS=200
"""
import faulthandler, os, re, socket, subprocess, sys, tempfile, time, urllib.request
faulthandler.dump_traceback_later(int(os.environ.get("DUMP_AFTER", "100000")))

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
engine = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "engine")
if len(sys.argv) == 1:
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "engine", "--manifest-path",
                    os.path.join(root, "Cargo.toml")], check=True)
slow, followers, requests = (int(os.environ.get(k, d)) for k, d in
                             (("SLOW", 1000), ("FOLLOWERS", 2000), ("REQUESTS", 200)))

work = tempfile.mkdtemp(prefix="api-load-")
with open(os.path.join(work, "long.pipe"), "w") as f:
    f.write('pipeline long {\n  step wait { run "echo started; sleep 600" }\n}\n')
log = open(os.path.join(work, "daemon.log"), "w+")
daemon = subprocess.Popen([engine, "daemon", "--listen", "127.0.0.1:0", "--grace", "1"],
                          cwd=work, stdout=subprocess.DEVNULL, stderr=log)
try:
    for _ in range(200):
        text = open(log.name).read()
        if "pipeline loaded" in text:
            break
        time.sleep(0.05)
    host, port = re.search(r"listen=([0-9.]+):(\d+)", text).groups()
    port = int(port)
    token = open(os.path.join(work, ".engine", "api-token")).read().strip()
    base = f"http://{host}:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    urllib.request.urlopen(urllib.request.Request(base + "/pipelines/long/trigger", method="POST",
                                                  headers=auth)).read()
    time.sleep(1)

    def latencies():
        out = []
        for _ in range(requests):
            start = time.perf_counter()
            urllib.request.urlopen(base + "/healthz", timeout=60).read()
            out.append((time.perf_counter() - start) * 1000)
        out.sort()
        return out[len(out) // 2], out[int(len(out) * 0.99) - 1]

    quiet = latencies()
    held = []
    for _ in range(slow):
        s = socket.create_connection((host, port))
        s.sendall(b"GET /runs HTTP/1.1\r\nHost: localhost\r\n")
        held.append(s)
    request = (f"GET /runs/1/tasks/1/logs?follow=1 HTTP/1.1\r\nHost: localhost\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
    answered = 0
    for _ in range(followers):
        s = socket.create_connection((host, port))
        s.settimeout(30)
        s.sendall(request)
        try:
            answered += s.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
        held.append(s)
    loaded = latencies()
    print(f"healthz, nothing else:                    p50 {quiet[0]:7.2f} ms  p99 {quiet[1]:7.2f} ms")
    print(f"healthz, {slow} slow + {answered}/{followers} followers: p50 {loaded[0]:7.2f} ms  p99 {loaded[1]:7.2f} ms")
    print(f"ratio loaded/quiet p50: {loaded[0] / quiet[0]:.1f}x   goal: p99 under 100 ms "
          f"({'met' if loaded[1] < 100 else 'missed'})")
finally:
    daemon.kill()
    daemon.wait()
