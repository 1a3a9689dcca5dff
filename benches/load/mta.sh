#!/bin/bash
# End to end A to B: 10,000 1 KiB messages queued at A (127.0.0.11, held),
# then the queue released and timed until all are in B's Maildir
# (127.0.0.12). Every message is fsynced at both ends. Prints messages/s
# beside the inbound smtp-source figure of the same binary.
# Usage: benches/load/mta.sh target/release/mailserver [COUNT]
set -euo pipefail
bin=$1
count=${2:-10000}
d=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf $d' EXIT
listen() { # data ip domain extra... ; prints ports to $d/$3.out
    local data=$1 ip=$2 dom=$3; shift 3
    "$bin" --data "$data" --domain "$dom" serve --smtp $ip:0 --submission $ip:0 --lmtp $ip:0 \
        --pop3 $ip:0 --imap $ip:0 "$@" > "$d/$dom.out" 2>/dev/null &
    for _ in $(seq 100); do [ "$(grep -c listening "$d/$dom.out")" -ge 5 ] && break; sleep 0.1; done
}
port() { grep "listening $2 " "$d/$1.out" | sed 's/.*://'; }
listen $d/b 127.0.0.12 b.test --hold-queue
bport=$(port b.test smtp)
"$bin" --data $d/b user add bob <<< "bob-secret" > /dev/null
listen $d/a 127.0.0.11 a.test --hold-queue
apw=$(grep "created user demo" $d/a.test.out | sed 's/.* password //')
asub=$(port a.test submission)
# Queue at A (held: not timed).
python3 - "$asub" "$apw" "$count" <<'PY'
import smtplib, ssl, sys, threading
port, pw, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
body = "Subject: load\r\n\r\n" + ("x" * 70 + "\r\n") * 14
def run(k):
    c = smtplib.SMTP("127.0.0.11", port, timeout=60); c.starttls(context=ctx); c.login("demo", pw)
    for i in range(k, n, 8):
        c.sendmail("demo@a.test", ["bob@b.test"], body)
    c.quit()
ts = [threading.Thread(target=run, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
apid=$(pgrep -f -- "--data $d/a " | head -1)
kill $apid; wait $apid 2>/dev/null || true
# Release: A again, relaying to B's SMTP port.
if [ -n "${MTA_PERF:-}" ]; then
    perf record -g -o "$MTA_PERF" -p "$(pgrep -f -- "--data $d/b " | head -1)" 2>/dev/null &
    sleep 0.3
fi
start=$(date +%s.%N)
listen $d/a 127.0.0.11 a.test --relay 127.0.0.12:$bport --outbound-bind 127.0.0.11 ${MTA_ARGS:-}
while [ "$(ls $d/b/store/users/bob/Maildir/new | wc -l)" -lt "$count" ]; do
    sleep 0.05
    [ "$(awk "BEGIN {print $(date +%s.%N) - $start > 300}")" = 1 ] && break
done
end=$(date +%s.%N)
for who in a b; do
    pid=$(pgrep -f -- "--data $d/$who " | head -1)
    [ -n "${MTA_CPU:-}" ] && echo "$who cpu: $(awk '{print ($14+$15)/100 " s"}' /proc/$pid/stat)"
done
n=$(ls $d/b/store/users/bob/Maildir/new | wc -l)
echo "A to B: $n messages in $(awk "BEGIN {print $end - $start}") s: $(awk "BEGIN {printf \"%d\", $n / ($end - $start)}") messages/s"
