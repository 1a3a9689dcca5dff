//! Replays every file of every target's corpus on stable, so CI exercises
//! the fuzz targets without nightly.

use std::fs;
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut count = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let data = fs::read(&path).expect("corpus file");
        if let Err(e) = std::panic::catch_unwind(|| run(&data)) {
            eprintln!("{target}: {} fails", path.display());
            std::panic::resume_unwind(e);
        }
        count += 1;
    }
    assert!(count > 0, "empty corpus for {target}");
}

#[test]
fn smtp_command_corpus() {
    replay("smtp_command", mailkit_fuzz::smtp_command);
}

#[test]
fn smtp_reply_corpus() {
    replay("smtp_reply", mailkit_fuzz::smtp_reply);
}

#[test]
fn smtp_body_corpus() {
    replay("smtp_body", mailkit_fuzz::smtp_body);
}

#[test]
fn smtp_server_session_corpus() {
    replay("smtp_server_session", mailkit_fuzz::smtp_server_session);
}

#[test]
fn pop3_command_corpus() {
    replay("pop3_command", mailkit_fuzz::pop3_command);
}

#[test]
fn pop3_server_session_corpus() {
    replay("pop3_server_session", mailkit_fuzz::pop3_server_session);
}

#[test]
fn imap_command_corpus() {
    replay("imap_command", mailkit_fuzz::imap_command);
}

#[test]
fn imap_url_corpus() {
    replay("imap_url", mailkit_fuzz::imap_url);
}

#[test]
fn imap_response_corpus() {
    replay("imap_response", mailkit_fuzz::imap_response);
}

#[test]
fn pop3_client_session_corpus() {
    replay("pop3_client_session", mailkit_fuzz::pop3_client_session);
}

#[test]
fn imap_server_session_corpus() {
    replay("imap_server_session", mailkit_fuzz::imap_server_session);
}

#[test]
fn imap_mime_corpus() {
    replay("imap_mime", mailkit_fuzz::imap_mime);
}

#[test]
fn smtp_client_session_corpus() {
    replay("smtp_client_session", mailkit_fuzz::smtp_client_session);
}

#[test]
fn smtp_downgrade_corpus() {
    replay("smtp_downgrade", mailkit_fuzz::smtp_downgrade);
}

#[test]
fn sasl_server_corpus() {
    replay("sasl_server", mailkit_fuzz::sasl_server);
}

#[test]
fn imap_utf7_corpus() {
    replay("imap_utf7", mailkit_fuzz::imap_utf7);
}

#[test]
fn imap_sequence_set_corpus() {
    replay("imap_sequence_set", mailkit_fuzz::imap_sequence_set);
}

#[test]
fn pop3_status_corpus() {
    replay("pop3_status", mailkit_fuzz::pop3_status);
}

#[test]
fn imap_framer_corpus() {
    replay("imap_framer", mailkit_fuzz::imap_framer);
}

#[test]
fn mailstore_records_corpus() {
    replay("mailstore_records", mailkit_fuzz::mailstore_records);
}

#[test]
fn mailstore_names_corpus() {
    replay("mailstore_names", mailkit_fuzz::mailstore_names);
}

#[test]
fn sasl_client_corpus() {
    replay("sasl_client", mailkit_fuzz::sasl_client);
}

#[test]
fn pop3_multiline_corpus() {
    replay("pop3_multiline", mailkit_fuzz::pop3_multiline);
}

#[test]
fn smtp_received_corpus() {
    replay("smtp_received", mailkit_fuzz::smtp_received);
}
