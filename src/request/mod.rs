//! One module per request kind, as `cmd/` is in tokio's mini-redis: each reads its
//! frame's body and acts, through the session's [`Peer`](crate::peer::Peer). The
//! session's dispatch (`session.rs`) sends each header here by its type.
//!
//! - [`login`]: LOGIN (1), and going offline;
//! - [`chat`]: CHAT (2), to a user or the room;
//! - [`users`]: USERS (3), who is online;
//! - [`receipts`]: the receipts extension's requests, RECEIPTS (4), ACK (6), READ (8).

pub mod chat;
pub mod login;
pub mod receipts;
pub mod users;
