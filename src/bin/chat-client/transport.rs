//! The connection: connecting, logging in (with receipts asked for in the same write),
//! one whole request per write, replies read whole through a buffer (so that a read that
//! times out mid-frame loses nothing, and `--trace` can show each frame's bytes), and
//! telling why a connection ended: a newer login of the same user elsewhere, or the
//! server going away.
//!
//! Receipts (docs/PROTOCOL.md §3) are asked for with the login and never waited for: a
//! first reply `FEEDBACK{4, 0, 1}` turns them on; a LOGIN reply first (the original,
//! `examples/minimal.rs`) or `-4` (an older `chat-server`) means the plain protocol.

use crate::say;
use chatroom::blocking_client::{Reply, parse_reply, receipts_request};
use chatroom::message_id;
use chatroom::protocol::{self, Credentials, Flag, Kind, Name, Password};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long the client waits for the echo of a message (or for the answer to a login)
/// before it gives up: longer than `chat-server`'s default write timeout, since a
/// receiver that has stopped reading can hold the echo back that long. The original
/// server never echoes a message sent while its sender is the only one online.
pub const ECHO_TIMEOUT: Duration =
    Duration::from_secs(chatroom::config::DEFAULT_WRITE_TIMEOUT_SECS + 2);
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;
/// How long the look at the server after a connection ended may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the connection stands on receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipts {
    /// To be asked for with the next login.
    Ask,
    /// The server said `FEEDBACK{4, 0, 1}`.
    On,
    /// Not asked for, or the server has none.
    Off,
}

/// Who logs in where, kept for logging in again after the server comes back.
pub struct Account {
    /// HOST:PORT.
    pub addr: String,
    /// The user's name.
    pub name: String,
    /// Whether frames are traced on stderr.
    pub trace: bool,
    /// Whether receipts are asked for.
    pub receipts: bool,
}

impl Account {
    /// Connects to the server.
    pub fn connect(&self) -> Result<(Outgoing, Incoming), String> {
        connect(&self.addr, self.trace)
    }

    /// Logs in on a connection made by [`Account::connect`]: whether receipts are on,
    /// and this machine's clock when the LOGIN went out.
    pub fn log_in(
        &self,
        outgoing: &mut Outgoing,
        incoming: &mut Incoming,
        password: &str,
    ) -> Result<(bool, u64), Refusal> {
        let mut receipts = if self.receipts {
            Receipts::Ask
        } else {
            Receipts::Off
        };
        let login_ms = message_id::now_ms();
        log_in(outgoing, incoming, &self.name, password, &mut receipts)?;
        Ok((receipts == Receipts::On, login_ms))
    }

    /// Why a logged-in connection just ended. The wire says nothing either way: the
    /// server ends the older connection when the same user logs in elsewhere, and ends
    /// every connection when it stops. A server that still answers a request on a new
    /// connection has not stopped: then it was a newer login. (The original server and
    /// `examples/minimal.rs` never end an older login's connection, and do not answer
    /// USERS: for them the end is always the server going away.)
    pub fn why_it_ended(&self) -> Ending {
        if self.answers_a_request() {
            Ending::NewerLogin
        } else {
            Ending::ServerGone
        }
    }

    /// Whether the server answers a USERS request on a new connection (with -2, before a
    /// login): a server that is stopping may still accept a connection (its listener
    /// lives until its clients are closed), but answers nothing on it.
    fn answers_a_request(&self) -> bool {
        let Some(addr) = self
            .addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
        else {
            return false;
        };
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
            return false;
        };
        let mut answer = [0; protocol::FEEDBACK_LEN];
        stream.set_read_timeout(Some(PROBE_TIMEOUT)).is_ok()
            && stream.write_all(&protocol::users_request()).is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && protocol::Feedback::decode(&answer).kind == Kind::Users
    }
}

/// Why a connection the client did not close ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The server is still there: the same user logged in elsewhere.
    NewerLogin,
    /// The server cannot be reached: it stopped, or the network failed.
    ServerGone,
}

/// Connects to `addr`: the sending half, and the receiving half that reads from the
/// same socket.
pub fn connect(addr: &str, trace: bool) -> Result<(Outgoing, Incoming), String> {
    let stream = TcpStream::connect(addr).map_err(|error| {
        if error.kind() == io::ErrorKind::ConnectionRefused {
            say::connection_refused(addr)
        } else {
            say::cannot_connect(addr, error)
        }
    })?;
    // Requests are whole frames already: Nagle's algorithm would only delay them.
    let _ = stream.set_nodelay(true);
    let reading = stream
        .try_clone()
        .map_err(|error| say::cannot_use_connection(addr, error))?;
    Ok((
        Outgoing { stream, trace },
        Incoming {
            stream: reading,
            buffer: Vec::new(),
            trace,
        },
    ))
}

/// The sending half: one whole request per write, shown first under `--trace`.
pub struct Outgoing {
    stream: TcpStream,
    trace: bool,
}

