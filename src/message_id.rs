//! Message ids (docs/PROTOCOL.md §3), part of the wire format: `milliseconds since the Unix epoch << 20 | n`,
//! where `n` counts the messages given to the same receiver in that millisecond.
//!
//! Like Twitter's Snowflake ids, the time sits in the top bits and a sequence below, so
//! ids are unique and increasing without running ahead of the clock: a flood of other
//! users' messages moves nobody else's ids, and an id tells a sender nothing of anyone
//! else's traffic but how many messages its receiver got within that millisecond. Ids
//! are given per receiver, in the order of that receiver's store, which is
//! the order its messages are written: that is what makes a cumulative ACK exact.
//!
//! The first receipts server gave ids in microseconds, server-wide. Such ids, still in
//! mailboxes written by it, are all below the new ones (they sort first), and
//! [`sent_at_ms`] reads both.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bits below the millisecond: the count of ids given to one receiver within it.
pub const SEQUENCE_BITS: u32 = 20;
/// Ids at or above this carry milliseconds in their top bits; ids below it are the
/// first receipts server's microseconds (2^56 microseconds is the year 4253; 2^56 >> 20
/// milliseconds is 1972, before any id this server gives).
pub const FIRST_MILLISECOND_ID: u64 = 1 << 56;

/// The current millisecond since the Unix epoch (0 for a clock set before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The first id of millisecond `ms`.
pub fn first_of_ms(ms: u64) -> u64 {
    ms << SEQUENCE_BITS
}

/// The id after `last` for a message accepted in millisecond `now_ms`: the first id of
/// that millisecond, or one above `last` if `last` is already in it (or the clock went
/// back). Strictly increasing whatever the clock does.
pub fn next_after(last: u64, now_ms: u64) -> u64 {
    first_of_ms(now_ms).max(last.saturating_add(1))
}

/// The millisecond an id was accepted in, for a client to show as the send time: `id
/// >> 20`, or, for an id of the first receipts server (microseconds), that divided by
/// 1,000. `None` for 0, the id of a refused message.
pub fn sent_at_ms(id: u64) -> Option<u64> {
    match id {
        0 => None,
        id if id >= FIRST_MILLISECOND_ID => Some(id >> SEQUENCE_BITS),
        microseconds => Some(microseconds / 1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_within_a_millisecond_count_up_and_the_next_millisecond_starts_afresh() {
        let ms = 1_765_000_000_000;
        let first = next_after(0, ms);
        assert_eq!(first, ms << SEQUENCE_BITS);
        let second = next_after(first, ms);
        assert_eq!(second, first + 1);
        assert_eq!(next_after(second, ms + 1), (ms + 1) << SEQUENCE_BITS);
        assert_eq!(sent_at_ms(second), Some(ms));
    }

    #[test]
    fn a_clock_that_goes_back_still_gives_a_higher_id() {
        let ms = 1_765_000_000_000;
        let last = next_after(0, ms);
        assert_eq!(next_after(last, ms - 5_000), last + 1);
    }

    #[test]
    fn old_microsecond_ids_sort_first_and_still_tell_their_time() {
        let micros = 1_764_000_000_000_000;
        assert!(micros < FIRST_MILLISECOND_ID);
        assert!(micros < first_of_ms(1_000_000_000_000));
        assert_eq!(sent_at_ms(micros), Some(1_764_000_000_000));
        assert_eq!(sent_at_ms(0), None);
    }

    #[test]
    fn the_clock_reads_as_a_millisecond_id_above_the_threshold() {
        assert!(first_of_ms(now_ms()) >= FIRST_MILLISECOND_ID);
    }
}
