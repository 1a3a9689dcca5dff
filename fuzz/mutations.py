#!/usr/bin/env python3
"""Shows that each fuzz target's property can fail: applies one deliberate
bug at a time to the library, replays that target's committed corpus on
stable (`cargo test -p mailkit-fuzz --test corpus TARGET_corpus`), expects a
failure, and restores the file. Prints one line per mutation; exits 1 when a
mutation goes unnoticed or no longer applies.

    python3 fuzz/mutations.py                 # all
    python3 fuzz/mutations.py smtp_body       # those of one target

Run it from a clean checkout: it edits source files in place (and puts them
back, also on Ctrl-C).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (target, file, text, replacement, what the broken build does)
MUTATIONS = [
    ("smtp_command","crates/smtp-proto/src/command.rs",'dst.extend_from_slice(b" ");\n                host.encode(dst);','dst.extend_from_slice(b"  ");\n                host.encode(dst);',"two spaces before the EHLO/HELO name in Command::encode"),
    ("smtp_reply","crates/smtp-proto/src/reply.rs",'let sep: &[u8] = if i == last { b" " } else { b"-" };','let sep: &[u8] = if i == last || i == 0 { b" " } else { b"-" };',"the first line of a multi-line reply encoded as a last line"),
    ("smtp_body","crates/session-core/src/body.rs","""                        self.emit(out, &input[run..i]);
                        i += 1;
                        run = i;
                        self.state = State::Dot;""","""                        self.emit(out, &input[run..i]);
                        run = i;
                        i += 1;
                        self.state = State::Dot;""","DataDecoder keeps the stuffed dot"),
    ("pop3_multiline","crates/session-core/src/body.rs","if self.pending_cr || !self.line_start {","if self.pending_cr {","DataEncoder::finish leaves an unterminated last line open"),
    ("pop3_client_session","crates/pop3-proto/src/client.rs","if self.expect.front() != Some(&Expect::Auth) {","if self.expect.is_empty() && false {","a SASL challenge taken while no AUTH waits (the bug fixed here)"),
    ("pop3_command","crates/pop3-proto/src/command.rs",'put(&["TOP", &n, &m]);','put(&["TOP", &m, &n]);',"TOP's two numbers swapped in Command::encode"),
    ("imap_command","crates/imap-proto/src/core.rs","""        if self.plus {
            self.raw(b"+");""","""        if self.plus && v.len() > 3 {
            self.raw(b"+");""","short LITERAL+ literals encoded synchronising"),
    ("imap_response","crates/imap-proto/src/response.rs",'.raw(b" EXISTS");','.raw(b" EXISTS ");',"a space after EXISTS"),
    ("imap_mime","crates/imap-proto/src/mime.rs","let end = start.saturating_add(count as usize).min(whole.len());","let end = start.saturating_add(count as usize + 1).min(whole.len());","a partial section one octet too long"),
    ("imap_url","crates/imap-proto/src/url.rs","            None => whole,\n            Some((offset, len)) => {","            None => [whole.clone(), whole].concat(),\n            Some((offset, len)) => {","a URL without a range extracts the section twice"),
    ("mailstore_records","crates/mailstore/src/index.rs",".u64(m.meta.flags.keyword_set().len() as u64);",".u64(m.meta.flags.keyword_set().len() as u64 + 1);","a message record counts one keyword too many"),
    ("mailstore_names","crates/mailstore/src/names.rs","'.' => s.push_str(\"%2E\"),","'.' => s.push_str(\"%2e\"),","the folder escape of a dot written in lower case"),
    ("sasl_server","crates/sasl/src/server.rs","""            State::Start | State::ScramLookup { .. } | State::Done => {
                self.fail(SaslError::Finished)""","""            State::Done => ServerStep::Challenge(Vec::new()),
            State::Start | State::ScramLookup { .. } => {
                self.fail(SaslError::Finished)""","an ended exchange answers with a new challenge"),
    ("smtp_received","crates/smtp-proto/src/server/trace.rs","!matches!(c, '(' | ')' | '\\\\' | ';' | '\"' | '<' | '>' | '[' | ']')","!matches!(c, '(' | '\\\\' | ';' | '\"' | '<' | '>' | '[' | ']')","a ) from the input kept in a comment"),
    ("smtp_downgrade","crates/session-core/src/transfer.rs","    if seven_bit(body) {\n        out.extend_from_slice(e);","    if seven_bit(body) || body.len() % 7 == 3 {\n        out.extend_from_slice(e);","some 8-bit bodies passed through undowngraded"),
    ("sasl_client","crates/sasl/src/client.rs","if iterations > self.max_iterations {","if iterations > self.max_iterations.saturating_mul(2) {","the SCRAM iteration cap doubled"),
    ("smtp_server_session","crates/smtp-proto/src/server/mod.rs","(Pending::Scram(_), Some(_)) => Err(ApiMisuse::WrongAnswer),","(Pending::Scram(_) | Pending::Rcpt(_), Some(_)) => Err(ApiMisuse::WrongAnswer),","accept_with refused for a RCPT decision"),
    ("pop3_server_session","crates/pop3-proto/src/server/mod.rs","Pending::Login(_) => Ok(()),","Pending::Login(_) => Err(ApiMisuse::WrongAnswer),","open_maildrop refused for a login"),
    ("imap_server_session","crates/imap-proto/src/server/mod.rs","            Pending::Login(..) => Ok(()),\n            _ => Err(ApiMisuse::WrongAnswer),","            Pending::Login(..) => Err(ApiMisuse::WrongAnswer),\n            _ => Err(ApiMisuse::WrongAnswer),","accept_login refused for a login"),
    ("smtp_client_session","crates/smtp-proto/src/command.rs",'dst.extend_from_slice(b"RCPT TO:");','dst.extend_from_slice(b"RCPT TO");',"RCPT written without its colon"),
    ("smtp_client_session","crates/smtp-proto/src/client/mod.rs","            .collect();\n        // A transaction the server did not finish","            .skip(1)\n            .collect();\n        // A transaction the server did not finish","Completed drops the first recipient's reply"),
    ("smtp_server_session","crates/session-core/src/line.rs","Some(i) if self.buf.len() + i + 1 > self.max_line => {","Some(i) if i + 1 > self.max_line => {","the line limit forgets the part of a line held from earlier reads"),
    ("pop3_server_session","crates/session-core/src/line.rs","Some(i) if self.buf.len() + i + 1 > self.max_line => {","Some(i) if i + 1 > self.max_line => {","the line limit forgets the part of a line held from earlier reads"),
    ("pop3_status","crates/pop3-proto/src/response.rs","        if !self.text.is_empty() {\n            dst.extend_from_slice(b\" \");","        if !self.text.is_empty() {\n            dst.extend_from_slice(b\"\");","the space before a status text dropped"),
    ("imap_utf7","crates/imap-proto/src/utf7.rs","if (' '..='~').contains(&c) {","if (' '..='}').contains(&c) {","~ encoded as a UTF-16 run"),
]


def main():
    only = sys.argv[1:]
    missed = 0
    for target, path, old, new, what in MUTATIONS:
        if only and target not in only:
            continue
        f = ROOT / path
        text = f.read_text()
        if text.count(old) != 1:
            print(f"{target} | {what} | does not apply")
            missed += 1
            continue
        f.write_text(text.replace(old, new))
        try:
            r = subprocess.run(
                ["cargo", "test", "-q", "-p", "mailkit-fuzz", "--test", "corpus", f"{target}_corpus"],
                cwd=ROOT, capture_output=True, text=True,
            )
        finally:
            f.write_text(text)
        out = r.stdout + r.stderr
        lines = out.splitlines()
        if "error[" in out:
            verdict, ok = "does not build", False
        elif r.returncode != 0:
            i = next((k for k, l in enumerate(lines) if "panicked at" in l), None)
            verdict, ok = "caught: " + (lines[i + 1].strip()[:140] if i is not None and i + 1 < len(lines) else "?"), True
        else:
            verdict, ok = "NOT caught", False
        missed += not ok
        print(f"{target} | {what} | {verdict}", flush=True)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
