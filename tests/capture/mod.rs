//! A session recorded at the clients' sockets, and written as a pcap file for Wireshark.
//!
//! Each write of a recorded client and each of its (exact) reads is one TCP segment, so
//! the capture holds the bytes both ways exactly as they crossed the sockets, segmented
//! as the test chose: a frame split over two writes stays split, a burst in one write
//! stays one segment. The file is built by hand, Ethernet II, IPv4 and TCP with true
//! sequence and acknowledgement numbers and checksums, so that Wireshark reassembles it
//! as it would a live capture; timestamps are fixed, so the same session gives the same
//! file.

use crate::common::{connect, read_n};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// Connection `n` of a recording comes from port `FIRST_CLIENT_PORT + n`.
const FIRST_CLIENT_PORT: u16 = 40001;

/// One thing that happened on a connection, in the order it happened.
pub enum Event {
    /// The connection opened (a handshake in the capture).
    Open { conn: usize },
    /// Bytes written by the client (`to_server`) or read by it.
    Data {
        conn: usize,
        to_server: bool,
        bytes: Vec<u8>,
    },
    /// The server ended the stream: `reset` if the client saw a reset, not an end.
    ServerClosed { conn: usize, reset: bool },
    /// The client closed its side.
    ClientClosed { conn: usize },
}

/// Packets a handshake takes in the capture: SYN, SYN-ACK, ACK.
const HANDSHAKE_PACKETS: u32 = 3;

/// Everything the session's clients sent and received, with the frame number each event
/// gets in the capture.
#[derive(Default)]
pub struct Recording {
    events: Vec<Event>,
    /// How many packets the capture holds so far.
    pub packets: u32,
    connections: usize,
}

impl Recording {
    /// Adds `event` and returns the number of its (last) packet in the capture.
    pub fn push(&mut self, event: Event) -> u32 {
        self.packets += match event {
            Event::Open { .. } => HANDSHAKE_PACKETS,
            _ => 1,
        };
        self.events.push(event);
        self.packets
    }

    /// A connection with no socket behind it, for bytes a test writes by hand (frames
    /// no server sends today); returns its number for [`Event::Data`].
    pub fn open_by_hand(&mut self) -> usize {
        let conn = self.connections;
        self.connections += 1;
        self.push(Event::Open { conn });
        conn
    }
}

/// A client connection whose every write and read is recorded, as one TCP segment each.
/// Reads are exact (`read_exact` of what docs/PROTOCOL.md says the replies take), so
/// the segments are the same from run to run.
pub struct Recorded {
    conn: usize,
    stream: TcpStream,
}

impl Recorded {
    pub fn open(recording: &mut Recording, addr: SocketAddr) -> Recorded {
        let conn = recording.open_by_hand();
        Recorded {
            conn,
            stream: connect(addr),
        }
    }

    /// Writes `bytes` in one write; returns its packet's number.
    pub fn send(&mut self, recording: &mut Recording, bytes: &[u8]) -> u32 {
        self.stream
            .write_all(bytes)
            .expect("send to the test server");
        recording.push(Event::Data {
            conn: self.conn,
            to_server: true,
            bytes: bytes.to_vec(),
        })
    }

    /// Reads exactly `n` bytes (one segment in the capture); returns its packet's number.
    pub fn receive(&mut self, recording: &mut Recording, n: usize) -> u32 {
        self.receive_bytes(recording, n).0
    }

    /// As [`Recorded::receive`], and returns the bytes too.
    pub fn receive_bytes(&mut self, recording: &mut Recording, n: usize) -> (u32, Vec<u8>) {
        let bytes = read_n(&mut self.stream, n);
        let frame = recording.push(Event::Data {
            conn: self.conn,
            to_server: false,
            bytes: bytes.clone(),
        });
        (frame, bytes)
    }

    /// Waits for the server to end the stream, which must come next.
    pub fn expect_closed(&mut self, recording: &mut Recording, why: &str) {
        let mut byte = [0; 1];
        let reset = match self.stream.read(&mut byte) {
            Ok(0) => false,
            Ok(_) => panic!("{why}: the server sent more instead of closing the connection"),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => true,
            Err(error) => panic!("{why}: the server did not close the connection: {error}"),
        };
        recording.push(Event::ServerClosed {
            conn: self.conn,
            reset,
        });
    }

