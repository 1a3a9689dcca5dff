"""Starts the mail server for the IMAP load scripts: loopback ports, a
fresh data folder; returns the process, the IMAP port and demo's password."""
import re, subprocess, tempfile


def start(binary, *extra):
    d = tempfile.mkdtemp()
    p = subprocess.Popen([binary, "--data", d + "/data", "--domain", "example.test", "serve",
        "--smtp", "127.0.0.1:0", "--submission", "127.0.0.1:0", "--lmtp", "127.0.0.1:0",
        "--pop3", "127.0.0.1:0", "--imap", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port, pw = None, None
    while port is None:
        line = p.stdout.readline()
        m = re.match(r"created user demo with password (\S+)", line)
        if m: pw = m.group(1)
        m = re.match(r"listening imap 127.0.0.1:(\d+)", line)
        if m: port = int(m.group(1))
    return p, port, pw


def rss_kib(p):
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read()).group(1))
