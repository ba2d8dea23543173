//! Long messages, sent whole. The protocol's text field holds 100 bytes (33 Chinese
//! characters), so a longer message goes as several CHAT messages, in order, split at
//! character boundaries. Every part but the last ends with U+2060 WORD JOINER
//! ([`CONTINUED`]): invisible to a client that does not know it (the original's shows
//! the parts as separate messages, unmarked), and to this client the sign that the next
//! message from the same sender, to the same place, continues this one. The receiver
//! holds the parts and shows them as one message, with the time of the first; parts
//! whose end never comes are shown after [`PART_WAIT`], marked as incomplete.

use chatroom::protocol::TEXT_LEN;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The mark at the end of a part that another part follows (docs/PROTOCOL.md §3).
pub const CONTINUED: char = '\u{2060}';
/// [`CONTINUED`] as bytes (3 in UTF-8).
const CONTINUED_BYTES: &[u8] = "\u{2060}".as_bytes();
/// The most parts one message may take: 30 parts hold 2,913 bytes of text (29 parts of
/// 97 bytes and a last one of 100; 961 Chinese characters). A longer line is a paste
/// gone wrong more often than a message.
pub const MAX_PARTS: usize = 30;
/// How long the receiver waits for the rest of a message whose parts stopped coming.
pub const PART_WAIT: Duration = Duration::from_secs(10);

/// `text` cut into parts of at most [`TEXT_LEN`] bytes each, marker included, at
/// character boundaries; one part if it fits.
/// A [`CONTINUED`] typed at the very end is dropped: it would hold the message back.
pub fn split(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim_end_matches(CONTINUED);
    while rest.len() > TEXT_LEN {
        let mut end = TEXT_LEN - CONTINUED_BYTES.len();
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (part, after) = rest.split_at(end);
        parts.push(format!("{part}{CONTINUED}"));
        rest = after;
    }
    parts.push(rest.to_string());
    parts
}

/// The most bytes a message may hold so that it fits in [`MAX_PARTS`] parts.
pub fn max_text_len() -> usize {
    (MAX_PARTS - 1) * (TEXT_LEN - CONTINUED_BYTES.len()) + TEXT_LEN
}

/// Where a message was said: who sent it, and whether to the room.
type Conversation = (Vec<u8>, bool);

/// Parts received whose last part has not come yet.
struct Held {
    text: Vec<u8>,
    /// The first part's id (receipts), for its time and for the ACK that must not
    /// cover it yet.
    first_id: Option<u64>,
    last_id: Option<u64>,
    parts: usize,
    since: Instant,
}

/// A message put together from its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct Whole {
    /// The sender's name, as it came.
    pub sender: Vec<u8>,
    /// Whether it was said to the room.
    pub room: bool,
    /// The text, all parts joined, markers removed.
    pub text: Vec<u8>,
    /// The first part's id, if the connection has ids.
    pub first_id: Option<u64>,
    /// The last part's id: a READ of it covers them all.
    pub last_id: Option<u64>,
    /// How many parts it came in.
    pub parts: usize,
    /// False when the rest never came ([`PART_WAIT`]) or the client is leaving.
    pub complete: bool,
}

/// The parts held per conversation, until their last part comes.
#[derive(Default)]
pub struct Joiner {
    held: BTreeMap<Conversation, Held>,
}

impl Joiner {
    /// Takes one incoming message: `None` while it is a part that more parts follow,
    /// else the whole message (this one alone, or with the parts before it).
    pub fn take(
        &mut self,
        sender: &[u8],
        room: bool,
        text: &[u8],
        id: Option<u64>,
        now: Instant,
    ) -> Option<Whole> {
        let key = (sender.to_vec(), room);
        let (body, continued) = match text.strip_suffix(CONTINUED_BYTES) {
            Some(body) => (body, true),
            None => (text, false),
        };
        let held = self.held.entry(key.clone()).or_insert_with(|| Held {
            text: Vec::new(),
            first_id: id,
            last_id: id,
            parts: 0,
            since: now,
        });
        held.last_id = id.or(held.last_id);
        held.text.extend_from_slice(body);
        held.parts += 1;
        if continued {
            return None;
        }
        let held = self.held.remove(&key).expect("inserted above");
        Some(whole(key, held, true))
    }