    /// Closes the client's side (the socket is dropped).
    pub fn close(self, recording: &mut Recording) {
        recording.push(Event::ClientClosed { conn: self.conn });
    }
}

// The pcap file format (libpcap 2.4, microsecond timestamps) and the headers of each
// packet: Ethernet II, IPv4 without options, TCP without options.
const PCAP_MAGIC: u32 = 0xA1B2_C3D4;
const PCAP_VERSION: (u16, u16) = (2, 4);
const PCAP_SNAPLEN: u32 = 65535;
const LINKTYPE_ETHERNET: u32 = 1;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPV4_VERSION_AND_HEADER_WORDS: u8 = 0x45;
const IPV4_DONT_FRAGMENT: u16 = 0x4000;
const IPV4_TTL: u8 = 64;
const IPPROTO_TCP: u8 = 6;
const IPV4_HEADER_LEN: usize = 20;
const TCP_HEADER_LEN: usize = 20;
/// Where the checksums sit in their headers, and the size of the TCP checksum's pseudo
/// header (source, destination, zero, protocol, length).
const IPV4_CHECKSUM_AT: usize = 10;
const TCP_CHECKSUM_AT: usize = 16;
const PSEUDO_HEADER_LEN: usize = 12;
const TCP_HEADER_WORDS_SHIFTED: u8 = ((TCP_HEADER_LEN / 4) as u8) << 4;
const TCP_WINDOW: u16 = 65535;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
/// The capture's clock: the first packet's time, and the step from one to the next.
const CAPTURE_START_SECS: u32 = 1_764_576_000;
const PACKET_STEP_MICROS: u32 = 1000;
const MICROS_PER_SEC: u32 = 1_000_000;
/// Initial sequence numbers: any will do, different per side so a mix-up shows.
const CLIENT_ISN: u32 = 1_000;
const SERVER_ISN: u32 = 500_000;

/// One side of a TCP connection: its port, and the next sequence number it sends.
#[derive(Clone, Copy)]
struct Side {
    port: u16,
    next_seq: u32,
}

/// The internet checksum (RFC 1071) of `bytes`.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > u32::from(u16::MAX) {
        sum = (sum & u32::from(u16::MAX)) + (sum >> u16::BITS);
    }
    !(sum as u16)
}

/// Writes a pcap file of `recording` with the server on `server_port`.
struct PcapWriter {
    out: Vec<u8>,
    packets: u32,
    ip_id: u16,
}

impl PcapWriter {
    fn new() -> PcapWriter {
        let mut out = Vec::new();
        out.extend(PCAP_MAGIC.to_le_bytes());
        out.extend(PCAP_VERSION.0.to_le_bytes());
        out.extend(PCAP_VERSION.1.to_le_bytes());
        out.extend(0i32.to_le_bytes()); // thiszone: the timestamps are UTC
        out.extend(0u32.to_le_bytes()); // sigfigs
        out.extend(PCAP_SNAPLEN.to_le_bytes());
        out.extend(LINKTYPE_ETHERNET.to_le_bytes());
        PcapWriter {
            out,
            packets: 0,
            ip_id: 0,
        }
    }

