#!/usr/bin/env python3
"""Server memory while one client FETCHes a whole large mailbox: COUNT
messages of SIZE MiB (default 40 x 2), `FETCH 1:* (BODY.PEEK[])`, peak RSS
sampled from /proc.

Usage: python3 benches/load/imap-fetch-rss.py target/release/mailserver [COUNT SIZE_MIB]
"""
import imaplib, os, socket, sys, threading, time
binary = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
size = int(sys.argv[3]) if len(sys.argv) > 3 else 2
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imapserver
p, port, pw = imapserver.start(binary, "--allow-plaintext-auth")
def rss():
    return imapserver.rss_kib(p) // 1024
m = imaplib.IMAP4("127.0.0.1", port); m.login("demo", pw)
line = b"0123456789" * 7 + b"\r\n"
msg = b"Subject: big\r\n\r\n" + line * ((size << 20) // len(line))
for _ in range(count):
    m.append("INBOX", None, None, msg)
m.logout()
time.sleep(1.0)
before = rss()
s = socket.create_connection(("127.0.0.1", port))
s.recv(4096)
s.sendall(b"a LOGIN demo " + pw.encode() + b"\r\nb SELECT INBOX\r\nc FETCH 1:* (BODY.PEEK[])\r\n")
peak, got, done = before, 0, False
def sample():
    global peak
    while not done:
        peak = max(peak, rss()); time.sleep(0.02)
t = threading.Thread(target=sample); t.start()
t0 = time.time(); buf = b""
while True:
    data = s.recv(1 << 20)
    if not data: break
    got += len(data); buf = (buf + data)[-64:]
    if b"c OK" in buf: break
done = True; t.join()
print(f"FETCH 1:* BODY.PEEK[] of {count} x {size} MiB: {got >> 20} MiB sent in {time.time()-t0:.1f}s; "
      f"RSS before {before} MiB, peak {peak} MiB")
p.kill()
