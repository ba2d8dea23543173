//! The receipts extension (types 4 to 8, docs/PROTOCOL.md §3): acknowledged delivery,
//! message ids that carry their send time, and receipts to the sender.
//!
//! Flag 1 on an echo says that a message was written to the receiver's socket, which is
//! all the original could promise: a receiver that hangs, or whose connection breaks
//! after the kernel took the bytes, loses everything in its socket buffer. A client that
//! sends `HEAD{4, 0}` (RECEIPTS) gets more, on that connection:
//!
//! - every CHAT frame it would get comes as a MESSAGE frame, with the message's **id**:
//!   the microsecond the server accepted it, unique and increasing server-wide
//!   ([`MessageIds`]), so a client shows when a message was *sent* and recognises one it
//!   has seen (delivery is at least once);
//! - it **acknowledges** what it has, cumulatively (`HEAD{6, 8}` + the highest id, as in
//!   XMPP's stream management, XEP-0198). Until then each private delivery waits in its
//!   connection's unacknowledged queue ([`Receipts`]), at most [`MAX_UNACKED`] of them:
//!   one more closes the connection as a slow receiver (a full queue ends the session
//!   rather than dropping the oldest, the lesson ejabberd learned). Whatever is
//!   unacknowledged when the connection ends, however it ends, goes back into the
//!   receiver's mailbox before the user goes offline, with its ids: MQTT's QoS 1,
//!   at-least-once;
//! - its **senders** hear of it: an acknowledgement sends each online receipts sender
//!   a RECEIVED frame (XEP-0184's delivery receipt, made cumulative), and a READ frame
//!   the reader sends is forwarded to the sender (XEP-0333's displayed marker: "seen up
//!   to here", only for what a person has seen, never stored).
//!
//! The plain session loop does not change: `Session::handle` sends types 4, 6 and 8 to
//! [`request`] here, and the places a CHAT frame goes out ask the connection whether
//! receipts are on. A plain connection's frames are the original's, byte for byte. What
//! is left out, and why: receipts are not stored for an offline sender (this version
//! keeps no state for them), and a server crash (SIGKILL, power) loses what was
//! unacknowledged in memory; a clean stop (SIGTERM) does not.

use crate::mailbox::Mailbox;
use crate::mailbox_format::Record;
use crate::online::Connection;
use crate::outbox::Outbox;
use crate::protocol::{
    self, ACK_BODY_LEN, CHAT_BODY_LEN, CHAT_FRAME_LEN, FEEDBACK_LEN, Feedback, Flag, ID_LEN, Kind,
    MAX_UNACKED, MESSAGE_BODY_LEN, NAME_LEN, Name, RECEIPT_BODY_LEN,
};
use crate::shared::SharedState;
use byteorder::{ByteOrder, LittleEndian};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a client acknowledges, at most, after a burst of deliveries (what
/// `chat-client` and `chat-bench relay --receipts` do): one ACK covers everything before
/// it, so a busy conversation costs the server a few ACKs a second, and a message is
/// still let go of within a moment of reaching the screen.
pub const ACK_INTERVAL: Duration = Duration::from_millis(100);
/// Unacknowledged deliveries that make a client acknowledge at once, interval or not:
/// the server closes a connection that would hold more than `MAX_UNACKED` of them as a
/// slow receiver, and a fast sender can deliver that many within the interval.
pub const ACK_AT_ONCE: usize = MAX_UNACKED / 2;
// At 0 a client would acknowledge nothing; at the bound its ACK would race the next
// delivery, which closes the connection: half the bound leaves an ACK time to arrive.
const _: () = assert!(0 < ACK_AT_ONCE && ACK_AT_ONCE < MAX_UNACKED);

/// A whole RECEIVED or READ frame: `FEEDBACK{7 or 8, 28, 1}`, the id and a name.
pub const RECEIPT_FRAME_LEN: usize = FEEDBACK_LEN + RECEIPT_BODY_LEN;

/// The server's message ids: microseconds since the Unix epoch, made strictly
/// increasing (`max(now, last + 1)`), so unique, and at startup above every id in the
/// mailboxes.
#[derive(Debug)]
pub struct MessageIds {
    last: AtomicU64,
}

impl MessageIds {
    /// Ids that start above `highest`.
    pub fn above(highest: u64) -> MessageIds {
        MessageIds {
            last: AtomicU64::new(highest),
        }
    }

    /// A fresh id: now, or one above the last id if the clock has not moved on (or went
    /// back).
    pub fn next(&self) -> u64 {
        let now = now_micros();
        let previous = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1))
            })
            .expect("the update always gives a value");
        now.max(previous + 1)
    }

    /// `count` fresh ids in a row, from one reading of the clock: the first of them
    /// (the others follow it, one apart). For a batch of deliveries, whose ids differ
    /// by microseconds anyway.
    pub fn next_run(&self, count: u64) -> u64 {
        let now = now_micros();
        let previous = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1) + count.saturating_sub(1))
            })
            .expect("the update always gives a value");
        now.max(previous + 1)
    }

    /// The last id given out (or the floor it started above).
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }
}

