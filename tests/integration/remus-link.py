#!/usr/bin/env python3
"""A stand-in for ssh over a real network link, for t_remus.sh.

xl remus and xl migrate run their receiver as `<sshcommand> <host> xl
migrate-receive ...`; between two network namespaces on one machine
`-s ""` does that with pipes, which no `ip link set down` can cut.  This
carries the receiver's standard input and output over one TCP connection
instead, as ssh would, so cutting the link between the hosts cuts the
replication stream and nothing else.

  remus-link.py serve PORT [LOG]
        (on the receiving host) accept connections on PORT; each sends one
        line, a shell command, which runs with the connection as its
        standard input and output (stderr: LOG, default ours).
  remus-link.py connect ADDR:PORT CMD...
        (the sshcommand: xl remus -s "remus-link.py connect" ADDR:PORT)
        connect, send CMD, then copy our stdin to the connection and the
        connection to our stdout until both directions end.

No authentication: test namespaces only.
"""
import os
import socket
import subprocess
import sys
import threading


def serve(port, logpath):
    log = open(logpath, "ab", buffering=0) if logpath else None
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    while True:
        conn, peer = srv.accept()
        # The command line, byte by byte: nothing after it may be consumed.
        line = b""
        while not line.endswith(b"\n"):
            b = conn.recv(1)
            if not b:
                break
            line += b
        if not line.endswith(b"\n"):
            conn.close()
            continue
        cmd = line[:-1].decode()
        if log:
            log.write(("remus-link: %s: %s\n" % (peer[0], cmd)).encode())
        # Keepalive: a peer that vanished shows as an error in minutes,
        # not never; the test's timeouts are far shorter anyway.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        fd = conn.fileno()
        subprocess.Popen(["sh", "-c", cmd], stdin=fd, stdout=fd, stderr=log or None, close_fds=True,
                         start_new_session=True)
        conn.close()


def pump(src, dst, done):
    try:
        while True:
            data = os.read(src, 65536)
            if not data:
                break
            view = memoryview(data)
            while view:
                n = os.write(dst, view)
                view = view[n:]
    except OSError:
        pass
    done()


def connect(target, cmd):
    host, port = target.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall((" ".join(cmd) + "\n").encode())
    sfd = s.fileno()
    finished = threading.Event()
    # stdin -> connection; its end is a half-close, as ssh passes EOF on.
    t = threading.Thread(target=pump, args=(0, sfd, lambda: s.shutdown(socket.SHUT_WR)), daemon=True)
    t.start()
    pump(sfd, 1, finished.set)
    # The receiver is done talking: we are done too (what is left of our
    # stdin has nobody to read it).
    os.close(1)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "serve":
        serve(int(argv[2]), argv[3] if len(argv) > 3 else None)
        return 0
    if len(argv) >= 4 and argv[1] == "connect":
        return connect(argv[2], argv[3:])
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
