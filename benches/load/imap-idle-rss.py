#!/usr/bin/env python3
"""Server memory per idle IMAP connection: N clients log in, select INBOX
and IDLE; prints the RSS growth per connection (VmRSS from /proc).

Usage: python3 benches/load/imap-idle-rss.py target/release/mailserver [N=1000]
"""
import base64, hashlib, hmac, os, socket, subprocess, sys, time, tempfile, re
binary = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imapserver
p, port, pw = imapserver.start(binary, "--max-connections", str(n + 100), "--max-per-ip", str(n + 100))
def rss_kib():
    return imapserver.rss_kib(p)
def expect(s, token):
    buf = b""
    while token not in buf:
        d = s.recv(4096)
        if not d: raise SystemExit("closed: %r" % buf)
        buf += d
# Warm up: one connection through the whole path, so one-time allocations
# (TLS config, index, caches) are not counted per connection.
def scram_login(s):
    # SCRAM-SHA-256 (RFC 7677) with SASL-IR: no Argon2 on the server, so
    # the allocator's copy of its 19 MiB working memory does not blur what
    # a connection holds.
    nonce = base64.b64encode(os.urandom(18)).decode()
    first = "n,,n=demo,r=" + nonce
    s.sendall(b"a AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(first.encode()) + b"\r\n")
    buf = b""
    while b"\r\n" not in buf: buf += s.recv(4096)
    server_first = base64.b64decode(buf.split(b" ", 1)[1].strip()).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", pw.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    final_bare = "c=biws,r=" + attrs["r"]
    auth = ",".join([first[3:], server_first, final_bare]).encode()
    sig = hmac.new(stored, auth, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
    s.sendall(base64.b64encode((final_bare + ",p=" + proof).encode()) + b"\r\n")
    buf = b""
    while b"\r\n" not in buf: buf += s.recv(4096)
    if buf.startswith(b"+ "): s.sendall(b"\r\n")
    expect(s, b"a OK")
def idle_client():
    s = socket.create_connection(("127.0.0.1", port))
    expect(s, b"\r\n")
    scram_login(s)
    s.sendall(b"b SELECT INBOX\r\n"); expect(s, b"b OK")
    s.sendall(b"c IDLE\r\n"); expect(s, b"+ ")
    return s
# Logins verify Argon2 hashes (19 MiB each) on blocking threads; the
# allocator keeps that memory after the first few hundred (a plateau near
# 120 MiB). Reach the plateau first, so only what connections hold counts.
for _ in range(300):
    s = idle_client(); s.sendall(b"DONE\r\nz LOGOUT\r\n"); expect(s, b"z OK"); s.close()
time.sleep(0.5)
before = rss_kib()
t0 = time.time()
greeted = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); expect(s, b"\r\n"); greeted.append(s)
time.sleep(1.0)
mid = rss_kib()
print(f"{n} connections waiting to log in: RSS {before} KiB -> {mid} KiB, {(mid - before) / n:.1f} KiB per connection")
for s in greeted:
    scram_login(s)
    s.sendall(b"b SELECT INBOX\r\n"); expect(s, b"b OK")
    s.sendall(b"c IDLE\r\n"); expect(s, b"+ ")
time.sleep(1.0)
after = rss_kib()
print(f"{n} idle IMAP connections (logged in, INBOX selected, IDLE) in {time.time()-t0:.1f}s: "
      f"RSS {before} KiB -> {after} KiB, {(after - before) / n:.1f} KiB per connection")
p.kill()
