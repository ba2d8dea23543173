//! The receipts extension's requests (docs/PROTOCOL.md §3): RECEIPTS (4) turns it on for
//! the connection, ACK (6) says what the client has, READ (8) what its person has seen.
//! Each is read here and acted on in `receipts.rs`.

use crate::frame_reader::{FrameReader, TimedRead};
use crate::peer::{Next, Peer};
use crate::protocol::{self, ACK_BODY_LEN, Feedback, Flag, ID_LEN, Kind, Name, RECEIPT_BODY_LEN};
use crate::receipts;
use byteorder::{ByteOrder, LittleEndian};
use std::io::{self, Read};

/// RECEIPTS, ACK or READ (`kind`): reads the body and acts. No answer to a valid ACK or
/// READ; -3 for a wrong length or an ACK of an id this login was not written, -2 for
/// an ACK or READ before login, -1 for a READ naming no account.
pub fn handle(
    peer: &mut Peer<'_>,
    kind: Kind,
    body_len: usize,
    input: &mut FrameReader<impl TimedRead>,
) -> io::Result<Next> {
    let expected = match kind {
        Kind::Receipts => 0,
        Kind::Ack => ACK_BODY_LEN,
        _ => RECEIPT_BODY_LEN,
    };
    let answer = |flag| Feedback::new(kind, 0, flag).to_bytes();
    if body_len != expected {
        protocol::skip(input, body_len)?;
        peer.outbox.reply(&answer(Flag::Malformed));
        return Ok(Next::Continue);
    }
    let mut body = [0; RECEIPT_BODY_LEN];
    input.read_exact(&mut body[..expected])?;
    let id = LittleEndian::read_u64(&body[..ID_LEN]);
    if kind == Kind::Receipts {
        // Replies to earlier requests go out as they were asked for; from here on,
        // CHAT frames are MESSAGE frames.
        peer.write_out()?;
        let newly = !peer.connection.has_receipts();
        // Turned on under the user's mailbox lock, and with the answer first on the
        // wire: a delivery to the user is then either a CHAT frame before the answer or
        // kept in the store and a MESSAGE frame after it, never between the two.
        let mailbox = peer
            .user
            .as_deref()
            .and_then(|user| peer.shared.mailboxes.lock(user));
        let connection = &peer.connection;
        connection.send_after(|| connection.turn_on_receipts(), &answer(Flag::Ok))?;
        drop(mailbox);
        if newly && let Some(user) = peer.user.clone() {
            // Turned on after the login: what the user's store still holds (a plain
            // login takes all it can read) goes out now.
            receipts::take_over_store(peer.shared, &peer.connection, &user);
        }
        return Ok(Next::Continue);
    }
    let Some(user) = peer.user.clone() else {
        peer.outbox.reply(&answer(Flag::NotLoggedIn));
        return Ok(Next::Continue);
    };
    if kind == Kind::Ack {
        if !receipts::acknowledge(peer.shared, &peer.connection, &user, id) {
            peer.outbox.reply(&answer(Flag::Malformed));
        }
    } else {
        let sender = Name::from_field(body[ID_LEN..].try_into().expect("20 bytes"));
        if !receipts::read(peer.shared, &user, &sender, id) {
            peer.outbox.reply(&answer(Flag::Rejected));
        }
    }
    Ok(Next::Continue)
}
