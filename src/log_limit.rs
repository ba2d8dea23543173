//! Log lines an attacker cannot flood.
//!
//! Many log lines are caused by what a client sends: a refused login, a bad frame, a
//! full mailbox. One line per event would let a single script write megabytes of log a
//! second (filling the disk, hiding everything else). So each such line goes through
//! [`log_limited!`](crate::log_limited), which lets at most [`LINES_PER_WINDOW`] lines of one kind (one
//! call site) out per [`WINDOW`] and counts the rest; the next line that gets out says
//! how many were held back, for example
//! `mailbox of 1002 is full; message refused (and 19,999 more like this in the last 1.0 s)`.
//!
//! A flood therefore costs a few lines a second per kind, and no event goes unrecorded:
//! it is either logged or counted in the next line of its kind. (A count still held
//! when the flood stops is reported by the next event of that kind, whenever it comes;
//! a timer thread to flush it was left out as not worth its complexity.)

use parking_lot::Mutex;
use std::fmt;
use std::time::{Duration, Instant};

/// How many lines of one kind may be logged per window.
pub const LINES_PER_WINDOW: u32 = 5;
/// The window the limit counts in.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Logs like `log::log!`, but at most [`LINES_PER_WINDOW`] lines a [`WINDOW`] from this
/// call site; held-back lines are counted in the next one that gets out.
#[macro_export]
macro_rules! log_limited {
    ($level:expr, $($arg:tt)+) => {{
        static LIMIT: $crate::log_limit::LogLimit = $crate::log_limit::LogLimit::new();
        if ::log::log_enabled!($level)
            && let Some(held_back) = LIMIT.admit(::std::time::Instant::now())
        {
            ::log::log!($level, "{}{}", format_args!($($arg)+), held_back);
        }
    }};
}

/// `log_limited!` at the warning level.
#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => { $crate::log_limited!(::log::Level::Warn, $($arg)+) };
}

/// `log_limited!` at the info level.
#[macro_export]
macro_rules! info_limited {
    ($($arg:tt)+) => { $crate::log_limited!(::log::Level::Info, $($arg)+) };
}

/// The budget of one kind of log line.
#[derive(Debug)]
pub struct LogLimit {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    /// When the current window began; `None` before the first line.
    started: Option<Instant>,
    /// Lines logged in the current window.
    logged: u32,
    /// Lines held back since the last one that got out.
    held_back: u64,
    /// When the last line that got out was logged, to say over how long `held_back`
    /// were counted.
    last_logged: Option<Instant>,
}

impl LogLimit {
    /// A fresh budget (usable in a `static`).
    pub const fn new() -> LogLimit {
        LogLimit {
            state: Mutex::new(Window {
                started: None,
                logged: 0,
                held_back: 0,
                last_logged: None,
            }),
        }
    }

    /// Whether a line may be logged at `now`: `Some` with the count of lines held back
    /// before it (to append to the line), or `None` if this one is held back too.
    pub fn admit(&self, now: Instant) -> Option<HeldBack> {
        let mut window = self.state.lock();
        let expired = window
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= WINDOW);
        if expired {
            window.started = Some(now);
            window.logged = 0;
        }
        if window.logged >= LINES_PER_WINDOW {
            window.held_back += 1;
            return None;
        }
        window.logged += 1;
        let held_back = HeldBack {
            count: std::mem::take(&mut window.held_back),
            over: window
                .last_logged
                .map_or(Duration::ZERO, |last| now.saturating_duration_since(last)),
        };
        window.last_logged = Some(now);
        Some(held_back)
    }
}

impl Default for LogLimit {
    fn default() -> LogLimit {
        LogLimit::new()
    }
}

/// How many lines of a kind were held back, and over how long: displayed as a suffix
/// to the line that gets out, empty when none were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldBack {
    /// Lines held back.
    pub count: u64,
    /// Since the last line of the kind that got out.
    pub over: Duration,
}

impl fmt::Display for HeldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return Ok(());
        }
        write!(
            f,
            " (and {} more like this in the last {:.1} s)",
            thousands(self.count),
            self.over.as_secs_f64()
        )
    }
}

/// `19999` as `19,999`: counts in log lines are read by people.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gets_a_few_lines_a_window_and_the_next_line_counts_the_rest() {
        let limit = LogLimit::new();
        let start = Instant::now();
        let admitted = (0..20_000).filter(|_| limit.admit(start).is_some()).count();
        assert_eq!(admitted, LINES_PER_WINDOW as usize);
        let later = start + WINDOW;
        let next = limit.admit(later).expect("a new window admits a line");
        assert_eq!(next.count, 20_000 - u64::from(LINES_PER_WINDOW));
        assert_eq!(
            next.to_string(),
            " (and 19,995 more like this in the last 1.0 s)"
        );
        assert_eq!(limit.admit(later).unwrap().to_string(), "", "none since");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
