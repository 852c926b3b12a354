#!/usr/bin/env python3
"""Check a disk image written by tandem-guest's workload=disklog.

  disklog-check.py IMAGE [--min-last N] [--runs]

Reads the log the way the guest's start-up scan does (README.md,
"disklog on-disk format") and prints one line:

  records=<good> last=<last good seq> errors=<n> end=<sectors in the log> runs=<n>

--min-last N  also fail unless the last good record is at least N (for
              example the guest's last disklog_flushed= before a crash)
--runs        print one line per run: run=0x<id> first=<seq> last=<seq>

Exit status: 0 log intact, 1 errors found (or --min-last not met),
2 usage or I/O error.
"""
import struct
import sys
import zlib

SECTOR = 512
MAGIC = b"TGDISKLG"
VERSION = 1
PAYLOAD_WORDS = 57
LOOKAHEAD = 256
M64 = (1 << 64) - 1
# magic, seq, run_id, run_first_seq, uptime_ms, version, reserved0,
# payload[57], reserved1, crc
RECORD = struct.Struct("<8sQQQQII%dQII" % PAYLOAD_WORDS)
assert RECORD.size == SECTOR


def mix64(x):
    x &= M64
    x ^= x >> 32
    x = (x * 0xD6E8FEB86659FD93) & M64
    x ^= x >> 29
    x = (x * 0x9E3779B97F4A7C15) & M64
    x ^= x >> 32
    return x


def payload_word(seq, i):
    return mix64((seq * 0x9E3779B97F4A7C15 + i) & M64)


def check_record(raw, sector):
    """None if the sector holds a good record, else the reason."""
    f = RECORD.unpack(raw)
    magic, seq, _run, _first, _up, version = f[:6]
    payload = f[7:7 + PAYLOAD_WORDS]
    crc = f[-1]
    if magic != MAGIC:
        return "magic"
    if crc != zlib.crc32(raw[:SECTOR - 4]):
        return "crc"
    if version != VERSION:
        return "version"
    if seq != sector + 1:
        return "seq"
    for i, w in enumerate(payload):
        if w != payload_word(seq, i):
            return "payload"
    return None


def scan(path, problems):
    good = errors = last = 0
    runs = []                       # [run_id, first_seq, last_seq]
    hole = None
    sector = 0
    with open(path, "rb") as f:
        while True:
            raw = f.read(SECTOR)
            if len(raw) < SECTOR:
                break
            if raw[:8] != MAGIC:
                if hole is None:
                    hole = sector
                if sector - hole + 1 >= LOOKAHEAD:
                    break
                sector += 1
                continue
            if hole is not None:
                problems.append(f"sector={hole} reason=missing count={sector - hole}")
                errors += sector - hole
                hole = None
            why = check_record(raw, sector)
            if why:
                errors += 1
                problems.append(f"sector={sector} reason={why}")
            else:
                good += 1
                rec = RECORD.unpack(raw)
                last = rec[1]
                if not runs or runs[-1][0] != rec[2]:
                    runs.append([rec[2], rec[1], rec[1]])
                else:
                    runs[-1][2] = rec[1]
            sector += 1
    end = hole if hole is not None else sector
    return good, last, errors, end, runs


def main(argv):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    path, min_last, show_runs = None, None, False
    i = 0
    while i < len(args):
        if args[i] == "--min-last" and i + 1 < len(args):
            min_last = int(args[i + 1])
            i += 2
        elif args[i] == "--runs":
            show_runs = True
            i += 1
        elif path is None and not args[i].startswith("-"):
            path = args[i]
            i += 1
        else:
            print(__doc__.strip(), file=sys.stderr)
            return 2
    if path is None:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    problems = []
    try:
        good, last, errors, end, runs = scan(path, problems)
    except OSError as e:
        print(f"disklog-check: {path}: {e.strerror}", file=sys.stderr)
        return 2
    for p in problems[:20]:
        print("disklog-check: bad " + p, file=sys.stderr)
    print(f"records={good} last={last} errors={errors} end={end} runs={len(runs)}")
    if show_runs:
        for run_id, first, lst in runs:
            print(f"run=0x{run_id:016x} first={first} last={lst}")
    if errors:
        return 1
    if min_last is not None and last < min_last:
        print(f"disklog-check: last={last} is below --min-last {min_last}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
