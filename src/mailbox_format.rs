//! The bytes of a mailbox file (docs/PROTOCOL.md §6), apart from everything else the
//! store does: a header that says which format the file is in, then one record per
//! message, the message's id and its 140-byte CHAT body exactly as it will be
//! delivered.
//!
//! The first format had no header and no ids: a plain array of 140-byte CHAT bodies.
//! Such a file is still read ([`parse`] tells the two apart by the header, which no
//! record of the old format can begin with: a record begins with its sender's name,
//! UTF-8, and [`MAGIC`] begins with a byte that UTF-8 never uses), and the store rewrites
//! it in the new format at startup, giving its messages ids then.

use crate::protocol::{CHAT_BODY_LEN, ID_LEN};

/// The first bytes of a mailbox file in this format. `0xFF` never occurs in UTF-8, so
/// no file of the old format (which begins with a sender's name) starts with it.
pub const MAGIC: [u8; 8] = *b"\xFFCHATMB2";
/// One record: the message id (little-endian `u64`) and the CHAT body.
pub const RECORD_LEN: usize = ID_LEN + CHAT_BODY_LEN;
/// One record of the old format: the CHAT body alone.
pub const OLD_RECORD_LEN: usize = CHAT_BODY_LEN;

/// A stored message: its id and its CHAT body.
pub type Record = (u64, [u8; CHAT_BODY_LEN]);

/// Which format a file's bytes are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// [`MAGIC`], then records of [`RECORD_LEN`] bytes (or an empty file).
    WithIds,
    /// Records of [`OLD_RECORD_LEN`] bytes and no header: ids are given at the upgrade.
    Old,
}

/// What a mailbox file holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The file's format.
    pub format: Format,
    /// The whole records, oldest first, with ids (0 in the old format: it has none).
    pub records: Vec<Record>,
    /// Bytes at the end that are not a whole record (a torn append).
    pub torn: usize,
}

/// Reads a file's bytes. Never fails: a torn end is counted, not an error.
pub fn parse(bytes: &[u8]) -> Parsed {
    let (format, body, record_len, torn_header) = match bytes.strip_prefix(&MAGIC) {
        Some(body) => (Format::WithIds, body, RECORD_LEN, 0),
        // Shorter than the header and a prefix of it: a header torn by a crash.
        None if MAGIC.starts_with(bytes) => (Format::WithIds, &[][..], RECORD_LEN, bytes.len()),
        None => (Format::Old, bytes, OLD_RECORD_LEN, 0),
    };
    let chunks = body.chunks_exact(record_len);
    let torn = chunks.remainder().len() + torn_header;
    let records = chunks
        .map(|chunk| match format {
            Format::WithIds => {
                let (id, body) = chunk.split_at(ID_LEN);
                (
                    u64::from_le_bytes(id.try_into().expect("8 bytes")),
                    body.try_into().expect("a 140-byte body"),
                )
            }
            Format::Old => (0, chunk.try_into().expect("a 140-byte body")),
        })
        .collect();
    Parsed {
        format,
        records,
        torn,
    }
}

/// Appends the bytes of `records` to `out`, in this format (without the header).
pub fn encode(records: &[Record], out: &mut Vec<u8>) {
    for (id, body) in records {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(body);
    }
}

/// A whole file in this format: the header and `records`.
pub fn file_with(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + records.len() * RECORD_LEN);
    out.extend_from_slice(&MAGIC);
    encode(records, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(byte: u8) -> [u8; CHAT_BODY_LEN] {
        [byte; CHAT_BODY_LEN]
    }

    #[test]
    fn a_file_with_ids_reads_back_its_records() {
        let records = vec![(7, body(b'a')), (9, body(b'b'))];
        let parsed = parse(&file_with(&records));
        assert_eq!(parsed.format, Format::WithIds);
        assert_eq!(parsed.records, records);
        assert_eq!(parsed.torn, 0);
    }

    #[test]
    fn an_old_file_is_told_apart_by_its_first_byte() {
        let mut old = body(b'1').to_vec();
        old.extend(body(b'2'));
        old.extend([b'3'; 10]);
        let parsed = parse(&old);
        assert_eq!(parsed.format, Format::Old);
        assert_eq!(parsed.records, [(0, body(b'1')), (0, body(b'2'))]);
        assert_eq!(parsed.torn, 10);
    }

    #[test]
    fn torn_ends_and_headers_are_counted_not_read() {
        let mut file = file_with(&[(1, body(b'x'))]);
        file.extend([0; 20]);
        assert_eq!(parse(&file).torn, 20);
        assert_eq!(parse(&file).records.len(), 1);
        let torn_header = parse(&MAGIC[..3]);
        assert_eq!(torn_header.format, Format::WithIds);
        assert!(torn_header.records.is_empty());
        assert_eq!(torn_header.torn, 3);
        assert_eq!(parse(&[]).torn, 0);
        assert_eq!(parse(&[]).format, Format::WithIds, "an empty file is new");
    }
}
