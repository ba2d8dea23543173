//! Failed logins counted per client address, so that password guessing is slow however
//! the guesser reconnects.
//!
//! The per-connection limit (five failures, then -6) alone is no defence: a guesser
//! opens a new connection every four guesses. So every failure is also recorded against
//! the peer's IP address, and once an address has [`--login-failures`] failures within
//! the last [`LOGIN_FAILURE_WINDOW`], each LOGIN from it is answered -6 without looking
//! at the password, until its oldest failures age out of the window. Other addresses
//! are not affected: the users elsewhere still log in.
//!
//! The table is bounded: it tracks at most [`MAX_TRACKED_ADDRESSES`] addresses, each
//! with at most `--login-failures` timestamps. When a new address arrives at a full
//! table, addresses whose failures have all aged out are forgotten first; if none have,
//! the address whose latest failure is oldest is forgotten. So an attacker with more
//! than that many addresses can make the server forget some of them early; the limit
//! of five per connection still holds for those. (Per-/64 counting for IPv6, where one
//! host commonly owns a whole /64, was left out: the rule is "the peer's IP".)
//!
//! [`--login-failures`]: crate::config::DEFAULT_LOGIN_FAILURES

use crate::config::LOGIN_FAILURE_WINDOW;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

/// How many client addresses the table tracks at once: about 4 MiB at the default
/// `--login-failures 20`.
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Failed logins per client address.
#[derive(Debug)]
pub struct LoginThrottle {
    /// Failures an address may have within the window before it is refused.
    limit: usize,
    capacity: usize,
    /// Each address's failures within the window, oldest first, at most `limit` of them
    /// (older ones cannot change the verdict).
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// A table that refuses an address with `limit` failures within the window.
    pub fn new(limit: usize) -> LoginThrottle {
        LoginThrottle::with_capacity(limit, MAX_TRACKED_ADDRESSES)
    }

    /// Like [`new`](LoginThrottle::new), tracking at most `capacity` addresses.
    pub fn with_capacity(limit: usize, capacity: usize) -> LoginThrottle {
        LoginThrottle {
            limit,
            capacity,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// True if `addr` has had `limit` failures within the window before `now`: its
    /// logins are refused without checking the password.
    pub fn is_blocked(&self, addr: IpAddr, now: Instant) -> bool {
        let addr = addr.to_canonical();
        let failures = self.failures.lock();
        failures.get(&addr).is_some_and(|times| {
            times.len() >= self.limit && within_window(times[times.len() - self.limit], now)
        })
    }

    /// Records a failed login from `addr` at `now`.
    pub fn record_failure(&self, addr: IpAddr, now: Instant) {
        let addr = addr.to_canonical();
        let mut failures = self.failures.lock();
        if !failures.contains_key(&addr) && failures.len() >= self.capacity {
            make_room(&mut failures, self.capacity, now);
        }
        let times = failures.entry(addr).or_default();
        if times.len() >= self.limit {
            times.pop_front();
        }
        times.push_back(now);
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.failures.lock().len()
    }
}

fn within_window(failure: Instant, now: Instant) -> bool {
    now.saturating_duration_since(failure) < LOGIN_FAILURE_WINDOW
}

/// Forgets addresses until fewer than `capacity` are tracked: every address whose
/// failures have aged out, then, if that was not enough, the one whose latest failure is
/// oldest. A scan of the table, which happens only when it is full.
fn make_room(failures: &mut HashMap<IpAddr, VecDeque<Instant>>, capacity: usize, now: Instant) {
    failures.retain(|_, times| times.back().is_some_and(|&last| within_window(last, now)));
    if failures.len() >= capacity
        && let Some(stalest) = stalest(failures)
    {
        failures.remove(&stalest);
    }
}

/// The address whose latest failure is the oldest.
fn stalest(failures: &HashMap<IpAddr, VecDeque<Instant>>) -> Option<IpAddr> {
    failures
        .iter()
        .filter_map(|(addr, times)| times.back().map(|&last| (last, *addr)))
        .min()
        .map(|(_, addr)| addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn an_address_is_blocked_at_the_limit_and_others_are_not() {
        let throttle = LoginThrottle::new(3);
        let now = Instant::now();
        for _ in 0..2 {
            throttle.record_failure(ip(1), now);
        }
        assert!(!throttle.is_blocked(ip(1), now));
        throttle.record_failure(ip(1), now);
        assert!(throttle.is_blocked(ip(1), now));
        assert!(!throttle.is_blocked(ip(2), now));
    }

    #[test]
    fn failures_age_out_of_the_window() {
        let throttle = LoginThrottle::new(2);
        let start = Instant::now();
        throttle.record_failure(ip(1), start);
        throttle.record_failure(ip(1), start + LOGIN_FAILURE_WINDOW / 2);
        assert!(throttle.is_blocked(ip(1), start + LOGIN_FAILURE_WINDOW / 2));
        // The first failure has aged out; one remains in the window.
        assert!(!throttle.is_blocked(ip(1), start + LOGIN_FAILURE_WINDOW));
    }

    #[test]
    fn the_table_stays_bounded_however_many_addresses_come() {
        let throttle = LoginThrottle::with_capacity(5, 100);
        let now = Instant::now();
        for i in 0..10_000u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i));
            throttle.record_failure(addr, now);
            assert!(throttle.tracked() <= 100);
        }
        assert_eq!(throttle.tracked(), 100);
    }

    #[test]
    fn a_full_table_forgets_aged_out_addresses_before_active_ones() {
        let throttle = LoginThrottle::with_capacity(2, 2);
        let start = Instant::now();
        let later = start + LOGIN_FAILURE_WINDOW;
        throttle.record_failure(ip(1), start); // will have aged out
        throttle.record_failure(ip(2), later);
        throttle.record_failure(ip(2), later);
        throttle.record_failure(ip(3), later);
        assert!(
            throttle.is_blocked(ip(2), later),
            "the active address is kept"
        );
        assert_eq!(throttle.tracked(), 2);
    }

    #[test]
    fn an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address() {
        let throttle = LoginThrottle::new(1);
        let now = Instant::now();
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        throttle.record_failure(mapped, now);
        assert!(throttle.is_blocked(ip(1), now));
    }
}
