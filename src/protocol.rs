//! The wire format: the original's C structs, byte for byte (docs/PROTOCOL.md §1 and §3).
//!
//! Every request is a [`Header`] followed by `length` bytes of body; every reply starts
//! with a [`Feedback`]. Integers are 32-bit little-endian, as the original's x86 clients
//! send their structs' memory. Text fields are fixed-size byte arrays ([`Text`]): the
//! value is the bytes before the first NUL, and whatever follows that NUL is garbage a
//! C client left behind, so decoding drops it and encoding pads with zeros.
//!
//! This module only turns values into bytes and back. It does no I/O beyond the
//! `Read`/`Write` traits, so the server, the companion client, the load generator and
//! the tests all speak through it.

use byteorder::{ByteOrder, LittleEndian, ReadBytesExt, WriteBytesExt};
use std::fmt;
use std::io::{self, Read};

/// Size of a request header, `HEAD { i32 type; i32 length; }` (the original's `HEAD_T`).
pub const HEADER_LEN: usize = 8;
/// Size of a reply header, `FEEDBACK { i32 type; i32 length; i32 flag; }` (`FEEDBACK_T`).
pub const FEEDBACK_LEN: usize = 12;
/// Size of a user name field (`name[20]`, `sender[20]`, `receiver[20]`).
pub const NAME_LEN: usize = 20;
/// Size of a password field (`password[20]`).
pub const PASSWORD_LEN: usize = 20;
/// Size of a chat message's text field (`message[100]`).
pub const TEXT_LEN: usize = 100;
/// Size of a LOGIN body, `USERINFO { name[20]; password[20]; }` (`USERINFO_T`).
pub const LOGIN_BODY_LEN: usize = NAME_LEN + PASSWORD_LEN;
/// Size of a CHAT body, `CHATMSG { sender[20]; receiver[20]; message[100]; }` (`CHATMSG_T`).
pub const CHAT_BODY_LEN: usize = NAME_LEN + NAME_LEN + TEXT_LEN;
/// Size of a whole CHAT frame as the server sends it: feedback plus body.
pub const CHAT_FRAME_LEN: usize = FEEDBACK_LEN + CHAT_BODY_LEN;
/// The largest body a request may announce; anything outside `0..=MAX_BODY_LEN` means the
/// stream can no longer be trusted (docs/PROTOCOL.md §2).
pub const MAX_BODY_LEN: usize = 4096;
/// A message id (receipts extension, docs/PROTOCOL.md §3): a little-endian `u64`.
pub const ID_LEN: usize = 8;
/// The body of a MESSAGE frame: the id, then the CHAT body.
pub const MESSAGE_BODY_LEN: usize = ID_LEN + CHAT_BODY_LEN;
/// A whole MESSAGE frame: `FEEDBACK{5, 148, flag}`, the id and the CHAT body.
pub const MESSAGE_FRAME_LEN: usize = FEEDBACK_LEN + MESSAGE_BODY_LEN;
/// The body of an ACK request: the id.
pub const ACK_BODY_LEN: usize = ID_LEN;
/// The body of RECEIVED and READ frames: the id and a name.
pub const RECEIPT_BODY_LEN: usize = ID_LEN + NAME_LEN;
/// The receipts window (docs/PROTOCOL.md §3): messages a receipts receiver may have
/// written to its connection and not yet acknowledged. Beyond it, a message waits in the
/// receiver's store (echo 0) and goes out as acknowledgements open the window: a slow
/// receiver is paused, never disconnected (MQTT 5's "Receive Maximum").
pub const RECEIPTS_WINDOW: usize = 256;
/// How often a client acknowledges, at most, after a burst of deliveries (what
/// `chat-client` and `chat-bench relay --receipts` do): one ACK covers everything before
/// it, so a busy conversation costs the server a few ACKs a second, and a message leaves
/// the receiver's store within a moment of reaching the screen.
pub const ACK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Unacknowledged deliveries that make a client acknowledge at once, interval or not:
/// half the window, so that the window reopens before it is full and a fast
/// conversation never pauses.
pub const ACK_AT_ONCE: usize = RECEIPTS_WINDOW / 2;
// At 0 a client would acknowledge nothing; at the window it would pause every time.
const _: () = assert!(0 < ACK_AT_ONCE && ACK_AT_ONCE < RECEIPTS_WINDOW);
/// A whole RECEIVED or READ frame: `FEEDBACK{7 or 8, 28, 1}`, the id and a name.
pub const RECEIPT_FRAME_LEN: usize = FEEDBACK_LEN + RECEIPT_BODY_LEN;

/// The receiver name that addresses the room (docs/PROTOCOL.md §3); never a user name.
pub const ROOM: &str = "*";

