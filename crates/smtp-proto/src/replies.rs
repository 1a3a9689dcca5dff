//! Fixed replies: every reply the server session writes on its own, and the
//! ones an application commonly chooses for its decisions.
//!
//! ```
//! use smtp_proto::{Reply, replies};
//!
//! let refusal: Reply<'static> = replies::NO_SUCH_USER.into();
//! assert_eq!(refusal.to_string(), "550 5.1.1 No such user here\r\n");
//! ```

use session_core::BodyError;

use crate::reply::FixedReply;

macro_rules! fixed {
    ($($(#[$doc:meta])* $name:ident = $code:literal $(($c:literal, $s:literal, $d:literal))? $text:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $name: FixedReply = FixedReply::new($code, fixed!(@enh $(($c, $s, $d))?), $text);
        )*
    };
    (@enh) => { None };
    (@enh ($c:literal, $s:literal, $d:literal)) => { Some(($c, $s, $d)) };
}

fixed! {
    // ---------------------------------------------- answers to decisions
    /// `550 5.1.1` No such user here.
    NO_SUCH_USER = 550 (5, 1, 1) "No such user here";
    /// `550 5.7.1` Relaying denied.
    RELAY_DENIED = 550 (5, 7, 1) "Relaying denied";
    /// `535 5.7.8` Authentication credentials invalid.
    AUTH_FAILED = 535 (5, 7, 8) "Authentication credentials invalid";
    /// `553 5.7.1` Sender address not owned by the authenticated user.
    SENDER_NOT_OWNED = 553 (5, 7, 1) "Sender address not owned by authenticated user";
    /// `451 4.3.0` Local error, try again later. Also what the session
    /// answers on its own when a decision passes its timeout.
    LOCAL_ERROR = 451 (4, 3, 0) "Local error in processing, try again later";
    /// `452 4.2.2` Mailbox full.
    MAILBOX_FULL = 452 (4, 2, 2) "Mailbox full";
    /// `454 4.7.0` Temporary authentication failure (also the session's own
    /// answer when an AUTH decision passes its timeout).
    AUTH_TEMPORARY = 454 (4, 7, 0) "Temporary authentication failure";

    // ------------------------------------------- default positive answers
    /// `250 2.1.0` to an accepted MAIL.
    SENDER_OK = 250 (2, 1, 0) "Sender OK";
    /// `250 2.1.5` to an accepted RCPT.
    RECIPIENT_OK = 250 (2, 1, 5) "Recipient OK";
    /// `235 2.7.0` to an accepted AUTH.
    AUTH_OK = 235 (2, 7, 0) "Authentication successful";
    /// `250 2.0.0` to an accepted message.
    MESSAGE_ACCEPTED = 250 (2, 0, 0) "Message accepted";

    // ---------------------------------------------- the session's own
    /// `250 2.0.0 OK` (RSET, NOOP).
    OK = 250 (2, 0, 0) "OK";
    /// `214` to HELP.
    HELP = 214 (2, 0, 0) "See RFC 5321; commands: EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT";
    /// `252` to VRFY.
    VRFY = 252 (2, 1, 5) "Cannot VRFY user, but will accept message and attempt delivery";
    /// `502` to EXPN.
    EXPN = 502 (5, 5, 1) "EXPN not available";
    /// `500` to an unknown command.
    UNRECOGNISED = 500 (5, 5, 1) "Command unrecognized";
    /// `354` after DATA.
    START_DATA = 354 "Start mail input; end with <CRLF>.<CRLF>";
    /// `334 ` an empty AUTH challenge.
    EMPTY_CHALLENGE = 334 "";
    /// `220` after STARTTLS.
    START_TLS = 220 (2, 0, 0) "Ready to start TLS";
    /// `503` STARTTLS on a secure link.
    TLS_ACTIVE = 503 (5, 5, 1) "TLS already active";
    /// `503` a command before EHLO or HELO.
    NEED_EHLO = 503 (5, 5, 1) "Send EHLO/HELO first";
    /// `503` a command before LHLO.
    NEED_LHLO = 503 (5, 5, 1) "Send LHLO first";
    /// `503` AUTH before EHLO (HELO has no extensions).
    AUTH_NEEDS_EHLO = 503 (5, 5, 1) "Send EHLO first";
    /// `503` MAIL inside a transaction.
    NESTED_MAIL = 503 (5, 5, 1) "Nested MAIL command";
    /// `530` MAIL before AUTH where AUTH is required.
    AUTH_REQUIRED = 530 (5, 7, 0) "Authentication required";
    /// `503` RCPT before MAIL.
    NEED_MAIL = 503 (5, 5, 1) "Need MAIL before RCPT";
    /// `503` RCPT after BDAT began.
    RCPT_DURING_BDAT = 503 (5, 5, 1) "RCPT not allowed during BDAT transfer";
    /// `452` one RCPT more than the limit.
    TOO_MANY_RECIPIENTS = 452 (4, 5, 3) "Too many recipients";
    /// `555` a RCPT parameter not offered.
    RCPT_PARAMETER = 555 (5, 5, 4) "Unsupported RCPT parameter";
    /// `555` a MAIL parameter not offered.
    MAIL_PARAMETER = 555 (5, 5, 4) "Unsupported MAIL parameter";
    /// `552` a message (or its declared SIZE) over the limit.
    TOO_LARGE = 552 (5, 3, 4) "Message size exceeds fixed maximum message size";
    /// `550` a body with a bare CR or LF.
    BARE_LINE_ENDING = 550 (5, 5, 2) "Bare CR or LF in message body, lines must end in CRLF";
    /// `503` DATA or BDAT without MAIL.
    NEED_MAIL_AND_RCPT = 503 (5, 5, 1) "Need MAIL and RCPT first";
    /// `554` DATA or BDAT without an accepted RCPT.
    NO_RECIPIENTS = 554 (5, 5, 1) "No valid recipients";
    /// `503` DATA for a BINARYMIME message.
    BINARYMIME_NEEDS_BDAT = 503 (5, 5, 1) "BINARYMIME requires BDAT";
    /// `503` DATA after BDAT began.
    DATA_DURING_BDAT = 503 (5, 5, 1) "DATA not allowed during BDAT transfer";
    /// `503` BDAT after a failed chunk.
    BDAT_FAILED = 503 (5, 5, 1) "Previous BDAT failed, send RSET";
    /// `503` AUTH twice.
    ALREADY_AUTHENTICATED = 503 (5, 5, 1) "Already authenticated";
    /// `503` AUTH inside a transaction.
    AUTH_IN_TRANSACTION = 503 (5, 5, 1) "AUTH not allowed during a mail transaction";
    /// `504` an AUTH mechanism not offered.
    UNKNOWN_MECHANISM = 504 (5, 5, 4) "Unrecognized authentication type";
    /// `538` a plaintext mechanism before TLS.
    ENCRYPTION_REQUIRED = 538 (5, 7, 11) "Encryption required for requested authentication mechanism";
    /// `501` bad base64 in AUTH's initial response.
    BAD_INITIAL_RESPONSE = 501 (5, 5, 2) "Invalid base64 in initial response";
    /// `501` bad base64 in an AUTH response line.
    BAD_AUTH_RESPONSE = 501 (5, 5, 2) "Invalid base64 in response";
    /// `501` the client cancelled AUTH with `*`.
    AUTH_CANCELLED = 501 (5, 0, 0) "Authentication cancelled";
    /// `501` a SASL message that does not follow the mechanism.
    MALFORMED_AUTH = 501 (5, 5, 2) "Malformed authentication response";

    // ----------------------------- closing (the host name goes first)
    /// `221` after QUIT.
    CLOSING = 221 (2, 0, 0) "closing connection";
    /// `421` the client was idle for too long.
    IDLE_TIMEOUT = 421 (4, 4, 2) "Timeout waiting for client, closing connection";
    /// `421` more pipelined input than the session holds.
    TOO_MUCH_INPUT = 421 (4, 7, 0) "Too much pipelined input, closing connection";
    /// `421` the error limit was reached.
    TOO_MANY_ERRORS = 421 (4, 7, 0) "Too many errors, closing connection";
    /// `421` the AUTH failure limit was reached.
    TOO_MANY_AUTH_FAILURES = 421 (4, 7, 0) "Too many authentication failures, closing connection";
    /// `421` a BDAT size that cannot be read (the stream is lost).
    BAD_BDAT_SIZE = 421 (4, 5, 4) "Invalid BDAT size, closing connection";
}

/// The reply for a refused body.
pub fn body_error(e: &BodyError) -> FixedReply {
    match e {
        BodyError::TooLarge { .. } => TOO_LARGE,
        _ => BARE_LINE_ENDING,
    }
}
