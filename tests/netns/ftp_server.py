#!/usr/bin/env python3
"""Tiny FTP-like server for the netns scenarios (stdlib only).

Enough of RFC 959 for the kernel's FTP helper to see real traffic:
USER/PASS/SYST/TYPE/PWD/NOOP, PASV (227 naming the server's own address),
PORT (active mode), LIST over the data connection, QUIT.
"""
import argparse
import socket
import socketserver
import sys
import threading

DATA_TIMEOUT = 10.0


class Handler(socketserver.StreamRequestHandler):
    timeout = 300

    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.pasv = None
        self.port_addr = None
        peer = "%s:%d" % self.client_address
        log("control connection from %s" % peer)
        self.reply("220 ctd-harness FTP ready")
        try:
            while True:
                raw = self.rfile.readline(512)
                if not raw:
                    break
                line = raw.decode(errors="replace").strip()
                cmd, _, arg = line.partition(" ")
                cmd = cmd.upper()
                log("%s: %s" % (peer, line))
                if cmd == "QUIT":
                    self.reply("221 bye")
                    break
                getattr(self, "do_" + cmd, self.unknown)(arg)
        finally:
            if self.pasv:
                self.pasv.close()

    def unknown(self, _arg):
        self.reply("502 not implemented")

    def do_USER(self, _arg):
        self.reply("331 any password will do")

    def do_PASS(self, _arg):
        self.reply("230 logged in")

    def do_SYST(self, _arg):
        self.reply("215 UNIX Type: L8")

    def do_TYPE(self, _arg):
        self.reply("200 ok")

    def do_PWD(self, _arg):
        self.reply('257 "/"')

    def do_NOOP(self, _arg):
        self.reply("200 ok")

    def do_PASV(self, _arg):
        if self.pasv:
            self.pasv.close()
        host = self.connection.getsockname()[0]
        self.pasv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.pasv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.pasv.bind((host, next_pasv_port()))
        self.pasv.listen(1)
        port = self.pasv.getsockname()[1]
        self.port_addr = None
        self.reply("227 Entering Passive Mode (%s,%d,%d)" %
                   (host.replace(".", ","), port >> 8, port & 0xFF))

    def do_PORT(self, arg):
        try:
            f = [int(x) for x in arg.split(",")]
            if len(f) != 6 or any(x < 0 or x > 255 for x in f):
                raise ValueError
        except ValueError:
            self.reply("501 bad PORT")
            return
        self.port_addr = (".".join(map(str, f[:4])), f[4] * 256 + f[5])
        if self.pasv:
            self.pasv.close()
            self.pasv = None
        self.reply("200 PORT ok")

    def open_data(self):
        if self.pasv:
            self.pasv.settimeout(DATA_TIMEOUT)
            try:
                conn, _ = self.pasv.accept()
            finally:
                self.pasv.close()
                self.pasv = None
            return conn
        if self.port_addr:
            addr, self.port_addr = self.port_addr, None
            return socket.create_connection(addr, DATA_TIMEOUT)
        return None

    def do_LIST(self, _arg):
        try:
            conn = self.open_data()
        except OSError as e:
            log("data connection failed: %s" % e)
            self.reply("425 can't open data connection")
            return
        if conn is None:
            self.reply("503 use PASV or PORT first")
            return
        self.reply("150 here comes the listing")
        with conn:
            conn.sendall(("-rw-r--r-- 1 ftp ftp 42 Nov 27 00:00 %s.txt\r\n"
                          % MARK).encode())
        self.reply("226 transfer complete")
    do_NLST = do_LIST


def next_pasv_port():
    """0 (kernel's choice) unless --pasv-base: then base, base+1, ... so
    that two runs of the same pattern produce the same expectations."""
    global PASV_NEXT
    with PASV_LOCK:
        if not PASV_NEXT:
            return 0
        PASV_NEXT += 1
        return PASV_NEXT - 1


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    global MARK
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--mark", default="ctd-harness-listing")
    ap.add_argument("--pasv-base", type=int, default=0)
    ap.add_argument("--ready", help="file created once listening")
    a = ap.parse_args()
    MARK = a.mark
    global PASV_NEXT
    PASV_NEXT = a.pasv_base
    with Server((a.bind, a.port), Handler) as srv:
        if a.ready:
            open(a.ready, "w").close()
        srv.serve_forever()


MARK = ""
PASV_NEXT = 0
PASV_LOCK = threading.Lock()
if __name__ == "__main__":
    main()