/// What a frame is about: the `type` field of headers and feedbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `1`: log in with a name and password.
    Login,
    /// `2`: a chat message.
    Chat,
    /// `3` (extension): list who is online.
    Users,
    /// `4` (receipts extension): turn receipts on for this connection.
    Receipts,
    /// `5` (receipts extension, server to client only): a chat message with its id.
    Message,
    /// `6` (receipts extension): "I have every message up to this id".
    Ack,
    /// `7` (receipts extension, server to client only): a receiver's client has your
    /// messages up to an id.
    Received,
    /// `8` (receipts extension): a person has seen messages up to an id.
    Read,
    /// Any other value; the server answers it with [`Flag::Unsupported`].
    Unknown(i32),
}

impl Kind {
    /// The wire value of [`Kind::Login`].
    pub const LOGIN: i32 = 1;
    /// The wire value of [`Kind::Chat`].
    pub const CHAT: i32 = 2;
    /// The wire value of [`Kind::Users`].
    pub const USERS: i32 = 3;
    /// The wire value of [`Kind::Receipts`].
    pub const RECEIPTS: i32 = 4;
    /// The wire value of [`Kind::Message`].
    pub const MESSAGE: i32 = 5;
    /// The wire value of [`Kind::Ack`].
    pub const ACK: i32 = 6;
    /// The wire value of [`Kind::Received`].
    pub const RECEIVED: i32 = 7;
    /// The wire value of [`Kind::Read`].
    pub const READ: i32 = 8;

    /// The kind a header's `type` field stands for.
    pub fn from_wire(value: i32) -> Kind {
        match value {
            Kind::LOGIN => Kind::Login,
            Kind::CHAT => Kind::Chat,
            Kind::USERS => Kind::Users,
            Kind::RECEIPTS => Kind::Receipts,
            Kind::MESSAGE => Kind::Message,
            Kind::ACK => Kind::Ack,
            Kind::RECEIVED => Kind::Received,
            Kind::READ => Kind::Read,
            other => Kind::Unknown(other),
        }
    }

    /// The `type` field for this kind.
    pub fn to_wire(self) -> i32 {
        match self {
            Kind::Login => Kind::LOGIN,
            Kind::Chat => Kind::CHAT,
            Kind::Users => Kind::USERS,
            Kind::Receipts => Kind::RECEIPTS,
            Kind::Message => Kind::MESSAGE,
            Kind::Ack => Kind::ACK,
            Kind::Received => Kind::RECEIVED,
            Kind::Read => Kind::READ,
            Kind::Unknown(other) => other,
        }
    }
}

/// The outcome a reply carries in its `flag` field (docs/PROTOCOL.md §2, table of flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `1`: login accepted; chat delivered to the receiver's socket.
    Ok,
    /// `0`: chat stored for a known user who is offline.
    Queued,
    /// `-1`: login: wrong name or password; chat: no such user.
    Rejected,
    /// `-2`: the request needs a session and there is none.
    NotLoggedIn,
    /// `-3`: wrong body length, or a name that is empty or not UTF-8.
    Malformed,
    /// `-4`: unknown type; its body was skipped.
    Unsupported,
    /// `-5`: the server is at its client limit.
    Busy,
    /// `-6`: five failed logins in a row on one connection.
    TooManyAttempts,
    /// `-7`: the offline receiver's mailbox, or the store as a whole, is at its limit;
    /// nothing stored.
    MailboxFull,
    /// `-8`: the receiver is offline and the server could not store the message (a disk
    /// error, a mailbox entry that is not a regular file); nothing stored.
    NotStored,
}

impl Flag {
    /// Every flag, in the order of the table in docs/PROTOCOL.md §2.
    pub const ALL: [Flag; 10] = [
        Flag::Ok,
        Flag::Queued,
        Flag::Rejected,
        Flag::NotLoggedIn,
        Flag::Malformed,
        Flag::Unsupported,
        Flag::Busy,
        Flag::TooManyAttempts,
        Flag::MailboxFull,
        Flag::NotStored,
    ];

    /// The `flag` field for this flag.
    pub fn to_wire(self) -> i32 {
        match self {
            Flag::Ok => 1,
            Flag::Queued => 0,
            Flag::Rejected => -1,
            Flag::NotLoggedIn => -2,
            Flag::Malformed => -3,
            Flag::Unsupported => -4,
            Flag::Busy => -5,
            Flag::TooManyAttempts => -6,
            Flag::MailboxFull => -7,
            Flag::NotStored => -8,
        }
    }

    /// The flag a wire value stands for, or `None` for a value docs/PROTOCOL.md does not define.
    pub fn from_wire(value: i32) -> Option<Flag> {
        Flag::ALL.into_iter().find(|flag| flag.to_wire() == value)
    }

