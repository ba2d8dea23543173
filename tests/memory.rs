//! What a client that pipelines requests without reading the replies can make the
//! server hold: a bounded outbox, whatever the request. One test in this file on
//! purpose: it reads the peak memory (VmHWM) of this whole process, so nothing else
//! may run beside it.

mod common;

use common::*;
use std::io::Write;
use std::thread;

const ONLINE: usize = 1_000;
const PIPELINERS: usize = 4;
const REQUESTS: usize = 3_000;
/// The peak may grow by this much. Without a bound on unsent replies, the server holds
/// the replies to every request it reads in one go (an 8 KiB read is 1,024 of them):
/// 4 × 1,024 × (12 + 20 × 1,000) bytes, about 78 MiB; with the bound, 4 × 64 KiB and
/// one reply each.
const ALLOWED_GROWTH_KIB: u64 = 24 * 1024;

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn clients_pipelining_users_without_reading_cost_the_server_a_bounded_outbox() {
    let server = start_with(numbered_users("u", ONLINE), |_| {});
    let addr = server.addr();
    let mut online: Vec<_> = (0..ONLINE)
        .map(|i| raw_logged_in(addr, &format!("u{i}")))
        .collect();
    let before = peak_rss_kib();

    let pipeliners: Vec<_> = online
        .drain(..PIPELINERS)
        .map(|mut stream| {
            thread::spawn(move || {
                // Every request at once, and only then read the replies.
                let requests = ints(&[3, 0]).repeat(REQUESTS);
                stream.write_all(&requests).unwrap();
                for i in 0..REQUESTS {
                    // Others may leave meanwhile (a pipeliner done before us): the
                    // length is whatever the header says.
                    let header = read_n(&mut stream, 12);
                    assert_eq!(
                        [header[..4].to_vec(), header[8..].to_vec()],
                        [ints(&[3]), ints(&[1])],
                        "reply {i}"
                    );
                    let len = i32::from_le_bytes(header[4..8].try_into().unwrap());
                    read_n(&mut stream, len as usize);
                }
            })
        })
        .collect();
    for pipeliner in pipeliners {
        pipeliner.join().expect("every reply arrives");
    }

    let grown = peak_rss_kib().saturating_sub(before);
    assert!(
        grown < ALLOWED_GROWTH_KIB,
        "the peak grew by {grown} KiB while {PIPELINERS} clients pipelined {REQUESTS} USERS"
    );
}