/// Microseconds since the Unix epoch (0 for a clock set before 1970).
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// A receipts connection's state: its unacknowledged deliveries. Made when the client
/// turns receipts on ([`Connection::turn_on_receipts`]); a plain connection has none.
#[derive(Debug, Default)]
pub struct Receipts {
    state: Mutex<Unacked>,
}

#[derive(Debug, Default)]
struct Unacked {
    /// Private deliveries not yet acknowledged, in the order written: ids increase.
    queue: VecDeque<Record>,
    /// The highest id delivered on this connection (an ACK above it is refused).
    highest_delivered: u64,
    /// The last acknowledged id (an ACK below it is refused).
    last_ack: u64,
    /// The stored messages the login handed over, still in the mailbox until an ACK
    /// covers the last of them.
    stored: Option<StoredBatch>,
}

/// Stored messages delivered at a receipts login: they stay in the mailbox until the
/// client acknowledges them, so a connection lost before that gets them again.
#[derive(Debug)]
pub struct StoredBatch {
    /// The last stored message's id.
    pub until: u64,
    /// Each message's id and sender, for the receipts.
    pub senders: Vec<(u64, Name)>,
    /// Which file they came from (see `Mailbox::forget_delivered`).
    pub delivered: crate::mailbox::Delivered,
}

/// What an acknowledgement covered.
#[derive(Debug, Default)]
pub struct Acked {
    /// For each sender of a covered message, the highest covered id of theirs.
    pub receipts: Vec<(Name, u64)>,
    /// The stored batch, if the acknowledgement covered all of it.
    pub stored: Option<StoredBatch>,
}

/// A receipts connection has more unacknowledged deliveries than [`MAX_UNACKED`].
#[derive(Debug)]
pub struct SlowReceiver;

impl Receipts {
    /// Turns the CHAT `frames` for this connection (whole frames, flag 1) into MESSAGE
    /// frames, each with a fresh id from `ids` (pushed onto `given`), appended to
    /// `out`, and keeps them as unacknowledged. Called under the receiver's mailbox lock,
    /// which orders the deliveries: their ids increase in the order they are written.
    /// [`SlowReceiver`] if the queue is now over its bound: they are in it all the
    /// same, for the caller to store with the rest.
    pub fn deliver(
        &self,
        frames: &[u8],
        ids: &MessageIds,
        given: &mut Vec<u64>,
        out: &mut Vec<u8>,
    ) -> Result<(), SlowReceiver> {
        let mut state = self.state.lock();
        let count = frames.len() / CHAT_FRAME_LEN;
        let first = ids.next_run(count as u64);
        for (id, frame) in (first..).zip(frames.chunks_exact(CHAT_FRAME_LEN)) {
            let body: &[u8; CHAT_BODY_LEN] = frame[FEEDBACK_LEN..].try_into().expect("a body");
            message_frame(Flag::Ok.to_wire(), id, body, out);
            state.queue.push_back((id, *body));
            state.highest_delivered = id;
            given.push(id);
        }
        if state.queue.len() > MAX_UNACKED {
            return Err(SlowReceiver);
        }
        Ok(())
    }

    /// Notes a delivery that is not kept (a room message, or a stored one handed over at
    /// login): an acknowledgement may cover it.
    pub fn note_delivered(&self, id: u64) {
        let mut state = self.state.lock();
        state.highest_delivered = state.highest_delivered.max(id);
    }

