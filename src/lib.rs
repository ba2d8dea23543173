//! `chatroom`: a wire-compatible Rust replacement for a small C++ teaching chat server
//! (QQ-style: log in, send a message to a user by name), which is also correct, robust and
//! fast where the original was not. `docs/PROTOCOL.md` is the contract,
//! and `docs/TOUR.md` the guided tour from the original article to this code.
//!
//! How the pieces fit, in the order a request meets them:
//! - [`server`]: the accept loop; one OS thread per client; shutdown.
//! - [`slots`]: the client limit, and evicting connections that never log in.
//! - [`session`]: one client's loop (the article's `pthread_function`): read the header,
//!   then the body, act.
//! - [`frame_reader`]: the session's buffered reader: many frames per system call, and
//!   the frame timeout.
//! - [`outbox`]: replies and deliveries batched between reads; deliveries first.
//! - [`protocol`]: the frames, byte for byte, and their flags.
//! - [`shared`]: the shared state, and where a message goes (socket or mailbox).
//! - [`online`]: who is online, and writing a frame to a client's socket.
//! - [`login_throttle`]: failed logins counted per client address.
//! - [`log_limit`]: log lines a flood cannot multiply.
//! - [`mailbox`]: offline messages on disk; [`mailbox_format`]: the bytes of its files.
//! - [`receipts`]: the receipts extension: message ids, acknowledgements, receipts.
//! - [`message_id`]: message ids: the millisecond in the top bits, a count per receiver
//!   below.
//! - [`users`]: the accounts and the users file.
//! - [`config`]: the command line.
//! - [`descriptors`]: the file descriptor budget: clients fitted to the limit.
//! - [`blocking_client`]: the client side of the protocol, used by `chat-client`,
//!   `chat-bench` and the tests.
//! - [`trace`]: frames decoded and dumped as bytes, for `chat-client --trace`.
//! - [`i18n`]: the language `chat-client` speaks: English, or Chinese for a `zh` locale.
//!
//! `examples/minimal.rs` is the same design in its plainest form, in one file.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod blocking_client;
pub mod config;
pub mod descriptors;
pub mod frame_reader;
pub mod i18n;
pub mod log_limit;
pub mod login_throttle;
pub mod mailbox;
pub mod mailbox_format;
pub mod message_id;
pub mod online;
pub mod outbox;
pub mod peer;
pub mod protocol;
pub mod receipts;
pub mod request;
pub mod routing;
pub mod server;
pub mod session;
pub mod shared;
pub mod slots;
pub mod trace;
pub mod users;

pub use config::Config;
pub use server::{Server, ServerHandle, StartError, Stopper};

/// What the property tests beside the reader, the codec and the users-file parser share
/// (docs/TESTING.md): a fixed seed, so every run tries the same cases and a failure
/// replays, no regression files in the source tree, and `CHATROOM_PROPTEST_CASES` for
/// a longer search.
#[cfg(test)]
mod property_tests {
    /// Cases per property unless `CHATROOM_PROPTEST_CASES` says otherwise.
    const DEFAULT_CASES: u32 = 256;

    /// The configuration of a property test module, seeded with `seed`.
    pub fn config(seed: u64) -> proptest::test_runner::Config {
        let cases = std::env::var("CHATROOM_PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(DEFAULT_CASES);
        proptest::test_runner::Config {
            cases,
            rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        }
    }
}
