#!/usr/bin/env python3
"""Load driver for bench/alerts.sh (stdlib only): signed alerts into the alerts bridge's webhook,
a staff member's /sync on the homeserver timing each post's arrival.

    alerts_load.py register --hs URL --user nurse --out token.json
    alerts_load.py run --hs URL --webhook URL --token-file token.json --secret S \
        [--alerts 500] [--concurrency 8] --out result.json

`run` joins the ward room the bridge invited the user to, sends one warm-up alert, then
`--alerts` alerts from `--concurrency` threads as fast as the webhook accepts them (a burst:
the end-to-end rate is the bridge's sustained posting rate), or paced at `--rate` per second. For each
alert: webhook send time (before the POST), 202 time, and the time the user's /sync first
returned its event (the event id comes from the bridge's signed status endpoint). Prints and
writes: accepted alerts/s, end-to-end alerts/s (alerts / first send to last arrival) and the
webhook-to-sync latency percentiles.
"""
import argparse
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
import uuid


def call(method, url, body=None, token=None, headers=None, timeout=60):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def register(args):
    body = {"username": args.user, "password": "bench-password-123", "inhibit_login": False}
    st, r = call("POST", f"{args.hs}/_matrix/client/v3/register", body)
    if st == 401:
        body["auth"] = {"type": "m.login.dummy", "session": r.get("session")}
        st, r = call("POST", f"{args.hs}/_matrix/client/v3/register", body)
    assert st == 200, (st, r)
    json.dump({"user_id": r["user_id"], "access_token": r["access_token"]}, open(args.out, "w"))


def sign(secret, ts, payload):
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else None


def run(args):
    tok = json.load(open(args.token_file))["access_token"]
    hs = args.hs
    # Join the ward room the bridge invited us to.
    since, room = None, None
    deadline = time.time() + 120
    while room is None:
        assert time.time() < deadline, "no invite from the bridge"
        q = "?timeout=1000" + (f"&since={since}" if since else "")
        st, r = call("GET", f"{hs}/_matrix/client/v3/sync{q}", token=tok)
        assert st == 200, (st, r)
        since = r["next_batch"]
        for rid in (r.get("rooms", {}).get("invite") or {}):
            st, _ = call("POST", f"{hs}/_matrix/client/v3/rooms/{rid}/join", {}, token=tok)
            assert st == 200
            room = rid
    arrivals = {}
    stop = threading.Event()

    def syncer():
        nonlocal since
        while not stop.is_set():
            st, r = call("GET", f"{hs}/_matrix/client/v3/sync?timeout=5000&since={since}", token=tok)
            now = time.time()
            if st != 200:
                time.sleep(0.2)
                continue
            since = r["next_batch"]
            tl = r.get("rooms", {}).get("join", {}).get(room, {}).get("timeline", {})
            for ev in tl.get("events", []):
                arrivals.setdefault(ev["event_id"], now)

    t = threading.Thread(target=syncer, daemon=True)
    t.start()

    def send(alert_id):
        body = json.dumps({"source": "news2", "alert_id": alert_id, "severity": "high",
                           "title": "NEWS2 score 7", "text": "Bed 4: RR 28, SpO2 91%",
                           "route": {"ward": "ward-7"}}).encode()
        ts = int(time.time())
        t0 = time.time()
        st, r = call("POST", f"{args.webhook}/alerts", body, headers={
            "X-Handover-Source": "news2", "X-Handover-Timestamp": str(ts),
            "X-Handover-Signature": sign(args.secret, ts, body)})
        assert st == 202, (st, r)
        return t0, time.time()

    def status(alert_id):
        path = f"/alerts/news2/{alert_id}"
        ts = int(time.time())
        st, r = call("GET", f"{args.webhook}{path}", headers={
            "X-Handover-Timestamp": str(ts),
            "X-Handover-Signature": sign(args.secret, ts, path.encode())})
        return r if st == 200 else None

    def event_of(alert_id, until):
        while time.time() < until:
            s = status(alert_id)
            if s and s.get("delivered"):
                return s["delivered"][0]["event_id"]
            time.sleep(0.2)
        return None

    # Warm-up (room keys shared, bot synced).
    warm = f"warm-{uuid.uuid4().hex[:8]}"
    send(warm)
    ev = event_of(warm, time.time() + 60)
    while ev not in arrivals:
        time.sleep(0.1)

    ids = [f"b-{uuid.uuid4().hex[:12]}" for _ in range(args.alerts)]
    sent = {}
    lock = threading.Lock()
    it = iter(ids)

    def worker():
        while True:
            with lock:
                a = next(it, None)
            if a is None:
                return
            t0, t1 = send(a)
            with lock:
                sent[a] = (t0, t1)

    start = time.time()
    if args.rate > 0:
        # Paced: one alert every 1/rate s (latency without a queue in front of the bridge).
        for i, a in enumerate(ids):
            time.sleep(max(0.0, start + i / args.rate - time.time()))
            sent[a] = send(a)
    else:
        ws = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
    accepted_at = time.time()
    until = time.time() + args.drain_secs
    events = {}
    for a in ids:
        events[a] = event_of(a, until)
    while time.time() < until and not all(e in arrivals for e in events.values() if e):
        time.sleep(0.2)
    stop.set()
    lat = [(arrivals[e] - sent[a][0]) * 1000 for a, e in events.items() if e in arrivals]
    accept_ms = [(t1 - t0) * 1000 for t0, t1 in sent.values()]
    last = max(arrivals[e] for e in events.values() if e in arrivals)
    res = {
        "alerts": args.alerts, "concurrency": args.concurrency, "rate": args.rate,
        "arrived": len(lat),
        "webhook_accepted_per_s": round(args.alerts / (accepted_at - start), 1),
        "end_to_end_alerts_per_s": round(len(lat) / (last - start), 1),
        "webhook_202_ms": {"p50": round(pct(accept_ms, 50), 1), "p99": round(pct(accept_ms, 99), 1)},
        "webhook_to_sync_ms": {p: round(pct(lat, int(p[1:])), 1) for p in ("p50", "p90", "p99")}
        | {"max": round(max(lat), 1)},
    }
    print(json.dumps(res, indent=1))
    json.dump(res, open(args.out, "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("register")
    r.add_argument("--hs", required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--out", required=True)
    x = sub.add_parser("run")
    for k in ("--hs", "--webhook", "--token-file", "--secret", "--out"):
        x.add_argument(k, required=True)
    x.add_argument("--alerts", type=int, default=500)
    x.add_argument("--concurrency", type=int, default=8)
    x.add_argument("--rate", type=float, default=0, help="alerts/s, paced (0: as fast as accepted)")
    x.add_argument("--drain-secs", type=int, default=300)
    a = ap.parse_args()
    register(a) if a.cmd == "register" else run(a)


if __name__ == "__main__":
    main()
