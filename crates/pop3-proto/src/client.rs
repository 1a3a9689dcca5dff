//! The POP3 client side: sends commands, reads status lines and
//! byte-stuffed multi-line bodies, however the bytes are split.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use smtp_proto::{BareLineEnding, BodyProgress, DataDecoder, LineEnding, LineFramer};

use crate::command::Command;
use crate::response::{ResponseError, Status};

/// A server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The greeting.
    Greeting(Status),
    /// The status line, and for multi-line responses the un-stuffed body.
    Response {
        /// `+OK`/`-ERR` line.
        status: Status,
        /// The body of a multi-line `+OK` (LIST, UIDL, RETR, TOP, CAPA …).
        body: Option<Bytes>,
    },
    /// A SASL challenge (`+ base64`), still encoded.
    Continue(String),
}

/// Why the server's output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A malformed or over-long line.
    #[error("malformed server response")]
    Malformed,
    /// The server spoke without being asked.
    #[error("unexpected server response")]
    Unexpected,
}

impl From<ResponseError> for ClientError {
    fn from(_: ResponseError) -> Self {
        ClientError::Malformed
    }
}

enum Phase {
    Line,
    Body(DataDecoder, Status, BytesMut),
}

/// One POP3 client connection.
pub struct Session {
    framer: LineFramer,
    phase: Phase,
    greeted: bool,
    expect: VecDeque<bool>,
    out: BytesMut,
    replies: VecDeque<Result<Reply, ClientError>>,
    max_body: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("client::Session")
            .field("pending", &self.expect.len())
            .finish_non_exhaustive()
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new(64 * 1024 * 1024)
    }
}

impl Session {
    /// A client expecting the greeting; multi-line bodies over `max_body`
    /// octets are an error.
    pub fn new(max_body: u64) -> Session {
        Session {
            framer: LineFramer::new(4096, LineEnding::AllowBareLf),
            phase: Phase::Line,
            greeted: false,
            expect: VecDeque::new(),
            out: BytesMut::new(),
            replies: VecDeque::new(),
            max_body,
        }
    }

    /// Queues a command (pipelining is fine); its bytes come out of
    /// [`Session::poll_transmit`].
    pub fn send(&mut self, cmd: &Command) {
        let multi = matches!(
            cmd,
            Command::List(None)
                | Command::Uidl(None)
                | Command::Retr(_)
                | Command::Top(..)
                | Command::Capa
                | Command::Auth {
                    mechanism: None,
                    ..
                }
        );
        cmd.encode(&mut self.out);
        self.expect.push_back(multi);
    }

    /// Sends a SASL response line (already base64, or `*`).
    pub fn send_sasl(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out).freeze())
    }

    /// The next reply, in order.
    pub fn poll_reply(&mut self) -> Option<Result<Reply, ClientError>> {
        self.replies.pop_front()
    }

    /// Bytes from the server.
    pub fn handle_input(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match &mut self.phase {
                Phase::Body(dec, _, body) => {
                    let progress = dec.decode(input, body);
                    match progress {
                        BodyProgress::NeedMore => input = &[],
                        BodyProgress::Finished { consumed, result } => {
                            input = &input[consumed..];
                            let Phase::Body(_, status, body) =
                                std::mem::replace(&mut self.phase, Phase::Line)
                            else {
                                unreachable!()
                            };
                            self.replies.push_back(match result {
                                Ok(()) => Ok(Reply::Response {
                                    status,
                                    body: Some(body.freeze()),
                                }),
                                Err(_) => Err(ClientError::Malformed),
                            });
                        }
                    }
                }
                Phase::Line => {
                    let (used, line) = self.framer.push(input);
                    input = &input[used..];
                    let Some(line) = line else { continue };
                    let line = line.map(<[u8]>::to_vec);
                    let reply = match line {
                        Err(_) => Err(ClientError::Malformed),
                        Ok(l) => self.status_line(&l),
                    };
                    if let Some(r) = reply.transpose() {
                        self.replies.push_back(r);
                    }
                }
            }
        }
    }

    fn status_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ClientError> {
        if !self.greeted {
            self.greeted = true;
            return Ok(Some(Reply::Greeting(Status::parse(line)?)));
        }
        if let Some(rest) = line
            .strip_prefix(b"+ ")
            .or_else(|| (line == b"+").then_some(&b""[..]))
        {
            return Ok(Some(Reply::Continue(
                String::from_utf8_lossy(rest).into_owned(),
            )));
        }
        let status = Status::parse(line)?;
        let multi = self.expect.pop_front().ok_or(ClientError::Unexpected)?;
        if multi && status.ok {
            let dec = DataDecoder::with_policy(BareLineEnding::Normalize, Some(self.max_body));
            self.phase = Phase::Body(dec, status, BytesMut::new());
            return Ok(None);
        }
        Ok(Some(Reply::Response { status, body: None }))
    }
}
