//! `chatroom`: a wire-compatible Rust replacement for a small C++ teaching chat server
//! (QQ-style: log in, send a message to a user by name), which is also correct, robust and
//! fast where the original was not. `docs/PROTOCOL.md` is the contract,
//! and `docs/TOUR.md` the guided tour from the original article to this code.
//!
//! How the pieces fit: the modules fall into layers, and an import points down, or
//! sideways within its layer, never up, and never round a circle.
//!
//! 7. **top**: [`server`], the accept loop: one OS thread per client, shutdown; and the
//!    binaries (`chat-server`, `chat-client`, `chat-bench`).
//! 6. **session**: [`session`], one client's loop (the article's `pthread_function`):
//!    read the header, then the body, dispatch by type to [`request`], which has one
//!    module per request kind (login, chat, users, and the receipts extension's); what
//!    they share of the client is a [`peer`]; [`frame_reader`] reads many frames per
//!    system call and bounds a frame's time; [`outbox`] batches replies and deliveries
//!    between reads, deliveries first.
//! 5. **routing**: [`routing`], the one place that decides where a message goes (a
//!    socket, the store, or both) and the only code that writes to another user's
//!    connection; [`receipts`], where it goes for a receiver on a receipts connection
//!    (its store is its queue); [`shared`], the state every session shares.
//! 4. **connections**: [`online`], who is online, and a connection's socket and write
//!    lock (with a receipts connection's window and pending receipts as plain data);
//!    [`slots`], the client limit and evicting connections that never log in.
//! 3. **store**: [`mailbox`], each user's messages on disk (append, read from a mark,
//!    acknowledge, limits, file integrity); it knows no connection and no session.
//! 2. **leaves**: [`config`] (the command line), [`users`] (the accounts),
//!    [`log_limit`] (log lines a flood cannot multiply), [`login_throttle`] (failed
//!    logins per address), [`descriptors`] (the file descriptor budget).
//! 1. **wire**: [`protocol`] (every frame, byte for byte, and their flags),
//!    [`message_id`] (ids with the millisecond on top), [`mailbox_format`] (the bytes of
//!    a mailbox file), [`trace`] (frames decoded for `chat-client --trace`).
//!
//! Beside them, for clients: [`blocking_client`] (the client side of the protocol, used
//! by `chat-client`, `chat-bench` and the tests) and [`i18n`] (the language
//! `chat-client` speaks). The plain path (login, chat, users, offline mail) meets the
//! receipts extension at two named places only: the session's dispatch (`request`'s
//! receipts module) and routing's one question, "is the receiver on a receipts
//! connection?".
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