    /// What the flag means, in words a person reading a client's output understands.
    pub fn describe(self) -> &'static str {
        match self {
            Flag::Ok => "ok",
            Flag::Queued => "queued: the receiver is offline and gets it at their next login",
            Flag::Rejected => "rejected: wrong name or password, or no such user",
            Flag::NotLoggedIn => "refused: log in first",
            Flag::Malformed => {
                "refused: malformed request (bad length, or a name that is empty or not UTF-8)"
            }
            Flag::Unsupported => "refused: the server does not know this request type",
            Flag::Busy => "the server is busy (at its client limit); try again later",
            Flag::TooManyAttempts => "too many failed logins; the server closed the connection",
            Flag::MailboxFull => {
                "refused: the receiver's mailbox (or the server's store) is full, nothing was stored"
            }
            Flag::NotStored => {
                "not stored: the receiver is offline and the server could not store the \
                 message (a disk or file problem on the server; its log says which)"
            }
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.to_wire(), self.describe())
    }
}

/// A request header: `HEAD { i32 type; i32 length; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The `type` field (the original's `businessType`).
    pub kind: Kind,
    /// The `length` field (the original's `businessLength`), as sent: may be negative or
    /// huge, which is why it is not a `usize`, and why [`Header::body_len`] checks it.
    pub length: i32,
}

impl Header {
    /// A header announcing a `length`-byte body.
    pub fn new(kind: Kind, length: usize) -> Header {
        let length = i32::try_from(length).expect("frame bodies are at most a few KiB");
        Header { kind, length }
    }

    /// Reads a header from its 8 bytes.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Header {
        let mut input = &bytes[..];
        let kind = input
            .read_i32::<LittleEndian>()
            .expect("8 bytes hold two i32");
        let length = input
            .read_i32::<LittleEndian>()
            .expect("8 bytes hold two i32");
        Header {
            kind: Kind::from_wire(kind),
            length,
        }
    }

    /// Appends the header's 8 bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.write_i32::<LittleEndian>(self.kind.to_wire())
            .expect("writing to a Vec cannot fail");
        out.write_i32::<LittleEndian>(self.length)
            .expect("writing to a Vec cannot fail");
    }

    /// The body length if it is one a server may read, `None` if it is outside
    /// `0..=MAX_BODY_LEN` and the connection must be closed.
    pub fn body_len(&self) -> Option<usize> {
        usize::try_from(self.length)
            .ok()
            .filter(|&len| len <= MAX_BODY_LEN)
    }
}

/// A reply header: `FEEDBACK { i32 type; i32 length; i32 flag; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feedback {
    /// The `type` field.
    pub kind: Kind,
    /// The `length` field, as sent (a LOGIN feedback says 40 and has no body).
    pub length: i32,
    /// Kept raw so that a client can show a value docs/PROTOCOL.md does not define.
    pub flag: i32,
}

impl Feedback {
    /// A feedback for `kind` announcing a `length`-byte body.
    pub fn new(kind: Kind, length: usize, flag: Flag) -> Feedback {
        let length = i32::try_from(length).expect("reply bodies are at most a few hundred KiB");
        Feedback {
            kind,
            length,
            flag: flag.to_wire(),
        }
    }

    /// The LOGIN reply. Its `length` says 40 but no body follows: a quirk of the original
    /// that original clients depend on (they read exactly 12 bytes).
    pub fn login(flag: Flag) -> Feedback {
        Feedback::new(Kind::Login, LOGIN_BODY_LEN, flag)
    }

    /// Reads a feedback from its 12 bytes.
    pub fn decode(bytes: &[u8; FEEDBACK_LEN]) -> Feedback {
        let mut input = &bytes[..];
        let mut next = || {
            input
                .read_i32::<LittleEndian>()
                .expect("12 bytes hold three i32")
        };
        let (kind, length, flag) = (next(), next(), next());
        Feedback {
            kind: Kind::from_wire(kind),
            length,
            flag,
        }
    }

    /// Appends the feedback's 12 bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for value in [self.kind.to_wire(), self.length, self.flag] {
            out.write_i32::<LittleEndian>(value)
                .expect("writing to a Vec cannot fail");
        }
    }

    /// The feedback's 12 bytes.
    pub fn to_bytes(&self) -> [u8; FEEDBACK_LEN] {
        // On the stack: a reply header is built for every reply, and a heap buffer
        // for 12 bytes would cost more than the bytes.
        let mut out = [0; FEEDBACK_LEN];
        LittleEndian::write_i32_into(&[self.kind.to_wire(), self.length, self.flag], &mut out);
        out
    }

    /// The flag as a [`Flag`], if it is one docs/PROTOCOL.md defines.
    pub fn outcome(&self) -> Option<Flag> {
        Flag::from_wire(self.flag)
    }
}

