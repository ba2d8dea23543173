//! Where a message goes: the one place that decides between a receiver's socket and its
//! store, and the only code that writes to another user's connection (the article's
//! `write(sendFd, backbuf)`, and what it does when the receiver is offline).
//!
//! A plain receiver gets the original's relay: its message is written to its socket if
//! it is online, stored in its mailbox if not (or if the write fails), and the stored
//! messages come with its next login. The receipts extension (`receipts.rs`) plugs in at
//! one question, asked in each function here: is the receiver on a receipts connection?
//! Then its store is its queue, and `receipts.rs` says how.
//!
//! Every decision is taken under the receiver's mailbox lock (see `Mailboxes::lock`):
//! a login of the receiver cannot slip in between the choice and the write, and the ids
//! a receiver's messages get increase in the order they are written.

use crate::mailbox::{Handover, Mailbox};
use crate::online::Connection;
use crate::protocol::{CHAT_FRAME_LEN, ChatMessage, FEEDBACK_LEN, Feedback, Flag};
use crate::receipts;
use crate::shared::SharedState;
use crate::users::AccountId;
use std::io;

/// Delivers `frames` (whole CHAT frames `FEEDBACK{2, 140, 1}` + message, oldest first,
/// all for account `receiver`): all of them live in one write if the receiver is online
/// and the write succeeds, otherwise each into the mailbox. Leaves each message's echo
/// flag in `flags`, and its id (the receiver's, 0 for a message refused) in `ids`; both
/// are cleared first. The caller reuses them, and `scratch` for the frames of a receipts
/// receiver.
///
/// The frames come as bytes, exactly as they go on the wire: the session built them
/// once, as its echoes, and a live delivery (nearly all of them) is a copy and a write.
pub fn deliver(
    shared: &SharedState,
    receiver: AccountId,
    frames: &[u8],
    flags: &mut Vec<Flag>,
    ids: &mut Vec<u64>,
    scratch: &mut Vec<u8>,
) {
    flags.clear();
    ids.clear();
    let mut mailbox = shared.mailboxes.lock_account(receiver);
    let name = shared.accounts.name(receiver);
    let count = frames.len() / CHAT_FRAME_LEN;
    if let Some(connection) = shared.online.get(name) {
        // The receipts extension's question: then the store comes first.
        if connection.has_receipts() {
            return receipts::deliver(&mut mailbox, &connection, frames, flags, ids, scratch);
        }
        let first = mailbox.next_ids(count);
        if connection.send(frames).is_ok() {
            if log::log_enabled!(log::Level::Debug) {
                for message in messages(frames) {
                    log::debug!("{} -> {name}", message.sender);
                    log::trace!("{} -> {name}: {}", message.sender, message.text);
                }
            }
            flags.resize(count, Flag::Ok);
            ids.extend((first..).take(count));
            return;
        }
        // `send` closed the broken connection; its session takes the user offline.
        // Part of the batch may have reached the socket: storing all of it may repeat
        // some, but loses none (at-least-once).
        crate::info_limited!("delivery to {name} failed; storing {count} messages in the mailbox");
    }
    mailbox.store(frames, flags, ids, scratch);
}

/// Says a room message to one online user: its frame as it is, or to a receipts
/// connection as `receipts.rs` says. Room messages are never stored.
pub fn deliver_room(
    shared: &SharedState,
    name: &str,
    connection: &Connection,
    frame: &[u8; CHAT_FRAME_LEN],
) -> io::Result<()> {
    if !connection.has_receipts() {
        return connection.send(frame);
    }
    let Some(mut mailbox) = shared.mailboxes.lock(name) else {
        return Ok(());
    };
    // The room's list of who is online was taken before this lock: the connection may
    // have logged in as someone else since, whose ids and window these are not.
    if shared
        .online
        .get(name)
        .is_none_or(|current| current.id() != connection.id())
    {
        return Ok(());
    }
    receipts::deliver_room(&mut mailbox, connection, frame)
}

/// A login's stored messages: `announce` writes the login reply `FEEDBACK{1, 40, 1}`
/// followed by them (and puts the user online, see `request/login.rs`). A plain login
/// takes the whole store (`Mailbox::hand_over`); a receipts login as `receipts.rs` says.
pub fn hand_over(
    mailbox: &mut Mailbox<'_>,
    connection: &Connection,
    announce: impl FnOnce(&[u8]) -> io::Result<()>,
) -> io::Result<Handover> {
    if connection.has_receipts() {
        return receipts::hand_over(mailbox, connection, announce);
    }
    mailbox.hand_over(|stored| announce(&login_reply_with(stored)))
}

/// Writes a session's `replies` to its own client, in one write: as they are, or, on a
/// receipts connection, with each CHAT frame as a MESSAGE frame carrying the id
/// `echo_ids` gives its offset (see `receipts::as_messages`; `scratch` is reused).
pub fn reply(
    connection: &Connection,
    replies: &[u8],
    echo_ids: &[(usize, u64)],
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    if !connection.has_receipts() {
        return connection.send(replies);
    }
    scratch.clear();
    receipts::as_messages(replies, echo_ids, scratch);
    connection.send(scratch)
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

/// The messages of whole CHAT frames.
fn messages(frames: &[u8]) -> impl Iterator<Item = ChatMessage> + '_ {
    frames.chunks_exact(CHAT_FRAME_LEN).map(|frame| {
        let body = frame[FEEDBACK_LEN..]
            .try_into()
            .expect("a CHAT frame is a feedback and a 140-byte body");
        ChatMessage::decode(body)
    })
}
