//! One client's conversation: the article's `pthread_function`. One thread runs one
//! session for as long as the connection lasts, in a loop: read the 8-byte header,
//! read the body its `length` announces, act on its `type` (the original's
//! `businessType`), reply.
//!
//! The differences from the original, each where it happens:
//! - every frame is read whole, or the connection is closed: `read_exact` on a
//!   [`FrameReader`], which also bounds a frame's time and fetches many frames per
//!   system call;
//! - replies and deliveries go out through an [`Outbox`], written just before the
//!   session would wait for its client (see `outbox.rs` for why, and for the rule that
//!   a delivery goes before its echo);
//! - a login checks the per-connection and per-address failure limits, and takes the
//!   user's stored messages with it (`Session::go_online`);
//! - when the session ends, however it ends (end of stream, reset, a protocol error, a
//!   panic), `Drop` takes the user out of the online map and closes the socket: the
//!   original's thread spun forever and left its name in `onlineMap`.

use crate::frame_reader::{FrameReader, TimedRead};
use crate::mailbox::{Handover, storage_problem};
use crate::online::Connection;
use crate::outbox::Outbox;
use crate::protocol::{
    self, CHAT_BODY_LEN, CHAT_FRAME_LEN, ChatMessage, Credentials, FEEDBACK_LEN, Feedback, Flag,
    HEADER_LEN, Header, Kind, LOGIN_BODY_LEN, MESSAGE_FRAME_LEN, NAME_LEN, Name,
};
use crate::receipts::{self, StoredBatch};
use crate::shared::SharedState;
use crate::slots::Slot;
use crate::{info_limited, warn_limited};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

/// Failed logins a connection may make; the next one closes it (flag -6). A success in
/// between does not reset the count, or a guesser would interleave its own login.
pub const MAX_FAILED_LOGINS: u32 = 5;

/// Serves one client until its connection ends (the original's `pthread_function`).
pub(crate) fn run(shared: &SharedState, connection: Arc<Connection>, slot: Slot) {
    info_limited!("{}: connected", connection.peer());
    let mut session = Session {
        shared,
        connection,
        slot,
        user: None,
        sender: Name::EMPTY,
        failed_logins: 0,
        outbox: Outbox::default(),
    };
    session.serve();
}

/// Whether the session reads on or hangs up.
enum Next {
    Continue,
    Close,
}

struct Session<'a> {
    shared: &'a SharedState,
    connection: Arc<Connection>,
    /// Its place under the client limit, given back when the session ends.
    slot: Slot,
    /// The logged-in name, once a login succeeded (the original's `name`).
    user: Option<String>,
    /// The same name as the 20-byte field every message from this session carries as
    /// its sender (made once, at login, not per message).
    sender: Name,
    failed_logins: u32,
    outbox: Outbox,
}

