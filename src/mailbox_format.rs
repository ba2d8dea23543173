//! The bytes of a mailbox file (docs/PROTOCOL.md §6), apart from everything else the
//! store does: a header that says the format and version, and how many records at the
//! front are already acknowledged; then one record per message, the message's id and its
//! 140-byte CHAT body exactly as it will be delivered.
//!
//! Three formats have existed, and [`parse`] reads each:
//! - the first: no header, no ids, a plain array of 140-byte CHAT bodies ([`Format::Old`]);
//! - the second: the 8-byte header `\xFFCHATMB2`, then records with ids
//!   ([`Format::WithIds`]);
//! - this one: a 24-byte header ([`MAGIC`], the acknowledged count, a checksum of both),
//!   then records with ids ([`Format::Current`]).
//!
//! A damaged header is never read as another format. A header within two bytes of a
//! known one is that format (the record size decides between the two with ids, which
//! differ by one byte): a damaged acknowledged count is read as 0, so the messages it
//! covered come again rather than never. A file that is none of these is
//! [`Unrecognised`]: the store keeps it aside and tells the operator. A record is a fixed
//! size, so a damaged record can only spoil itself.

use crate::protocol::{CHAT_BODY_LEN, ID_LEN};

/// The first bytes of a file in this format: `0xFF` (never in UTF-8, so no file of the
/// first format, which begins with a sender's name, starts with it), `CHATMB`, and the
/// version, `3`.
pub const MAGIC: [u8; 8] = *b"\xFFCHATMB3";
/// The header of the second format, which had nothing after its magic.
pub const MAGIC_V2: [u8; 8] = *b"\xFFCHATMB2";
/// Where the acknowledged count sits in the header.
const ACKNOWLEDGED_AT: usize = MAGIC.len();
/// Where the checksum sits in the header.
const CHECKSUM_AT: usize = ACKNOWLEDGED_AT + 8;
/// The header's size: the magic, the acknowledged count (`u64`), the checksum (`u64`).
pub const HEADER_LEN: usize = CHECKSUM_AT + 8;
/// One record: the message id (little-endian `u64`) and the CHAT body.
pub const RECORD_LEN: usize = ID_LEN + CHAT_BODY_LEN;
/// One record of the first format: the CHAT body alone.
pub const OLD_RECORD_LEN: usize = CHAT_BODY_LEN;
/// Bytes of a magic that may differ from a known one for the header still to be read
/// as that format (a flipped byte or two), rather than refused as unrecognised.
const MAGIC_TOLERANCE: usize = 2;

/// A stored message: its id and its CHAT body.
pub type Record = (u64, [u8; CHAT_BODY_LEN]);

/// Which format a file's bytes are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// [`MAGIC`] and records of [`RECORD_LEN`] bytes (or an empty file).
    Current,
    /// [`MAGIC_V2`] and records of [`RECORD_LEN`] bytes: rewritten at startup.
    WithIds,
    /// Records of [`OLD_RECORD_LEN`] bytes and no header: rewritten at startup, with ids.
    Old,
}

/// What a mailbox file holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The file's format.
    pub format: Format,
    /// Records at the front that the owner's client already acknowledged: they are
    /// still in the file, never delivered again.
    pub acknowledged: usize,
    /// Every whole record, oldest first, acknowledged ones included, with ids (0 in the
    /// first format: it had none).
    pub records: Vec<Record>,
    /// Bytes at the end that are not a whole record (a torn append).
    pub torn: usize,
    /// What was wrong with the header, if it was damaged but still readable.
    pub damaged_header: Option<&'static str>,
}

/// A file that is no mailbox format: its first bytes are neither a known header nor
/// the start of a first-format record, or its size fits no format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecognised(pub &'static str);