    /// The lowest id held back, which an ACK must not cover yet.
    pub fn lowest_held_id(&self) -> Option<u64> {
        self.held.values().filter_map(|held| held.first_id).min()
    }

    /// When the oldest held message is given up on.
    pub fn deadline(&self) -> Option<Instant> {
        self.held.values().map(|held| held.since + PART_WAIT).min()
    }

    /// The held messages whose wait is over by `now` (all of them with `None`), as
    /// incomplete wholes.
    pub fn expire(&mut self, now: Option<Instant>) -> Vec<Whole> {
        let over: Vec<Conversation> = self
            .held
            .iter()
            .filter(|(_, held)| now.is_none_or(|now| held.since + PART_WAIT <= now))
            .map(|(key, _)| key.clone())
            .collect();
        over.into_iter()
            .map(|key| {
                let held = self.held.remove(&key).expect("listed above");
                whole(key, held, false)
            })
            .collect()
    }
}

fn whole((sender, room): Conversation, held: Held, complete: bool) -> Whole {
    Whole {
        sender,
        room,
        text: held.text,
        first_id: held.first_id,
        last_id: held.last_id,
        parts: held.parts,
        complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_300_byte_chinese_message_goes_in_four_parts_within_the_limit() {
        let text = "聊".repeat(100);
        let parts = split(&text);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|part| part.len() <= TEXT_LEN));
        assert!(parts[..3].iter().all(|part| part.ends_with(CONTINUED)));
        assert!(!parts[3].ends_with(CONTINUED));
        assert_eq!(split("short"), ["short"]);
        assert_eq!(
            split(&"a".repeat(TEXT_LEN)).len(),
            1,
            "100 bytes fit in one"
        );
    }

    #[test]
    fn parts_are_joined_per_sender_and_an_unfinished_one_is_given_up() {
        let mut joiner = Joiner::default();
        let now = Instant::now();
        let parts = split(&"长".repeat(50));
        assert_eq!(parts.len(), 2);
        assert_eq!(
            joiner.take(b"a", false, parts[0].as_bytes(), Some(5), now),
            None
        );
        assert_eq!(joiner.lowest_held_id(), Some(5));
        // Another sender's message goes through meanwhile.
        let other = joiner.take(b"b", false, b"hi", Some(6), now).unwrap();
        assert_eq!((other.text.as_slice(), other.parts), (&b"hi"[..], 1));
        let whole = joiner
            .take(b"a", false, parts[1].as_bytes(), Some(7), now)
            .unwrap();
        assert_eq!(whole.text, "长".repeat(50).into_bytes());
        assert_eq!(
            (whole.first_id, whole.parts, whole.complete),
            (Some(5), 2, true)
        );
        assert_eq!(joiner.lowest_held_id(), None);

        joiner.take(b"a", true, parts[0].as_bytes(), None, now);
        assert!(joiner.expire(Some(now)).is_empty());
        let given_up = joiner.expire(Some(now + PART_WAIT));
        assert_eq!(given_up.len(), 1);
        assert!(!given_up[0].complete && given_up[0].room);
    }

    proptest! {
        #[test]
        fn any_text_splits_into_parts_that_fit_and_join_back(text in "\\PC{0,400}") {
            let parts = split(&text);
            prop_assert!(parts.iter().all(|part| part.len() <= TEXT_LEN));
            let mut joiner = Joiner::default();
            let now = Instant::now();
            let mut joined = None;
            for part in &parts {
                joined = joiner.take(b"x", false, part.as_bytes(), None, now);
            }
            prop_assert_eq!(joined.unwrap().text, text.trim_end_matches(CONTINUED).as_bytes());
        }
    }
}