    /// Remembers the stored messages a login handed over.
    pub fn keep_stored(&self, batch: StoredBatch) {
        let mut state = self.state.lock();
        state.highest_delivered = state.highest_delivered.max(batch.until);
        state.stored = Some(batch);
    }

    /// Everything unacknowledged, taken out (to be stored): the stored batch is forgotten
    /// too, as it is still in the mailbox.
    pub fn take_unacknowledged(&self) -> Vec<Record> {
        let mut state = self.state.lock();
        state.stored = None;
        state.queue.drain(..).collect()
    }

    /// An ACK of `id`: drops what it covers. `None` if it is above what was delivered or
    /// below the last ACK: nothing changes.
    pub fn acknowledge(&self, id: u64) -> Option<Acked> {
        let mut state = self.state.lock();
        if id > state.highest_delivered || id < state.last_ack {
            return None;
        }
        state.last_ack = id;
        let mut acked = Acked::default();
        // The covered deliveries are a prefix of the queue (ids increase): read in place,
        // then dropped at once.
        let covered = state
            .queue
            .partition_point(|(message_id, _)| *message_id <= id);
        for (message_id, body) in state.queue.range(..covered) {
            note_receipt_from(&mut acked.receipts, sender_field(body), *message_id);
        }
        state.queue.drain(..covered);
        if state.stored.as_ref().is_some_and(|batch| batch.until <= id) {
            let batch = state.stored.take().expect("just checked");
            for (message_id, sender) in &batch.senders {
                note_receipt(&mut acked.receipts, *sender, *message_id);
            }
            acked.stored = Some(batch);
        }
        Some(acked)
    }
}

/// [`note_receipt`] for the sender field of a queued message. The field is first
/// compared, as it stands, with the newest entry's name: with one sender (a
/// conversation, the usual case) a name is decoded once per ACK, not once per message.
fn note_receipt_from(receipts: &mut Vec<(Name, u64)>, field: &[u8; NAME_LEN], id: u64) {
    match receipts.last_mut() {
        Some((name, highest)) if name.field() == field => *highest = (*highest).max(id),
        _ => note_receipt(receipts, Name::from_field(field), id),
    }
}

/// Records that `sender`'s messages are covered up to `id` (the highest wins).
fn note_receipt(receipts: &mut Vec<(Name, u64)>, sender: Name, id: u64) {
    match receipts.iter_mut().find(|(name, _)| *name == sender) {
        Some((_, highest)) => *highest = (*highest).max(id),
        None => receipts.push((sender, id)),
    }
}

/// The sender field of a CHAT body, as it stands.
fn sender_field(body: &[u8; CHAT_BODY_LEN]) -> &[u8; NAME_LEN] {
    body[..NAME_LEN]
        .try_into()
        .expect("a CHAT body starts with the sender's 20 bytes")
}

/// Appends a MESSAGE frame: `FEEDBACK{5, 148, flag}`, the id, the CHAT body.
pub fn message_frame(flag: i32, id: u64, body: &[u8; CHAT_BODY_LEN], out: &mut Vec<u8>) {
    let mut feedback = Feedback::new(Kind::Message, MESSAGE_BODY_LEN, Flag::Ok);
    feedback.flag = flag;
    out.extend_from_slice(&feedback.to_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(body);
}

/// A RECEIVED or READ frame: `FEEDBACK{kind, 28, 1}`, the id and `name`.
pub fn receipt_frame(kind: Kind, id: u64, name: &Name) -> [u8; RECEIPT_FRAME_LEN] {
    let mut frame = [0; RECEIPT_FRAME_LEN];
    frame[..FEEDBACK_LEN]
        .copy_from_slice(&Feedback::new(kind, RECEIPT_BODY_LEN, Flag::Ok).to_bytes());
    frame[FEEDBACK_LEN..FEEDBACK_LEN + ID_LEN].copy_from_slice(&id.to_le_bytes());
    frame[FEEDBACK_LEN + ID_LEN..].copy_from_slice(name.field());
    frame
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
            message_frame(feedback.flag, id, body, out);
        } else {
            out.extend_from_slice(frame);
        }
        at += len;
    }
}

