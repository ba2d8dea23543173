//! A small blocking client for the protocol: what `chat-client`, `chat-bench` and the
//! integration tests use to talk to a server.
//!
//! Requests go out with one `write_all` each; replies come back through a buffered
//! reader as [`Reply`] values. Nothing here is clever: a client that wants to pipeline
//! simply sends several requests before reading.

use crate::protocol::{
    self, CHAT_BODY_LEN, ChatMessage, Credentials, FEEDBACK_LEN, Feedback, Kind, MESSAGE_BODY_LEN,
    MessageText, NAME_LEN, Name, Password, RECEIPT_BODY_LEN, TooLong,
};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The most names a USERS reply is believed to hold; a larger length means the stream is
/// not what we think it is.
const MAX_USERS_IN_REPLY: usize = 1_000_000;

/// One reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A LOGIN feedback (12 bytes, no body).
    Login {
        /// The feedback's flag.
        flag: i32,
    },
    /// A CHAT frame: an echo of our own message, or a message for us.
    Chat {
        /// The feedback's flag.
        flag: i32,
        /// The message as the server wrote it.
        message: ChatMessage,
    },
    /// The USERS reply: who is online (empty on error).
    Users {
        /// The feedback's flag.
        flag: i32,
        /// The online names, sorted by their bytes.
        names: Vec<String>,
    },
    /// A MESSAGE frame (receipts extension): a CHAT frame with the message's id.
    Message {
        /// The feedback's flag.
        flag: i32,
        /// The message's id: when the server accepted it (read it with
        /// [`crate::message_id::sent_at_ms`]), 0 for a refused message.
        id: u64,
        /// The message as the server wrote it.
        message: ChatMessage,
    },
    /// A RECEIVED or READ receipt (receipts extension): `name`'s client has (RECEIVED),
    /// or `name` has seen (READ), every message up to `id`.
    Receipt {
        /// [`Kind::Received`] or [`Kind::Read`].
        kind: Kind,
        /// Up to and including this id.
        id: u64,
        /// Who received or read them.
        name: String,
    },
    /// A reply with no body: to a type the server does not know, to RECEIPTS, or a
    /// refused ACK or READ.
    Other(Feedback),
}

/// A connection to a chat server: requests out through one socket, replies in through a buffered reader of the same socket.
pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `addr`, with Nagle's algorithm off (requests are whole frames already).
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Bounds every later read; a read that runs out fails with `WouldBlock` or `TimedOut`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(timeout)
    }

    /// The server's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.writer.peer_addr()
    }

    /// Sends bytes as they are: for tests that need frames no well-behaved client sends.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends a LOGIN request without waiting for its reply (see [`Client::login`]).
    pub fn send_login(&mut self, name: &str, password: &str) -> io::Result<()> {
        let credentials = Credentials {
            name: Name::new(name).map_err(invalid_input)?,
            password: Password::new(password).map_err(invalid_input)?,
        };
        self.send_raw(&protocol::login_request(&credentials))
    }

    /// Logs in and waits for the answer; returns its flag.
    pub fn login(&mut self, name: &str, password: &str) -> io::Result<i32> {
        self.send_login(name, password)?;
        match self.read_reply()? {
            Reply::Login { flag } => Ok(flag),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a LOGIN reply, got {other:?}"),
            )),
        }
    }

    /// Sends a chat message; text longer than 100 bytes is cut at a character boundary.
    /// The sender field is left empty: `chat-server` fills it in (the original server
    /// does not, and relays it empty; `chat-client` writes its own name there).
    pub fn send_chat(&mut self, receiver: &str, text: &str) -> io::Result<()> {
        let message = ChatMessage {
            sender: Name::EMPTY,
            receiver: Name::new(receiver).map_err(invalid_input)?,
            text: MessageText::truncated(text),
        };
        self.send_raw(&protocol::chat_request(&message))
    }

    /// Asks who is online (extension).
    pub fn send_users(&mut self) -> io::Result<()> {
        self.send_raw(&protocol::users_request())
    }

    /// Turns receipts on for this connection (receipts extension); the answer is
    /// `FEEDBACK{4, 0, 1}`.
    pub fn send_receipts(&mut self) -> io::Result<()> {
        self.send_raw(&receipts_request())
    }

    /// Acknowledges every message delivered up to and including `id`.
    pub fn send_ack(&mut self, id: u64) -> io::Result<()> {
        self.send_raw(&ack_request(id))
    }

    /// Tells `sender` that the person here has seen their messages up to `id`.
    pub fn send_read(&mut self, id: u64, sender: &str) -> io::Result<()> {
        let sender = Name::new(sender).map_err(invalid_input)?;
        self.send_raw(&read_request(id, &sender))
    }

    /// Reads the next reply, whole.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// Closes our sending side: the server sees EOF.
    pub fn shutdown(&self) -> io::Result<()> {
        self.writer.shutdown(Shutdown::Write)
    }

    /// The reading half, for a thread that only listens.
    pub fn reader(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }

    /// Splits into a sending half and a reading half, for a reader thread.
    pub fn split(self) -> (TcpStream, BufReader<TcpStream>) {
        (self.writer, self.reader)
    }
}

