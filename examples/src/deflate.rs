//! COMPRESS=DEFLATE (RFC 4978) for the socket loop: raw DEFLATE (RFC 1951)
//! both ways, a sync flush whenever the loop flushes its writes, and
//! decompressed input handed on in bounded pieces (a small compressed
//! read cannot become one huge buffer).

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Largest piece of decompressed input handed on at once.
pub const PIECE: usize = 16 * 1024;

/// The two halves of a compressed connection.
pub struct Deflate {
    tx: Compress,
    rx: Decompress,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("out", &self.tx.total_out())
            .field("in", &self.rx.total_in())
            .finish()
    }
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate::new()
    }
}

impl Deflate {
    /// Fresh streams (no zlib header: RFC 4978 §3).
    pub fn new() -> Deflate {
        Deflate {
            tx: Compress::new(Compression::default(), false),
            rx: Decompress::new(false),
        }
    }

    /// Compresses `data`; `sync` ends with a sync flush, so the peer can
    /// decompress everything written so far. Returns the bytes to write.
    pub fn compress(&mut self, data: &[u8], sync: bool) -> io::Result<Vec<u8>> {
        let flush = if sync {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.tx.total_in();
            let status = self
                .tx
                .compress_vec(input, &mut out, flush)
                .map_err(io::Error::other)?;
            let used = usize::try_from(self.tx.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            // Done when the input is in and the output did not fill up
            // (a full buffer may hold back flushed bytes).
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
            if status == Status::StreamEnd {
                return Ok(out);
            }
        }
    }

    /// Decompresses `data`, handing the output on in pieces of at most
    /// [`PIECE`] bytes. A corrupt stream is an error.
    pub fn decompress(&mut self, data: &[u8], mut sink: impl FnMut(&[u8])) -> io::Result<()> {
        let mut input = data;
        let mut piece = Vec::with_capacity(PIECE);
        loop {
            piece.clear();
            let before = self.rx.total_in();
            let status = self
                .rx
                .decompress_vec(input, &mut piece, FlushDecompress::Sync)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let used = usize::try_from(self.rx.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            if !piece.is_empty() {
                sink(&piece);
            }
            if status == Status::StreamEnd {
                return Ok(());
            }
            // More to come only while input is left or the piece filled
            // (a piece filled exactly may have been the last of it).
            if input.is_empty() && piece.len() < PIECE {
                return Ok(());
            }
            if used == 0 && piece.is_empty() {
                if input.is_empty() {
                    return Ok(());
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "DEFLATE stream stalled",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_one_side_compresses_the_other_reads_back_flush_by_flush() {
        let (mut a, mut b) = (Deflate::new(), Deflate::new());
        let mut got = Vec::new();
        for round in 0..50u32 {
            let text = format!("* {round} FETCH (FLAGS (\\Seen))\r\n").repeat(round as usize + 1);
            let wire = a.compress(text.as_bytes(), true).unwrap();
            got.clear();
            b.decompress(&wire, |p| got.extend_from_slice(p)).unwrap();
            assert_eq!(got, text.as_bytes(), "round {round}");
        }
    }

    #[test]
    fn content_at_piece_boundary_sizes_comes_back_whole() {
        let (mut a, mut b) = (Deflate::new(), Deflate::new());
        for len in [PIECE, 2 * PIECE, PIECE - 1, PIECE + 1] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let wire = a.compress(&data, true).unwrap();
            let mut got = Vec::new();
            b.decompress(&wire, |p| got.extend_from_slice(p)).unwrap();
            assert_eq!(got, data, "{len}");
        }
    }

    #[test]
    fn a_small_read_that_inflates_hugely_comes_out_in_bounded_pieces() {
        let mut a = Deflate::new();
        let zeros = vec![b'a'; 4 * 1024 * 1024];
        let wire = a.compress(&zeros, true).unwrap();
        assert!(wire.len() < 32 * 1024, "{}", wire.len());
        let mut b = Deflate::new();
        let (mut total, mut largest) = (0, 0);
        b.decompress(&wire, |p| {
            total += p.len();
            largest = largest.max(p.len());
        })
        .unwrap();
        assert_eq!(total, zeros.len());
        assert!(largest <= PIECE);
        assert!(
            Deflate::new()
                .decompress(b"\xff\xff\xff garbage", |_| {})
                .is_err()
        );
    }
}
