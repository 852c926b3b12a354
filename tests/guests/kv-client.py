#!/usr/bin/env python3
"""Client for tandem-guest's workload=kv (UDP key-value counters).

Sends requests with ids and retries them until answered, so an answer
lost over UDP (or a guest paused by a migration) costs time, never a
double increment.  See tests/guests/README.md, "kv protocol".

  kv-client.py HOST[:PORT] incr KEY [COUNT]   increment COUNT times, check
                                              that the value rises by one each time
  kv-client.py HOST[:PORT] get KEY
  kv-client.py HOST[:PORT] raw 'TEXT'         send one datagram, print the answer
  kv-client.py HOST[:PORT] retry-test KEY     send the same INCR id twice; the
                                              value must rise only once
  kv-client.py HOST[:PORT] load SECONDS KEYS OUT [STOPFILE]
        increment keys k0..k<KEYS-1> round-robin for SECONDS (or until
        STOPFILE exists), retrying each request with its id until answered,
        and check every answer: with only this client writing, each key
        must rise by exactly one per answer.  Writes a JSON summary (answers,
        retries, longest wait, stalls over 100 ms, errors, last values) to OUT.
  kv-client.py HOST[:PORT] check OUT          GET every key of a load's summary:
        each must hold exactly the last value answered to it (less: an
        answered increment was lost; more: one was applied unanswered)

Exit status: 0 ok, 1 a check failed or no answer, 2 usage.
"""
import json
import os
import socket
import sys
import time


class KvError(Exception):
    pass


class KvClient:
    def __init__(self, host, port=7000, timeout=0.2, deadline=30.0):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.deadline = deadline
        # Ids only need to differ between one request and the next from
        # this address; starting from the clock keeps a restarted client
        # that happens to get the same source port from colliding.
        self.next_id = int(time.time() * 1000) & 0xFFFFFFFF
        self.retries = 0

    def raw(self, text):
        """One datagram, one answer (or None after the timeout)."""
        self.sock.sendto(text.encode(), self.addr)
        try:
            data, _ = self.sock.recvfrom(2048)
        except socket.timeout:
            return None
        return data.decode(errors="replace").rstrip("\n")

    def request(self, cmd, key):
        """Send `cmd key id=<n>` until the answer with that id arrives."""
        rid = self.next_id
        self.next_id += 1
        text = f"{cmd} {key} id={rid}"
        end = time.monotonic() + self.deadline
        first = True
        while time.monotonic() < end:
            if not first:
                self.retries += 1
            first = False
            self.sock.sendto(text.encode(), self.addr)
            stop = time.monotonic() + self.sock.gettimeout()
            while time.monotonic() < stop:
                try:
                    data, _ = self.sock.recvfrom(2048)
                except socket.timeout:
                    break
                words = data.decode(errors="replace").split()
                # Answers to earlier, retried requests may still arrive.
                if not words or words[-1] != f"id={rid}":
                    continue
                if words[0] == "ERR":
                    raise KvError(" ".join(words))
                if len(words) != 3 or words[0] != key:
                    raise KvError("malformed answer: " + " ".join(words))
                return int(words[1])
        raise KvError(f"no answer to {text!r} within {self.deadline}s")


def split_target(target):
    host, _, port = target.partition(":")
    return host, int(port) if port else 7000


def load(c, seconds, nkeys, out, stop_file):
    keys = [f"k{i}" for i in range(nkeys)]
    last = {k: c.request("GET", k) for k in keys}
    start = dict(last)
    errors, stalls, answered, worst = [], [], 0, 0.0
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end and not (stop_file and os.path.exists(stop_file)):
        k = keys[i % nkeys]
        i += 1
        t0 = time.monotonic()
        try:
            v = c.request("INCR", k)
        except KvError as e:
            errors.append(str(e))
            break
        waited = time.monotonic() - t0
        answered += 1
        worst = max(worst, waited)
        if waited > 0.1:
            stalls.append(round(waited * 1000))
        if v != last[k] + 1:
            errors.append(f"key {k}: answered {v} after {last[k]}")
        last[k] = v
    with open(out, "w") as f:
        json.dump({"answered": answered, "retries": c.retries, "max_wait_ms": round(worst * 1000, 1),
                   "stalls_ms": stalls[:50], "errors": errors[:20], "start": start, "last": last}, f)
    print(f"load: {answered} increments answered, {c.retries} retries, "
          f"longest wait {worst * 1000:.1f} ms, {len(errors)} errors")
    for e in errors[:5]:
        print("load: error:", e)
    return 1 if errors or answered == 0 else 0


def check(c, summary):
    with open(summary) as f:
        s = json.load(f)
    bad = 0
    for k, want in s["last"].items():
        v = c.request("GET", k)
        if v != want:
            print(f"check: key {k} holds {v}, the last answer said {want} (" +
                  ("an answered increment was lost)" if v < want else "an unanswered one was applied)"))
            bad += 1
    print(f"check: {len(s['last'])} keys, {bad} wrong")
    return 1 if bad else 0


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) < 3 else sys.stdout)
        return 2 if len(argv) < 3 else 0
    host, port = split_target(argv[1])
    c = KvClient(host, port, timeout=float(os.environ.get("KV_TIMEOUT", "0.2")))
    op = argv[2]
    try:
        if op == "get" and len(argv) == 4:
            print(argv[3], c.request("GET", argv[3]))
        elif op == "incr" and len(argv) in (4, 5):
            count = int(argv[4]) if len(argv) == 5 else 1
            start = time.monotonic()
            prev = c.request("GET", argv[3])
            for _ in range(count):
                v = c.request("INCR", argv[3])
                if v != prev + 1:
                    print(f"kv-client: {argv[3]} went from {prev} to {v}",
                          file=sys.stderr)
                    return 1
                prev = v
            took = time.monotonic() - start
            print(f"{argv[3]} {prev} incrs={count} retries={c.retries} "
                  f"seconds={took:.3f} per_request_ms={took * 1000 / (count + 1):.3f}")
        elif op == "raw" and len(argv) == 4:
            a = c.raw(argv[3])
            if a is None:
                print("kv-client: no answer", file=sys.stderr)
                return 1
            print(a)
        elif op == "retry-test" and len(argv) == 4:
            key = argv[3]
            before = c.request("GET", key)
            rid = c.next_id
            c.next_id += 1
            a1 = c.raw(f"INCR {key} id={rid}")
            a2 = c.raw(f"INCR {key} id={rid}")
            # The same id with another request is refused, not executed.
            a3 = c.raw(f"INCR other{key} id={rid}")
            after = c.request("GET", key)
            print(f"first={a1!r} retry={a2!r} reused={a3!r} before={before} after={after}")
            if a1 is None or a1 != a2 or after != before + 1:
                print("kv-client: retry was not idempotent", file=sys.stderr)
                return 1
            if a3 != f"ERR id_reused id={rid}":
                print(f"kv-client: reused id answered {a3!r}", file=sys.stderr)
                return 1
        elif op == "load" and len(argv) in (6, 7):
            return load(c, float(argv[3]), int(argv[4]), argv[5], argv[6] if len(argv) == 7 else None)
        elif op == "check" and len(argv) == 4:
            return check(c, argv[3])
        else:
            print(__doc__.strip(), file=sys.stderr)
            return 2
    except KvError as e:
        print(f"kv-client: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