impl Session<'_> {
    /// The loop: header, body, act; until the connection ends.
    fn serve(&mut self) {
        let connection = Arc::clone(&self.connection);
        let peer = connection.peer();
        let mut input = FrameReader::new(connection.stream(), Some(self.shared.frame_timeout));
        let ending = loop {
            // About to wait for the client: what earlier requests produced goes out now.
            if !input.has_whole_frame()
                && let Err(error) = self.write_out()
            {
                break format!("cannot write to it ({error})");
            }
            let header = match read_header(&mut input) {
                Ok(Some(header)) => header,
                // Our own close (a newer login of this user, a failed write, shutdown)
                // ends the stream too; the log says whose it was.
                Ok(None) if connection.is_closed() => {
                    break "the server closed the connection".to_string();
                }
                Ok(None) => break "it closed the connection".to_string(),
                Err(error) => break self.read_failure(&error),
            };
            let Some(body_len) = header.body_len() else {
                warn_limited!(
                    "{peer}: frame length {} is outside 0..={}; closing the connection",
                    header.length,
                    protocol::MAX_BODY_LEN
                );
                break "bad frame length".to_string();
            };
            match self.handle(header.kind, body_len, &mut input) {
                Ok(Next::Continue) => {}
                Ok(Next::Close) => break "the server hung up".to_string(),
                Err(error) => break self.read_failure(&error),
            }
            if self.outbox.is_full()
                && let Err(error) = self.write_out()
            {
                break format!("cannot write to it ({error})");
            }
        };
        // Messages from the last frames read may still wait for delivery: a client that
        // sends and hangs up at once must not lose them.
        let _ = self.write_out();
        if connection.was_evicted() {
            warn_limited!(
                "{peer}: evicted to make room for a newcomer (at the limit of {} clients, \
                 or out of file descriptors): it had not logged in",
                self.slot.max_clients()
            );
            let _ = connection.send(&Feedback::login(Flag::Busy).to_bytes());
            return;
        }
        info_limited!("{peer}: disconnected: {ending}");
    }

    /// Sends everything the outbox holds (see `outbox.rs`).
    fn write_out(&mut self) -> io::Result<()> {
        self.outbox.write_out(self.shared, &self.connection)
    }

    /// Explains an I/O error that ended the session, logging the surprising ones.
    fn read_failure(&self, error: &io::Error) -> String {
        if self.connection.is_closed() || self.connection.was_evicted() {
            return "the server closed the connection".to_string();
        }
        match error.kind() {
            io::ErrorKind::UnexpectedEof => {
                warn_limited!(
                    "{}: connection closed in the middle of a frame",
                    self.connection.peer()
                );
                "closed mid-frame".to_string()
            }
            io::ErrorKind::TimedOut => {
                warn_limited!(
                    "{}: {error}; closing the connection",
                    self.connection.peer()
                );
                "frame timeout".to_string()
            }
            _ => format!("{error}"),
        }
    }

    /// Acts on one request: the original's `if (head.businessType == LOGIN) ... else if
    /// (head.businessType == CHAT)`, with every other case answered too.
    fn handle(
        &mut self,
        kind: Kind,
        body_len: usize,
        input: &mut FrameReader<impl TimedRead>,
    ) -> io::Result<Next> {
        match kind {
            Kind::Login => self.login(body_len, input),
            Kind::Chat => self.chat(body_len, input),
            Kind::Users => self.users(body_len, input),
            // The receipts extension's one hook (see `receipts.rs`).
            Kind::Receipts | Kind::Ack | Kind::Read => {
                let user = self.user.as_deref();
                let outbox = &mut self.outbox;
                receipts::request(
                    self.shared,
                    &self.connection,
                    user,
                    outbox,
                    kind,
                    body_len,
                    input,
                )?;
                Ok(Next::Continue)
            }
            // Frames only a server sends, and types nobody defined.
            Kind::Message | Kind::Received | Kind::Unknown(_) => {
                protocol::skip(input, body_len)?;
                warn_limited!(
                    "{}: unknown frame type {}; skipped {body_len} bytes",
                    self.connection.peer(),
                    kind.to_wire()
                );
                self.outbox
                    .reply(&Feedback::new(kind, 0, Flag::Unsupported).to_bytes());
                Ok(Next::Continue)
            }
        }
    }

    /// LOGIN: check the name and password against the accounts (the original's loop
    /// over `userInfo`), then go online.
    fn login(
        &mut self,
        body_len: usize,
        input: &mut FrameReader<impl TimedRead>,
    ) -> io::Result<Next> {
        let peer = self.connection.peer();
        if self.address_is_throttled() {
            // Read the body all the same: closing with unread input would reset the
            // connection, and the client might never see the -6.
            protocol::skip(input, body_len)?;
            return self.hang_up(Flag::TooManyAttempts);
        }
        if body_len != LOGIN_BODY_LEN {
            protocol::skip(input, body_len)?;
            warn_limited!("{peer}: LOGIN with a {body_len}-byte body instead of {LOGIN_BODY_LEN}");
            return self.refuse_login(Flag::Malformed);
        }
        let mut body = [0; LOGIN_BODY_LEN];
        input.read_exact(&mut body)?;
        let credentials = Credentials::decode(&body);
        let Some(name) = credentials.name.as_str().filter(|name| !name.is_empty()) else {
            warn_limited!("{peer}: LOGIN with an empty or non-UTF-8 name");
            return self.refuse_login(Flag::Malformed);
        };
        if !self
            .shared
            .accounts
            .check(name, credentials.password.as_bytes())
        {
            info_limited!("{peer}: login refused for {name:?}");
            return self.refuse_login(Flag::Rejected);
        }
        if self.user.as_deref() == Some(name) {
            self.outbox.reply(&Feedback::login(Flag::Ok).to_bytes());
            return Ok(Next::Continue);
        }
        if !self.slot.log_in() {
            // Evicted between reading this frame and now: it had not logged in yet.
            // The end of the session tells the client -5.
            return Ok(Next::Close);
        }
        let name = name.to_string();
        // Replies to earlier frames go out before the login reply and the stored mail.
        self.write_out()?;
        if let Some(previous) = self.user.take() {
            self.go_offline(&previous);
        }
        self.go_online(name)?;
        Ok(Next::Continue)
    }

    /// True if the client's address has had too many failed logins lately: its logins
    /// are refused without looking at the password.
    fn address_is_throttled(&self) -> bool {
        let peer = self.connection.peer();
        let throttled = self
            .shared
            .login_throttle
            .is_blocked(peer.ip(), Instant::now());
        if throttled {
            warn_limited!(
                "{peer}: login refused unchecked: {} has had too many failed logins \
                 in the last minute; closing the connection",
                peer.ip()
            );
        }
        throttled
    }

    /// Answers a failed login, counting it against the connection and the client's
    /// address; the connection's fifth failure hangs up instead.
    fn refuse_login(&mut self, flag: Flag) -> io::Result<Next> {
        let peer = self.connection.peer();
        self.failed_logins += 1;
        self.shared
            .login_throttle
            .record_failure(peer.ip(), Instant::now());
        if self.failed_logins >= MAX_FAILED_LOGINS {
            warn_limited!(
                "{peer}: {} failed logins on this connection; closing it",
                self.failed_logins
            );
            return self.hang_up(Flag::TooManyAttempts);
        }
        self.outbox.reply(&Feedback::login(flag).to_bytes());
        Ok(Next::Continue)
    }

    /// Sends a last LOGIN reply with `flag`, after everything before it, and ends the
    /// session.
    fn hang_up(&mut self, flag: Flag) -> io::Result<Next> {
        self.outbox.reply(&Feedback::login(flag).to_bytes());
        self.write_out()?;
        Ok(Next::Close)
    }

    /// Accepts the login of `name`: the original's `onlineMap.insert(make_pair(name,
    /// fd))` and its `write(fd, &back, ...)`, plus the stored messages. All of it
    /// happens under `name`'s mailbox lock, so that no message sent meanwhile falls
    /// between the mailbox and the live connection (see `Mailboxes::lock`).
    fn go_online(&mut self, name: String) -> io::Result<()> {
        let peer = self.connection.peer();
        let shared = self.shared;
        let mut mailbox = shared
            .mailboxes
            .lock(&name)
            .expect("every account has a mailbox");
        self.user = Some(name.clone());
        self.sender = Name::new(&name).expect("account names fit the name field");
        // An older connection of this user is about to be closed: what it had not
        // acknowledged goes into the mailbox first, and so comes now, in order.
        if let Some(older) = shared.online.get(&name)
            && older.id() != self.connection.id()
        {
            receipts::store_unacknowledged(&mut mailbox, &older);
        }
        let handed = match self.connection.receipts() {
            None => mailbox.hand_over(|stored| self.announce(&name, &login_reply_with(stored)))?,
            Some(receipts) => {
                // Stored messages stay in the mailbox until the client acknowledges them.
                let reply = |stored: &[(u64, ChatMessage)]| {
                    self.announce(&name, &login_reply_with_ids(stored))
                };
                let (handed, delivered) = mailbox.hand_over_keeping(reply)?;
                if let Some(mut delivered) = delivered
                    && let Some(&(until, _)) = delivered.messages.last()
                {
                    let stored = std::mem::take(&mut delivered.messages);
                    let senders = stored.iter().map(|(id, m)| (*id, m.sender)).collect();
                    receipts.keep_stored(StoredBatch {
                        until,
                        senders,
                        delivered,
                    });
                }
                handed
            }
        };
        match handed {
            Handover::Empty => {}
            Handover::Delivered(1) => info_limited!("{peer}: delivered 1 stored message to {name}"),
            Handover::Delivered(count) => {
                info_limited!("{peer}: delivered {count} stored messages to {name}")
            }
            Handover::Kept { messages, error } => log::error!(
                "{}: cannot read the mailbox of {name} ({}: {error}); its {messages} \
                 stored messages stay there for a later login",
                mailbox.path().display(),
                storage_problem(&error)
            ),
        }
        drop(mailbox);
        info_limited!(
            "{peer}: {name} logged in ({} online)",
            shared.online.count()
        );
        Ok(())
    }

    /// Puts `name` in the online map on this connection and sends `reply` (the login
    /// reply and the stored messages). The map entry is made under the connection's
    /// write lock, so whoever writes to the new user meanwhile waits for the reply to
    /// go first, and the client, once it has its reply, is visible to everyone (USERS,
    /// the room). `Online::insert` closes an older connection of the same name. If the
    /// send fails, the mailbox is kept whole for next time, and `Drop` takes the name
    /// offline again.
    fn announce(&self, name: &str, reply: &[u8]) -> io::Result<()> {
        let mut older = None;
        let online = &self.shared.online;
        let connection = &self.connection;
        connection.send_after(
            || older = online.insert(name, Arc::clone(connection)),
            reply,
        )?;
        if let Some(older) = older {
            info_limited!(
                "{name} logged in again from {}; closed the older connection from {}",
                connection.peer(),
                older.peer()
            );
        }
        Ok(())
    }

    /// Takes `name` offline on this connection; on a receipts connection, what it had not
    /// acknowledged is stored first, under the mailbox lock, so that nothing sent
    /// meanwhile overtakes it (see `receipts.rs`).
    fn go_offline(&self, name: &str) {
        let _mailbox = self.connection.receipts().map(|_| {
            let mut mailbox = self.shared.mailboxes.lock(name).expect("an account");
            receipts::store_unacknowledged(&mut mailbox, &self.connection);
            mailbox
        });
        if self.shared.online.remove(name, self.connection.id()) {
            info_limited!(
                "{}: {name} went offline ({} online)",
                self.connection.peer(),
                self.shared.online.count()
            );
        }
    }

    /// CHAT: the original's relay. The echo and the delivery are queued in the outbox
    /// and written by `write_out` (delivery first); the room is written at once.
    fn chat(
        &mut self,
        body_len: usize,
        input: &mut FrameReader<impl TimedRead>,
    ) -> io::Result<Next> {
        if body_len != CHAT_BODY_LEN {
            protocol::skip(input, body_len)?;
            warn_limited!(
                "{}: CHAT with a {body_len}-byte body instead of {CHAT_BODY_LEN}",
                self.connection.peer()
            );
            let zeroed = ChatMessage::decode(&[0; CHAT_BODY_LEN]);
            self.outbox.reply(&zeroed.to_frame(Flag::Malformed));
            return Ok(Next::Continue);
        }
        // Always read, whoever is online: the original left the body unread when fewer
        // than two users were online, and the stream fell out of step. Read straight
        // into the outbox, where the message is normalised and checked in place and
        // leaves as the echo and the delivery without being copied again.
        let frame = self.outbox.read_chat_frame(input)?;
        let body = self.outbox.chat_body_mut(frame);
        protocol::normalise_chat_body(body);
        if self.user.is_none() {
            self.outbox.answer(frame, Flag::NotLoggedIn);
            return Ok(Next::Continue);
        }
        // No impersonation: the sender is whoever this session logged in as.
        body[..NAME_LEN].copy_from_slice(self.sender.field());
        let receiver = Name::from_field(
            body[NAME_LEN..2 * NAME_LEN]
                .try_into()
                .expect("the receiver field is 20 bytes"),
        );
        match receiver.as_str() {
            None | Some("") => self.outbox.answer(frame, Flag::Malformed),
            Some(protocol::ROOM) => {
                let said = self.outbox.take_frame(frame);
                // Earlier private messages go first, so one sender's order holds.
                self.write_out()?;
                self.broadcast(&said);
                let id = self.echo_id();
                self.outbox.reply_echo(&said, id);
            }
            Some(_) if receiver == self.sender => {
                self.outbox.answer(frame, Flag::Ok);
                let id = self.echo_id();
                if id != 0 {
                    self.outbox.set_echo_id(frame, id);
                }
            }
            // The one account lookup of the message: the id travels with it.
            Some(_) => match self.shared.accounts.id_of(&receiver) {
                Some(id) => self.outbox.queue_delivery(id, frame),
                None => self.outbox.answer(frame, Flag::Rejected),
            },
        }
        Ok(Next::Continue)
    }

    /// The id of an echo that no delivery gave one (a room message's, a message to
    /// oneself) on a receipts connection; 0 on a plain one, where ids are not shown.
    fn echo_id(&self) -> u64 {
        match self.connection.receipts() {
            Some(_) => self.shared.mailboxes.next_id(),
            None => 0,
        }
    }

    /// Sends a room message (its whole frame, flag 1) to every other online user. Never
    /// stored: a user who is not online when it is said does not hear it, as in a real
    /// room.
    fn broadcast(&self, frame: &[u8; CHAT_FRAME_LEN]) {
        for (name, connection) in self.shared.online.others(self.connection.id()) {
            if self.shared.deliver_room(&name, &connection, frame).is_err() {
                info_limited!("room message to {name} not delivered: the connection failed");
            }
        }
        if log::log_enabled!(log::Level::Debug) {
            let body = frame[FEEDBACK_LEN..].try_into().expect("a 140-byte body");
            let message = ChatMessage::decode(body);
            log::debug!("{} -> the room", message.sender);
            log::trace!("{} -> the room: {}", message.sender, message.text);
        }
    }

    /// USERS (an extension): the online names, sorted.
    fn users(
        &mut self,
        body_len: usize,
        input: &mut FrameReader<impl TimedRead>,
    ) -> io::Result<Next> {
        if body_len != 0 {
            protocol::skip(input, body_len)?;
            self.outbox
                .reply(&Feedback::new(Kind::Users, 0, Flag::Malformed).to_bytes());
            return Ok(Next::Continue);
        }
        if self.user.is_none() {
            self.outbox
                .reply(&Feedback::new(Kind::Users, 0, Flag::NotLoggedIn).to_bytes());
            return Ok(Next::Continue);
        }
        let names = self.shared.online.names();
        let mut out = Vec::with_capacity(FEEDBACK_LEN + names.len() * NAME_LEN);
        Feedback::new(Kind::Users, names.len() * NAME_LEN, Flag::Ok).encode(&mut out);
        for name in &names {
            let field = Name::new(name).expect("account names fit the name field");
            out.extend_from_slice(field.field());
        }
        self.outbox.reply(&out);
        Ok(Next::Continue)
    }
}

