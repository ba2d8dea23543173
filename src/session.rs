//! One client's conversation: read a frame, act on it, reply. One thread runs one
//! session, for as long as the connection lasts.
//!
//! The loop reads through a [`FrameReader`], so a client that pipelines hands over many
//! frames per system call. What the frames produce (echoes to this client, messages for other
//! users) collects in an `Outbox` and is written out together just before the session
//! would block on its next read, or when a batch is full: never later, so no frame
//! waits. Deliveries are written before echoes, because an echo's flag reports what
//! happened to its delivery (docs/PROTOCOL.md §2). A full batch is written before the next
//! frame is read, so however much a client pipelines without reading its replies, the
//! session holds at most [`MAX_UNSENT_REPLY_BYTES`] (plus one reply) for it.
//!
//! When the session ends, however it ends (EOF, reset, a protocol error, a panic), its
//! `Drop` takes the user out of the online map and closes the socket.

use crate::frame_reader::FrameReader;
use crate::frame_reader::TimedRead;
use crate::online::Connection;
use crate::protocol::{
    self, CHAT_BODY_LEN, CHAT_FRAME_LEN, ChatMessage, Credentials, FEEDBACK_LEN, Feedback, Flag,
    HEADER_LEN, Header, Kind, LOGIN_BODY_LEN, NAME_LEN, Name,
};
use crate::router::Router;
use crate::slots::Slot;
use crate::{info_limited, warn_limited};
use std::io;
use std::sync::Arc;
use std::time::Instant;

/// Frames collected before the outbox is written out even though more input is waiting:
/// bounds the memory and the delay a long burst can cause.
const MAX_BATCH_FRAMES: usize = 64;
/// Bytes of replies collected before the outbox is written out even though more input
/// is waiting: bounds what a client that pipelines requests (USERS, say) and never
/// reads the replies can make the server hold for it.
pub const MAX_UNSENT_REPLY_BYTES: usize = 64 * 1024;
/// Failed logins a connection may make; the next one closes it (flag -6). A success in
/// between does not reset the count, or a guesser would interleave its own login.
pub const MAX_FAILED_LOGINS: u32 = 5;

