//! The receipts state (docs/PROTOCOL.md §3): on the receiving side, which deliveries
//! were shown (a delivery that comes again after a reconnect is shown once: the ids shown
//! are remembered while the client runs, not across runs), what to
//! acknowledge and when (after a burst, at most every 100 ms, at once when 128 wait;
//! never past a long message whose parts are still coming), and whom to tell that their
//! messages were read; on the sending side, how far each correspondent has got with our
//! messages: the one mark per message that moves forward (sent or stored for later,
//! delivered to the client, read).

pub use chatroom::protocol::{ACK_AT_ONCE, ACK_INTERVAL};
use chatroom::protocol::{NAME_LEN, Name};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

/// Where one of our messages has got, in the order it moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// Echoed 1: written to the receiver's connection (or, on a plain server, accepted).
    Sent,
    /// Echoed 0: kept in the receiver's store, delivered later.
    Stored,
    /// RECEIVED: the receiver's client has it.
    Delivered,
    /// READ: the receiver has seen it.
    Read,
}

/// What the receiving side has shown and acknowledged.
#[derive(Default)]
pub struct Acks {
    /// The ids of the deliveries shown in this run (over every connection).
    shown: HashSet<u64>,
    /// The highest id delivered on this connection and taken care of (shown, or shown
    /// before), and the highest acknowledged.
    pub handled_up_to: u64,
    acked_up_to: u64,
    /// The ids delivered on this connection and not acknowledged yet.
    handled: BTreeSet<u64>,
    /// Deliveries taken care of since the last ACK, and when it went.
    unacked: usize,
    last_ack: Option<Instant>,
    /// The client is leaving and sends no more ACKs.
    pub closed: bool,
    /// For each sender (by their name's field), the highest id of theirs shown since the
    /// last READ to them.
    unread: BTreeMap<[u8; NAME_LEN], u64>,
}

impl Acks {
    /// A new connection: ids are acknowledged per connection, from nothing.
    pub fn reconnected(&mut self) {
        self.handled_up_to = 0;
        self.acked_up_to = 0;
        self.handled.clear();
        self.unacked = 0;
        self.last_ack = None;
    }

    /// Takes a delivery: whether it is new (to be shown). Either way it is acknowledged.
    pub fn delivered(&mut self, id: u64) -> bool {
        self.handled_up_to = self.handled_up_to.max(id);
        self.handled.insert(id);
        self.unacked += 1;
        self.shown.insert(id)
    }

    /// Notes that `sender`'s message `id` was shown, for the next READ to them.
    pub fn shown_from(&mut self, sender: &Name, id: u64) {
        let unread = self.unread.entry(*sender.field()).or_default();
        *unread = (*unread).max(id);
    }

    /// The highest id an ACK may cover: the highest delivery taken care of, but nothing
    /// from a part held back (`held`, the lowest such id) onwards.
    fn ackable(&self, held: Option<u64>) -> u64 {
        match held {
            None => self.handled_up_to,
            Some(held) => self
                .handled
                .range(..held)
                .next_back()
                .copied()
                .unwrap_or(self.acked_up_to),
        }
    }

    /// Whether something taken care of is not acknowledged yet.
    pub fn pending(&self, held: Option<u64>) -> bool {
        self.ackable(held) > self.acked_up_to && !self.closed
    }

    /// When the pending ACK may go out, if one is pending and nothing else comes.
    pub fn deadline(&self, held: Option<u64>) -> Option<Instant> {
        self.pending(held).then(|| {
            self.last_ack
                .map_or_else(Instant::now, |last| last + ACK_INTERVAL)
        })
    }

    /// The id to acknowledge now, if an ACK is due: at the end of a burst once
    /// `ACK_INTERVAL` has passed since the last one, or at once when `ACK_AT_ONCE` wait.
    pub fn take(&mut self, now: Instant, burst_over: bool, held: Option<u64>) -> Option<u64> {
        let interval_over = self
            .last_ack
            .is_none_or(|last| now.duration_since(last) >= ACK_INTERVAL);
        let due = self.unacked >= ACK_AT_ONCE || (burst_over && interval_over);
        if !self.pending(held) || !due {
            return None;
        }
        self.acked_up_to = self.ackable(held);
        self.handled = self.handled.split_off(&(self.acked_up_to + 1));
        self.unacked = 0;
        self.last_ack = Some(now);
        Some(self.acked_up_to)
    }

    /// The ACK to send now, whatever the interval, if anything is unacknowledged.
    pub fn take_now(&mut self, now: Instant, held: Option<u64>) -> Option<u64> {
        self.last_ack = None;
        self.unacked = ACK_AT_ONCE;
        self.take(now, true, held)
    }

    /// The last ACK, if anything is unacknowledged; no more after it.
    pub fn close(&mut self, held: Option<u64>) -> Option<u64> {
        let last = self.pending(held).then(|| self.ackable(held));
        self.closed = true;
        last
    }

