//! What one session has to write, collected between its reads and written out together:
//! the article's `write(fd, backbuf)` (the echo to the sender) and
//! `write(sendFd, backbuf)` (the message to its receiver), batched.
//!
//! A session could write each reply and each delivery the moment it has it, as the
//! original does: two system calls per message, and one more socket lock for the
//! receiver's side. When a client pipelines (sends many requests before reading), that
//! is most of what the server spends. So replies and deliveries collect here while more
//! input is already buffered, and [`Outbox::write_out`] sends them just before the
//! session would wait for the client again, or when a batch is full: never later, so no
//! message waits for anything but the requests already in hand.
//!
//! Two rules make batching invisible to clients:
//! - Deliveries are written before the echoes, because an echo's flag reports what
//!   happened to its delivery (1 delivered, 0 stored, -7 or -8 not stored). The echo is
//!   queued with flag 1 and its flag is filled in once the delivery has happened.
//! - A batch is bounded: [`MAX_BATCH_REQUESTS`] requests or [`MAX_UNSENT_REPLY_BYTES`]
//!   of replies. A client that pipelines requests and never reads the replies makes
//!   the session write (and, with the write timeout, give up) rather than pile up
//!   memory.

use crate::online::Connection;
use crate::protocol::{self, CHAT_BODY_LEN, CHAT_FRAME_LEN, FEEDBACK_LEN, Feedback, Flag, Kind};
use crate::routing;
use crate::shared::SharedState;
use crate::users::AccountId;
use std::io::{self, Read};

/// Requests answered before the outbox is written out even though more input is
/// waiting: bounds the delay a burst can cause. A chat counts once, though it makes
/// two frames (its echo and its delivery).
pub const MAX_BATCH_REQUESTS: usize = 64;
/// Bytes of replies collected before the outbox is written out even though more input
/// is waiting: bounds what a client that pipelines requests (USERS, say) and never
/// reads the replies can make the server hold for it.
pub const MAX_UNSENT_REPLY_BYTES: usize = 64 * 1024;

/// One session's unsent replies and deliveries. Its buffers are kept from batch to
/// batch, so a busy session allocates nothing per message.
#[derive(Default)]
pub struct Outbox {
    /// This client's replies, in the order of its requests.
    replies: Vec<u8>,
    /// Messages for other users: the receiver, and where the message's echo sits in
    /// `replies` (the echo's bytes, with flag 1, are the delivery's bytes too).
    deliveries: Vec<(AccountId, usize)>,
    /// Requests answered since the last write-out.
    requests: usize,
    /// One receiver's frames, gathered for one write (reused).
    frames: Vec<u8>,
    /// The echo flags of one receiver's messages (reused).
    flags: Vec<Flag>,
    /// The ids of one receiver's messages (reused).
    ids: Vec<u64>,
    /// Where an echo sits in `replies`, and the id its message got from its receiver
    /// (a receipts connection sees it with the echo: see `routing::reply`).
    echo_ids: Vec<(usize, u64)>,
    /// Room for `routing` to build frames in (reused).
    scratch: Vec<u8>,
}

impl Outbox {
    /// Queues a reply to this session's client.
    pub fn reply(&mut self, bytes: &[u8]) {
        self.replies.extend_from_slice(bytes);
        self.requests += 1;
    }

    /// Reads a CHAT body from `input` straight into the replies, behind the feedback
    /// `FEEDBACK{2, 140, 1}`: from here on the message stays bytes, and with flag 1
    /// those bytes are both its echo and its delivery. Returns where the frame starts,
    /// for the calls below; a failed read leaves nothing behind.
    pub fn read_chat_frame(&mut self, input: &mut impl Read) -> io::Result<usize> {
        let start = self.replies.len();
        let feedback = Feedback::new(Kind::Chat, CHAT_BODY_LEN, Flag::Ok);
        self.replies.extend_from_slice(&feedback.to_bytes());
        self.replies.resize(start + CHAT_FRAME_LEN, 0);
        if let Err(error) = input.read_exact(&mut self.replies[start + FEEDBACK_LEN..]) {
            self.replies.truncate(start);
            return Err(error);
        }
        Ok(start)
    }