/// A fixed-size text field holding at most `N` bytes of UTF-8 (usually).
///
/// Always stored normalised: the value, then zeros. Two fields that differ only in the
/// garbage after their NUL are equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Text<const N: usize>([u8; N]);

/// A user name field.
pub type Name = Text<NAME_LEN>;
/// A password field.
pub type Password = Text<PASSWORD_LEN>;
/// A chat message's text field.
pub type MessageText = Text<TEXT_LEN>;

/// A value longer than the field that should hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// The value's length in bytes.
    pub len: usize,
    /// The field's size.
    pub max: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes is longer than the {}-byte field",
            self.len, self.max
        )
    }
}

impl std::error::Error for TooLong {}

impl<const N: usize> Text<N> {
    /// The field with every byte zero: an empty value.
    pub const EMPTY: Text<N> = Text([0; N]);

    /// Reads a field as it came off the wire: keeps the bytes before the first NUL.
    pub fn from_field(field: &[u8; N]) -> Text<N> {
        // Copy the whole field (a fixed size: a few vector moves, no call), then zero
        // what follows the first NUL: every relayed message passes through here.
        let mut normalised = *field;
        if let Some(len) = field.iter().position(|&b| b == 0) {
            normalised[len..].fill(0);
        }
        Text(normalised)
    }

    /// A field holding `value`; fails if it does not fit or contains a NUL (which would
    /// cut it short on the other side).
    pub fn new(value: &str) -> Result<Text<N>, TooLong> {
        Text::from_bytes(value.as_bytes())
    }

    /// Like [`Text::new`] for raw bytes. A NUL inside `value` ends it early, as it would
    /// for a C client.
    pub fn from_bytes(value: &[u8]) -> Result<Text<N>, TooLong> {
        if value.len() > N {
            return Err(TooLong {
                len: value.len(),
                max: N,
            });
        }
        let mut field = [0; N];
        field[..value.len()].copy_from_slice(value);
        Ok(Text::from_field(&field))
    }

    /// Like [`Text::new`], but cuts a value that is too long at the last whole UTF-8
    /// character that fits, for text a person typed.
    pub fn truncated(value: &str) -> Text<N> {
        let mut end = value.len().min(N);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Text::from_bytes(&value.as_bytes()[..end]).expect("cut to fit the field")
    }

    /// The value: the bytes before the first NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        &self.0[..len]
    }

    /// The value as text, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// The value for people to read, with invalid UTF-8 replaced.
    pub fn to_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }

    /// True for an empty value (a field that starts with NUL).
    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }

    /// The whole field, value and zero padding, as it goes on the wire.
    pub fn field(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_lossy())
    }
}

impl<const N: usize> fmt::Display for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_lossy())
    }
}

/// Splits a fixed-size body into fixed-size fields, front to back.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn next<const N: usize>(&mut self) -> Text<N> {
        let (field, rest) = self.0.split_at(N);
        self.0 = rest;
        Text::from_field(field.try_into().expect("split_at gave N bytes"))
    }
}

/// The LOGIN body: `USERINFO { name[20]; password[20]; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// The `user_name` field.
    pub name: Name,
    /// The `user_pwd` field.
    pub password: Password,
}

impl Credentials {
    /// Reads a login body from its 40 bytes.
    pub fn decode(body: &[u8; LOGIN_BODY_LEN]) -> Credentials {
        let mut fields = Fields(body);
        Credentials {
            name: fields.next(),
            password: fields.next(),
        }
    }

    /// Appends the login body's 40 bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.field());
        out.extend_from_slice(self.password.field());
    }
}

/// The CHAT body: `CHATMSG { sender[20]; receiver[20]; message[100]; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatMessage {
    /// The `sengName` field: who sent it (the server writes the session's name here).
    pub sender: Name,
    /// The `receiveName` field: a user's name, or `*` for the room.
    pub receiver: Name,
    /// The `message` field.
    pub text: MessageText,
}

impl ChatMessage {
    /// Reads a chat body from its 140 bytes; each field is cut at its first NUL.
    pub fn decode(body: &[u8; CHAT_BODY_LEN]) -> ChatMessage {
        let mut fields = Fields(body);
        ChatMessage {
            sender: fields.next(),
            receiver: fields.next(),
            text: fields.next(),
        }
    }

    /// The chat body's 140 bytes, zero-padded.
    pub fn to_bytes(&self) -> [u8; CHAT_BODY_LEN] {
        let mut out = [0; CHAT_BODY_LEN];
        out[..NAME_LEN].copy_from_slice(self.sender.field());
        out[NAME_LEN..2 * NAME_LEN].copy_from_slice(self.receiver.field());
        out[2 * NAME_LEN..].copy_from_slice(self.text.field());
        out
    }

