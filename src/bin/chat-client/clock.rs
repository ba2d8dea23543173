//! The time of day the client shows: local time, `HH:MM:SS`, with the date when it is not
//! today (a stored message may be days old). std has no time zones and the design allows
//! no crate for them, so the offset from UTC is asked of `date +%z` once; where that
//! fails the times are UTC. A message's time comes from its id
//! ([`chatroom::message_id::sent_at_ms`]); without an id, from this machine's clock.

use chatroom::message_id;
use std::process::{Command, Stdio};

const SECONDS_PER_DAY: i64 = 24 * 60 * 60;
const SECONDS_PER_HOUR: i64 = 60 * 60;
const SECONDS_PER_MINUTE: i64 = 60;
const MS_PER_SECOND: u64 = 1_000;

/// Local time of day, from UTC milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Seconds east of UTC.
    pub offset_secs: i64,
}

impl Clock {
    /// This machine's offset from UTC, as `date +%z` says.
    pub fn local() -> Clock {
        let offset = Command::new("date")
            .arg("+%z")
            .stderr(Stdio::null())
            .output()
            .ok()
            .and_then(|output| parse_utc_offset(&String::from_utf8_lossy(&output.stdout)));
        Clock {
            offset_secs: offset.unwrap_or(0),
        }
    }

    /// `HH:MM:SS` now.
    pub fn now(&self) -> String {
        self.at_ms(message_id::now_ms())
    }

    /// The time a message id stands for, or now for id 0 (a refused message's).
    pub fn at(&self, id: u64) -> String {
        self.at_ms(message_id::sent_at_ms(id).unwrap_or_else(message_id::now_ms))
    }

    /// `ms` (milliseconds since 1970) as local time, dated unless it is today.
    pub fn at_ms(&self, ms: u64) -> String {
        self.format(secs(ms), secs(message_id::now_ms()))
    }

    /// `utc` (seconds since 1970) as local time, with the date unless it falls on the
    /// same local day as `today`.
    pub fn format(&self, utc: i64, today: i64) -> String {
        let local = utc + self.offset_secs;
        let (day, of_day) = (
            local.div_euclid(SECONDS_PER_DAY),
            local.rem_euclid(SECONDS_PER_DAY),
        );
        let time = format!(
            "{:02}:{:02}:{:02}",
            of_day / SECONDS_PER_HOUR,
            of_day / SECONDS_PER_MINUTE % SECONDS_PER_MINUTE,
            of_day % SECONDS_PER_MINUTE
        );
        if day == (today + self.offset_secs).div_euclid(SECONDS_PER_DAY) {
            return time;
        }
        let (year, month, day_of_month) = chatroom::trace::civil_from_days(day);
        format!("{year:04}-{month:02}-{day_of_month:02} {time}")
    }
}

fn secs(ms: u64) -> i64 {
    i64::try_from(ms / MS_PER_SECOND).unwrap_or(i64::MAX / 2)
}

/// `+0800` → 28800 seconds, `-0530` → -19800.
pub fn parse_utc_offset(text: &str) -> Option<i64> {
    let text = text.trim();
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * SECONDS_PER_HOUR + minutes * SECONDS_PER_MINUTE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_from_other_days_carry_the_date() {
        let clock = Clock { offset_secs: 0 };
        // 2026-12-01 08:25:09 UTC.
        let then = 1_796_113_509;
        assert_eq!(clock.format(then, then + 60), "08:25:09");
        assert_eq!(
            clock.format(then, then + SECONDS_PER_DAY),
            "2026-12-01 08:25:09"
        );
        // 08:25 UTC is 00:25 the same day at -0800, and the day before at -0900.
        let pacific = Clock {
            offset_secs: -8 * SECONDS_PER_HOUR,
        };
        assert_eq!(pacific.format(then, then + 12 * 3600), "00:25:09");
        let alaska = Clock {
            offset_secs: -9 * SECONDS_PER_HOUR,
        };
        assert_eq!(alaska.format(then, then + 30 * 60), "23:25:09");
        assert_eq!(alaska.format(then, then + 60 * 60), "2026-11-30 23:25:09");
    }

    #[test]
    fn an_id_tells_its_time_in_milliseconds_and_an_old_one_in_microseconds() {
        let clock = Clock { offset_secs: 0 };
        let now = message_id::now_ms();
        let id = message_id::first_of_ms(now) + 3;
        assert_eq!(clock.at(id), clock.at_ms(now));
        assert_eq!(clock.at(now * 1_000), clock.at_ms(now), "a microsecond id");
        assert_eq!(clock.at(id).len(), "HH:MM:SS".len());
    }

    #[test]
    fn utc_offsets_parse() {
        assert_eq!(parse_utc_offset("+0800\n"), Some(8 * 3600));
        assert_eq!(parse_utc_offset("-0530"), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_utc_offset("UTC"), None);
    }
}