/// Reads a file's bytes. A torn end is counted, not an error; a damaged header is read
/// as its format where it can be told ([`Parsed::damaged_header`] says so).
pub fn parse(bytes: &[u8]) -> Result<Parsed, Unrecognised> {
    if bytes.len() < HEADER_LEN && MAGIC.starts_with(&bytes[..bytes.len().min(MAGIC.len())]) {
        // Empty, or a header torn by a crash during the first write: nothing stored yet.
        return Ok(parsed(Format::Current, 0, &[], bytes.len(), None));
    }
    let start: Option<&[u8; 8]> = bytes.first_chunk();
    let near =
        |magic: &[u8; 8]| start.is_some_and(|start| differing(start, magic) <= MAGIC_TOLERANCE);
    let fits =
        |header: usize| bytes.len() >= header && (bytes.len() - header).is_multiple_of(RECORD_LEN);
    if start == Some(&MAGIC) || (near(&MAGIC) && (checksum_holds(bytes) || fits(HEADER_LEN))) {
        let (acknowledged, damaged) = if checksum_holds(bytes) && start == Some(&MAGIC) {
            (read_u64(bytes, ACKNOWLEDGED_AT), None)
        } else {
            (
                0,
                Some("its header is damaged: every message in it is delivered again"),
            )
        };
        let body = bytes.get(HEADER_LEN..).unwrap_or_default();
        let acknowledged = usize::try_from(acknowledged).unwrap_or(usize::MAX);
        if acknowledged > body.len() / RECORD_LEN {
            // The file was cut (a compaction a crash interrupted after its cut reached
            // the disk and before its header did): the count no longer fits it, and
            // taking it would hide the messages that are there.
            let damage = "its acknowledged count is beyond its records: every message \
                          in it is delivered again";
            return Ok(parsed(Format::Current, 0, body, 0, Some(damage)));
        }
        return Ok(parsed(Format::Current, acknowledged, body, 0, damaged));
    }
    if start == Some(&MAGIC_V2) || (near(&MAGIC_V2) && fits(MAGIC_V2.len())) {
        let damaged = (start != Some(&MAGIC_V2)).then_some("its header is damaged");
        return Ok(parsed(
            Format::WithIds,
            0,
            &bytes[MAGIC_V2.len()..],
            0,
            damaged,
        ));
    }
    if near(&MAGIC) || near(&MAGIC_V2) {
        return Err(Unrecognised(
            "its header is damaged and its size fits no format with that header",
        ));
    }
    if bytes.len().is_multiple_of(OLD_RECORD_LEN) && bytes.first() != Some(&MAGIC[0]) {
        return Ok(parsed(Format::Old, 0, bytes, 0, None));
    }
    Err(Unrecognised(
        "it starts with no mailbox header, and its size is no whole number of records",
    ))
}

/// The records of `body` in `format`, and what is left over.
fn parsed(
    format: Format,
    acknowledged: usize,
    body: &[u8],
    torn_header: usize,
    damaged_header: Option<&'static str>,
) -> Parsed {
    let record_len = match format {
        Format::Old => OLD_RECORD_LEN,
        Format::Current | Format::WithIds => RECORD_LEN,
    };
    let chunks = body.chunks_exact(record_len);
    let torn = chunks.remainder().len() + torn_header;
    let records: Vec<Record> = chunks
        .map(|chunk| match format {
            Format::Old => (0, chunk.try_into().expect("a 140-byte body")),
            Format::Current | Format::WithIds => {
                let (id, body) = chunk.split_at(ID_LEN);
                (
                    u64::from_le_bytes(id.try_into().expect("8 bytes")),
                    body.try_into().expect("a 140-byte body"),
                )
            }
        })
        .collect();
    Parsed {
        format,
        acknowledged: acknowledged.min(records.len()),
        records,
        torn,
        damaged_header,
    }
}

