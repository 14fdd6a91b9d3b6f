#!/usr/bin/env python3
"""Two `blindrelay chat --json` processes through one real relay, as a
script would drive them (issue 29). Self-contained: a throwaway PKI in a
temporary directory, a relay on a free port.

  chat_json.py latency v1|v2 [N]          one message at a time, N times:
                                          command written -> reader's `message`
  chat_json.py burst v1|v2 LIMIT COUNT    COUNT messages at once on a limit of
                                          LIMIT per 5 s: drain time, lost, doubled

BIN (default target/release/blindrelay) names the binary.
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, threading, time

BIN = os.path.abspath(os.environ.get("BIN", "target/release/blindrelay"))
WINDOW_S = 5


def run(*args, cwd):
    subprocess.run([BIN, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chat:
    def __init__(self, user, port, cwd):
        self.p = subprocess.Popen(
            [BIN, "chat", user, "--json", "--server", f"127.0.0.1:{port}"],
            cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.events, self.cv = [], threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.p.stdout:
            try:
                v = json.loads(line)
            except ValueError:
                continue
            with self.cv:
                self.events.append((time.perf_counter(), v))
                self.cv.notify_all()

    def send(self, to, text, proto, req=None):
        cmd = {"cmd": "send", "to": [to] if proto == "v1" else to, "text": text}
        if req is not None:
            cmd["req"] = req
        self.p.stdin.write(json.dumps(cmd) + "\n")

    def texts(self):
        with self.cv:
            return {v.get("text"): t for t, v in self.events if v.get("event") == "message"}


def setup(proto, limit, d):
    run("pki", "init", cwd=d)
    run("enroll-relay", cwd=d)
    run("pki", "sign", "--relay", "blindrelay-relay/server-request.pem", cwd=d)
    for u in ("alice", "bob"):
        run("enroll", u, *(["--device", "laptop"] if proto == "v2" else []), cwd=d)
        run("pki", "sign", f"blindrelay-{u}/request.pem", cwd=d)
    with open(os.path.join(d, "limits.toml"), "w") as f:
        f.write(f"rate_max_messages = {limit}\nv2_rate_max_requests = {limit}\n"
                f"v2_person_rate_max_requests = {max(400, limit)}\n"
                f"rate_window_ms = {WINDOW_S * 1000}\n")
    port = free_port()
    relay = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--config",
                              "limits.toml"], cwd=d, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    time.sleep(1)
    bob = Chat("bob", port, d)
    time.sleep(1.5)
    alice = Chat("alice", port, d)
    time.sleep(1.5)
    alice.send("bob", "warm-up", proto)
    alice.p.stdin.flush()
    deadline = time.time() + 20
    while "warm-up" not in bob.texts() and time.time() < deadline:
        time.sleep(0.05)
    # The warm-up's slot leaves the window before the measurement.
    time.sleep(WINDOW_S + 0.5)
    return relay, alice, bob


def latency(proto, n):
    with tempfile.TemporaryDirectory() as d:
        relay, alice, bob = setup(proto, 100, d)
        lat = []
        for i in range(n):
            t = f"lat-{i}"
            t0 = time.perf_counter()
            alice.send("bob", t, proto)
            alice.p.stdin.flush()
            with bob.cv:
                bob.cv.wait_for(lambda: t in bob.texts(), timeout=10)
            if t in bob.texts():
                lat.append((bob.texts()[t] - t0) * 1000)
            time.sleep(0.2)
        stop(relay, alice, bob)
    lat.sort()
    print(f"latency {proto}: {len(lat)}/{n} arrived; median {statistics.median(lat):.1f} ms, "
          f"p90 {lat[max(0, int(len(lat) * 0.9) - 1)]:.1f} ms, max {lat[-1]:.1f} ms")


def burst(proto, limit, count):
    with tempfile.TemporaryDirectory() as d:
        relay, alice, bob = setup(proto, limit, d)
        t0 = time.perf_counter()
        for i in range(count):
            alice.send("bob", f"m{i}", proto, req=f"r{i}")
        alice.p.stdin.flush()
        # What pacing allows, one message under the limit per window (v1;
        # v2 paces to 9/10 of it), plus generous slack.
        deadline = time.time() + (count / max(1, limit * 0.9) + 2) * WINDOW_S * 1.5 + 10
        while time.time() < deadline:
            if len(bob.texts()) >= count + 1:
                break
            time.sleep(0.05)
        texts = bob.texts()
        took = max(texts.values()) - t0 if texts else float("nan")
        with bob.cv:
            shown = [v.get("text") for _, v in bob.events if v.get("event") == "message"]
        with alice.cv:
            cut = [v for _, v in alice.events if v.get("event") in ("reconnecting", "error")]
        stop(relay, alice, bob)
    lost = [i for i in range(count) if f"m{i}" not in texts]
    print(f"burst {proto}: {count} at {limit} per {WINDOW_S} s: {count - len(lost)} arrived, "
          f"lost {len(lost)}, shown twice {len(shown) - len(set(shown))}, cut off {len(cut)}, "
          f"drained in {took:.1f} s")


def stop(*procs):
    for p in procs:
        proc = p.p if isinstance(p, Chat) else p
        proc.send_signal(signal.SIGTERM)
    for p in procs:
        (p.p if isinstance(p, Chat) else p).wait(timeout=10)


if __name__ == "__main__":
    mode, proto = sys.argv[1], sys.argv[2]
    if mode == "latency":
        latency(proto, int(sys.argv[3]) if len(sys.argv) > 3 else 20)
    else:
        burst(proto, int(sys.argv[3]), int(sys.argv[4]))