impl Drop for Session<'_> {
    /// Runs however the session ends, a panic included: the user leaves the online map
    /// (unless a newer login of the same name took over) and the socket is closed.
    fn drop(&mut self) {
        if let Some(name) = self.user.take() {
            self.go_offline(&name);
        }
        self.connection.close();
    }
}

/// The next header (the original's `read(fd, &head, sizeof(HEAD_T))`, but whole), or
/// `None` when the client closed the connection between frames.
fn read_header(input: &mut FrameReader<impl TimedRead>) -> io::Result<Option<Header>> {
    if !input.wait_for_frame()? {
        return Ok(None);
    }
    let mut header = [0; HEADER_LEN];
    input.read_exact(&mut header)?;
    Ok(Some(Header::decode(&header)))
}

/// The LOGIN reply `FEEDBACK{1, 40, 1}` followed by the stored messages, oldest first.
fn login_reply_with(stored: &[(u64, ChatMessage)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FEEDBACK_LEN + stored.len() * CHAT_FRAME_LEN);
    Feedback::login(Flag::Ok).encode(&mut out);
    for (_, message) in stored {
        out.extend_from_slice(&message.to_frame(Flag::Ok));
    }
    out
}

/// The same for a receipts connection: the stored messages as MESSAGE frames, with the
/// ids they were stored with.
fn login_reply_with_ids(stored: &[(u64, ChatMessage)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FEEDBACK_LEN + stored.len() * MESSAGE_FRAME_LEN);
    Feedback::login(Flag::Ok).encode(&mut out);
    for (id, message) in stored {
        receipts::message_frame(Flag::Ok.to_wire(), *id, &message.to_bytes(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::slots::{Admission, Slots};
    use crate::users::Accounts;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_panicking_session_still_leaves_the_online_map() {
        let dir = std::env::temp_dir().join(format!("chatroom-panic-{}", std::process::id()));
        let config = Config {
            data_dir: dir,
            ..Config::default()
        };
        let shared = Arc::new(SharedState::new(&config, Accounts::built_in()).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let slots = Slots::new(1, 1);
        let connection = Connection::new(slots.next_id(), peer, stream, config.write_timeout);
        let connection = Arc::new(connection.unwrap());
        let Admission::Admitted { slot, .. } = slots.admit(Arc::clone(&connection)) else {
            panic!("an empty server has room");
        };
        let in_thread = Arc::clone(&shared);
        let outcome = std::thread::spawn(move || {
            let mut session = Session {
                shared: &in_thread,
                connection: Arc::clone(&connection),
                slot,
                user: None,
                sender: Name::EMPTY,
                failed_logins: 0,
                outbox: Outbox::default(),
            };
            session.go_online("1001".to_string()).unwrap();
            assert!(in_thread.online.get("1001").is_some());
            panic!("a bug in the middle of a session");
        })
        .join();
        assert!(outcome.is_err(), "the thread panicked");
        assert!(
            shared.online.get("1001").is_none(),
            "Drop took 1001 offline"
        );
    }
}