/// `HEAD{4, 0}`: receipts on, please (docs/PROTOCOL.md §3).
pub fn receipts_request() -> Vec<u8> {
    protocol::request(Kind::Receipts, &[])
}

/// `HEAD{6, 8}` + `id`: every delivery on this connection up to `id` is here.
pub fn ack_request(id: u64) -> Vec<u8> {
    protocol::request(Kind::Ack, &id.to_le_bytes())
}

/// `HEAD{8, 28}` + `id` + `sender`: the person here has seen `sender`'s messages up to
/// `id`.
pub fn read_request(id: u64, sender: &Name) -> Vec<u8> {
    let mut body = id.to_le_bytes().to_vec();
    body.extend_from_slice(sender.field());
    protocol::request(Kind::Read, &body)
}

/// Reads one whole reply from `input`.
pub fn read_reply(input: &mut impl Read) -> io::Result<Reply> {
    let feedback = protocol::read_feedback(input)?;
    let mut body = vec![0; body_len(&feedback)?];
    input.read_exact(&mut body)?;
    Ok(decode_reply(feedback, &body))
}

/// The reply at the front of `bytes` and how many bytes it took, or `None` while the
/// reply is not all there yet: for a reader that must not lose a frame cut in half by a
/// read timeout, or that wants each frame's bytes (as `chat-client --trace` does).
pub fn parse_reply(bytes: &[u8]) -> io::Result<Option<(Reply, usize)>> {
    let Some(header) = bytes.first_chunk::<FEEDBACK_LEN>() else {
        return Ok(None);
    };
    let feedback = Feedback::decode(header);
    let len = FEEDBACK_LEN + body_len(&feedback)?;
    Ok(bytes
        .get(FEEDBACK_LEN..len)
        .map(|body| (decode_reply(feedback, body), len)))
}