    /// The body of the CHAT frame read at `frame`, to normalise and check in place.
    pub fn chat_body_mut(&mut self, frame: usize) -> &mut [u8; CHAT_BODY_LEN] {
        (&mut self.replies[frame + FEEDBACK_LEN..frame + CHAT_FRAME_LEN])
            .try_into()
            .expect("a CHAT frame holds a 140-byte body")
    }

    /// Answers the CHAT frame read at `frame` with `flag`: the frame as it stands is the
    /// reply.
    pub fn answer(&mut self, frame: usize, flag: Flag) {
        protocol::set_flag(&mut self.replies[frame..frame + FEEDBACK_LEN], flag);
        self.requests += 1;
    }

    /// Gives the CHAT frame at `frame` (an echo) the id of its message.
    pub fn set_echo_id(&mut self, frame: usize, id: u64) {
        self.echo_ids.push((frame, id));
    }

    /// Queues a CHAT frame that echoes a room message, with its id.
    pub fn reply_echo(&mut self, frame: &[u8; CHAT_FRAME_LEN], id: u64) {
        self.echo_ids.push((self.replies.len(), id));
        self.reply(frame);
    }

    /// Queues the CHAT frame read at `frame` for account `receiver` (not the sender); it
    /// stays in the replies as the echo, whose flag is settled once the delivery has
    /// happened.
    pub fn queue_delivery(&mut self, receiver: AccountId, frame: usize) {
        self.deliveries.push((receiver, frame));
        self.requests += 1;
    }

    /// Takes the CHAT frame read at `frame` (the last one) back out of the replies: a
    /// room message must be said after the replies before it are written, and echoed
    /// after it is said.
    pub fn take_frame(&mut self, frame: usize) -> [u8; CHAT_FRAME_LEN] {
        let bytes = self.replies[frame..frame + CHAT_FRAME_LEN]
            .try_into()
            .expect("a CHAT frame is 152 bytes");
        self.replies.truncate(frame);
        bytes
    }

    /// True when a batch is complete and should be written before more input is read.
    pub fn is_full(&self) -> bool {
        self.requests >= MAX_BATCH_REQUESTS || self.replies.len() >= MAX_UNSENT_REPLY_BYTES
    }

    /// Writes out everything queued: each receiver's messages first (to their socket,
    /// or into their store: [`routing::deliver`]), then this client's replies with the
    /// echoes' flags filled in, in one write to `connection` ([`routing::reply`]).
    pub fn write_out(&mut self, shared: &SharedState, connection: &Connection) -> io::Result<()> {
        self.deliver_all(shared);
        self.requests = 0;
        if self.replies.is_empty() {
            return Ok(());
        }
        // Deliveries add their echoes' ids receiver by receiver: in offset order again.
        self.echo_ids.sort_unstable();
        let result = routing::reply(connection, &self.replies, &self.echo_ids, &mut self.scratch);
        self.echo_ids.clear();
        self.replies.clear();
        // One huge reply (USERS with thousands online) must not stay allocated.
        self.replies.shrink_to(MAX_UNSENT_REPLY_BYTES);
        result
    }

    /// Hands each receiver its messages, in one write per receiver, and settles the
    /// echoes' flags and ids.
    fn deliver_all(&mut self, shared: &SharedState) {
        // Grouped by receiver; within a receiver, echo offsets grow in the order the
        // messages came, so sorting by both keeps each receiver's order (and sorts in
        // place, with no allocation).
        self.deliveries.sort_unstable();
        let Outbox {
            replies,
            deliveries,
            frames,
            flags,
            ids,
            echo_ids,
            scratch,
            ..
        } = self;
        for group in deliveries.chunk_by(|a, b| a.0 == b.0) {
            frames.clear();
            for &(_, echo) in group {
                frames.extend_from_slice(&replies[echo..echo + CHAT_FRAME_LEN]);
            }
            routing::deliver(shared, group[0].0, frames, flags, ids, scratch);
            for (&(_, echo), &flag) in group.iter().zip(flags.iter()) {
                if flag != Flag::Ok {
                    protocol::set_flag(&mut replies[echo..echo + FEEDBACK_LEN], flag);
                }
            }
            echo_ids.extend(group.iter().map(|&(_, echo)| echo).zip(ids.iter().copied()));
        }
        deliveries.clear();
    }
}