/// How many bytes differ between two magics.
fn differing(a: &[u8; 8], b: &[u8; 8]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// True if the header's checksum matches its magic and acknowledged count.
fn checksum_holds(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && read_u64(bytes, CHECKSUM_AT) == checksum(&bytes[..CHECKSUM_AT])
}

/// FNV-1a, 64 bits: enough to tell a damaged header from a whole one (not a defence
/// against anyone who can write the file).
fn checksum(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// The header of a file whose first `acknowledged` records were acknowledged.
pub fn header(acknowledged: u64) -> [u8; HEADER_LEN] {
    let mut out = [0; HEADER_LEN];
    out[..ACKNOWLEDGED_AT].copy_from_slice(&MAGIC);
    out[ACKNOWLEDGED_AT..CHECKSUM_AT].copy_from_slice(&acknowledged.to_le_bytes());
    let sum = checksum(&out[..CHECKSUM_AT]);
    out[CHECKSUM_AT..].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Appends the bytes of `records` to `out`, in this format (without the header).
pub fn encode(records: &[Record], out: &mut Vec<u8>) {
    for (id, body) in records {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(body);
    }
}

/// A whole file in this format: the header (nothing acknowledged) and `records`.
pub fn file_with(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len() * RECORD_LEN);
    out.extend_from_slice(&header(0));
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
    fn a_file_reads_back_its_records_and_its_acknowledged_count() {
        let records = vec![(7, body(b'a')), (9, body(b'b'))];
        let parsed = parse(&file_with(&records)).unwrap();
        assert_eq!(parsed.format, Format::Current);
        assert_eq!(parsed.records, records);
        assert_eq!((parsed.torn, parsed.acknowledged), (0, 0));
        let mut file = file_with(&records);
        file[..HEADER_LEN].copy_from_slice(&header(1));
        assert_eq!(parse(&file).unwrap().acknowledged, 1);
        assert_eq!(parse(&file).unwrap().damaged_header, None);
    }

    #[test]
    fn an_old_file_is_told_apart_by_its_first_byte() {
        let mut old = body(b'1').to_vec();
        old.extend(body(b'2'));
        let parsed = parse(&old).unwrap();
        assert_eq!(parsed.format, Format::Old);
        assert_eq!(parsed.records, [(0, body(b'1')), (0, body(b'2'))]);
    }

    #[test]
    fn a_second_format_file_is_read_with_its_ids() {
        let mut file = MAGIC_V2.to_vec();
        encode(&[(5, body(b'x'))], &mut file);
        let parsed = parse(&file).unwrap();
        assert_eq!(parsed.format, Format::WithIds);
        assert_eq!(parsed.records, [(5, body(b'x'))]);
    }

    #[test]
    fn torn_ends_and_headers_are_counted_not_read() {
        let mut file = file_with(&[(1, body(b'x'))]);
        file.extend([0; 20]);
        assert_eq!(parse(&file).unwrap().torn, 20);
        assert_eq!(parse(&file).unwrap().records.len(), 1);
        let torn_header = parse(&MAGIC[..3]).unwrap();
        assert_eq!(torn_header.format, Format::Current);
        assert!(torn_header.records.is_empty());
        assert_eq!(torn_header.torn, 3);
        assert_eq!(parse(&[]).unwrap().torn, 0);
    }

    #[test]
    fn any_one_flipped_header_byte_keeps_every_record_and_forgets_no_unacknowledged_one() {
        let records: Vec<Record> = (1..=32).map(|id| (id, body(b'm'))).collect();
        let mut whole = file_with(&records);
        whole[..HEADER_LEN].copy_from_slice(&header(3));
        for at in 0..HEADER_LEN {
            for bit in 0..8 {
                let mut file = whole.clone();
                file[at] ^= 1 << bit;
                let parsed = parse(&file).unwrap_or_else(|problem| {
                    panic!("byte {at} bit {bit}: refused as unrecognised: {problem:?}")
                });
                assert_eq!(parsed.format, Format::Current, "byte {at} bit {bit}");
                assert_eq!(parsed.records, records, "byte {at} bit {bit}");
                assert!(parsed.acknowledged <= 3, "byte {at} bit {bit}");
                assert!(parsed.damaged_header.is_some(), "byte {at} bit {bit}");
            }
        }
    }

    #[test]
    fn a_header_alone_is_a_whole_empty_file_not_a_torn_one() {
        let parsed = parse(&header(0)).unwrap();
        assert_eq!((parsed.format, parsed.torn), (Format::Current, 0));
        assert!(parsed.records.is_empty());
        assert_eq!(parsed.damaged_header, None);
    }

    #[test]
    fn a_second_format_header_with_a_flipped_byte_is_still_that_format() {
        let mut file = MAGIC_V2.to_vec();
        encode(&[(5, body(b'x')), (6, body(b'y'))], &mut file);
        assert_eq!(parse(&file).unwrap().damaged_header, None, "whole");
        file[3] ^= 0x10;
        let parsed = parse(&file).unwrap();
        assert_eq!(parsed.format, Format::WithIds);
        assert_eq!(parsed.records.len(), 2);
        assert!(parsed.damaged_header.is_some());
    }

    #[test]
    fn a_damaged_header_whose_size_fits_no_format_is_unrecognised() {
        let mut file = file_with(&[(1, body(b'a'))]);
        file.extend([0; 7]);
        file[2] ^= 0x01;
        let problem = parse(&file).unwrap_err();
        assert!(problem.0.contains("fits no format"), "{problem:?}");
        let mut v2 = MAGIC_V2.to_vec();
        encode(&[(5, body(b'x'))], &mut v2);
        v2.extend([0; 5]);
        v2[1] ^= 0x01;
        assert!(
            parse(&v2).is_err(),
            "a damaged second-format header, torn too"
        );
    }

    #[test]
    fn an_acknowledged_count_beyond_the_records_is_read_as_zero() {
        let mut file = file_with(&[(1, body(b'a')), (2, body(b'b'))]);
        file[..HEADER_LEN].copy_from_slice(&header(3));
        let parsed = parse(&file).unwrap();
        assert_eq!(
            parsed.acknowledged, 0,
            "every record delivered, none hidden"
        );
        assert_eq!(parsed.records.len(), 2);
        assert!(parsed.damaged_header.is_some());
    }

    #[test]
    fn a_file_that_is_no_format_is_unrecognised_never_read_as_another() {
        let mut garbage = vec![0xFF, b'Z', b'Z', b'Z', b'Z', b'Z', b'Z', b'Z'];
        garbage.extend([1; 100]);
        assert!(parse(&garbage).is_err());
        assert!(
            parse(&[b'a'; 141]).is_err(),
            "no whole number of old records"
        );
    }
}
