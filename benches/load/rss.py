#!/usr/bin/env python3
"""Peak server RSS while 10 clients send 40 MiB messages at once.

Usage: python3 benches/load/rss.py target/release/mailserver
"""
import smtplib, subprocess, sys, threading, time, tempfile, os, re
binary = sys.argv[1]
d = tempfile.mkdtemp()
p = subprocess.Popen([binary, "--data", d + "/data", "--domain", "example.test", "serve",
    "--smtp", "127.0.0.1:0", "--submission", "127.0.0.1:0", "--lmtp", "127.0.0.1:0", "--pop3", "127.0.0.1:0", "--imap", "127.0.0.1:0",
    "--max-message-size", str(64 << 20)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
port = None
while port is None:
    line = p.stdout.readline()
    m = re.match(r"listening smtp 127.0.0.1:(\d+)", line)
    if m: port = int(m.group(1))
def rss():
    s = open(f"/proc/{p.pid}/status").read()
    return {k: int(re.search(k + r":\s+(\d+)", s).group(1)) // 1024 for k in ("VmRSS", "VmHWM")}
time.sleep(0.5)
before = rss()
line = b"0123456789" * 7 + b"\r\n"
body = b"Subject: big\r\n\r\n" + line * ((40 << 20) // len(line))
ok = []
def send():
    c = smtplib.SMTP("127.0.0.1", port, timeout=300)
    c.sendmail("a@b.example", ["demo@example.test"], body)
    c.quit(); ok.append(1)
t0 = time.time()
ts = [threading.Thread(target=send) for _ in range(10)]
[t.start() for t in ts]
peak = 0
while any(t.is_alive() for t in ts):
    peak = max(peak, rss()["VmRSS"]); time.sleep(0.05)
[t.join() for t in ts]
after = rss()
print(f"sent {len(ok)} x 40 MiB in {time.time()-t0:.1f}s; RSS before {before['VmRSS']} MiB, peak sampled {peak} MiB, VmHWM {after['VmHWM']} MiB")
p.kill()