impl Outgoing {
    /// Sends one request.
    pub fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.send_all(&[frame])
    }

    /// Several requests in one write, each traced on its own.
    pub fn send_all(&mut self, frames: &[&[u8]]) -> io::Result<()> {
        if self.trace {
            // One call per frame, so that a frame's lines never mix with the other
            // thread's.
            for frame in frames {
                eprint!("{}", chatroom::trace::request(frame));
            }
        }
        self.stream.write_all(&frames.concat())
    }

    /// Ends our side of the stream: the server sees EOF and hangs up.
    pub fn finish(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// The receiving half.
pub struct Incoming {
    stream: TcpStream,
    buffer: Vec<u8>,
    trace: bool,
}

/// What [`Incoming::next`] found.
pub enum Event {
    /// A whole reply.
    Reply(Reply),
    /// Nothing whole arrived before the deadline.
    Quiet,
    /// The connection is over: closed, reset, or no longer in step (the reason).
    Ended(Option<String>),
}

impl Incoming {
    /// Whether a whole reply is buffered already: while one is, a burst of frames is
    /// still being shown.
    pub fn has_whole_reply(&self) -> bool {
        matches!(parse_reply(&self.buffer), Ok(Some(_)))
    }

    /// The next whole reply, waiting until `until` at most (forever for `None`).
    pub fn next(&mut self, until: Option<Instant>) -> Event {
        loop {
            match parse_reply(&self.buffer) {
                Ok(Some((reply, len))) => {
                    if self.trace {
                        eprint!("{}", chatroom::trace::reply(&self.buffer[..len]));
                    }
                    self.buffer.drain(..len);
                    return Event::Reply(reply);
                }
                Ok(None) => {}
                Err(error) => {
                    if self.trace {
                        eprint!("{}", chatroom::trace::reply(&self.buffer));
                    }
                    return Event::Ended(Some(say::not_a_reply(error)));
                }
            }
            let timeout = match until {
                None => None,
                Some(until) => match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Event::Quiet,
                },
            };
            if let Err(error) = self.stream.set_read_timeout(timeout) {
                return Event::Ended(Some(error.to_string()));
            }
            let mut chunk = [0; READ_CHUNK];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Event::Ended(None),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Event::Quiet;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                    return Event::Ended(None);
                }
                Err(error) => return Event::Ended(Some(error.to_string())),
            }
        }
    }
}

/// Why a login did not go through.
pub enum Refusal {
    /// Worth asking for the password again.
    WrongPassword(String),
    /// Anything else, in a sentence.
    Other(String),
}

/// Logs in, turning every way that can fail into a sentence. With `Receipts::Ask`,
/// RECEIPTS goes out in the same write, and the first reply says whether the server has
/// them (docs/PROTOCOL.md §3): its answer, then the LOGIN reply; or the LOGIN reply
/// alone, from a server that skips type 4 without a word (the original, `minimal`).
fn log_in(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    name: &str,
    password: &str,
    receipts: &mut Receipts,
) -> Result<(), Refusal> {
    let cannot = |error: protocol::TooLong| Refusal::Other(say::cannot_log_in(name, error));
    let credentials = Credentials {
        name: Name::new(name).map_err(cannot)?,
        password: Password::new(password).map_err(cannot)?,
    };
    let login = protocol::login_request(&credentials);
    let asking = *receipts == Receipts::Ask;
    let sent = if asking {
        outgoing.send_all(&[&receipts_request(), &login])
    } else {
        outgoing.send(&login)
    };
    sent.map_err(|error| Refusal::Other(say::cannot_log_in(name, error)))?;
    if asking {
        // Whatever comes first, the question is answered: no server answers it later.
        *receipts = Receipts::Off;
    }
    let deadline = Instant::now() + ECHO_TIMEOUT;
    let flag = loop {
        match incoming.next(Some(deadline)) {
            Event::Reply(Reply::Login { flag }) => break flag,
            // 1: receipts on; -4: an older chat-server without them. The LOGIN reply
            // follows either way.
            Event::Reply(Reply::Other(feedback)) if asking && feedback.kind == Kind::Receipts => {
                if feedback.outcome() == Some(Flag::Ok) {
                    *receipts = Receipts::On;
                }
            }
            event => return Err(Refusal::from(event)),
        }
    };
    login_outcome(name, flag)
}

/// Why the LOGIN reply did not come, in a sentence.
impl From<Event> for Refusal {
    fn from(event: Event) -> Refusal {
        match event {
            Event::Reply(other) => Refusal::Other(say::unexpected_login_reply(other)),
            Event::Quiet => Refusal::Other(say::no_login_answer(ECHO_TIMEOUT.as_secs())),
            Event::Ended(None) => Refusal::Other(say::closed_while_logging_in()),
            Event::Ended(Some(problem)) => Refusal::Other(say::lost_while_logging_in(&problem)),
        }
    }
}

/// What the LOGIN reply's flag means for the user.
fn login_outcome(name: &str, flag: i32) -> Result<(), Refusal> {
    match Flag::from_wire(flag) {
        Some(Flag::Ok) => Ok(()),
        Some(Flag::Rejected) => Err(Refusal::WrongPassword(say::wrong_password(name))),
        Some(Flag::TooManyAttempts) => Err(Refusal::Other(say::locked_out())),
        Some(other) => Err(Refusal::Other(say::login_refused(other))),
        None => Err(Refusal::Other(say::login_refused_unknown(flag))),
    }
}