/// The hook `Session::handle` calls for RECEIPTS (4), ACK (6) and READ (8): reads the
/// body and acts. `user` is the logged-in name, if any.
pub fn request(
    shared: &SharedState,
    connection: &Connection,
    user: Option<&str>,
    outbox: &mut Outbox,
    kind: Kind,
    body_len: usize,
    input: &mut impl Read,
) -> io::Result<()> {
    let expected = match kind {
        Kind::Receipts => 0,
        Kind::Ack => ACK_BODY_LEN,
        _ => RECEIPT_BODY_LEN,
    };
    if body_len != expected {
        protocol::skip(input, body_len)?;
        outbox.reply(&Feedback::new(kind, 0, Flag::Malformed).to_bytes());
        return Ok(());
    }
    let mut body = [0; RECEIPT_BODY_LEN];
    input.read_exact(&mut body[..expected])?;
    let id = LittleEndian::read_u64(&body[..ID_LEN]);
    match kind {
        Kind::Receipts => {
            // Replies to earlier requests go out as they were asked for; from here on,
            // CHAT frames are MESSAGE frames.
            outbox.write_out(shared, connection)?;
            connection.turn_on_receipts();
            outbox.reply(&Feedback::new(Kind::Receipts, 0, Flag::Ok).to_bytes());
        }
        Kind::Ack => acknowledge(shared, connection, user, outbox, id),
        _ => {
            let name = Name::from_field(body[ID_LEN..].try_into().expect("20 bytes"));
            read(shared, user, outbox, id, &name);
        }
    }
    Ok(())
}

/// ACK: drops what it covers from the queue, empties a stored batch it covers, and tells
/// each online receipts sender how far their messages got.
fn acknowledge(
    shared: &SharedState,
    connection: &Connection,
    user: Option<&str>,
    outbox: &mut Outbox,
    id: u64,
) {
    let acked = connection
        .receipts()
        .and_then(|receipts| receipts.acknowledge(id));
    let (Some(acked), Some(user)) = (acked, user) else {
        outbox.reply(&Feedback::new(Kind::Ack, 0, Flag::Malformed).to_bytes());
        return;
    };
    if let Some(batch) = &acked.stored
        && let Some(mut mailbox) = shared.mailboxes.lock(user)
    {
        mailbox.forget_delivered(&batch.delivered);
    }
    let me = Name::new(user).expect("account names fit the name field");
    for (sender, id) in acked.receipts {
        if let Some(sender) = sender.as_str() {
            send_receipt(shared, sender, Kind::Received, id, &me);
        }
    }
}

/// READ: forwarded to the sender it names, if online with receipts on.
fn read(shared: &SharedState, user: Option<&str>, outbox: &mut Outbox, id: u64, sender: &Name) {
    let Some(user) = user else {
        outbox.reply(&Feedback::new(Kind::Read, 0, Flag::NotLoggedIn).to_bytes());
        return;
    };
    let Some(sender) = sender
        .as_str()
        .filter(|name| shared.accounts.contains(name))
    else {
        outbox.reply(&Feedback::new(Kind::Read, 0, Flag::Rejected).to_bytes());
        return;
    };
    let me = Name::new(user).expect("account names fit the name field");
    send_receipt(shared, sender, Kind::Read, id, &me);
}

/// Sends a RECEIVED or READ frame to `to`, if online with receipts on; a plain or
/// offline sender gets nothing (receipts are not stored).
fn send_receipt(shared: &SharedState, to: &str, kind: Kind, id: u64, about: &Name) {
    if let Some(connection) = shared.online.get(to)
        && connection.receipts().is_some()
    {
        // A failure closes that connection; the receipt is only news, not a message.
        let _ = connection.send(&receipt_frame(kind, id, about));
    }
}