    /// The whole frame the server sends for this message: `FEEDBACK{2, 140, flag}` and
    /// the body. Every CHAT frame carries the body, whatever its flag.
    pub fn to_frame(&self, flag: Flag) -> [u8; CHAT_FRAME_LEN] {
        let mut out = [0; CHAT_FRAME_LEN];
        out[..FEEDBACK_LEN]
            .copy_from_slice(&Feedback::new(Kind::Chat, CHAT_BODY_LEN, flag).to_bytes());
        out[FEEDBACK_LEN..].copy_from_slice(&self.to_bytes());
        out
    }
}

/// Where the `flag` field sits in a feedback.
const FLAG_OFFSET: usize = 8;

/// Normalises a CHAT body where it lies, as [`ChatMessage::decode`] and then
/// [`ChatMessage::to_bytes`] would, without the two copies: each field is cut at its
/// first NUL and zero-padded. The server relays messages as bytes, normalised this way.
pub fn normalise_chat_body(body: &mut [u8; CHAT_BODY_LEN]) {
    let (sender, rest) = body.split_at_mut(NAME_LEN);
    let (receiver, text) = rest.split_at_mut(NAME_LEN);
    for field in [sender, receiver, text] {
        if let Some(nul) = field.iter().position(|&b| b == 0) {
            field[nul..].fill(0);
        }
    }
}

/// Overwrites the flag of the feedback that starts `reply`: lets a server write an echo
/// before it knows how its delivery went, and settle the flag afterwards.
pub fn set_flag(reply: &mut [u8], flag: Flag) {
    LittleEndian::write_i32(&mut reply[FLAG_OFFSET..FEEDBACK_LEN], flag.to_wire());
}

