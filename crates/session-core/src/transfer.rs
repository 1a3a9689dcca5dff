//! Turning an 8-bit or binary message into a 7-bit one: for an SMTP
//! server without 8BITMIME (RFC 6152 §3) and for an IMAP APPEND of binary
//! content (RFC 3516 §4.3). Every MIME leaf with 8-bit octets or NUL is
//! re-encoded, text as quoted-printable and the rest as base64, its
//! `Content-Transfer-Encoding` changed to match. Multiparts and attached
//! messages are walked; their structure stays as it was.
//!
//! A message whose *headers* hold 8-bit octets is internationalised mail
//! (RFC 6532): it needs SMTPUTF8 and cannot be downgraded.
//!
//! ```
//! let msg = b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCaf\xc3\xa9\r\n";
//! let seven = session_core::transfer::to_seven_bit(msg).unwrap();
//! assert_eq!(seven, b"Subject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\
//!     Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9\r\n");
//! assert!(seven.is_ascii());
//! ```

/// Why a message cannot be made 7-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DowngradeError {
    /// 8-bit octets in a header: the message needs SMTPUTF8.
    #[error("8-bit octets in the message header need SMTPUTF8")]
    EightBitHeader,
    /// MIME nested deeper than the limit (100 levels).
    #[error("MIME structure nested too deeply")]
    TooDeep,
}

/// Whether the message holds any octet above 127.
pub fn is_eight_bit(message: &[u8]) -> bool {
    !message.is_ascii()
}

/// Whether `body` can go as it is in 7-bit transport: ASCII without NUL.
fn seven_bit(body: &[u8]) -> bool {
    body.is_ascii() && memchr::memchr(0, body).is_none()
}

/// The message with every 8-bit MIME part re-encoded as 7-bit; a message
/// that is 7-bit already comes back unchanged.
pub fn to_seven_bit(message: &[u8]) -> Result<Vec<u8>, DowngradeError> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 8);
    entity(message, &mut out, 0)?;
    Ok(out)
}

/// Splits an entity into its header (with the blank line) and its body.
fn split(entity: &[u8]) -> (&[u8], &[u8]) {
    if entity.starts_with(b"\r\n") {
        return (&entity[..2], &entity[2..]);
    }
    match memchr::memmem::find(entity, b"\r\n\r\n") {
        Some(i) => (&entity[..i + 4], &entity[i + 4..]),
        None => (entity, &[]),
    }
}

/// The unfolded value of the first header field called `name`.
fn header(head: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if !n.trim_end().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = v.trim().to_owned();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            } else {
                break;
            }
        }
        return Some(value);
    }
    None
}

/// `type/subtype` in lower case and the `boundary` parameter.
fn content_type(head: &[u8]) -> (String, Option<String>) {
    let Some(v) = header(head, "content-type") else {
        return ("text/plain".to_owned(), None);
    };
    let mut parts = v.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let boundary = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    });
    (mime, boundary)
}

fn entity(e: &[u8], out: &mut Vec<u8>, depth: usize) -> Result<(), DowngradeError> {
    if depth > 100 {
        return Err(DowngradeError::TooDeep);
    }
    let (head, body) = split(e);
    if !head.is_ascii() {
        return Err(DowngradeError::EightBitHeader);
    }
    if seven_bit(body) {
        out.extend_from_slice(e);
        return Ok(());
    }
    let (mime, boundary) = content_type(head);
    match (mime.split('/').next(), boundary) {
        (Some("multipart"), Some(b)) if !b.is_empty() => {
            out.extend_from_slice(head);
            multipart(body, b.as_bytes(), out, depth)
        }
        _ if mime == "message/rfc822" || mime == "message/global" => {
            out.extend_from_slice(head);
            entity(body, out, depth + 1)
        }
        _ => {
            let text = mime.starts_with("text/");
            out.extend_from_slice(&replace_cte(
                head,
                if text { "quoted-printable" } else { "base64" },
            ));
            if text {
                quoted_printable(body, out);
            } else {
                base64_lines(body, out);
            }
            Ok(())
        }
    }
}