/// Serves one client until its connection ends.
pub(crate) fn run(router: &Router, connection: Arc<Connection>, slot: Slot) {
    info_limited!("{}: connected", connection.peer());
    let mut session = Session {
        router,
        connection,
        slot,
        user: None,
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
    router: &'a Router,
    connection: Arc<Connection>,
    /// Its place under the client limit, given back when the session ends.
    slot: Slot,
    /// The logged-in name, once a login succeeded.
    user: Option<String>,
    failed_logins: u32,
    outbox: Outbox,
}

impl Session<'_> {
    fn serve(&mut self) {
        let connection = Arc::clone(&self.connection);
        let peer = connection.peer();
        let mut reader = FrameReader::new(connection.stream(), Some(self.router.frame_timeout));
        let ending = loop {
            if !holds_whole_frame(reader.buffered())
                && let Err(error) = self.flush()
            {
                break format!("cannot write to it ({error})");
            }
            let header = match next_header(&mut reader) {
                Ok(Some(header)) => header,
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
            match self.handle(header.kind, body_len, &mut reader) {
                Ok(Next::Continue) => {}
                Ok(Next::Close) => break "the server hung up".to_string(),
                Err(error) => break self.read_failure(&error),
            }
            if self.outbox.is_full()
                && let Err(error) = self.flush()
            {
                break format!("cannot write to it ({error})");
            }
        };
        // Messages from the last frames read may still wait for delivery: a client that
        // sends and hangs up at once must not lose them.
        let _ = self.flush();
        if connection.was_evicted() {
            warn_limited!(
                "{peer}: evicted to make room at the limit of {} clients: it had not logged in",
                self.slot.max_clients()
            );
            let _ = connection.send(&Feedback::login(Flag::Busy).to_bytes());
            return;
        }
        info_limited!("{peer}: disconnected: {ending}");
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
            Kind::Unknown(_) => {
                input.take(body_len)?;
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

    fn login(
        &mut self,
        body_len: usize,
        input: &mut FrameReader<impl TimedRead>,
    ) -> io::Result<Next> {
        let peer = self.connection.peer();
        if self
            .router
            .login_throttle
            .is_blocked(peer.ip(), Instant::now())
        {
            // Read the body all the same: closing with unread input would reset the
            // connection, and the client might never see the -6.
            input.take(body_len)?;
            warn_limited!(
                "{peer}: login refused unchecked: {} has had too many failed logins \
                 in the last minute; closing the connection",
                peer.ip()
            );
            return self.hang_up(Flag::TooManyAttempts);
        }
        if body_len != LOGIN_BODY_LEN {
            input.take(body_len)?;
            warn_limited!("{peer}: LOGIN with a {body_len}-byte body instead of {LOGIN_BODY_LEN}");
            return self.refuse_login(Flag::Malformed);
        }
        let credentials = Credentials::decode(input.take_array()?);
        let Some(name) = credentials.name.as_str().filter(|name| !name.is_empty()) else {
            warn_limited!("{peer}: LOGIN with an empty or non-UTF-8 name");
            return self.refuse_login(Flag::Malformed);
        };
        if !self
            .router
            .users
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
        self.flush()?;
        if let Some(previous) = self.user.take() {
            self.go_offline(&previous);
        }
        self.go_online(name)?;
        Ok(Next::Continue)
    }

    /// Answers a failed login, counting it against the connection and the client's
    /// address; the connection's fifth failure hangs up instead.
    fn refuse_login(&mut self, flag: Flag) -> io::Result<Next> {
        let peer = self.connection.peer();
        self.failed_logins += 1;
        self.router
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
        self.flush()?;
        Ok(Next::Close)
    }

    /// Accepts the login of `name`: the LOGIN reply, then the stored messages, then the
    /// online map, all under `name`'s mailbox lock (see `Mailboxes::lock` for why).
    fn go_online(&mut self, name: String) -> io::Result<()> {
        let peer = self.connection.peer();
        let mut mailbox = self
            .router
            .mailboxes
            .lock(&name)
            .expect("every account has a mailbox");
        let stored = mailbox.load().unwrap_or_else(|error| {
            log::error!(
                "{}: cannot read the mailbox of {name}, leaving it for later: {error}",
                mailbox.path().display()
            );
            Vec::new()
        });
        let mut out = Vec::with_capacity(FEEDBACK_LEN + stored.len() * CHAT_FRAME_LEN);
        Feedback::login(Flag::Ok).encode(&mut out);
        for message in &stored {
            out.extend_from_slice(&message.to_frame(Flag::Ok));
        }
        // Online from now on, so that once the client reads its reply, everyone sees it
        // (USERS, the room). Whoever writes to it meanwhile waits for the reply and the
        // stored messages to go first: they are sent under the same write lock.
        self.user = Some(name.clone());
        let mut older = None;
        let online = &self.router.online;
        let connection = &self.connection;
        // `insert` closes an older connection of the same name. If the send fails, the
        // mailbox is kept whole, and all of it comes again next time; `Drop` takes the
        // name offline again.
        connection.send_after(
            || older = online.insert(&name, Arc::clone(connection)),
            &out,
        )?;
        if let Some(older) = older {
            info_limited!(
                "{name} logged in again from {peer}; closed the older connection from {}",
                older.peer()
            );
        }
        if !mailbox.is_empty() {
            info_limited!(
                "{peer}: delivered {} stored messages to {name}",
                stored.len()
            );
            // Records that were skipped as invalid go too: they were reported, and
            // would only be reported again at every login.
            if let Err(error) = mailbox.clear() {
                log::error!(
                    "{}: cannot empty the mailbox; its messages will come again: {error}",
                    mailbox.path().display()
                );
            }
        }
        drop(mailbox);
        info_limited!(
            "{peer}: {name} logged in ({} online)",
            self.router.online.count()
        );
        Ok(())
    }

    fn go_offline(&self, name: &str) {
        if self.router.online.remove(name, self.connection.id()) {
            info_limited!(
                "{}: {name} went offline ({} online)",
                self.connection.peer(),
                self.router.online.count()
            );
        }
    }

    fn chat(
        &mut self,
        body_len: usize,
        input: &mut FrameReader<impl TimedRead>,
    ) -> io::Result<Next> {
        if body_len != CHAT_BODY_LEN {
            input.take(body_len)?;
            warn_limited!(
                "{}: CHAT with a {body_len}-byte body instead of {CHAT_BODY_LEN}",
                self.connection.peer()
            );
            let zeroed = ChatMessage::decode(&[0; CHAT_BODY_LEN]);
            self.outbox.reply(&zeroed.to_frame(Flag::Malformed));
            return Ok(Next::Continue);
        }
        let mut message = ChatMessage::decode(input.take_array()?);
        let Some(sender) = &self.user else {
            self.outbox.reply(&message.to_frame(Flag::NotLoggedIn));
            return Ok(Next::Continue);
        };
        // No impersonation: the sender is whoever this session logged in as.
        message.sender = Name::new(sender).expect("account names fit the name field");
        match message.receiver.as_str() {
            None | Some("") => self.outbox.reply(&message.to_frame(Flag::Malformed)),
            Some(protocol::ROOM) => {
                // Earlier private messages go first, so one sender's order holds.
                self.flush()?;
                self.broadcast(&message);
                self.outbox.reply(&message.to_frame(Flag::Ok));
            }
            Some(receiver) if receiver == sender => {
                self.outbox.reply(&message.to_frame(Flag::Ok));
            }
            Some(receiver) if !self.router.users.contains(receiver) => {
                self.outbox.reply(&message.to_frame(Flag::Rejected));
            }
            Some(_) => self.outbox.deliver(message),
        }
        Ok(Next::Continue)
    }

    /// Sends a room message to every other online user. Never stored: a user who is not
    /// online when it is said does not hear it, as in a real room.
    fn broadcast(&self, message: &ChatMessage) {
        let frame = message.to_frame(Flag::Ok);
        for (name, connection) in self.router.online.others(self.connection.id()) {
            if connection.send(&frame).is_err() {
                info_limited!("room message to {name} not delivered: the connection failed");
            }
        }
        log::debug!("{} -> the room", message.sender);
        log::trace!("{} -> the room: {}", message.sender, message.text);
    }

    fn users(
        &mut self,
        body_len: usize,
        input: &mut FrameReader<impl TimedRead>,
    ) -> io::Result<Next> {
        if body_len != 0 {
            input.take(body_len)?;
            self.outbox
                .reply(&Feedback::new(Kind::Users, 0, Flag::Malformed).to_bytes());
            return Ok(Next::Continue);
        }
        if self.user.is_none() {
            self.outbox
                .reply(&Feedback::new(Kind::Users, 0, Flag::NotLoggedIn).to_bytes());
            return Ok(Next::Continue);
        }
        let names = self.router.online.names();
        let mut out = Vec::with_capacity(FEEDBACK_LEN + names.len() * NAME_LEN);
        Feedback::new(Kind::Users, names.len() * NAME_LEN, Flag::Ok).encode(&mut out);
        for name in &names {
            let field = Name::new(name).expect("account names fit the name field");
            out.extend_from_slice(field.field());
        }
        self.outbox.reply(&out);
        Ok(Next::Continue)
    }

    /// Writes out everything the outbox holds: each receiver's messages (live, or into
    /// the mailbox), then this client's replies with the echoes' flags filled in.
    fn flush(&mut self) -> io::Result<()> {
        let Outbox {
            replies,
            deliveries,
            frames,
        } = &mut self.outbox;
        for delivery in deliveries.drain(..) {
            let receiver = delivery
                .receiver
                .as_str()
                .expect("chat() queues only receivers that are account names");
            let flags = self.router.deliver(receiver, &delivery.messages);
            for (echo, flag) in delivery.echoes.into_iter().zip(flags) {
                protocol::set_flag(&mut replies[echo..echo + FEEDBACK_LEN], flag);
            }
        }
        *frames = 0;
        if replies.is_empty() {
            return Ok(());
        }
        let result = self.connection.send(replies);
        replies.clear();
        // One huge reply (USERS with thousands online) must not stay allocated.
        replies.shrink_to(MAX_UNSENT_REPLY_BYTES);
        result
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

/// What a session has to write, collected while more input is already buffered.
#[derive(Default)]
struct Outbox {
    /// This client's replies, in the order of its requests.
    replies: Vec<u8>,
    /// Messages for other users, grouped by receiver in the order they came.
    deliveries: Vec<Delivery>,
    /// Frames collected since the last flush.
    frames: usize,
}

/// Messages for one receiver, and where each one's echo sits in `Outbox::replies`.
struct Delivery {
    receiver: Name,
    messages: Vec<ChatMessage>,
    echoes: Vec<usize>,
}

impl Outbox {
    fn reply(&mut self, bytes: &[u8]) {
        self.replies.extend_from_slice(bytes);
        self.frames += 1;
    }

    /// Queues `message` for its receiver, with an echo whose flag is filled in once the
    /// delivery has happened.
    fn deliver(&mut self, message: ChatMessage) {
        let echo = self.replies.len();
        self.reply(&message.to_frame(Flag::Ok));
        let receiver = message.receiver;
        match self.deliveries.iter_mut().find(|d| d.receiver == receiver) {
            Some(delivery) => {
                delivery.messages.push(message);
                delivery.echoes.push(echo);
            }
            None => self.deliveries.push(Delivery {
                receiver,
                messages: vec![message],
                echoes: vec![echo],
            }),
        }
        self.frames += 1;
    }

    fn is_full(&self) -> bool {
        self.frames >= MAX_BATCH_FRAMES || self.replies.len() >= MAX_UNSENT_REPLY_BYTES
    }
}

/// True when `buffered` starts with a whole frame, so reading it cannot block. A header
/// with an impossible length counts as whole: it is rejected without reading further.
fn holds_whole_frame(buffered: &[u8]) -> bool {
    let Some(header) = buffered.first_chunk::<HEADER_LEN>() else {
        return false;
    };
    match Header::decode(header).body_len() {
        Some(body_len) => buffered.len() >= HEADER_LEN + body_len,
        None => true,
    }
}

/// The next header, or `None` when the client closed the connection between frames.
fn next_header(reader: &mut FrameReader<impl TimedRead>) -> io::Result<Option<Header>> {
    if reader.at_end()? {
        return Ok(None);
    }
    Ok(Some(Header::decode(reader.take_array()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::slots::{Admission, Slots};
    use crate::users::Directory;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_whole_frame_is_recognised_only_when_all_of_it_is_buffered() {
        let chat = protocol::request(Kind::Chat, &[0; CHAT_BODY_LEN]);
        assert!(holds_whole_frame(&chat));
        assert!(!holds_whole_frame(&chat[..chat.len() - 1]));
        assert!(!holds_whole_frame(&chat[..4]));
        assert!(holds_whole_frame(&[1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]));
    }

    #[test]
    fn a_panicking_session_still_leaves_the_online_map() {
        let dir = std::env::temp_dir().join(format!("chatroom-panic-{}", std::process::id()));
        let config = Config {
            data_dir: dir,
            ..Config::default()
        };
        let router = Arc::new(Router::new(&config, Directory::built_in()).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let slots = Slots::new(1, 1);
        let connection = Connection::new(slots.next_id(), peer, stream, config.write_timeout);
        let connection = Arc::new(connection.unwrap());
        let Admission::Admitted { slot, .. } = slots.admit(Arc::clone(&connection)) else {
            panic!("an empty server has room");
        };
        let in_thread = Arc::clone(&router);
        let outcome = std::thread::spawn(move || {
            let mut session = Session {
                router: &in_thread,
                connection: Arc::clone(&connection),
                slot,
                user: None,
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
            router.online.get("1001").is_none(),
            "Drop took 1001 offline"
        );
    }
}
