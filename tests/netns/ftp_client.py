#!/usr/bin/env python3
"""FTP client for the netns scenarios (stdlib only).

Opens the control connection, logs in, enters passive (PASV) or active
(PORT) mode and writes the data port to --ready.  It then keeps the control
connection open until the file --go appears (the test does its failover in
between), opens the data connection within --timeout seconds, and prints the
LIST output.  Exit status: 0 listing received, 2 control error, 3 data
connection failed (e.g. dropped by the firewall).
"""
import argparse
import os
import socket
import sys
import time


def fail(code, msg):
    print("ftp_client: " + msg, file=sys.stderr, flush=True)
    sys.exit(code)


class Control:
    def __init__(self, host, port, src=None):
        self.sock = socket.create_connection((host, port), 5, src)
        self.f = self.sock.makefile("rb")

    def resp(self):
        line = self.f.readline(1024).decode(errors="replace")
        if not line:
            fail(2, "control connection closed")
        code = line[:3]
        while len(line) > 3 and line[3] == "-":   # multi-line reply
            line = self.f.readline(1024).decode(errors="replace")
            if not line:
                fail(2, "control connection closed")
        return code, line.strip()

    def cmd(self, text, want):
        self.sock.sendall((text + "\r\n").encode())
        code, line = self.resp()
        if not code.startswith(want):
            fail(2, "%s -> %s" % (text.split()[0], line))
        return line


def wait_for(path, deadline):
    while not os.path.exists(path):
        if time.time() > deadline:
            fail(2, "gave up waiting for " + path)
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--mode", choices=("pasv", "port"), default="pasv")
    ap.add_argument("--ready", required=True)
    ap.add_argument("--go", required=True)
    ap.add_argument("--timeout", type=float, default=4.0)
    ap.add_argument("--wait", type=float, default=300.0)
    ap.add_argument("--bind", default="", help="source address of the control connection")
    ap.add_argument("--sport", type=int, default=0, help="fixed source port")
    a = ap.parse_args()
    src = (a.bind, a.sport) if (a.bind or a.sport) else None

    try:
        c = Control(a.host, a.port, src)
        c.sock.settimeout(a.wait)
        code, line = c.resp()
        if code != "220":
            fail(2, "greeting: " + line)
        c.cmd("USER anonymous", "331")
        c.cmd("PASS harness@", "230")
        c.cmd("TYPE I", "200")
        listener = None
        if a.mode == "pasv":
            line = c.cmd("PASV", "227")
            nums = line[line.index("(") + 1:line.index(")")].split(",")
            daddr = (".".join(nums[:4]), int(nums[4]) * 256 + int(nums[5]))
            dport = daddr[1]
        else:
            listener = socket.socket()
            listener.bind((c.sock.getsockname()[0], 0))
            listener.listen(1)
            h, dport = listener.getsockname()
            c.cmd("PORT %s,%d,%d" % (h.replace(".", ","), dport >> 8, dport & 255), "200")
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % dport)
        os.rename(tmp, a.ready)

        wait_for(a.go, time.time() + a.wait)

        if a.mode == "pasv":
            try:
                data = socket.create_connection(daddr, a.timeout)
            except OSError as e:
                fail(3, "data connection to %s:%d failed: %s" % (daddr[0], daddr[1], e))
            c.sock.sendall(b"LIST\r\n")
        else:
            c.sock.sendall(b"LIST\r\n")
            listener.settimeout(a.timeout)
            try:
                data, _ = listener.accept()
            except OSError as e:
                fail(3, "no data connection from server: %s" % e)
        data.settimeout(a.timeout)
        code, line = c.resp()
        if code != "150":
            fail(3, "LIST -> " + line)
        chunks = []
        while True:
            b = data.recv(4096)
            if not b:
                break
            chunks.append(b)
        data.close()
        code, line = c.resp()
        if code != "226":
            fail(3, "after LIST -> " + line)
        sys.stdout.write(b"".join(chunks).decode(errors="replace"))
        try:
            c.cmd("QUIT", "221")
        except SystemExit:
            pass
    except socket.timeout as e:
        fail(2, "control timeout: %s" % e)
    except OSError as e:
        fail(2, "control error: %s" % e)


if __name__ == "__main__":
    main()
