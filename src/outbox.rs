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
//! - A batch is bounded: [`MAX_BATCH_FRAMES`] frames or [`MAX_UNSENT_REPLY_BYTES`]
//!   of replies. A client that pipelines requests and never reads the replies makes
//!   the session write (and, with the write timeout, give up) rather than pile up
//!   memory.

use crate::online::Connection;
use crate::protocol::{self, ChatMessage, FEEDBACK_LEN, Flag, Name};
use crate::shared::SharedState;
use std::io;

/// Frames (replies and deliveries: a chat counts twice) collected before the outbox is
/// written out even though more input is waiting: bounds the delay a burst can cause.
pub const MAX_BATCH_FRAMES: usize = 64;
/// Bytes of replies collected before the outbox is written out even though more input
/// is waiting: bounds what a client that pipelines requests (USERS, say) and never
/// reads the replies can make the server hold for it.
pub const MAX_UNSENT_REPLY_BYTES: usize = 64 * 1024;

/// One session's unsent replies and deliveries.
#[derive(Default)]
pub struct Outbox {
    /// This client's replies, in the order of its requests.
    replies: Vec<u8>,
    /// Messages for other users, grouped by receiver in the order they came.
    deliveries: Vec<Delivery>,
    /// Frames collected since the last write-out.
    frames: usize,
}

/// Messages for one receiver, and where each one's echo sits in `Outbox::replies`.
struct Delivery {
    receiver: Name,
    messages: Vec<ChatMessage>,
    echoes: Vec<usize>,
}

impl Outbox {
    /// Queues a reply to this session's client.
    pub fn reply(&mut self, bytes: &[u8]) {
        self.replies.extend_from_slice(bytes);
        self.frames += 1;
    }

    /// Queues `message` for its receiver (an account other than the sender), and its
    /// echo, whose flag is filled in once the delivery has happened.
    pub fn queue_delivery(&mut self, message: ChatMessage) {
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

    /// True when a batch is complete and should be written before more input is read.
    pub fn is_full(&self) -> bool {
        self.frames >= MAX_BATCH_FRAMES || self.replies.len() >= MAX_UNSENT_REPLY_BYTES
    }

    /// Writes out everything queued: each receiver's messages first (to their socket,
    /// or into their mailbox: [`SharedState::deliver`]), then this client's replies with
    /// the echoes' flags filled in, in one write to `connection`.
    pub fn write_out(&mut self, shared: &SharedState, connection: &Connection) -> io::Result<()> {
        let Outbox {
            replies,
            deliveries,
            frames,
        } = self;
        for delivery in deliveries.drain(..) {
            let receiver = delivery
                .receiver
                .as_str()
                .expect("only account names are queued for delivery");
            let flags = shared.deliver(receiver, &delivery.messages);
            for (echo, flag) in delivery.echoes.into_iter().zip(flags) {
                protocol::set_flag(&mut replies[echo..echo + FEEDBACK_LEN], flag);
            }
        }
        *frames = 0;
        if replies.is_empty() {
            return Ok(());
        }
        let result = connection.send(replies);
        replies.clear();
        // One huge reply (USERS with thousands online) must not stay allocated.
        replies.shrink_to(MAX_UNSENT_REPLY_BYTES);
        result
    }
}