/// How many body bytes follow `feedback`, or why the stream is not what we think it is.
fn body_len(feedback: &Feedback) -> io::Result<usize> {
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} reply with length {}", feedback.length),
        )
    };
    match feedback.kind {
        // No body, whatever the length says (docs/PROTOCOL.md §1).
        Kind::Login => Ok(0),
        Kind::Chat => match usize::try_from(feedback.length) {
            Ok(CHAT_BODY_LEN) => Ok(CHAT_BODY_LEN),
            _ => Err(invalid("CHAT")),
        },
        Kind::Users => usize::try_from(feedback.length)
            .ok()
            .filter(|len| len % NAME_LEN == 0 && *len <= NAME_LEN * MAX_USERS_IN_REPLY)
            .ok_or_else(|| invalid("USERS")),
        // A MESSAGE frame, or the refusal of a type-5 request (a type only servers send).
        Kind::Message => match usize::try_from(feedback.length) {
            Ok(len @ (MESSAGE_BODY_LEN | 0)) => Ok(len),
            _ => Err(invalid("MESSAGE")),
        },
        // A receipt has its body; a refusal (-1, -2, -3) has none.
        Kind::Received | Kind::Read if feedback.flag == protocol::Flag::Ok.to_wire() => {
            match usize::try_from(feedback.length) {
                Ok(RECEIPT_BODY_LEN) => Ok(RECEIPT_BODY_LEN),
                _ => Err(invalid("RECEIVED or READ")),
            }
        }
        // The server sends these without a body; skip one if it ever says otherwise.
        Kind::Receipts | Kind::Ack | Kind::Received | Kind::Read | Kind::Unknown(_) => {
            Ok(usize::try_from(feedback.length)
                .unwrap_or(0)
                .min(protocol::MAX_BODY_LEN))
        }
    }
}

/// The reply a feedback and its whole body make.
fn decode_reply(feedback: Feedback, body: &[u8]) -> Reply {
    match feedback.kind {
        Kind::Login => Reply::Login {
            flag: feedback.flag,
        },
        Kind::Chat => Reply::Chat {
            flag: feedback.flag,
            message: ChatMessage::decode(body.try_into().expect("body_len checked it")),
        },
        Kind::Users => Reply::Users {
            flag: feedback.flag,
            names: body
                .chunks_exact(NAME_LEN)
                .map(|field| {
                    Name::from_field(field.try_into().expect("chunks are 20 bytes")).to_lossy()
                })
                .collect(),
        },
        Kind::Message if body.len() == MESSAGE_BODY_LEN => {
            let (id, chat) = body.split_at(protocol::ID_LEN);
            Reply::Message {
                flag: feedback.flag,
                id: u64::from_le_bytes(id.try_into().expect("8 bytes")),
                message: ChatMessage::decode(chat.try_into().expect("body_len checked it")),
            }
        }
        Kind::Received | Kind::Read if body.len() == RECEIPT_BODY_LEN => {
            let (id, name) = body.split_at(protocol::ID_LEN);
            Reply::Receipt {
                kind: feedback.kind,
                id: u64::from_le_bytes(id.try_into().expect("8 bytes")),
                name: Name::from_field(name.try_into().expect("20 bytes")).to_lossy(),
            }
        }
        _ => Reply::Other(feedback),
    }
}

fn invalid_input(error: TooLong) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Flag;

    #[test]
    fn a_reply_is_parsed_only_once_all_of_it_is_there() {
        let message = ChatMessage {
            sender: Name::new("1001").unwrap(),
            receiver: Name::new("1002").unwrap(),
            text: MessageText::new("hi").unwrap(),
        };
        let mut bytes = Feedback::login(Flag::Ok).to_bytes().to_vec();
        bytes.extend_from_slice(&message.to_frame(Flag::Ok));
        let (first, len) = parse_reply(&bytes).unwrap().unwrap();
        assert_eq!(first, Reply::Login { flag: 1 });
        assert_eq!(len, FEEDBACK_LEN, "a LOGIN feedback has no body");
        let rest = &bytes[len..];
        for cut in 0..rest.len() {
            assert!(parse_reply(&rest[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (second, len) = parse_reply(rest).unwrap().unwrap();
        assert_eq!(second, Reply::Chat { flag: 1, message });
        assert_eq!(len, rest.len());
        // The same bytes through the reader give the same replies.
        let mut input = &bytes[..];
        assert_eq!(read_reply(&mut input).unwrap(), first);
        assert_eq!(read_reply(&mut input).unwrap(), second);
    }

    #[test]
    fn a_chat_reply_of_another_length_is_an_error() {
        let bytes = Feedback::new(Kind::Chat, 3, Flag::Ok).to_bytes();
        let error = parse_reply(&bytes).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
