#!/bin/bash
# 10,000 1 KiB messages over 10 parallel sessions with Postfix smtp-source.
# Usage: benches/load/smtp-source.sh target/release/mailserver
bin=$1
d=$(mktemp -d)
$bin --data $d/data --domain example.test serve --smtp 127.0.0.1:0 --submission 127.0.0.1:0 --lmtp 127.0.0.1:0 --pop3 127.0.0.1:0 --imap 127.0.0.1:0 > $d/out 2>/dev/null &
pid=$!
sleep 1.5
port=$(grep "listening smtp" $d/out | sed 's/.*://')
start=$(date +%s.%N)
timeout 300 smtp-source -s 10 -m 10000 -l 1024 -f a@b.example -t demo@example.test 127.0.0.1:$port
end=$(date +%s.%N)
n=$(ls $d/data/store/users/demo/Maildir/new | wc -l)
echo "$bin: $n messages in $(awk "BEGIN {print $end - $start}") s"
kill $pid; wait $pid 2>/dev/null
rm -rf $d
