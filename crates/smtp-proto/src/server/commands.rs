//! The commands of the mail transaction: hello, MAIL, RCPT, DATA, BDAT,
//! RSET, STARTTLS and the small ones.

use std::borrow::Cow;

use crate::address::{ForwardPath, Host, ReversePath};
use crate::bdat::BdatDecoder;
use crate::command::{Command, CommandOptions};
use crate::ehlo::{Capability, EhloResponse};
use crate::params::{BodyType, MailParameters, RcptParameters};
use crate::replies;
use crate::reply::{FixedReply, Reply, ReplyCode};
use session_core::DataDecoder;

use super::{
    BdatMode, Event, HeloKind, MailRequest, MessageRequest, Mode, Pending, Phase, RcptRequest,
    Recipient, Session,
};

impl Session {
    pub(super) fn line(&mut self, line: &[u8]) {
        if let Phase::AuthResponse(_) = self.phase {
            self.auth_line(line);
            return;
        }
        let opts = CommandOptions {
            max_line: self.config.limits.command_line,
            line_ending: self.config.line_ending,
            smtputf8: self.transaction.as_ref().is_some_and(|t| t.params.smtputf8),
        };
        match Command::parse_line(line, &opts) {
            Ok(cmd) => self.command(cmd),
            Err(e) => {
                let is_bdat = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"BDAT");
                if is_bdat && self.config.extensions.chunking {
                    // The chunk size is unknown: the stream cannot be
                    // resynchronised.
                    self.say(e.fixed_reply());
                    self.abort_message();
                    self.closing(replies::BAD_BDAT_SIZE);
                } else {
                    self.peer_error(e.fixed_reply());
                }
            }
        }
    }

    fn command(&mut self, cmd: Command<'_>) {
        let lmtp = self.config.mode == Mode::Lmtp;
        match cmd {
            Command::Ehlo { host } if !lmtp => self.hello(HeloKind::Ehlo, host),
            Command::Helo { host } if !lmtp => self.hello(HeloKind::Helo, host),
            Command::Lhlo { host } if lmtp => self.hello(HeloKind::Lhlo, host),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } if self.config.extensions.chunking => {
                self.bdat(size, last)
            }
            Command::Rset => {
                self.abort_message();
                self.transaction = None;
                self.say(replies::OK);
            }
            Command::Noop { .. } => self.say(replies::OK),
            Command::Help { .. } => self.say(replies::HELP),
            Command::Vrfy { .. } => self.say(replies::VRFY),
            Command::Expn { .. } => self.peer_error(replies::EXPN),
            Command::Quit => {
                self.abort_message();
                self.closing(replies::CLOSING);
            }
            Command::StartTls if self.config.extensions.starttls => self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } if !self.config.auth_mechanisms.is_empty() => {
                self.auth(mechanism.as_str(), initial_response)
            }
            _ => self.peer_error(replies::UNRECOGNISED),
        }
    }

    fn hello(&mut self, kind: HeloKind, host: Host<'_>) {
        self.abort_message();
        self.transaction = None;
        self.helo = Some((kind, host.into_owned()));
        let name = self.config.hostname.to_string();
        if kind == HeloKind::Helo {
            self.say_reply(&Reply::trusted(ReplyCode::OK, None, name));
            return;
        }
        let ehlo = EhloResponse {
            domain: Cow::Owned(name),
            greeting: None,
            capabilities: self.capabilities(),
        };
        match ehlo.to_reply() {
            Some(reply) => self.say_reply(&reply),
            // Only a configuration with an unprintable name gets here.
            None => self.say(replies::OK),
        }
    }

    /// What EHLO/LHLO advertises now.
    fn capabilities(&self) -> Vec<Capability<'static>> {
        let c = &self.config;
        let x = &c.extensions;
        let offered = [
            (x.pipelining, Capability::Pipelining),
            (x.size, Capability::Size(Some(c.limits.max_message_size))),
            (x.eight_bit_mime, Capability::EightBitMime),
            (x.enhanced_status_codes, Capability::EnhancedStatusCodes),
            (x.chunking, Capability::Chunking),
            (x.chunking && x.binary_mime, Capability::BinaryMime),
            (x.smtputf8, Capability::SmtpUtf8),
            (x.dsn, Capability::Dsn),
            (x.starttls && !self.tls, Capability::StartTls),
            (x.requiretls && self.tls, Capability::RequireTls),
            (x.mt_priority, Capability::MtPriority(None)),
            (x.deliver_by, Capability::DeliverBy(None)),
        ];
        let mut caps: Vec<Capability<'static>> = offered
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, cap)| cap)
            .collect();
        let mechs: Vec<Cow<'static, str>> = c
            .auth_mechanisms
            .iter()
            .filter(|m| self.mechanism_allowed(**m))
            .map(|m| Cow::Borrowed(m.name()))
            .collect();
        if !mechs.is_empty() && self.identity.is_none() {
            caps.push(Capability::Auth(mechs));
        }
        caps
    }

    /// Whether the client introduced itself; if not, says so (an error).
    fn need_hello(&mut self) -> bool {
        if self.helo.is_none() {
            self.peer_error(if self.config.mode == Mode::Lmtp {
                replies::NEED_LHLO
            } else {
                replies::NEED_EHLO
            });
            return false;
        }
        true
    }

    pub(super) fn esmtp(&self) -> bool {
        self.helo.as_ref().is_some_and(|h| h.0 != HeloKind::Helo)
    }

    /// The reason a MAIL parameter is refused, if it is.
    fn refuse_mail_param(&self, p: &MailParameters<'_>) -> Option<FixedReply> {
        let x = &self.config.extensions;
        let unsupported = replies::MAIL_PARAMETER;
        if !self.esmtp() && !p.is_empty() {
            return Some(unsupported);
        }
        if p.size.is_some() && !x.size
            || p.smtputf8 && !x.smtputf8
            || (p.ret.is_some() || p.envid.is_some()) && !x.dsn
            || p.auth.is_some() && self.config.auth_mechanisms.is_empty()
            || p.requiretls && !(x.requiretls && self.tls)
            || p.mt_priority.is_some() && !x.mt_priority
            || p.by.is_some() && !x.deliver_by
            || p.hold.is_some()
            || !p.unknown.is_empty()
        {
            return Some(unsupported);
        }
        match p.body {
            Some(BodyType::EightBitMime) if !x.eight_bit_mime => return Some(unsupported),
            Some(BodyType::BinaryMime) if !(x.binary_mime && x.chunking) => {
                return Some(unsupported);
            }
            _ => {}
        }
        if p.size
            .is_some_and(|s| s > self.config.limits.max_message_size)
        {
            return Some(replies::TOO_LARGE);
        }
        None
    }

    fn mail(&mut self, from: ReversePath<'_>, params: MailParameters<'_>) {
        if !self.need_hello() {
            return;
        }
        if self.transaction.is_some() {
            self.peer_error(replies::NESTED_MAIL);
            return;
        }
        if self.config.require_auth && self.identity.is_none() {
            self.peer_error(replies::AUTH_REQUIRED);
            return;
        }
        if let Some(r) = self.refuse_mail_param(&params) {
            self.peer_error(r);
            return;
        }
        let from = from.into_owned();
        let params = params.into_owned();
        let token = self.token(Pending::Mail(Box::new((from.clone(), params.clone()))));
        self.event(Event::Mail(Box::new(MailRequest {
            token,
            from,
            params,
        })));
    }

    fn rcpt(&mut self, to: ForwardPath<'_>, params: RcptParameters<'_>) {
        let Some(t) = self.transaction.as_ref() else {
            self.peer_error(replies::NEED_MAIL);
            return;
        };
        if t.bdat_started {
            self.peer_error(replies::RCPT_DURING_BDAT);
            return;
        }
        if t.rcpts.len() >= self.config.limits.max_recipients {
            // Not an error: the client sends the rest in a new transaction.
            self.say(replies::TOO_MANY_RECIPIENTS);
            return;
        }
        let dsn = params.notify.is_some() || params.orcpt.is_some();
        if dsn && !self.config.extensions.dsn || !params.unknown.is_empty() {
            self.peer_error(replies::RCPT_PARAMETER);
            return;
        }
        let to = to.into_owned();
        let params = params.into_owned();
        let token = self.token(Pending::Rcpt(Recipient {
            to: to.clone(),
            params: params.clone(),
        }));
        self.event(Event::Rcpt(Box::new(RcptRequest { token, to, params })));
    }

    /// Whether a message may start now, or the reply why not.
    fn transaction_ready(&self) -> Result<(), FixedReply> {
        match self.transaction.as_ref() {
            None => Err(replies::NEED_MAIL_AND_RCPT),
            Some(t) if t.rcpts.is_empty() => Err(replies::NO_RECIPIENTS),
            Some(_) => Ok(()),
        }
    }

    fn data(&mut self) {
        if let Err(r) = self.transaction_ready() {
            self.peer_error(r);
            return;
        }
        let t = self
            .transaction
            .as_ref()
            .map(|t| (t.params.body, t.bdat_started));
        match t {
            Some((Some(BodyType::BinaryMime), _)) => {
                self.peer_error(replies::BINARYMIME_NEEDS_BDAT);
                return;
            }
            Some((_, true)) => {
                self.peer_error(replies::DATA_DURING_BDAT);
                return;
            }
            _ => {}
        }
        self.say(replies::START_DATA);
        self.phase = Phase::Data(DataDecoder::with_policy(
            self.config.body_line_ending,
            Some(self.config.limits.max_message_size),
        ));
        self.touch();
    }

    fn bdat(&mut self, size: u64, last: bool) {
        let refusal = match self.transaction_ready() {
            Err(why) => Some(why),
            Ok(()) => {
                let t = self.transaction.as_ref().map(|t| (t.bdat_failed, t.size));
                match t {
                    Some((true, _)) => Some(replies::BDAT_FAILED),
                    Some((_, so_far))
                        if so_far.saturating_add(size) > self.config.limits.max_message_size =>
                    {
                        Some(replies::TOO_LARGE)
                    }
                    _ => None,
                }
            }
        };
        let mode = match refusal {
            Some(why) => {
                if let Some(t) = self.transaction.as_mut() {
                    if t.bdat_started {
                        t.bdat_started = false;
                        self.queue
                            .push_back(super::Output::Event(Event::MessageAborted));
                    }
                    t.bdat_failed = true;
                }
                BdatMode::Refuse(why)
            }
            None => {
                if let Some(t) = self.transaction.as_mut() {
                    t.bdat_started = true;
                }
                BdatMode::Accept
            }
        };
        let decoder = match mode {
            BdatMode::Accept => BdatDecoder::new(size),
            BdatMode::Refuse(_) => BdatDecoder::discarding(size),
        };
        self.phase = Phase::Bdat {
            decoder,
            size,
            last,
            mode,
        };
        self.touch();
        if size == 0 {
            self.bdat_chunk_done();
        }
    }

    pub(super) fn bdat_chunk_done(&mut self) {
        let Phase::Bdat {
            size, last, mode, ..
        } = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            return;
        };
        self.touch();
        match mode {
            BdatMode::Refuse(r) => self.peer_error(r),
            BdatMode::Accept => {
                let total = self.transaction.as_mut().map_or(0, |t| {
                    t.size += size;
                    t.size
                });
                if last {
                    self.message_complete(total);
                } else {
                    let text = format!("{size} octets received");
                    let reply = Reply::trusted(ReplyCode::OK, replies::OK.enhanced(), text);
                    self.say_reply(&reply);
                }
            }
        }
    }

    pub(super) fn message_complete(&mut self, size: u64) {
        // The transaction ends with this message whatever the verdict:
        // its parts move into the event, no copy.
        let Some(t) = self.transaction.take() else {
            return;
        };
        let t = *t;
        self.message_smtputf8 = t.params.smtputf8;
        let replies = if self.config.mode == Mode::Lmtp {
            t.rcpts.len()
        } else {
            1
        };
        let token = self.token(Pending::Message(replies));
        self.event(Event::Message(Box::new(MessageRequest {
            token,
            from: t.from,
            params: t.params,
            recipients: t.rcpts,
            size,
        })));
    }

    fn starttls(&mut self) {
        if self.tls {
            self.peer_error(replies::TLS_ACTIVE);
            return;
        }
        self.say(replies::START_TLS);
        self.flush();
        self.phase = Phase::AwaitTls;
        self.inbox.clear();
        self.queue.push_back(super::Output::StartTls);
    }
}
