//! The receipts extension (types 4 to 8, docs/PROTOCOL.md §3), where messages go: a
//! receipts receiver's store is its queue.
//!
//! Flag 1 on an echo says that a message was written to the receiver's socket, which is
//! all the original could promise: a receiver that hangs, or whose connection breaks
//! after the kernel took the bytes, loses everything in its socket buffer. A client that
//! sends `HEAD{4, 0}` (RECEIPTS) gets more, on that connection, by one rule: **a message
//! to it is kept in its store before any socket sees it, and leaves the store only when
//! its client acknowledges it** (Redis Streams' pending entries, Kafka's log and offset):
//!
//! - [`deliver`]: the message is appended to the receiver's store (or refused at the
//!   door, -7 or -8: what the server could not keep, it never promised). Then, while
//!   fewer than [`RECEIPTS_WINDOW`] of the receiver's messages are written and
//!   unacknowledged, it is written at once as a MESSAGE frame with its id (echo 1);
//!   otherwise it waits in the store (echo 0) and goes out as acknowledgements open the
//!   window. A slow receiver is paused, never disconnected (MQTT 5's Receive Maximum).
//! - [`acknowledge`]: an ACK moves the login's mark; the messages it covers leave the
//!   store, the waiting ones go out, and each sender hears how far their messages got
//!   (RECEIVED, XEP-0184's receipt made cumulative).
//! - When the connection ends, however it ends, there is nothing to do: everything not
//!   acknowledged is in the store, and comes again, with its ids, at the next login.
//! - Receipts to senders (RECEIVED, and READ, XEP-0333's "seen up to here") are left on
//!   the sender's connection, one per user and kind, and written with its next write or
//!   at once if its socket takes them without waiting ([`Connection::leave_notice`]):
//!   a receiver never waits on a sender's socket.
//!
//! Room messages stay live-only: to a receipts receiver one is written only when
//! nothing of its store waits to be written, with the receiver's next id, and is not
//! stored. So the ids on a connection always increase in the order the frames are
//! written, and an acknowledgement of the last id a client got is always exact.
//!
//! The core meets this module at two places only: `routing.rs` asks whether a receiver
//! is on a receipts connection, and the session's dispatch sends types 4, 6 and 8 to
//! `request/receipts.rs`. Everything this module keeps per connection (its [`Window`]
//! and its notices) belongs to the login on it: a new login starts from nothing.

use crate::mailbox::{Handover, Mailbox, storage_problem};
use crate::online::{Connection, Notice, Window, Written};
use crate::protocol::{
    self, CHAT_BODY_LEN, CHAT_FRAME_LEN, FEEDBACK_LEN, Feedback, Flag, Kind, MESSAGE_FRAME_LEN,
    NAME_LEN, Name, RECEIPTS_WINDOW,
};
use crate::shared::SharedState;
use parking_lot::MutexGuard;
use std::io;

/// [`routing::deliver`](crate::routing::deliver) to a receipts receiver: the store
/// first, then as much as the window allows, in one write (`out` is reused). Leaves the
/// echo flags and ids in `flags` and `ids`.
pub fn deliver(
    mailbox: &mut Mailbox<'_>,
    connection: &Connection,
    frames: &[u8],
    flags: &mut Vec<Flag>,
    ids: &mut Vec<u64>,
    out: &mut Vec<u8>,
) {
    let mut window = connection
        .window()
        .expect("called for receipts connections");
    let waiting = mailbox.len().saturating_sub(window.records);
    let accepted = mailbox.store(frames, flags, ids, out);
    if waiting > 0 {
        // Older messages wait in the store: these wait behind them (echo 0). Some may
        // wait with the window open (a read of the store that failed, at the login or
        // after an ACK): try again now, rather than at an ACK that may never come.
        if window.unacknowledged.len() < RECEIPTS_WINDOW {
            let owner = mailbox.owner().to_string();
            write_waiting(mailbox, window, connection, &owner);
        }
        return;
    }
    let now = accepted
        .kept
        .min(RECEIPTS_WINDOW.saturating_sub(window.unacknowledged.len()));
    out.clear();
    for (id, frame) in (accepted.first_id..).zip(frames.chunks_exact(CHAT_FRAME_LEN).take(now)) {
        let body = frame[FEEDBACK_LEN..].try_into().expect("a 140-byte body");
        write_message(&mut window, id, body, 1, out);
    }
    drop(window);
    if now > 0 && connection.send(out).is_ok() {
        flags[..now].fill(Flag::Ok);
    }
    // A failed write closed the connection: the messages stay in the store (echo 0)
    // and come again at the receiver's next login.
}