/// The header with its Content-Transfer-Encoding (and any continuation
/// lines) replaced by `cte`, added before the blank line if absent.
fn replace_cte(head: &[u8], cte: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 48);
    let mut skipping = false;
    let body_start = head.len() - if head.ends_with(b"\r\n\r\n") { 2 } else { 0 };
    for line in head[..body_start].split_inclusive(|&b| b == b'\n') {
        if skipping && (line.starts_with(b" ") || line.starts_with(b"\t")) {
            continue;
        }
        skipping = false;
        let name_end = line.iter().position(|&b| b == b':');
        if name_end.is_some_and(|i| {
            line[..i]
                .trim_ascii_end()
                .eq_ignore_ascii_case(b"content-transfer-encoding")
        }) {
            skipping = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Transfer-Encoding: ");
    out.extend_from_slice(cte.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

fn multipart(
    body: &[u8],
    boundary: &[u8],
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), DowngradeError> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    // Positions of delimiter lines: at the start or after a CRLF.
    let mut cuts = Vec::new();
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&body[at..], &delim) {
        let pos = at + i;
        if pos == 0 || body[..pos].ends_with(b"\r\n") {
            cuts.push(pos);
        }
        at = pos + delim.len();
    }
    let Some(&first) = cuts.first() else {
        // No parts: an 8-bit preamble only; encode it as text.
        quoted_printable(body, out);
        return Ok(());
    };
    // The preamble is not shown to readers: kept when 7-bit.
    if seven_bit(&body[..first]) {
        out.extend_from_slice(&body[..first]);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    for (k, &pos) in cuts.iter().enumerate() {
        let line_end =
            memchr::memmem::find(&body[pos..], b"\r\n").map_or(body.len(), |i| pos + i + 2);
        let closing = body[pos + delim.len()..].starts_with(b"--");
        // The delimiter line, without any 8-bit transport padding.
        let line = &body[pos..line_end];
        if seven_bit(line) {
            out.extend_from_slice(line);
        } else {
            out.extend_from_slice(&delim);
            if closing {
                out.extend_from_slice(b"--");
            }
            out.extend_from_slice(b"\r\n");
        }
        let end = cuts.get(k + 1).map_or(body.len(), |&n| n);
        if closing {
            // The epilogue: not shown to readers; kept when 7-bit.
            let epilogue = &body[line_end.min(end)..];
            if seven_bit(epilogue) {
                out.extend_from_slice(epilogue);
            }
            return Ok(());
        }
        // The part runs to the CRLF before the next delimiter.
        let part_end = if end > line_end && body[..end].ends_with(b"\r\n") {
            end - 2
        } else {
            end.max(line_end)
        };
        entity(&body[line_end..part_end], out, depth + 1)?;
        if part_end < end {
            out.extend_from_slice(b"\r\n");
        }
    }
    Ok(())
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Quoted-printable (RFC 2045 §6.7) keeping CRLF as hard line breaks and
/// soft-breaking lines at 76 characters.
fn quoted_printable(body: &[u8], out: &mut Vec<u8>) {
    for line in body.split_inclusive(|&b| b == b'\n') {
        let (content, eol) = match line {
            [c @ .., b'\r', b'\n'] => (c, true),
            [c @ .., b'\n'] => (c, true),
            c => (c, false),
        };
        let mut col = 0;
        for (i, &b) in content.iter().enumerate() {
            let last = i + 1 == content.len();
            let plain = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let width = if plain { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if plain {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            col += width;
        }
        if eol {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Base64 in lines of 76 characters.
fn base64_lines(body: &[u8], out: &mut Vec<u8>) {
    for chunk in body.chunks(57) {
        use base64::Engine;
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(chunk)
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_bit_is_unchanged() {
        let m = b"Subject: x\r\n\r\nplain\r\n";
        assert_eq!(to_seven_bit(m).unwrap(), m);
    }

    #[test]
    fn eight_bit_header_cannot_be_downgraded() {
        let m = "Subject: café\r\n\r\nx\r\n".as_bytes();
        assert_eq!(to_seven_bit(m), Err(DowngradeError::EightBitHeader));
    }

    #[test]
    fn existing_cte_is_replaced() {
        let m = b"Content-Transfer-Encoding: 8bit\r\nSubject: x\r\n\r\n\xe9t\xe9 = summer\r\n";
        let out = to_seven_bit(m).unwrap();
        assert_eq!(
            out,
            b"Subject: x\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9t=E9 =3D summer\r\n"
        );
    }

    #[test]
    fn long_lines_are_soft_broken() {
        let mut m = b"Subject: x\r\n\r\n".to_vec();
        m.extend(std::iter::repeat_n(0xe9u8, 100));
        m.extend_from_slice(b"\r\n");
        let out = to_seven_bit(&m).unwrap();
        assert!(out.is_ascii());
        for line in out.split(|&b| b == b'\n') {
            assert!(line.len() <= 77, "{}", line.len());
        }
    }

    #[test]
    fn multipart_parts_are_walked() {
        let m = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n--b1\r\n\
Content-Type: text/plain\r\n\r\nascii\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n\
\x00\xff\xfe\r\n--b1--\r\nepi\r\n";
        let out = to_seven_bit(m).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n--b1\r\n\
Content-Type: text/plain\r\n\r\nascii\r\n--b1\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAP/+\r\n\r\n--b1--\r\nepi\r\n"
        );
    }

    #[test]
    fn trailing_space_is_encoded() {
        let mut out = Vec::new();
        quoted_printable(b"a \xe9 \r\n", &mut out);
        assert_eq!(out, b"a =E9=20\r\n");
    }
}