    /// One TCP segment from `from` to `to`, acknowledging everything `to` has sent.
    fn segment(&mut self, from: &mut Side, to: &Side, flags: u8, payload: &[u8], to_server: bool) {
        let tcp_len = TCP_HEADER_LEN + payload.len();
        let total = u16::try_from(IPV4_HEADER_LEN + tcp_len).expect("a segment fits in IPv4");
        self.ip_id = self.ip_id.wrapping_add(1);

        let mut ip = Vec::with_capacity(IPV4_HEADER_LEN);
        ip.extend([IPV4_VERSION_AND_HEADER_WORDS, 0]);
        ip.extend(total.to_be_bytes());
        ip.extend(self.ip_id.to_be_bytes());
        ip.extend(IPV4_DONT_FRAGMENT.to_be_bytes());
        ip.extend([IPV4_TTL, IPPROTO_TCP, 0, 0]);
        ip.extend(LOOPBACK);
        ip.extend(LOOPBACK);
        let checksum = internet_checksum(&ip);
        ip[IPV4_CHECKSUM_AT..IPV4_CHECKSUM_AT + 2].copy_from_slice(&checksum.to_be_bytes());

        let ack = if flags & ACK != 0 { to.next_seq } else { 0 };
        let mut tcp = Vec::with_capacity(tcp_len);
        tcp.extend(from.port.to_be_bytes());
        tcp.extend(to.port.to_be_bytes());
        tcp.extend(from.next_seq.to_be_bytes());
        tcp.extend(ack.to_be_bytes());
        tcp.extend([TCP_HEADER_WORDS_SHIFTED, flags]);
        tcp.extend(TCP_WINDOW.to_be_bytes());
        tcp.extend([0, 0, 0, 0]); // checksum, urgent pointer
        tcp.extend(payload);
        let mut pseudo = Vec::with_capacity(PSEUDO_HEADER_LEN + tcp.len());
        pseudo.extend(LOOPBACK);
        pseudo.extend(LOOPBACK);
        pseudo.extend([0, IPPROTO_TCP]);
        pseudo.extend(u16::try_from(tcp_len).unwrap().to_be_bytes());
        pseudo.extend(&tcp);
        let checksum = internet_checksum(&pseudo);
        tcp[TCP_CHECKSUM_AT..TCP_CHECKSUM_AT + 2].copy_from_slice(&checksum.to_be_bytes());

        // SYN and FIN take a sequence number each, as data bytes do.
        let control = u32::from(flags & (SYN | FIN) != 0);
        from.next_seq = from
            .next_seq
            .wrapping_add(u32::try_from(payload.len()).unwrap() + control);

        let (src_mac, dst_mac) = if to_server {
            (CLIENT_MAC, SERVER_MAC)
        } else {
            (SERVER_MAC, CLIENT_MAC)
        };
        let mut frame = Vec::new();
        frame.extend(dst_mac);
        frame.extend(src_mac);
        frame.extend(ETHERTYPE_IPV4.to_be_bytes());
        frame.extend(ip);
        frame.extend(tcp);

        let micros = self.packets * PACKET_STEP_MICROS;
        self.packets += 1;
        let len = u32::try_from(frame.len()).unwrap();
        self.out
            .extend((CAPTURE_START_SECS + micros / MICROS_PER_SEC).to_le_bytes());
        self.out.extend((micros % MICROS_PER_SEC).to_le_bytes());
        self.out.extend(len.to_le_bytes());
        self.out.extend(len.to_le_bytes());
        self.out.extend(frame);
    }
}

/// The capture of `recording` as a pcap file, the server on `server_port`.
pub fn pcap(recording: &Recording, server_port: u16) -> Vec<u8> {
    let mut writer = PcapWriter::new();
    // (client, server) sides of each connection.
    let mut sides: HashMap<usize, (Side, Side)> = HashMap::new();
    for event in &recording.events {
        match event {
            Event::Open { conn } => {
                let offset = u16::try_from(*conn).unwrap();
                let mut client = Side {
                    port: FIRST_CLIENT_PORT + offset,
                    next_seq: CLIENT_ISN,
                };
                let mut server = Side {
                    port: server_port,
                    next_seq: SERVER_ISN,
                };
                writer.segment(&mut client, &server, SYN, &[], true);
                writer.segment(&mut server, &client, SYN | ACK, &[], false);
                writer.segment(&mut client, &server, ACK, &[], true);
                sides.insert(*conn, (client, server));
            }
            Event::Data {
                conn,
                to_server,
                bytes,
            } => {
                let (client, server) = sides.get_mut(conn).unwrap();
                if *to_server {
                    writer.segment(client, server, PSH | ACK, bytes, true);
                } else {
                    writer.segment(server, client, PSH | ACK, bytes, false);
                }
            }
            Event::ServerClosed { conn, reset } => {
                let (client, server) = sides.get_mut(conn).unwrap();
                let flags = if *reset { RST | ACK } else { FIN | ACK };
                writer.segment(server, client, flags, &[], false);
            }
            Event::ClientClosed { conn } => {
                let (client, server) = sides.get_mut(conn).unwrap();
                writer.segment(client, server, FIN | ACK, &[], true);
            }
        }
    }
    assert_eq!(
        writer.packets, recording.packets,
        "every event has its packets"
    );
    writer.out
}
