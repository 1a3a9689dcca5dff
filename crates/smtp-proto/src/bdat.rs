//! BDAT chunks (RFC 3030): an exact octet count, no stuffing, no end marker.

use bytes::BytesMut;
use session_core::BodyProgress;

/// Receives one BDAT chunk by exact octet count (RFC 3030): no stuffing, no
/// end marker; the bytes are taken as they are.
#[derive(Debug, Clone)]
pub struct BdatDecoder {
    remaining: u64,
    discard: bool,
}

impl BdatDecoder {
    /// A decoder for a chunk of `size` octets whose bytes are passed on.
    pub fn new(size: u64) -> Self {
        BdatDecoder {
            remaining: size,
            discard: false,
        }
    }

    /// A decoder that reads `size` octets and drops them (for a chunk the
    /// server refused, so the stream stays in sync).
    pub fn discarding(size: u64) -> Self {
        BdatDecoder {
            remaining: size,
            discard: true,
        }
    }

    /// Octets of the chunk still expected.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Feeds bytes, appending the chunk's bytes to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut BytesMut) -> BodyProgress {
        let take = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        if !self.discard {
            out.extend_from_slice(&input[..take]);
        }
        self.remaining -= take as u64;
        if self.remaining == 0 {
            BodyProgress::Finished {
                consumed: take,
                result: Ok(()),
            }
        } else {
            BodyProgress::NeedMore
        }
    }
}