/// A room message to a receipts receiver: written, with the receiver's next id, only if
/// nothing of its store waits to be written and its window has room; otherwise it
/// misses it, as a user who is offline does. Never stored.
pub fn deliver_room(
    mailbox: &mut Mailbox<'_>,
    connection: &Connection,
    frame: &[u8; CHAT_FRAME_LEN],
) -> io::Result<()> {
    let Some(mut window) = connection.window() else {
        return connection.send(frame);
    };
    if mailbox.len() > window.records || window.unacknowledged.len() >= RECEIPTS_WINDOW {
        log::debug!(
            "{}: a room message missed: its window is full",
            connection.peer()
        );
        return Ok(());
    }
    let id = mailbox.next_ids(1);
    let mut out = Vec::with_capacity(MESSAGE_FRAME_LEN);
    let body = frame[FEEDBACK_LEN..].try_into().expect("a 140-byte body");
    write_message(&mut window, id, body, 0, &mut out);
    // Room messages get no receipts: the window notes no sender for it.
    if let Some(written) = window.unacknowledged.back_mut() {
        written.sender = Name::EMPTY;
    }
    drop(window);
    connection.send(&out)
}

/// A receipts login's stored messages: the login reply, then the first of them, as many
/// as the window holds, as MESSAGE frames with their ids; the rest go out as the client
/// acknowledges. All stay in the store until then. The window starts empty: it belongs
/// to this login.
pub fn hand_over(
    mailbox: &mut Mailbox<'_>,
    connection: &Connection,
    announce: impl FnOnce(&[u8]) -> io::Result<()>,
) -> io::Result<Handover> {
    connection.start_login();
    let mut window = connection
        .window()
        .expect("called for receipts connections");
    let mut reply = Feedback::login(Flag::Ok).to_bytes().to_vec();
    let written = match fill_or_recount(mailbox, &mut window, &mut reply) {
        Ok(written) => written,
        Err(error) => {
            drop(window);
            announce(&reply)?;
            let messages = mailbox.len();
            return Ok(Handover::Kept { messages, error });
        }
    };
    drop(window);
    announce(&reply)?;
    Ok(match written {
        0 => Handover::Empty,
        count => Handover::Delivered(count),
    })
}

/// RECEIPTS after `user` logged in on `connection`: from here on the user's store is its
/// queue, and what it already holds (what a plain login could not take) goes out as the
/// window allows, as at a receipts login.
pub fn take_over_store(shared: &SharedState, connection: &Connection, user: &str) {
    let Some(mut mailbox) = shared.mailboxes.lock(user) else {
        return;
    };
    if let Some(window) = connection.window() {
        write_waiting(&mut mailbox, window, connection, user);
    }
}

/// ACK of `id` from `user` on `connection`: the messages it covers leave the store, the
/// waiting ones go out as the window allows, and each sender whose messages it covered
/// gets a RECEIVED notice. False if the id is above what was written for this login, or
/// below its last ACK: nothing changes (the caller answers -3).
pub fn acknowledge(shared: &SharedState, connection: &Connection, user: &str, id: u64) -> bool {
    let Some(mut mailbox) = shared.mailboxes.lock(user) else {
        return false;
    };
    let Some(mut window) = connection.window() else {
        return false;
    };
    if id > window.highest || id < window.last_ack {
        return false;
    }
    // A connection a newer login of the same user replaced may still be reading its last
    // frames: it no longer speaks for the store.
    if shared
        .online
        .get(user)
        .is_none_or(|current| current.id() != connection.id())
    {
        return true;
    }
    window.last_ack = id;
    let mut covered = 0;
    let mut receipts: Vec<(Name, u64)> = Vec::new();
    while let Some(written) = window.unacknowledged.front().copied()
        && written.id <= id
    {
        window.unacknowledged.pop_front();
        covered += written.records as usize;
        if !written.sender.is_empty() {
            note_receipt(&mut receipts, written.sender, written.id);
        }
    }
    window.records -= covered;
    mailbox.acknowledge(covered);
    write_waiting(&mut mailbox, window, connection, user);
    drop(mailbox);
    let me = Name::new(user).expect("account names fit the name field");
    for (sender, id) in receipts {
        leave_notice(shared, &sender, Kind::Received, id, me);
    }
    true
}

