//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3): `&` starts a base64
//! run of UTF-16 (with `,` for `/`), `-` ends it, `&-` is `&`.

/// The name was not canonical modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7 mailbox name")]
pub struct Utf7Error;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes a UTF-8 mailbox name.
pub fn encode(name: &str) -> String {
    let mut out = String::new();
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for k in 0..chars {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            }
        }
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Decodes a modified UTF-7 name, refusing non-canonical forms (a base64
/// run that encodes printable ASCII, an empty run other than `&-`,
/// adjacent runs, bad padding bits).
pub fn decode(name: &str) -> Result<String, Utf7Error> {
    let b = name.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut last_run_end: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        if !(0x20..0x7f).contains(&c) {
            return Err(Utf7Error);
        }
        if c != b'&' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = i
            + 1
            + b[i + 1..]
                .iter()
                .position(|&x| x == b'-')
                .ok_or(Utf7Error)?;
        let run = &b[i + 1..end];
        if run.is_empty() {
            out.push('&');
        } else {
            if last_run_end == Some(i) {
                return Err(Utf7Error); // two runs back to back
            }
            let mut bits = 0u32;
            let mut nbits = 0;
            let mut units = Vec::new();
            for &ch in run {
                let v = ALPHABET.iter().position(|&a| a == ch).ok_or(Utf7Error)? as u32;
                bits = (bits << 6) | v;
                nbits += 6;
                if nbits >= 16 {
                    nbits -= 16;
                    units.push((bits >> nbits) as u16);
                    bits &= (1 << nbits) - 1;
                }
            }
            if nbits >= 6 || bits != 0 {
                return Err(Utf7Error); // leftover bits must be zero padding
            }
            let s = String::from_utf16(&units).map_err(|_| Utf7Error)?;
            if s.chars().any(|c| (' '..='~').contains(&c)) {
                return Err(Utf7Error); // printable ASCII must not be encoded
            }
            out.push_str(&s);
            last_run_end = Some(end + 1);
        }
        i = end + 1;
    }
    Ok(out)
}