    /// The READs due, one per sender: what was shown from them since the last.
    pub fn take_reads(&mut self) -> Vec<(Name, u64)> {
        std::mem::take(&mut self.unread)
            .into_iter()
            .map(|(sender, id)| (Name::from_field(&sender), id))
            .collect()
    }
}

/// How far our messages to each correspondent have got, as the screen shows it.
#[derive(Default)]
pub struct Progress {
    /// Per receiver: the highest id RECEIVED and READ cover, as far as shown.
    by_receiver: HashMap<Vec<u8>, (u64, u64)>,
}

impl Progress {
    /// A receipt for our messages to `name` up to `id`: the mark it moves them to, if it
    /// moves any forward (a read message has been received too).
    pub fn receipt(&mut self, name: &[u8], read: bool, id: u64) -> Option<Mark> {
        let (received, read_up_to) = self.by_receiver.entry(name.to_vec()).or_default();
        if read && id > *read_up_to {
            *read_up_to = id;
            *received = (*received).max(id);
            return Some(Mark::Read);
        }
        if !read && id > *received {
            *received = id;
            return Some(Mark::Delivered);
        }
        None
    }

    /// The mark receipts so far give our message `id` to `name`, if any.
    pub fn mark_of(&self, name: &[u8], id: u64) -> Option<Mark> {
        if id == 0 {
            return None; // no id: no receipt can cover it
        }
        let (received, read) = self.by_receiver.get(name).copied().unwrap_or_default();
        if id <= read {
            Some(Mark::Read)
        } else if id <= received {
            Some(Mark::Delivered)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_shown_once_acknowledged_in_batches_and_read_per_sender() {
        let mut acks = Acks::default();
        let start = Instant::now();
        assert!(acks.delivered(10));
        assert!(!acks.delivered(10), "the same id is shown once");
        assert_eq!(
            acks.take(start, false, None),
            None,
            "not while a burst goes on"
        );
        assert_eq!(acks.take(start, true, None), Some(10));
        acks.delivered(20);
        acks.delivered(30);
        assert_eq!(
            acks.take(start + ACK_INTERVAL / 2, true, None),
            None,
            "at most one ACK per interval"
        );
        assert_eq!(acks.deadline(None), Some(start + ACK_INTERVAL));
        assert_eq!(acks.take(start + ACK_INTERVAL, true, None), Some(30));
        assert_eq!(acks.deadline(None), None);
        acks.shown_from(&Name::new("1002").unwrap(), 10);
        acks.shown_from(&Name::new("1003").unwrap(), 20);
        acks.shown_from(&Name::new("1002").unwrap(), 5);
        let reads: Vec<(String, u64)> = acks
            .take_reads()
            .into_iter()
            .map(|(name, id)| (name.to_lossy(), id))
            .collect();
        assert_eq!(reads, [("1002".to_string(), 10), ("1003".to_string(), 20)]);
        assert!(acks.take_reads().is_empty());
    }

    #[test]
    fn many_unacknowledged_deliveries_are_acknowledged_at_once() {
        let mut acks = Acks::default();
        let now = Instant::now();
        acks.delivered(1);
        assert_eq!(acks.take(now, true, None), Some(1));
        for id in 2..=ACK_AT_ONCE as u64 + 1 {
            acks.delivered(id);
        }
        assert_eq!(acks.take(now, false, None), Some(ACK_AT_ONCE as u64 + 1));
    }

    #[test]
    fn an_ack_never_covers_a_part_held_back_and_a_new_connection_starts_afresh() {
        let mut acks = Acks::default();
        let now = Instant::now();
        for id in [4, 5, 6] {
            acks.delivered(id);
        }
        assert_eq!(acks.take(now, true, Some(5)), Some(4), "5 is held back");
        assert!(!acks.pending(Some(5)));
        assert!(acks.pending(None), "once shown, 5 and 6 are due");
        acks.delivered(8);
        assert_eq!(
            acks.take(now + ACK_INTERVAL, true, Some(8)),
            Some(6),
            "up to the last before 8"
        );
        acks.reconnected();
        assert!(!acks.delivered(5), "delivered again: not shown again");
        assert_eq!(
            acks.take(now + 2 * ACK_INTERVAL, true, None),
            Some(5),
            "but acknowledged"
        );
        assert_eq!(acks.close(None), None);
        assert!(acks.closed);
    }

    #[test]
    fn marks_only_move_forward_and_read_means_delivered_too() {
        let mut progress = Progress::default();
        assert_eq!(progress.receipt(b"1002", false, 10), Some(Mark::Delivered));
        assert_eq!(progress.receipt(b"1002", false, 10), None);
        assert_eq!(progress.receipt(b"1002", true, 20), Some(Mark::Read));
        assert_eq!(
            progress.receipt(b"1002", false, 15),
            None,
            "nothing goes back"
        );
        assert_eq!(progress.mark_of(b"1002", 20), Some(Mark::Read));
        assert_eq!(progress.mark_of(b"1002", 21), None);
        assert_eq!(progress.mark_of(b"1003", 1), None);
        assert_eq!(
            progress.mark_of(b"1002", 0),
            None,
            "a plain server's message"
        );
    }
}