/// READ from `user`: "the person here has seen `sender`'s messages up to `id`", left for
/// `sender` if online with receipts on. False if `sender` is no account.
pub fn read(shared: &SharedState, user: &str, sender: &Name, id: u64) -> bool {
    if !sender
        .as_str()
        .is_some_and(|name| shared.accounts.contains(name))
    {
        return false;
    }
    let me = Name::new(user).expect("account names fit the name field");
    leave_notice(shared, sender, Kind::Read, id, me);
    true
}

/// Leaves a RECEIVED or READ for `to`, if online with receipts on; a plain or offline
/// user gets nothing (receipts are news, not messages: never stored).
fn leave_notice(shared: &SharedState, to: &Name, kind: Kind, id: u64, about: Name) {
    if let Some(connection) = to.as_str().and_then(|to| shared.online.get(to)) {
        connection.leave_notice(Notice { kind, about, id });
    }
}

/// Writes to `connection` the messages waiting in `user`'s store after those its
/// `window` holds, as many as it has room for (under the mailbox lock: in store order).
fn write_waiting(
    mailbox: &mut Mailbox<'_>,
    mut window: MutexGuard<'_, Window>,
    connection: &Connection,
    user: &str,
) {
    let mut out = Vec::new();
    if let Err(error) = fill_or_recount(mailbox, &mut window, &mut out) {
        crate::log_limited!(
            log::Level::Error,
            "{}: cannot read the messages waiting for {user} ({}): {error}; they stay \
             stored, and are tried again with the next message or ACK",
            mailbox.path().display(),
            storage_problem(&error)
        );
    }
    drop(window);
    if !out.is_empty() {
        // A failure closes the connection; the messages stay in the store.
        let _ = connection.send(&out);
    }
}

/// [`fill_window`], and if the store's file was removed or cut (by hand, while the
/// server runs), a count of what it still holds and a second try: what is gone is gone
/// (logged), and the store must not wait for it.
fn fill_or_recount(
    mailbox: &mut Mailbox<'_>,
    window: &mut Window,
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    match fill_window(mailbox, window, out) {
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
            ) =>
        {
            let gone = mailbox.recount();
            crate::log_limited!(
                log::Level::Error,
                "{}: the mailbox of {} was removed or cut while the server ran; {gone} \
                 stored messages are gone",
                mailbox.path().display(),
                mailbox.owner()
            );
            fill_window(mailbox, window, out)
        }
        result => result,
    }
}

/// Writes (into `out`) the messages waiting in the store after those the window holds,
/// as many as it has room for; how many.
fn fill_window(
    mailbox: &mut Mailbox<'_>,
    window: &mut Window,
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    let room = RECEIPTS_WINDOW.saturating_sub(window.unacknowledged.len());
    let waiting = mailbox.read_waiting(window.records, room)?;
    let count = waiting.messages.len();
    for (records, (id, message)) in waiting.messages {
        write_message(window, id, &message.to_bytes(), records, out);
    }
    if waiting.trailing > 0 {
        // Records past the last message that are no messages: they leave with it, or at
        // once if nothing precedes them.
        match window.unacknowledged.back_mut() {
            Some(last) => {
                last.records += waiting.trailing;
                window.records += waiting.trailing as usize;
            }
            None => mailbox.acknowledge(waiting.trailing as usize),
        }
    }
    Ok(count)
}

/// Appends the MESSAGE frame of `body` with `id` (flag 1) to `out`, and notes it in the
/// window as written, standing for `records` records of the store.
fn write_message(
    window: &mut Window,
    id: u64,
    body: &[u8; CHAT_BODY_LEN],
    records: u32,
    out: &mut Vec<u8>,
) {
    protocol::message_frame(Flag::Ok.to_wire(), id, body, out);
    let sender = Name::from_field(body[..NAME_LEN].try_into().expect("20 bytes"));
    window.unacknowledged.push_back(Written {
        id,
        sender,
        records,
    });
    window.records += records as usize;
    window.highest = window.highest.max(id);
}

