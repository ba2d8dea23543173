//! No leaks, no spin: however abruptly clients go, their threads end, the online map
//! forgets them, and an idle server uses no CPU. One test in this file on purpose: it
//! counts the threads of this whole process, so nothing else may run beside it.

mod common;

use common::*;
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

/// User plus system CPU time of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn abrupt_disconnects_leave_no_threads_no_online_users_and_no_spin() {
    let server = start();
    let baseline = thread_count();
    let mut watcher = logged_in(server.addr(), "花开富贵");

    for round in 0..5 {
        // EOF between frames.
        let mut polite = connect(server.addr());
        raw_login(&mut polite, "1001");
        drop(polite);
        // EOF in the middle of a frame.
        let mut cut = connect(server.addr());
        raw_login(&mut cut, "1002");
        send(&mut cut, &chat_frame("1002", "1001", "cut")[..70]);
        drop(cut);
        // A reset: closing with unread data makes the kernel send RST.
        let mut reset = connect(server.addr());
        raw_login(&mut reset, "1003");
        // Two echoes written together: once the first is read, the second is unread.
        send(&mut reset, &chat_frame("1003", "1003", "one").repeat(2));
        read_n(&mut reset, 152);
        drop(reset);
        // Half-open: we stop sending but keep the socket.
        let mut half = connect(server.addr());
        raw_login(&mut half, "似末");
        half.shutdown(Shutdown::Write).unwrap();
        assert!(closed_by_server(&mut half), "round {round}");
        // Never logged in, sends nothing.
        drop(connect(server.addr()));
    }

    // +1 for the watcher's session thread.
    assert_threads_return_to(baseline + 1, "the watcher's thread remains");
    watcher.send_users().unwrap();
    assert_eq!(
        watcher.read_reply().unwrap(),
        chatroom::blocking_client::Reply::Users {
            flag: 1,
            names: vec!["花开富贵".to_string()]
        },
        "everyone else is gone from the online map"
    );

    // Idle: a thread left spinning would burn the whole window.
    let before = cpu_ticks();
    thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks() - before;
    assert!(used < 10, "{used} ticks of CPU in half a second of idling");

    drop(watcher);
    assert_threads_return_to(baseline, "everyone gone");
}
