#!/usr/bin/env python3
"""The host-alone peers of bench/guest-io.sh.

  io-peer.py kv-serve PORT
        serve tandem-guest's kv protocol (tests/guests/README.md, "kv
        protocol") on UDP PORT until killed: INCR/GET with optional ids,
        the last id and answer kept per client address, so a resent
        request is answered again and not executed twice, as the guest
        does.  The same work per request, in a plain host process.

  io-peer.py disk FILE SECONDS FLUSH_EVERY
        what workload=disklog rate=0 does, on the host: 512-byte records
        (the guest's layout: magic, seq, run id, first seq, uptime,
        version, payload, CRC-32) written one at a time with pwrite at
        offset (seq - 1) * 512 of FILE, from the start, and an fdatasync
        after every FLUSH_EVERY-th record (0: never), for SECONDS or
        until FILE is full.  One fixed payload serves every record (the
        guest's is a function of seq), so disklog-check.py passes the
        CRC and seq of these records and reports their payload.  Prints
        records=<n> seconds=<s> rec_s=<n> mb_s=<MB/s, 10^6 bytes>.
"""
import os
import socket
import struct
import sys
import time
import zlib

KEYS_MAX = 1024
KEY_MAX = 32
REQ_MAX = 128


def kv_serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    table = {}
    clients = {}            # (ip, port) -> (last id, request, answer)
    recv, send = s.recvfrom, s.sendto
    while True:
        data, addr = recv(2048)
        words = data.rstrip(b"\r\n").split() if len(data) <= REQ_MAX + 2 else []
        rid = None
        if len(words) == 3 and words[2].startswith(b"id="):
            try:
                rid = int(words[2][3:], 0)
            except ValueError:
                rid = None
        if not (len(words) == 2 or (len(words) == 3 and rid is not None)):
            send(b"ERR bad_request\n", addr)
            continue
        if rid is not None:
            last = clients.get(addr)
            if last is not None and last[0] == rid:
                send(last[2] if last[1] == words[:2] else b"ERR id_reused id=%d\n" % rid, addr)
                continue
        cmd, key = words[0], words[1]
        if cmd not in (b"INCR", b"GET"):
            body = b"ERR bad_request"
        elif not 0 < len(key) <= KEY_MAX or any(c < 0x21 or c > 0x7e for c in key):
            body = b"ERR bad_key"
        elif cmd == b"GET":
            body = key + b" %d" % table.get(key, 0)
        elif key not in table and len(table) >= KEYS_MAX:
            body = b"ERR table_full"
        else:
            v = table.get(key, 0)
            if v == (1 << 64) - 1:
                body = b"ERR overflow"
            else:
                table[key] = v + 1
                body = key + b" %d" % (v + 1)
        ans = body + (b" id=%d\n" % rid if rid is not None else b"\n")
        if rid is not None:
            clients[addr] = (rid, words[:2], ans)
        send(ans, addr)


def disk(path, seconds, flush_every):
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDWR)
    # The guest computes each record's payload from its seq; here one
    # payload serves every record, and seq, uptime and the CRC change:
    # the same bytes go to the file per record, at less CPU.
    payload = bytes(range(256)) * 2
    rec = bytearray(512)
    rec[0:8] = b"TGDISKLG"
    rec[48:504] = payload[:456]
    run_id = int.from_bytes(os.urandom(8), "little") | 1
    t0 = time.monotonic()
    end = t0 + seconds
    seq, since = 0, 0
    pack, crc, pwrite, fdatasync = struct.pack_into, zlib.crc32, os.pwrite, os.fdatasync
    while (seq + 1) * 512 <= size:
        now = time.monotonic()
        if now >= end:
            break
        seq += 1
        pack("<QQQQII", rec, 8, seq, run_id, 1, int((now - t0) * 1000), 1, 0)
        pack("<I", rec, 508, crc(memoryview(rec)[:508]))
        pwrite(fd, rec, (seq - 1) * 512)
        since += 1
        if flush_every and since >= flush_every:
            fdatasync(fd)
            since = 0
    took = time.monotonic() - t0
    os.close(fd)
    print(f"records={seq} seconds={took:.3f} rec_s={seq / took:.0f} mb_s={seq * 512 / took / 1e6:.3f}")


def main(argv):
    if len(argv) == 3 and argv[1] == "kv-serve":
        kv_serve(int(argv[2]))
    elif len(argv) == 5 and argv[1] == "disk":
        disk(argv[2], float(argv[3]), int(argv[4]))
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