/// Stores what a receipts connection had not acknowledged in `mailbox` (its user's),
/// ahead of anything stored later: called under that mailbox's lock when the
/// connection ends, or by whoever first finds it dead. Never refused by the limits; a
/// failure is logged with the number lost. False if it failed.
pub fn store_unacknowledged(mailbox: &mut Mailbox<'_>, connection: &Connection) -> bool {
    let Some(receipts) = connection.receipts() else {
        return true;
    };
    let records = receipts.take_unacknowledged();
    if records.is_empty() {
        return true;
    }
    match mailbox.append_unacknowledged(&records) {
        Ok(()) => {
            log::info!(
                "{}: {} unacknowledged messages stored for the next login",
                connection.peer(),
                records.len()
            );
            true
        }
        Err(error) => {
            log::error!(
                "{}: {} unacknowledged messages LOST: cannot store them ({}): {error}",
                mailbox.path().display(),
                records.len(),
                crate::mailbox::storage_problem(&error)
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChatMessage, MESSAGE_FRAME_LEN, MessageText};

    fn chat_frame(sender: &str, text: &str) -> [u8; CHAT_FRAME_LEN] {
        ChatMessage {
            sender: Name::new(sender).unwrap(),
            receiver: Name::new("似末").unwrap(),
            text: MessageText::new(text).unwrap(),
        }
        .to_frame(Flag::Ok)
    }

    /// Each receipt an ACK makes: the sender's name and the id.
    fn receipt_names(acked: &Acked) -> Vec<(String, u64)> {
        acked
            .receipts
            .iter()
            .map(|(name, id)| (name.to_lossy(), *id))
            .collect()
    }

    #[test]
    fn ids_are_unique_increasing_and_above_the_floor() {
        let ids = MessageIds::above(u64::MAX / 2);
        let first = ids.next();
        assert_eq!(first, u64::MAX / 2 + 1, "a floor in the future wins");
        assert_eq!(ids.next(), first + 1);
        let now = MessageIds::above(0).next();
        assert!(
            now > 1_700_000_000_000_000,
            "microseconds since 1970: {now}"
        );
    }

    #[test]
    fn a_run_of_ids_is_reserved_with_one_reading_of_the_clock() {
        let ids = MessageIds::above(u64::MAX / 2);
        let first = ids.next_run(3);
        assert_eq!(first, u64::MAX / 2 + 1);
        assert_eq!(ids.last(), first + 2, "three ids taken");
        assert_eq!(ids.next(), first + 3);
    }

    #[test]
    fn an_ack_is_cumulative_and_names_the_senders() {
        let receipts = Receipts::default();
        let ids = MessageIds::above(0);
        let (mut given, mut out) = (Vec::new(), Vec::new());
        let frames = [
            chat_frame("1001", "a"),
            chat_frame("1002", "b"),
            chat_frame("1001", "c"),
        ]
        .concat();
        receipts
            .deliver(&frames, &ids, &mut given, &mut out)
            .unwrap();
        assert_eq!(out.len(), 3 * MESSAGE_FRAME_LEN);
        assert!(
            receipts.acknowledge(given[2] + 1).is_none(),
            "beyond what was delivered"
        );
        let acked = receipts.acknowledge(given[1]).unwrap();
        let names = receipt_names(&acked);
        assert_eq!(
            names,
            [
                ("1001".to_string(), given[0]),
                ("1002".to_string(), given[1])
            ]
        );
        assert!(receipts.acknowledge(given[0]).is_none(), "going backwards");
        let left = receipts.take_unacknowledged();
        assert_eq!(left.len(), 1, "the third is still unacknowledged");
        assert_eq!(left[0].0, given[2]);
    }

    #[test]
    fn an_ack_gives_each_sender_the_highest_id_it_covers() {
        let receipts = Receipts::default();
        let ids = MessageIds::above(0);
        let (mut given, mut out) = (Vec::new(), Vec::new());
        // Runs of one sender and senders taking turns, as an ACK finds them.
        let senders = ["1001", "1001", "1002", "1001", "1002", "1002"];
        let frames: Vec<u8> = senders.iter().flat_map(|s| chat_frame(s, "x")).collect();
        receipts
            .deliver(&frames, &ids, &mut given, &mut out)
            .unwrap();
        let acked = receipts.acknowledge(given[5]).unwrap();
        let names = receipt_names(&acked);
        assert_eq!(
            names,
            [
                ("1001".to_string(), given[3]),
                ("1002".to_string(), given[5])
            ],
            "one RECEIVED per sender, with the last of its ids covered"
        );
        assert!(
            receipts.take_unacknowledged().is_empty(),
            "the ACK covered the whole queue"
        );
    }

    #[test]
    fn a_batch_takes_as_many_ids_as_it_has_messages() {
        let receipts = Receipts::default();
        let ids = MessageIds::above(0);
        let (mut given, mut out) = (Vec::new(), Vec::new());
        let frames = [chat_frame("1001", "a"), chat_frame("1001", "b")].concat();
        receipts
            .deliver(&frames, &ids, &mut given, &mut out)
            .unwrap();
        assert_eq!(given.len(), 2);
        assert_eq!(given[1], given[0] + 1, "a run of ids, one apart");
        assert_eq!(ids.last(), given[1], "the run reserved exactly its two ids");
        assert!(ids.next() > given[1], "the next id is above the batch's");
    }

    #[test]
    fn an_ack_that_covers_the_stored_batch_lets_go_of_it_with_receipts() {
        let receipts = Receipts::default();
        let ids = MessageIds::above(0);
        let (first, last) = (ids.next(), ids.next());
        let sender = Name::new("1001").unwrap();
        receipts.keep_stored(StoredBatch {
            until: last,
            senders: vec![(first, sender), (last, sender)],
            delivered: crate::mailbox::Delivered::default(),
        });
        let partly = receipts
            .acknowledge(first)
            .expect("within what was delivered");
        assert!(
            partly.stored.is_none(),
            "the batch stays until its last message"
        );
        assert!(partly.receipts.is_empty());
        let acked = receipts
            .acknowledge(last)
            .expect("the batch's last id was delivered");
        assert!(acked.stored.is_some(), "the ACK covers the whole batch");
        assert_eq!(acked.receipts, [(sender, last)]);
        let again = receipts
            .acknowledge(last)
            .expect("the same ACK again is no error");
        assert!(
            again.stored.is_none() && again.receipts.is_empty(),
            "nothing twice"
        );
    }

    #[test]
    fn an_ack_may_cover_a_delivery_that_is_not_kept() {
        let receipts = Receipts::default();
        let ids = MessageIds::above(0);
        let room_message = ids.next();
        receipts.note_delivered(room_message);
        let acked = receipts
            .acknowledge(room_message)
            .expect("an ACK of a room message's id is not beyond what was delivered");
        assert!(acked.receipts.is_empty(), "room messages get no receipts");
    }

    #[test]
    fn a_receipt_frame_is_a_feedback_and_its_28_byte_body() {
        let frame = receipt_frame(Kind::Received, 7, &Name::new("玛卡巴卡").unwrap());
        let feedback = Feedback::decode(frame[..FEEDBACK_LEN].try_into().unwrap());
        assert_eq!(
            (feedback.kind, feedback.length, feedback.flag),
            (Kind::Received, RECEIPT_BODY_LEN as i32, 1)
        );
        assert_eq!(frame.len(), FEEDBACK_LEN + RECEIPT_BODY_LEN);
        assert_eq!(LittleEndian::read_u64(&frame[FEEDBACK_LEN..]), 7);
        assert_eq!(
            &frame[FEEDBACK_LEN + ID_LEN..],
            Name::new("玛卡巴卡").unwrap().field()
        );
    }

    #[test]
    fn the_queue_is_bounded() {
        let receipts = Receipts::default();
        let ids = MessageIds::above(0);
        let frames = chat_frame("1001", "x").repeat(MAX_UNACKED);
        let (mut given, mut out) = (Vec::new(), Vec::new());
        receipts
            .deliver(&frames, &ids, &mut given, &mut out)
            .unwrap();
        let one_more = chat_frame("1001", "y");
        assert!(
            receipts
                .deliver(&one_more, &ids, &mut given, &mut out)
                .is_err()
        );
        assert_eq!(
            receipts.take_unacknowledged().len(),
            MAX_UNACKED + 1,
            "nothing dropped"
        );
    }

    #[test]
    fn replies_become_message_frames_with_their_ids() {
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
            "a refused echo has id 0"
        );
        assert_eq!(Feedback::decode(refused[..12].try_into().unwrap()).flag, -1);
    }

    #[test]
    fn an_echo_without_an_id_leaves_the_next_echos_id_to_it() {
        // A refused message (no id) and then a delivered one (id 78).
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
}
