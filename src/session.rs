//! One client's conversation: the article's `pthread_function`. One thread runs one
//! session for as long as the connection lasts, in a loop: read the 8-byte header,
//! read the body its `length` announces, act on its `type` (the original's
//! `businessType`), reply. Each request kind is read and acted on in its own module
//! under `request/`; this file keeps the loop and the dispatch.
//!
//! The differences from the original, each where it happens:
//! - every frame is read whole, or the connection is closed: `read_exact` on a
//!   [`FrameReader`], which also bounds a frame's time and fetches many frames per
//!   system call;
//! - replies and deliveries go out through an outbox, written just before the session
//!   would wait for its client (see `outbox.rs` for why, and for the rule that a
//!   delivery goes before its echo);
//! - when the session ends, however it ends (end of stream, reset, a protocol error, a
//!   panic), `Drop` takes the user out of the online map and closes the socket: the
//!   original's thread spun forever and left its name in `onlineMap`.

use crate::frame_reader::{FrameReader, TimedRead};
use crate::online::Connection;
use crate::peer::{Next, Peer};
use crate::protocol::{self, Feedback, Flag, HEADER_LEN, Header, Kind};
use crate::request;
use crate::shared::SharedState;
use crate::slots::Slot;
use crate::{info_limited, warn_limited};
use std::io::{self, Read};
use std::sync::Arc;

/// Serves one client until its connection ends (the original's `pthread_function`).
pub(crate) fn run(shared: &SharedState, connection: Arc<Connection>, slot: Slot) {
    info_limited!("{}: connected", connection.peer());
    let mut session = Session(Peer::new(shared, connection, slot));
    session.serve();
}

/// A session: its client's [`Peer`], taken offline when dropped.
struct Session<'a>(Peer<'a>);

impl Session<'_> {
    /// The loop: header, body, act; until the connection ends.
    fn serve(&mut self) {
        let connection = Arc::clone(&self.0.connection);
        let peer = connection.peer();
        let mut input = FrameReader::new(connection.stream(), Some(self.0.shared.frame_timeout));
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
            if self.0.outbox.is_full()
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
                self.0.slot.max_clients()
            );
            let _ = connection.send(&Feedback::login(Flag::Busy).to_bytes());
            return;
        }
        info_limited!("{peer}: disconnected: {ending}");
    }

    /// Sends everything the outbox holds (see `outbox.rs`).
    fn write_out(&mut self) -> io::Result<()> {
        self.0.write_out()
    }

    /// Explains an I/O error that ended the session, logging the surprising ones.
    fn read_failure(&self, error: &io::Error) -> String {
        if self.0.connection.is_closed() || self.0.connection.was_evicted() {
            return "the server closed the connection".to_string();
        }
        match error.kind() {
            io::ErrorKind::UnexpectedEof => {
                warn_limited!(
                    "{}: connection closed in the middle of a frame",
                    self.0.connection.peer()
                );
                "closed mid-frame".to_string()
            }
            io::ErrorKind::TimedOut => {
                warn_limited!(
                    "{}: {error}; closing the connection",
                    self.0.connection.peer()
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
        let peer = &mut self.0;
        match kind {
            Kind::Login => request::login::handle(peer, body_len, input),
            Kind::Chat => request::chat::handle(peer, body_len, input),
            Kind::Users => request::users::handle(peer, body_len, input),
            // The receipts extension's requests (see `request/receipts.rs`).
            Kind::Receipts | Kind::Ack | Kind::Read => {
                request::receipts::handle(peer, kind, body_len, input)
            }
            // Frames only a server sends, and types nobody defined.
            Kind::Message | Kind::Received | Kind::Unknown(_) => {
                protocol::skip(input, body_len)?;
                warn_limited!(
                    "{}: unknown frame type {}; skipped {body_len} bytes",
                    peer.connection.peer(),
                    kind.to_wire()
                );
                peer.outbox
                    .reply(&Feedback::new(kind, 0, Flag::Unsupported).to_bytes());
                Ok(Next::Continue)
            }
        }
    }
}

impl Drop for Session<'_> {
    /// Runs however the session ends, a panic included: the user leaves the online map
    /// (unless a newer login of the same name took over) and the socket is closed.
    fn drop(&mut self) {
        if let Some(name) = self.0.user.take() {
            request::login::log_out(&self.0, &name);
        }
        self.0.connection.close();
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
            let mut session = Session(Peer::new(&in_thread, Arc::clone(&connection), slot));
            request::login::go_online(&mut session.0, "1001".to_string()).unwrap();
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
