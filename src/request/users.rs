//! USERS (an extension of the original): the names of everyone online, sorted.

use crate::frame_reader::{FrameReader, TimedRead};
use crate::peer::{Next, Peer};
use crate::protocol::{self, FEEDBACK_LEN, Feedback, Flag, Kind, NAME_LEN, Name};
use std::io;

/// USERS: `FEEDBACK{3, 20 × n, 1}` and the n names.
pub fn handle(
    peer: &mut Peer<'_>,
    body_len: usize,
    input: &mut FrameReader<impl TimedRead>,
) -> io::Result<Next> {
    if body_len != 0 {
        protocol::skip(input, body_len)?;
        peer.outbox
            .reply(&Feedback::new(Kind::Users, 0, Flag::Malformed).to_bytes());
        return Ok(Next::Continue);
    }
    if peer.user.is_none() {
        peer.outbox
            .reply(&Feedback::new(Kind::Users, 0, Flag::NotLoggedIn).to_bytes());
        return Ok(Next::Continue);
    }
    let names = peer.shared.online.names();
    let mut out = Vec::with_capacity(FEEDBACK_LEN + names.len() * NAME_LEN);
    Feedback::new(Kind::Users, names.len() * NAME_LEN, Flag::Ok).encode(&mut out);
    for name in &names {
        let field = Name::new(name).expect("account names fit the name field");
        out.extend_from_slice(field.field());
    }
    peer.outbox.reply(&out);
    Ok(Next::Continue)
}
