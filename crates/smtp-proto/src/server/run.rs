//! Feeding input through the session: the held input, the body decoders
//! and the command framer.

use bytes::BytesMut;
use session_core::{BodyProgress, Consumed, Inbox, LineFramer};

use super::{BdatMode, Event, Phase, Session};
use crate::replies;

impl Session {
    /// New input, through the held input (see [`session_core::Inbox`]).
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        let waiting = self.decisions.is_pending();
        let mut inbox = std::mem::replace(&mut self.inbox, Inbox::new(0));
        let held = inbox.feed(bytes, waiting, |b| self.consume(b));
        self.inbox = inbox;
        if held.is_err() {
            self.overflow();
        }
    }

    /// Processes the held input after a decision was answered.
    pub(super) fn run_inbox(&mut self) {
        let mut inbox = std::mem::replace(&mut self.inbox, Inbox::new(0));
        inbox.drain(|b| self.consume(b));
        self.inbox = inbox;
    }

    fn consume(&mut self, input: &[u8]) -> Consumed {
        let used = self.run(input);
        Consumed {
            used,
            keep: !self.is_closed() && !matches!(self.phase, Phase::AwaitTls),
        }
    }

    /// More pipelined input than the session may hold.
    pub(super) fn overflow(&mut self) {
        self.inbox.clear();
        self.abort_message();
        self.closing(replies::TOO_MUCH_INPUT);
    }

    /// Continue after a decision: process held input, then flush.
    pub(super) fn resume(&mut self) {
        if self.is_closed() {
            self.flush();
            return;
        }
        self.touch();
        if !self.inbox.is_empty() && !self.decisions.is_pending() {
            self.run_inbox();
        }
        self.after_run();
    }

    pub(super) fn after_run(&mut self) {
        if !self.decisions.is_pending() || self.out.len() >= self.config.limits.max_buffered_output
        {
            self.flush();
        }
    }

    /// Processes as much of `input` as possible; returns bytes consumed.
    pub(super) fn run(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() && !self.decisions.is_pending() {
            match &mut self.phase {
                Phase::Closed | Phase::AwaitTls => return input.len(),
                Phase::Data(decoder) => {
                    // Unstuffing never grows the body (only normalising a
                    // bare line end does): one allocation, no regrowth.
                    let mut out = BytesMut::with_capacity(input.len() - pos);
                    let progress = decoder.decode(&input[pos..], &mut out);
                    let size = decoder.size();
                    if !out.is_empty() {
                        self.event(Event::MessageData(out.freeze()));
                    }
                    match progress {
                        BodyProgress::NeedMore => pos = input.len(),
                        BodyProgress::Finished { consumed, result } => {
                            pos += consumed;
                            self.phase = Phase::Command;
                            self.touch();
                            match result {
                                Ok(()) => self.message_complete(size),
                                Err(e) => {
                                    self.event(Event::MessageAborted);
                                    self.transaction = None;
                                    self.peer_error(replies::body_error(&e));
                                }
                            }
                        }
                    }
                }
                Phase::Bdat { decoder, mode, .. } => {
                    let take = usize::try_from(decoder.remaining()).unwrap_or(usize::MAX);
                    let want = if matches!(mode, BdatMode::Accept) {
                        take.min(input.len() - pos)
                    } else {
                        0
                    };
                    let mut out = BytesMut::with_capacity(want);
                    let progress = decoder.decode(&input[pos..], &mut out);
                    let deliver = matches!(mode, BdatMode::Accept);
                    if !out.is_empty() && deliver {
                        self.event(Event::MessageData(out.freeze()));
                    }
                    match progress {
                        BodyProgress::NeedMore => pos = input.len(),
                        BodyProgress::Finished { consumed, .. } => {
                            pos += consumed;
                            self.bdat_chunk_done();
                        }
                    }
                }
                Phase::Command | Phase::AuthResponse(_) => {
                    let mut framer = std::mem::replace(
                        &mut self.framer,
                        LineFramer::new(0, self.config.line_ending),
                    );
                    let (used, line) = framer.push(&input[pos..]);
                    pos += used;
                    if let Some(line) = line {
                        match line {
                            Ok(line) => self.line(line),
                            Err(e) => {
                                if matches!(self.phase, Phase::AuthResponse(_)) {
                                    self.phase = Phase::Command;
                                }
                                let e = crate::CommandError::from(e);
                                self.peer_error(e.fixed_reply());
                            }
                        }
                        if self.out.len() >= self.config.limits.max_buffered_output {
                            // A long pipelined batch: hand out what is ready.
                            self.flush();
                        }
                    }
                    if matches!(self.phase, Phase::AwaitTls) {
                        // Everything after the STARTTLS line is dropped.
                        framer.reset();
                        self.framer = framer;
                        return input.len();
                    }
                    self.framer = framer;
                }
            }
        }
        pos
    }
}
