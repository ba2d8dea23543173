#!/usr/bin/env python3
"""The attack benchmarks: each attack of the hardening work, run against a fresh
chat-server on 127.0.0.1, with the figure its target is stated in. Standard library
only; every connection goes to loopback. Run by `make bench` (or alone:
`python3 bench/attacks.py target/release/chat-server USERS_FILE`).

  squat    10,000 connections that never log in (half idle, half stuck mid-header)
           hold every slot; then 20 users log in: the slowest login, and failures.
  guess    one address guesses passwords for 20 s, four per connection and then a new
           connection: how many guesses were checked (answered -1).
  trickle  a receiver reads 1 KiB every 0.25 s while a sender sends it 64 messages at
           a time: the sender's longest wait for a
           batch's echoes, with --write-timeout 2 (for 20 s at most).
  users    2,000 users online; 4 of them pipeline 3,000 USERS requests each and read
           nothing until all are sent: the server's peak RSS growth.
  logs     20,000 messages into a full mailbox and 20,000 unknown frames, pipelined:
           log lines per kind per second.

The fault benchmarks (issue 17: nothing spent, nothing lost):

  skipped  10,000 connections, each ending (half-close) inside a body the server
           skips: the server's CPU time for all of them, and the slowest close.
  fdlimit  a server at its descriptor limit (prlimit --pid, 0 descriptors free) with
           idle connections: 20 logins, each with 3 stored messages: the slowest, and
           messages lost.
  squatters --max-clients 20; 200 connections pipeline USERS before logging in and never
           read: the most server threads seen.
  storelimit --store-limit 1: a mailbox read, then a message to an offline user, 50
           times: how many were stored (0) and how many refused (-7).
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SERVER = sys.argv[1] if len(sys.argv) > 1 else "target/release/chat-server"
USERS = sys.argv[2] if len(sys.argv) > 2 else None
PASSWORD = b"123456"


def field(value, size):
    return value + b"\0" * (size - len(value))


def login_frame(name, password=PASSWORD):
    return struct.pack("<ii", 1, 40) + field(name, 20) + field(password, 20)


def chat_frame(sender, receiver, text):
    return struct.pack("<ii", 2, 140) + field(sender, 20) + field(receiver, 20) + field(text, 100)


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def flag_of(feedback):
    return struct.unpack("<iii", feedback)[2]


class Server:
    """A chat-server on a free loopback port, its stderr in a file."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp()
        self.log_path = os.path.join(self.dir, "server.log")
        users = ["--users", USERS] if USERS else []
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [SERVER, "--bind", "127.0.0.1", "--port", "0", "--data-dir",
             os.path.join(self.dir, "data")] + users + list(args),
            stderr=self.log, env=dict(os.environ, RUST_LOG="info"))
        for _ in range(200):
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(self.log_path).read())
            if match:
                self.addr = ("127.0.0.1", int(match.group(1)))
                return
            time.sleep(0.05)
        raise RuntimeError("chat-server did not start")

    def connect(self, source="127.0.0.1"):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(self.addr)
        sock.settimeout(15)
        return sock

    def login(self, name, source="127.0.0.1"):
        sock = self.connect(source)
        sock.sendall(login_frame(name))
        flag = flag_of(read_exact(sock, 12))
        if flag != 1:
            raise RuntimeError("login of %r: flag %d" % (name, flag))
        return sock

    def cpu_seconds(self):
        fields = open("/proc/%d/stat" % self.proc.pid).read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status(self, key):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith(key + ":"):
                return int(line.split()[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()
        return open(self.log_path).read().splitlines()


def user(i):
    return b"u%05d" % i


def squat():
    server = Server()
    squatters = []
    for i in range(10_000):
        sock = server.connect("127.0.0.2")
        if i % 2:
            sock.sendall(b"\x01\x00\x00\x00")  # half a header, and nothing more
        squatters.append(sock)
    slowest, failures = 0.0, 0
    for i in range(20):
        started = time.monotonic()
        try:
            server.login(user(i)).close()
        except (RuntimeError, OSError, EOFError):
            failures += 1
        slowest = max(slowest, time.monotonic() - started)
    for sock in squatters:
        sock.close()
    server.stop()
    return "squat: 20 logins past 10,000 squatters: slowest %.3f s, %d failed" % (slowest, failures)


def guess():
    server = Server()
    checked = refused = 0
    started = time.monotonic()
    while time.monotonic() - started < 20:
        sock = server.connect("127.0.0.2")
        try:
            for _ in range(4):
                sock.sendall(login_frame(user(1), b"guess"))
                flag = flag_of(read_exact(sock, 12))
                if flag == -1:
                    checked += 1
                else:
                    refused += 1
                    break
        except (OSError, EOFError):
            pass
        sock.close()
    took = time.monotonic() - started
    server.stop()
    return "guess: %.0f s from one address: %d guesses checked, %d refused with -6" % (
        took, checked, refused)


def trickle():
    server = Server("--write-timeout", "2")
    receiver = socket.socket()
    # A small window, so that the kernel's buffers cannot hide the trickle.
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    receiver.connect(server.addr)
    receiver.sendall(login_frame(user(0)))
    read_exact(receiver, 12)
    receiver.settimeout(1)
    sender = server.login(user(1))

    def read_a_trickle():
        # 1 KiB every 0.25 s: every write system call makes progress within the
        # timeout, but a batch of 64 messages (10 KB) takes seconds.
        started = time.monotonic()
        while time.monotonic() - started < 20:
            try:
                if not receiver.recv(1024):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
            time.sleep(0.25)

    reader = threading.Thread(target=read_a_trickle)
    reader.start()
    longest, flags = 0.0, {}
    started = time.monotonic()
    while time.monotonic() - started < 20 and reader.is_alive():
        sent = time.monotonic()
        sender.sendall(chat_frame(user(1), user(0), b"x" * 100) * 64)
        for _ in range(64):
            flag = flag_of(read_exact(sender, 12))
            read_exact(sender, 140)
            flags[flag] = flags.get(flag, 0) + 1
        longest = max(longest, time.monotonic() - sent)
    reader.join()
    server.stop()
    return ("trickle: a receiver reading 1 KiB per 0.25 s, a sender sending 64 at a time, "
            "--write-timeout 2: longest wait for a batch's echoes %.2f s; echo flags %s "
            "(0 and -7: after the receiver was cut off)") % (longest, dict(sorted(flags.items())))


def users():
    server = Server()
    online = [server.login(user(i)) for i in range(2000)]
    before = server.status("VmRSS")

    def pipeline(sock):
        sock.sendall(struct.pack("<ii", 3, 0) * 3000)
        for _ in range(3000):
            header = read_exact(sock, 12)
            read_exact(sock, struct.unpack("<iii", header)[1])

    threads = [threading.Thread(target=pipeline, args=(sock,)) for sock in online[:4]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = server.status("VmHWM")
    for sock in online:
        sock.close()
    server.stop()
    return "users: 4 x 3,000 pipelined USERS, 2,000 online: RSS %d KiB, peak %d KiB (+%.1f MiB)" % (
        before, peak, (peak - before) / 1024)


def logs():
    server = Server("--mailbox-limit", "1")
    sock = server.login(user(0))
    # One message fills the receiver's mailbox (a limit of 0 is refused at startup).
    sock.sendall(chat_frame(user(0), user(1), b"fills it"))
    read_exact(sock, 152)
    burst = (chat_frame(user(0), user(1), b"full") + struct.pack("<ii", 99, 0)) * 20_000
    started = time.monotonic()
    threading.Thread(target=sock.sendall, args=(burst,)).start()
    read_exact(sock, 20_000 * (152 + 12))
    took = time.monotonic() - started
    lines = server.stop()
    full = sum("is full" in line for line in lines)
    unknown = sum("unknown frame type" in line for line in lines)
    return "logs: 40,000 bad requests in %.2f s: %d 'is full' lines, %d 'unknown frame' lines" % (
        took, full, unknown)


def skipped():
    server = Server()
    cpu_before = server.cpu_seconds()
    slowest = 0.0
    frame = struct.pack("<ii", 9, 100) + b"x" * 10  # an unknown type: its body is skipped
    for _ in range(10_000):
        sock = server.connect()
        sock.sendall(frame)
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass
        slowest = max(slowest, time.monotonic() - started)
        sock.close()
    time.sleep(0.5)  # a spinning thread would keep counting meanwhile
    used = server.cpu_seconds() - cpu_before
    server.stop()
    return "skipped: 10,000 connections ending inside a skipped body: server CPU %.2f s, " \
        "slowest close %.1f ms" % (used, slowest * 1000)


def lowest_free_descriptor(pid):
    used = {int(fd) for fd in os.listdir("/proc/%d/fd" % pid)}
    return next(fd for fd in range(len(used) + 1) if fd not in used)


def fdlimit():
    server = Server()
    sender = server.login(user(0))
    for i in range(1, 21):
        for text in (b"one", b"two", b"three"):
            sender.sendall(chat_frame(user(0), user(i), text))
            if flag_of(read_exact(sender, 152)[:12]) != 0:
                raise RuntimeError("not queued")
    idle = [server.connect() for _ in range(40)]
    for sock in idle:
        sock.sendall(struct.pack("<ii", 3, 0))
        read_exact(sock, 12)
    soft = lowest_free_descriptor(server.proc.pid)
    hard = open("/proc/%d/limits" % server.proc.pid).read().split("Max open files")[1].split()[1]
    subprocess.run(["prlimit", "--pid", str(server.proc.pid), "--nofile=%d:%s" % (soft, hard)],
                   check=True)
    slowest, got, lost = 0.0, 0, 0
    for i in range(1, 21):
        started = time.monotonic()
        sock = server.login(user(i))
        slowest = max(slowest, time.monotonic() - started)
        sock.sendall(struct.pack("<ii", 3, 0))
        while True:
            head = read_exact(sock, 12)
            kind, length, _ = struct.unpack("<iii", head)
            read_exact(sock, length if kind == 3 else 140)
            if kind == 3:
                break
            got += 1
        sock.close()
    subprocess.run(["prlimit", "--pid", str(server.proc.pid), "--nofile=%s:%s" % (hard, hard)],
                   check=True)
    for i in range(1, 21):
        sock = server.login(user(i))
        sock.sendall(struct.pack("<ii", 3, 0))
        while True:
            kind, length, _ = struct.unpack("<iii", read_exact(sock, 12))
            read_exact(sock, length if kind == 3 else 140)
            if kind == 3:
                break
            got += 1
        sock.close()
    lost = 60 - got
    server.stop()
    return "fdlimit: 20 logins with no descriptor free: slowest %.3f s; %d of 60 stored " \
        "messages lost" % (slowest, lost)


def squatters():
    server = Server("--max-clients", "20")
    most = server.status("Threads")
    held = []
    requests = struct.pack("<ii", 3, 0) * 16384
    for _ in range(200):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(server.addr)
        sock.setblocking(False)
        try:
            sock.send(requests)
        except BlockingIOError:
            pass
        held.append(sock)
        most = max(most, server.status("Threads"))
    for _ in range(100):
        most = max(most, server.status("Threads"))
        time.sleep(0.01)
    for sock in held:
        sock.close()
    server.stop()
    return "squatters: --max-clients 20, 200 pipelining squatters: at most %d server threads" % most


def storelimit():
    server = Server("--store-limit", "1")
    sender = server.login(user(0))
    sender.sendall(chat_frame(user(0), user(1), b"0"))
    read_exact(sender, 152)
    flags = []
    for i in range(1, 51):
        sock = server.login(user(i))
        read_exact(sock, 152)  # the stored message
        sender.sendall(chat_frame(user(0), user(i + 1), b"%d" % i))
        flags.append(flag_of(read_exact(sender, 152)[:12]))
        sock.close()
    server.stop()
    return "storelimit: after a mailbox is read at --store-limit, the next message: " \
        "%d of 50 stored, %d refused (-7)" % (flags.count(0), flags.count(-7))


if __name__ == "__main__":
    for attack in [squat, guess, trickle, users, logs, skipped, fdlimit, squatters, storelimit]:
        if len(sys.argv) > 3 and attack.__name__ not in sys.argv[3:]:
            continue
        print(attack(), flush=True)