/// Records that `sender`'s messages are covered up to `id` (the highest wins).
fn note_receipt(receipts: &mut Vec<(Name, u64)>, sender: Name, id: u64) {
    match receipts.iter_mut().rev().find(|(name, _)| *name == sender) {
        Some((_, highest)) => *highest = (*highest).max(id),
        None => receipts.push((sender, id)),
    }
}

/// A session's replies as a receipts connection gets them: each CHAT frame becomes a
/// MESSAGE frame with the id `echo_ids` gives its offset (0 if none: a refused
/// message), everything else as it is. The replies are the server's own, so their
/// lengths are known: a LOGIN feedback has no body (its length, 40, is the original's
/// quirk), and every other reply says its length (a CHAT frame's is 140). `echo_ids`
/// must be sorted by offset.
pub fn as_messages(replies: &[u8], echo_ids: &[(usize, u64)], out: &mut Vec<u8>) {
    let mut echo_ids = echo_ids.iter().peekable();
    let mut at = 0;
    while let Some(header) = replies[at..].first_chunk::<FEEDBACK_LEN>() {
        let feedback = Feedback::decode(header);
        let len = match feedback.kind {
            Kind::Login => FEEDBACK_LEN,
            _ => FEEDBACK_LEN + usize::try_from(feedback.length).unwrap_or(0),
        };
        let frame = &replies[at..at + len];
        if feedback.kind == Kind::Chat {
            while echo_ids.next_if(|(offset, _)| *offset < at).is_some() {}
            let id = echo_ids
                .next_if(|(offset, _)| *offset == at)
                .map_or(0, |(_, id)| *id);
            let body = frame[FEEDBACK_LEN..].try_into().expect("a 140-byte body");
            protocol::message_frame(feedback.flag, id, body, out);
        } else {
            out.extend_from_slice(frame);
        }
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SyncPolicy;
    use crate::mailbox::Mailboxes;
    use crate::protocol::{ChatMessage, ID_LEN, MessageText, RECEIPT_BODY_LEN};
    use crate::users::Accounts;
    use byteorder::{ByteOrder, LittleEndian};
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    fn chat_frame(sender: &str, text: &str) -> [u8; CHAT_FRAME_LEN] {
        ChatMessage {
            sender: Name::new(sender).unwrap(),
            receiver: Name::new("似末").unwrap(),
            text: MessageText::new(text).unwrap(),
        }
        .to_frame(Flag::Ok)
    }

    #[test]
    fn a_receipt_frame_is_a_feedback_and_its_28_byte_body() {
        let frame = protocol::receipt_frame(Kind::Received, 7, &Name::new("玛卡巴卡").unwrap());
        let feedback = Feedback::decode(frame[..FEEDBACK_LEN].try_into().unwrap());
        assert_eq!(
            (feedback.kind, feedback.length, feedback.flag),
            (Kind::Received, RECEIPT_BODY_LEN as i32, 1)
        );
        assert_eq!(LittleEndian::read_u64(&frame[FEEDBACK_LEN..]), 7);
        assert_eq!(
            &frame[FEEDBACK_LEN + ID_LEN..],
            Name::new("玛卡巴卡").unwrap().field()
        );
    }

    #[test]
    fn replies_become_message_frames_with_their_ids_and_a_login_reply_has_no_body() {
        let mut replies = Feedback::login(Flag::Ok).to_bytes().to_vec();
        let echo_at = replies.len();
        replies.extend_from_slice(&chat_frame("1001", "hi"));
        replies.extend_from_slice(&Feedback::new(Kind::Users, 20, Flag::Ok).to_bytes());
        replies.extend_from_slice(Name::new("1001").unwrap().field());
        let refused_at = replies.len();
        replies.extend_from_slice(&chat_frame("1001", "no"));
        protocol::set_flag(&mut replies[refused_at..], Flag::Rejected);
        let mut out = Vec::new();
        as_messages(&replies, &[(echo_at, 77)], &mut out);
        assert_eq!(out.len(), 12 + MESSAGE_FRAME_LEN + 32 + MESSAGE_FRAME_LEN);
        let message = &out[12..12 + MESSAGE_FRAME_LEN];
        assert_eq!(
            Feedback::decode(message[..12].try_into().unwrap()).kind,
            Kind::Message
        );
        assert_eq!(LittleEndian::read_u64(&message[12..20]), 77);
        let refused = &out[12 + MESSAGE_FRAME_LEN + 32..];
        assert_eq!(
            LittleEndian::read_u64(&refused[12..20]),
            0,
            "a refused echo: id 0"
        );
        assert_eq!(Feedback::decode(refused[..12].try_into().unwrap()).flag, -1);
    }

    #[test]
    fn an_echo_without_an_id_leaves_the_next_echos_id_to_it() {
        let mut replies = chat_frame("1001", "no").to_vec();
        protocol::set_flag(&mut replies, Flag::Rejected);
        let delivered_at = replies.len();
        replies.extend_from_slice(&chat_frame("1001", "yes"));
        let mut out = Vec::new();
        as_messages(&replies, &[(delivered_at, 78)], &mut out);
        let id_of = |message: usize| {
            let at = message * MESSAGE_FRAME_LEN + FEEDBACK_LEN;
            LittleEndian::read_u64(&out[at..at + ID_LEN])
        };
        assert_eq!((id_of(0), id_of(1)), (0, 78));
    }

    #[test]
    fn an_ack_gives_each_sender_the_highest_id_it_covers() {
        let mut receipts = Vec::new();
        let (a, b) = (Name::new("1001").unwrap(), Name::new("1002").unwrap());
        for (sender, id) in [(a, 1), (b, 2), (a, 3), (b, 4), (a, 5)] {
            note_receipt(&mut receipts, sender, id);
        }
        assert_eq!(receipts, [(a, 5), (b, 4)]);
    }

    #[test]
    fn records_that_are_no_messages_leave_with_the_message_before_or_at_once() {
        let dir = std::env::temp_dir().join(format!("chatroom-receipts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let users = Arc::new(Accounts::built_in());
        let mailboxes = Mailboxes::open(&dir, 10, usize::MAX, users, SyncPolicy::Always).unwrap();
        let mut mailbox = mailboxes.lock("似末").unwrap();
        let frames: Vec<u8> = ["one", "two", "three"]
            .iter()
            .flat_map(|text| chat_frame("1001", text))
            .collect();
        assert_eq!(mailbox.accept(&frames, &mut Vec::new()).kept, 3);
        // The last two spoiled by hand: they name nobody.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(mailbox.path())
            .unwrap();
        for record in [1, 2] {
            file.write_all_at(&[0xFF; 4], 24 + record * 148 + 8)
                .unwrap();
        }
        let mut window = Window::default();
        let mut out = Vec::new();
        assert_eq!(fill_window(&mut mailbox, &mut window, &mut out).unwrap(), 1);
        assert_eq!(out.len(), MESSAGE_FRAME_LEN, "only the message");
        assert_eq!(window.unacknowledged.len(), 1);
        assert_eq!(
            window.unacknowledged[0].records, 3,
            "it stands for the two after it"
        );
        assert_eq!(window.records, 3, "none of the three waits any more");
        // All spoiled, nothing written before them: they leave the store at once.
        drop(mailbox);
        let mut mailbox = mailboxes.lock("1001").unwrap();
        let mut to_1001 = chat_frame("1002", "x");
        to_1001[FEEDBACK_LEN + NAME_LEN..FEEDBACK_LEN + 2 * NAME_LEN]
            .copy_from_slice(Name::new("1001").unwrap().field());
        mailbox.accept(&to_1001, &mut Vec::new());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(mailbox.path())
            .unwrap();
        file.write_all_at(&[0xFF; 4], 24 + 8).unwrap();
        let mut window = Window::default();
        assert_eq!(fill_window(&mut mailbox, &mut window, &mut out).unwrap(), 0);
        assert!(window.unacknowledged.is_empty());
        assert!(
            mailbox.is_empty(),
            "acknowledged at once: no message waits on it"
        );
        drop(mailbox);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