/// Appends a MESSAGE frame (receipts extension): `FEEDBACK{5, 148, flag}`, the id, the
/// CHAT body.
pub fn message_frame(flag: i32, id: u64, body: &[u8; CHAT_BODY_LEN], out: &mut Vec<u8>) {
    let mut feedback = Feedback::new(Kind::Message, MESSAGE_BODY_LEN, Flag::Ok);
    feedback.flag = flag;
    out.extend_from_slice(&feedback.to_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(body);
}

/// A RECEIVED or READ frame (receipts extension): `FEEDBACK{kind, 28, 1}`, the id and
/// `name`.
pub fn receipt_frame(kind: Kind, id: u64, name: &Name) -> [u8; RECEIPT_FRAME_LEN] {
    let mut frame = [0; RECEIPT_FRAME_LEN];
    frame[..FEEDBACK_LEN]
        .copy_from_slice(&Feedback::new(kind, RECEIPT_BODY_LEN, Flag::Ok).to_bytes());
    frame[FEEDBACK_LEN..FEEDBACK_LEN + ID_LEN].copy_from_slice(&id.to_le_bytes());
    frame[FEEDBACK_LEN + ID_LEN..].copy_from_slice(name.field());
    frame
}

/// Encodes a whole request: header and body, ready for one `write_all`.
pub fn request(kind: Kind, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    Header::new(kind, body.len()).encode(&mut out);
    out.extend_from_slice(body);
    out
}

/// A LOGIN request for `name` and `password`.
pub fn login_request(credentials: &Credentials) -> Vec<u8> {
    let mut body = Vec::with_capacity(LOGIN_BODY_LEN);
    credentials.encode(&mut body);
    request(Kind::Login, &body)
}

/// A CHAT request carrying `message`.
pub fn chat_request(message: &ChatMessage) -> Vec<u8> {
    request(Kind::Chat, &message.to_bytes())
}

/// A USERS request (extension): no body.
pub fn users_request() -> Vec<u8> {
    request(Kind::Users, &[])
}

/// Reads a reply header.
pub fn read_feedback(input: &mut impl Read) -> io::Result<Feedback> {
    let mut bytes = [0; FEEDBACK_LEN];
    input.read_exact(&mut bytes)?;
    Ok(Feedback::decode(&bytes))
}

/// Reads a CHAT body.
pub fn read_chat_body(input: &mut impl Read) -> io::Result<ChatMessage> {
    let mut body = [0; CHAT_BODY_LEN];
    input.read_exact(&mut body)?;
    Ok(ChatMessage::decode(&body))
}

/// Reads and throws away `len` bytes, so that the next frame starts where it should.
pub fn skip(input: &mut impl Read, len: usize) -> io::Result<()> {
    let len = u64::try_from(len).expect("usize fits in u64");
    let skipped = io::copy(&mut input.take(len), &mut io::sink())?;
    if skipped < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in the middle of a frame body",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` bytes: `value`, then zeros.
    fn padded(value: &[u8], len: usize) -> Vec<u8> {
        let mut field = value.to_vec();
        field.resize(len, 0);
        field
    }

    #[test]
    fn the_sizes_are_those_of_the_protocol_document() {
        let sizes = [
            (HEADER_LEN, 8),
            (FEEDBACK_LEN, 12),
            (LOGIN_BODY_LEN, 40),
            (CHAT_BODY_LEN, 140),
            (CHAT_FRAME_LEN, 152),
            (MESSAGE_BODY_LEN, 148),
            (MESSAGE_FRAME_LEN, 160),
            (ACK_BODY_LEN, 8),
            (RECEIPT_BODY_LEN, 28),
            (RECEIPTS_WINDOW, 256),
        ];
        for (size, expected) in sizes {
            assert_eq!(size, expected);
        }
    }

    #[test]
    fn every_flag_says_what_it_means_in_words_of_its_own() {
        let words = [
            (Flag::Ok, "ok"),
            (Flag::Queued, "offline"),
            (Flag::Rejected, "no such user"),
            (Flag::NotLoggedIn, "log in first"),
            (Flag::Malformed, "malformed"),
            (Flag::Unsupported, "does not know"),
            (Flag::Busy, "busy"),
            (Flag::TooManyAttempts, "too many failed logins"),
            (Flag::MailboxFull, "full"),
            (Flag::NotStored, "could not store"),
        ];
        for (flag, word) in words {
            assert!(
                flag.describe().contains(word),
                "{flag:?}: {}",
                flag.describe()
            );
        }
        assert_eq!(
            Flag::Queued.to_string(),
            format!("0 ({})", Flag::Queued.describe()),
            "Display: the wire value, then the words"
        );
    }

    #[test]
    fn a_feedback_outcome_is_its_flag_if_the_protocol_defines_it() {
        for flag in Flag::ALL {
            let feedback = Feedback::new(Kind::Chat, CHAT_BODY_LEN, flag);
            assert_eq!(feedback.outcome(), Some(flag));
        }
        let undefined = Feedback::decode(&[2, 0, 0, 0, 140, 0, 0, 0, 9, 0, 0, 0]);
        assert_eq!(
            undefined.outcome(),
            None,
            "flag 9 is no flag of the protocol"
        );
    }

    #[test]
    fn text_fields_know_when_they_are_empty_and_show_their_value() {
        assert!(Name::EMPTY.is_empty());
        let name = Name::new("似末").unwrap();
        assert!(!name.is_empty());
        assert_eq!(format!("{name}"), "似末");
        assert_eq!(format!("{name:?}"), "\"似末\"");
        let too_long = Name::new("abcdefghijklmnopqrstu").unwrap_err();
        assert_eq!(
            too_long.to_string(),
            "21 bytes is longer than the 20-byte field"
        );
    }

    #[test]
    fn a_chat_request_is_the_header_and_the_body() {
        let message = ChatMessage {
            sender: Name::new("1001").unwrap(),
            receiver: Name::new("1002").unwrap(),
            text: MessageText::new("hi").unwrap(),
        };
        let request = chat_request(&message);
        assert_eq!(request.len(), HEADER_LEN + CHAT_BODY_LEN);
        assert_eq!(request[..HEADER_LEN], [2, 0, 0, 0, 140, 0, 0, 0]);
        assert_eq!(request[HEADER_LEN..], message.to_bytes());
    }

    #[test]
    fn skip_drops_exactly_the_body_and_stops_at_the_end_of_the_stream() {
        let mut input: &[u8] = &[1, 2, 3, 4, 5];
        skip(&mut input, 3).unwrap();
        assert_eq!(input, [4, 5], "the next frame starts where it should");
        skip(&mut input, 0).unwrap();
        assert_eq!(input, [4, 5]);
        let error = skip(&mut input, 3).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(input.is_empty());
        let mut exact: &[u8] = &[9; 4096];
        skip(&mut exact, 4096).unwrap();
    }

    #[test]
    fn login_request_matches_the_c_struct_layout() {
        let credentials = Credentials {
            name: Name::new("似末").unwrap(),
            password: Password::new("123456").unwrap(),
        };
        let mut expected = vec![1, 0, 0, 0, 40, 0, 0, 0];
        // 似末 in UTF-8: E4 BC BC E6 9C AB
        expected.extend(padded(&[0xE4, 0xBC, 0xBC, 0xE6, 0x9C, 0xAB], 20));
        expected.extend(padded(b"123456", 20));
        assert_eq!(login_request(&credentials), expected);
    }

    #[test]
    fn login_feedback_is_twelve_bytes_claiming_forty() {
        assert_eq!(
            Feedback::login(Flag::Ok).to_bytes(),
            [1, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            Feedback::login(Flag::Rejected).to_bytes(),
            [1, 0, 0, 0, 40, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }

    #[test]
    fn chat_frame_places_fields_at_their_offsets() {
        let message = ChatMessage {
            sender: Name::new("玛卡巴卡").unwrap(),
            receiver: Name::new("1001").unwrap(),
            text: MessageText::new("hi").unwrap(),
        };
        let frame = message.to_frame(Flag::Queued);
        let mut expected = vec![2, 0, 0, 0, 140, 0, 0, 0, 0, 0, 0, 0];
        // 玛卡巴卡 in UTF-8: E7 8E 9B E5 8D A1 E5 B7 B4 E5 8D A1
        let sender = [
            0xE7, 0x8E, 0x9B, 0xE5, 0x8D, 0xA1, 0xE5, 0xB7, 0xB4, 0xE5, 0x8D, 0xA1,
        ];
        expected.extend(padded(&sender, 20));
        expected.extend(padded(b"1001", 20));
        expected.extend(padded(b"hi", 100));
        assert_eq!(frame.len(), 152);
        assert_eq!(frame.to_vec(), expected);
    }

    #[test]
    fn decoding_drops_the_garbage_after_the_first_nul() {
        let mut body = [0xAA; CHAT_BODY_LEN];
        body[..5].copy_from_slice(b"1002\0");
        body[20..26].copy_from_slice(b"1001\0x");
        body[40..43].copy_from_slice(b"yo\0");
        let message = ChatMessage::decode(&body);
        assert_eq!(message.sender.as_str(), Some("1002"));
        assert_eq!(message.receiver.as_str(), Some("1001"));
        assert_eq!(message.text.as_str(), Some("yo"));
        let reencoded = message.to_bytes();
        assert_eq!(&reencoded[..20], &padded(b"1002", 20)[..]);
        assert_eq!(&reencoded[40..], &padded(b"yo", 100)[..]);
    }

    #[test]
    fn a_twenty_byte_name_fills_its_field_without_a_terminator() {
        let name = Name::from_field(b"abcdefghijklmnopqrst");
        assert_eq!(name.as_bytes(), b"abcdefghijklmnopqrst");
        assert!(Name::new("abcdefghijklmnopqrstu").is_err());
    }

    #[test]
    fn header_decodes_little_endian_and_bounds_the_length() {
        let header = Header::decode(&[2, 0, 0, 0, 0x8C, 0, 0, 0]);
        assert_eq!(header.kind, Kind::Chat);
        assert_eq!(header.body_len(), Some(140));
        let negative = Header::decode(&[9, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(negative.kind, Kind::Unknown(9));
        assert_eq!(negative.body_len(), None);
        let too_big = Header::decode(&[1, 0, 0, 0, 0x01, 0x10, 0, 0]);
        assert_eq!(too_big.body_len(), None);
        let largest = Header::decode(&[1, 0, 0, 0, 0x00, 0x10, 0, 0]);
        assert_eq!(largest.body_len(), Some(MAX_BODY_LEN));
    }

    #[test]
    fn every_flag_round_trips_through_its_wire_value() {
        let wire: Vec<i32> = Flag::ALL.iter().map(|flag| flag.to_wire()).collect();
        assert_eq!(wire, [1, 0, -1, -2, -3, -4, -5, -6, -7, -8]);
        for flag in Flag::ALL {
            assert_eq!(Flag::from_wire(flag.to_wire()), Some(flag));
        }
        assert_eq!(Flag::from_wire(2), None);
    }

    #[test]
    fn truncated_text_never_splits_a_character() {
        let long = "似".repeat(40); // 120 bytes
        let text = MessageText::truncated(&long);
        assert_eq!(text.as_str().unwrap(), "似".repeat(33));
    }

    #[test]
    fn set_flag_rewrites_only_the_flag() {
        let message = ChatMessage::decode(&[0; CHAT_BODY_LEN]);
        let mut frame = message.to_frame(Flag::Ok);
        set_flag(&mut frame, Flag::MailboxFull);
        assert_eq!(frame, message.to_frame(Flag::MailboxFull));
    }

    #[test]
    fn skip_reports_a_body_cut_short() {
        let mut input = &[0u8; 10][..];
        assert!(skip(&mut input, 8).is_ok());
        assert_eq!(
            skip(&mut input, 8).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn normalising_in_place_is_decoding_and_encoding() {
        let mut seed = 0x1234_5678_u64;
        for _ in 0..1000 {
            let mut body = [0u8; CHAT_BODY_LEN];
            for byte in body.iter_mut() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Plenty of NULs, so that fields end at every position.
                *byte = if (seed >> 60) < 3 {
                    0
                } else {
                    (seed >> 33) as u8
                };
            }
            let expected = ChatMessage::decode(&body).to_bytes();
            normalise_chat_body(&mut body);
            assert_eq!(body, expected);
        }
    }
}

/// Properties that hold for any bytes, checked by `proptest` on many random inputs
/// (docs/TESTING.md says how to run more cases).
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A field as a C client may send it: any bytes, NULs anywhere.
    fn wire_field(len: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>(), 0x20u8..0x7f], len..=len)
    }

    /// The seed of every run (see `property_tests` in lib.rs).
    const SEED: u64 = 0xC0DE_C0DE_0001;

    proptest! {
        #![proptest_config(crate::property_tests::config(SEED))]
        #[test]
        fn any_8_bytes_decode_to_a_header_that_encodes_back_to_them(bytes in any::<[u8; 8]>()) {
            let header = Header::decode(&bytes);
            let mut out = Vec::new();
            header.encode(&mut out);
            prop_assert_eq!(out, bytes.to_vec());
            // A length is readable exactly when it is inside 0..=MAX_BODY_LEN.
            let length = i32::from_le_bytes(bytes[4..].try_into().unwrap());
            prop_assert_eq!(
                header.body_len(),
                (0..=MAX_BODY_LEN as i32).contains(&length).then_some(length as usize)
            );
        }

        #[test]
        fn any_12_bytes_decode_to_a_feedback_that_encodes_back_to_them(
            bytes in any::<[u8; 12]>()
        ) {
            let feedback = Feedback::decode(&bytes);
            prop_assert_eq!(feedback.to_bytes(), bytes);
            let mut out = Vec::new();
            feedback.encode(&mut out);
            prop_assert_eq!(out, bytes.to_vec());
            prop_assert_eq!(feedback.outcome().map(Flag::to_wire), Flag::from_wire(feedback.flag).map(Flag::to_wire));
        }

        #[test]
        fn a_chat_body_decodes_to_its_fields_cut_at_their_nul(
            sender in wire_field(NAME_LEN),
            receiver in wire_field(NAME_LEN),
            text in wire_field(TEXT_LEN),
        ) {
            let body: [u8; CHAT_BODY_LEN] =
                [sender.clone(), receiver.clone(), text.clone()].concat().try_into().unwrap();
            let message = ChatMessage::decode(&body);
            let cut = |field: &[u8]| field.split(|&b| b == 0).next().unwrap().to_vec();
            prop_assert_eq!(message.sender.as_bytes(), &cut(&sender)[..]);
            prop_assert_eq!(message.receiver.as_bytes(), &cut(&receiver)[..]);
            prop_assert_eq!(message.text.as_bytes(), &cut(&text)[..]);
            // Normalising in place is decoding and encoding again, and is idempotent.
            let mut normalised = body;
            normalise_chat_body(&mut normalised);
            prop_assert_eq!(normalised, message.to_bytes());
            prop_assert_eq!(ChatMessage::decode(&normalised), message);
            let frame = message.to_frame(Flag::Queued);
            prop_assert_eq!(&frame[..FEEDBACK_LEN], &Feedback::new(Kind::Chat, CHAT_BODY_LEN, Flag::Queued).to_bytes()[..]);
            prop_assert_eq!(&frame[FEEDBACK_LEN..], &normalised[..]);
        }

        #[test]
        fn credentials_round_trip_through_the_login_body(
            name in wire_field(NAME_LEN),
            password in wire_field(PASSWORD_LEN),
        ) {
            let body: [u8; LOGIN_BODY_LEN] = [name, password].concat().try_into().unwrap();
            let credentials = Credentials::decode(&body);
            let mut out = Vec::new();
            credentials.encode(&mut out);
            let again = Credentials::decode(&out.clone().try_into().unwrap());
            prop_assert_eq!(again, credentials);
            let mut header = Vec::new();
            Header::new(Kind::Login, LOGIN_BODY_LEN).encode(&mut header);
            prop_assert_eq!(login_request(&credentials), [header, out].concat());
        }

        #[test]
        fn any_text_fits_its_field_when_truncated(value in ".{0,60}") {
            let text = MessageText::truncated(&value);
            let kept = text.as_str().expect("cut at a character boundary");
            prop_assert!(value.starts_with(kept));
            prop_assert!(kept.len() <= TEXT_LEN);
            if value.len() <= TEXT_LEN && !value.contains('\0') {
                prop_assert_eq!(kept, value.as_str());
            }
        }
    }
}
