//! The size of a message once every line end is CRLF.

/// Counts, over a message fed in any pieces, the octets it has once every
/// line end is CRLF (a bare CR or a bare LF becomes CRLF) and a missing
/// final line end is added: what a dot-stuffing encoder sends before
/// stuffing, what POP3 LIST and STAT report (RFC 1939 §11) and what IMAP
/// `RFC822.SIZE` means.
///
/// ```
/// use session_core::CrlfSize;
///
/// let mut size = CrlfSize::new();
/// size.feed(b"Subject: hi\n\nbody\r");
/// size.feed(b"\nlast line");
/// assert_eq!(size.stored(), 28);
/// assert_eq!(size.finish(), 32); // two bare LFs grew, and the last line got CRLF
/// assert_eq!(session_core::crlf_size(b"a\r\nb"), 6);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrlfSize {
    stored: u64,
    extra: u64,
    last: Option<u8>,
}

impl CrlfSize {
    /// Nothing counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the next piece of the message.
    pub fn feed(&mut self, data: &[u8]) {
        let Some(&last) = data.last() else {
            return;
        };
        // A CR that ended the previous piece is bare unless an LF follows.
        if self.last == Some(b'\r') && data[0] != b'\n' {
            self.extra += 1;
        }
        let mut i = 0;
        while let Some(j) = memchr::memchr2(b'\r', b'\n', &data[i..]) {
            let k = i + j;
            if data[k] == b'\n' {
                let before = if k == 0 { self.last } else { Some(data[k - 1]) };
                if before != Some(b'\r') {
                    self.extra += 1;
                }
            } else if k + 1 < data.len() && data[k + 1] != b'\n' {
                self.extra += 1;
            }
            i = k + 1;
        }
        self.stored += data.len() as u64;
        self.last = Some(last);
    }

    /// Octets fed so far, as they are.
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// The size with CRLF line ends and a final line end.
    pub fn finish(&self) -> u64 {
        let tail = match self.last {
            None | Some(b'\n') => 0,
            Some(b'\r') => 1,
            Some(_) => 2,
        };
        self.stored + self.extra + tail
    }
}

/// [`CrlfSize`] of a whole message in memory.
pub fn crlf_size(message: &[u8]) -> u64 {
    let mut size = CrlfSize::new();
    size.feed(message);
    size.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, byte by byte.
    fn naive(m: &[u8]) -> u64 {
        let mut n = 0u64;
        let mut i = 0;
        while i < m.len() {
            match m[i] {
                b'\r' if m.get(i + 1) == Some(&b'\n') => {
                    n += 2;
                    i += 2;
                    continue;
                }
                b'\r' | b'\n' => n += 2,
                _ => n += 1,
            }
            i += 1;
        }
        if !m.is_empty() && !m.ends_with(b"\n") && !m.ends_with(b"\r") {
            n += 2;
        }
        n
    }

    #[test]
    fn known_answers() {
        for (m, n) in [
            (&b""[..], 0),
            (b"a", 3),
            (b"a\r\n", 3),
            (b"a\n", 3),
            (b"a\r", 3),
            (b"\r\r", 4),
            (b"\n\r", 4),
            (b"\r\n\r\n", 4),
            (b"a\rb", 6),
            (b"a\r\rb\n", 8),
        ] {
            assert_eq!(crlf_size(m), n, "{m:?}");
        }
    }

    proptest! {
        #[test]
        fn any_split_matches_the_definition(
            m in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a')], 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let mut size = CrlfSize::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(m.len())).collect();
            cuts.sort_unstable();
            let mut at = 0;
            for c in cuts.into_iter().chain([m.len()]) {
                size.feed(&m[at..c]);
                at = c;
            }
            prop_assert_eq!(size.finish(), naive(&m));
            prop_assert_eq!(size.stored(), m.len() as u64);
        }
    }
}
