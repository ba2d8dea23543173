//! The session's buffered reader: the session reads each frame as the article's
//! `pthread_function` does, the 8-byte header and then the body its length announces,
//! with `read_exact`; this reader makes that cheap and safe. It is a `Read` and a
//! `BufRead` like std's `BufReader`, with three things added: it fetches many frames per
//! system call when a client pipelines, its buffer costs an idle client nothing on the
//! heap, and a frame once begun must finish within the frame timeout.
//!
//! Ten thousand idle clients each hold a read buffer, so its size is multiplied: it
//! starts small, enough for any one request a client sends and waits on, and lives
//! inside the reader, on the session thread's stack (whose pages are resident anyway).
//! When a single read fills it, the client is sending faster than we read, and the
//! reader moves to a large heap buffer so that the next reads take dozens of frames at
//! once. Once the client goes quiet (a read comes back short) it moves back.
//!
//! The reader also enforces the frame timeout: once a frame has begun, the rest of it
//! must come within `--frame-timeout`, or the read fails with `TimedOut`. Waiting for the
//! first byte of a frame has no timeout at all (an idle client is not a slow one, and
//! original clients send no keep-alives), so an idle connection costs no wake-ups.
//!
//! Setting the socket's read timeout is a system call, and a pipelining client makes
//! the reader wait for the rest of a frame on almost every read (frames straddle the
//! buffer's end). So the timeout is set to the whole frame timeout once and left there;
//! it is changed only for a frame that needs a second wait (a trickle), and removed only
//! when a wait *between* frames runs into it: then the reader drops it and waits again,
//! with none. An idle connection wakes at most once, a frame timeout after its last
//! frame, and never again.

use crate::online::is_timeout;
use crate::protocol::{HEADER_LEN, Header};
use std::io::{self, BufRead, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A byte source whose reads can be given a time limit: a socket in the server, a plain
/// reader in unit tests.
pub trait TimedRead: Read {
    /// Limits each following read to `timeout`; `None` removes the limit.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

impl TimedRead for &TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

/// The buffer of a client that sends one request at a time: a CHAT request (148 bytes)
/// fits, and this is what 10,000 idle clients multiply.
pub const SMALL_BUFFER_LEN: usize = 256;
/// The buffer of a client that pipelines: about 55 CHAT requests per read.
pub const LARGE_BUFFER_LEN: usize = 8 * 1024;

/// A buffered reader of one client's frames (see the module's documentation).
pub struct FrameReader<R> {
    inner: R,
    /// How long the rest of a frame may take; `None`: forever (unit tests).
    frame_timeout: Option<Duration>,
    /// When the frame being read must be complete; set when the reader first waits for
    /// the rest of a frame, cleared when a new frame begins.
    deadline: Option<Instant>,
    /// The read timeout currently set on the socket.
    socket_timeout: Option<Duration>,
    small: [u8; SMALL_BUFFER_LEN],
    /// Empty while the small buffer is in use; allocated only while a client pipelines
    /// or sends a frame larger than the small buffer.
    large: Vec<u8>,
    /// `buffer()[start..end]` is read but not yet consumed.
    start: usize,
    end: usize,
}

impl<R: TimedRead> FrameReader<R> {
    /// A reader whose frames, once begun, must be complete within `frame_timeout`.
    pub fn new(inner: R, frame_timeout: Option<Duration>) -> FrameReader<R> {
        FrameReader {
            inner,
            frame_timeout,
            deadline: None,
            socket_timeout: None,
            small: [0; SMALL_BUFFER_LEN],
            large: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    /// What has been read and not yet consumed: reading this much cannot block.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer()[self.start..self.end]
    }

    /// True when the buffer starts with a whole frame, so reading it cannot block. A
    /// header with an impossible length counts as whole: it is rejected without reading
    /// further. The session writes out its replies when this is false, before it would
    /// wait for the client.
    pub fn has_whole_frame(&self) -> bool {
        let Some(header) = self.buffered().first_chunk::<HEADER_LEN>() else {
            return false;
        };
        match Header::decode(header).body_len() {
            Some(body_len) => self.buffered().len() >= HEADER_LEN + body_len,
            None => true,
        }
    }

    /// Waits for the next frame to begin: true once at least one byte of it is here,
    /// false at a clean end of the stream (the client closed between frames; the
    /// original's `read` returning 0). Waiting has no timeout: an idle client is not a
    /// slow one. What follows is read with [`Read::read_exact`], within the frame
    /// timeout.
    pub fn wait_for_frame(&mut self) -> io::Result<bool> {
        self.deadline = None;
        if self.start < self.end {
            return Ok(true);
        }
        loop {
            match self.fill() {
                // The timeout left by the last frame: between frames there is none.
                Err(error) if is_timeout(&error) && self.socket_timeout.is_some() => {
                    self.set_socket_timeout(None)?;
                }
                result => return Ok(result? > 0),
            }
        }
    }

    /// Reads more of the current frame, within what is left of the frame timeout. The
    /// clock starts at the first wait for the rest of a frame: that is right after its
    /// first bytes came in, unless the session was busy writing in between.
    fn fill_before_deadline(&mut self) -> io::Result<usize> {
        let Some(frame_timeout) = self.frame_timeout else {
            return self.fill();
        };
        let now = Instant::now();
        let wait = match self.deadline {
            // The first wait of this frame: all of the frame timeout is left.
            None => match now.checked_add(frame_timeout) {
                Some(deadline) => {
                    self.deadline = Some(deadline);
                    frame_timeout
                }
                // A timeout too large to add to the clock is no timeout.
                None => return self.fill(),
            },
            Some(deadline) => deadline.saturating_duration_since(now),
        };
        if wait.is_zero() {
            return Err(frame_timed_out(frame_timeout));
        }
        if self.socket_timeout != Some(wait) {
            self.set_socket_timeout(Some(wait))?;
        }
        match self.fill() {
            Err(error) if is_timeout(&error) => Err(frame_timed_out(frame_timeout)),
            result => result,
        }
    }

    fn set_socket_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)?;
        self.socket_timeout = timeout;
        Ok(())
    }

    fn is_large(&self) -> bool {
        !self.large.is_empty()
    }

    fn buffer(&self) -> &[u8] {
        if self.is_large() {
            &self.large
        } else {
            &self.small
        }
    }

    /// Reads once more into the buffer; returns how many bytes came (0: end). Called
    /// only once everything buffered has been consumed (by `fill_buf` and
    /// `wait_for_frame`), so the read always goes to the front of the buffer.
    fn fill(&mut self) -> io::Result<usize> {
        debug_assert_eq!(self.start, self.end, "fill with bytes still unconsumed");
        self.start = 0;
        self.end = 0;
        // Borrowed field by field, as `inner` is read into the buffer.
        let free = if self.large.is_empty() {
            &mut self.small[..]
        } else {
            &mut self.large[..]
        };
        let read = loop {
            match self.inner.read(free) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        self.end = read;
        if read == SMALL_BUFFER_LEN && !self.is_large() {
            // The client sent more than we could take at once: it is pipelining.
            self.grow();
        } else if read < SMALL_BUFFER_LEN / 2 && self.is_large() {
            // A short read: the burst is over, give the memory back.
            self.small[..read].copy_from_slice(&self.large[..read]);
            self.large = Vec::new();
        }
        Ok(read)
    }

    /// Moves from the small buffer to the large one, keeping what was read. (Bodies
    /// larger than the small buffer need no larger buffer: `read_exact` takes them a
    /// bufferful at a time.)
    fn grow(&mut self) {
        let mut large = vec![0; LARGE_BUFFER_LEN];
        large[..self.end].copy_from_slice(&self.small[..self.end]);
        self.large = large;
    }
}

/// Reading from the current frame: what is buffered first, then the socket, within the
/// frame timeout. The stream ending here is the middle of a frame, so `read_exact`
/// reports it as `UnexpectedEof`.
impl<R: TimedRead> Read for FrameReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let len = available.len().min(out.len());
        out[..len].copy_from_slice(&available[..len]);
        self.consume(len);
        Ok(len)
    }
}

/// An empty slice from `fill_buf` means the stream has ended: every loop over it must
/// stop there, or it spins (the original's bug, which came back once through a loop
/// here that skipped a body this way). The session skips bodies with
/// [`protocol::skip`](crate::protocol::skip), which stops at the end of the stream.
impl<R: TimedRead> BufRead for FrameReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.fill_before_deadline()?;
        }
        Ok(self.buffered())
    }

    fn consume(&mut self, len: usize) {
        self.start = (self.start + len).min(self.end);
    }
}

fn frame_timed_out(frame_timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "timed out: the rest of a frame did not arrive within {} s",
            frame_timeout.as_secs_f64()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next `len` bytes, as the session reads a header or a body.
    fn read_n(reader: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; len];
        reader.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    /// A reader that hands out at most `step` bytes per call, as a socket may.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    /// Readers in memory have nothing to time out.
    impl TimedRead for Trickle<'_> {
        fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
    }

    impl TimedRead for Chunks {
        fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn takes_reassemble_frames_split_across_reads() {
        let data: Vec<u8> = (0..=255).cycle().take(2000).collect();
        for step in [1, 7, 148, 511, 4096] {
            let mut reader = FrameReader::new(Trickle { data: &data, step }, None);
            let mut got = Vec::new();
            for len in [8, 140, 8, 40, 1000, 804] {
                got.extend_from_slice(&read_n(&mut reader, len).unwrap());
            }
            assert_eq!(got, data, "step {step}");
            assert!(!reader.wait_for_frame().unwrap());
        }
    }

    #[test]
    fn a_stream_ending_mid_frame_is_unexpected_eof() {
        let mut reader = FrameReader::new(
            Trickle {
                data: &[1, 2, 3],
                step: 2,
            },
            None,
        );
        assert!(reader.wait_for_frame().unwrap());
        let error = read_n(&mut reader, 8).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// A reader that hands out one chunk (or as much of it as fits) per call.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let Some(chunk) = self.0.first_mut() else {
                return Ok(0);
            };
            let n = chunk.len().min(out.len());
            out[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn the_buffer_grows_for_a_pipelining_client_and_shrinks_when_it_goes_quiet() {
        let mut reader = FrameReader::new(Chunks(vec![vec![1; 1000], vec![2; 100]]), None);
        read_n(&mut reader, 512).unwrap();
        assert_eq!(
            reader.buffer().len(),
            LARGE_BUFFER_LEN,
            "a full read means pipelining"
        );
        assert_eq!(read_n(&mut reader, 488).unwrap(), [1; 488]);
        assert_eq!(reader.buffer().len(), LARGE_BUFFER_LEN);
        assert_eq!(read_n(&mut reader, 100).unwrap(), [2; 100]);
        assert_eq!(
            reader.buffer().len(),
            SMALL_BUFFER_LEN,
            "a short read: quiet again"
        );
        assert_eq!(reader.large.capacity(), 0, "the heap buffer is given back");
    }

    /// A client that sends a request and waits for the reply, as a chat client does, is
    /// read into the small buffer and costs no heap buffer: only a read that fills the
    /// small buffer means pipelining, not any read while the buffer is small.
    #[test]
    fn a_client_sending_one_request_at_a_time_keeps_the_small_buffer() {
        use crate::protocol::{CHAT_BODY_LEN, Kind, LOGIN_BODY_LEN, request};
        let login = request(Kind::Login, &[1; LOGIN_BODY_LEN]);
        let chat = request(Kind::Chat, &[2; CHAT_BODY_LEN]);
        // The largest read that does not fill the small buffer.
        let almost_full = vec![3; SMALL_BUFFER_LEN - 1];
        let requests = [login, chat, almost_full];
        let mut reader = FrameReader::new(Chunks(requests.to_vec()), None);
        for request in &requests {
            assert!(reader.wait_for_frame().unwrap());
            assert_eq!(read_n(&mut reader, request.len()).unwrap(), *request);
            assert!(
                !reader.is_large(),
                "a read of {} bytes into the small buffer is not pipelining",
                request.len()
            );
            assert_eq!(reader.large.capacity(), 0, "no heap buffer");
        }
        assert!(!reader.wait_for_frame().unwrap());
    }

    #[test]
    fn a_pipelining_client_is_read_a_large_bufferful_at_a_time_and_nothing_is_lost() {
        let burst: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = FrameReader::new(Chunks(vec![burst.clone()]), None);
        assert_eq!(read_n(&mut reader, 1).unwrap(), burst[..1]);
        assert_eq!(
            reader.buffered().len(),
            SMALL_BUFFER_LEN - 1,
            "the first read"
        );
        read_n(&mut reader, SMALL_BUFFER_LEN).unwrap();
        assert_eq!(
            reader.buffered().len(),
            LARGE_BUFFER_LEN - 1,
            "then a large bufferful per read"
        );
        let chat_request = HEADER_LEN + crate::protocol::CHAT_BODY_LEN;
        assert!(
            LARGE_BUFFER_LEN / chat_request >= 50,
            "a large buffer takes dozens of CHAT requests per read"
        );
        let mut rest = read_n(&mut reader, 20_000 - 1 - SMALL_BUFFER_LEN).unwrap();
        rest.splice(0..0, burst[..1 + SMALL_BUFFER_LEN].iter().copied());
        assert_eq!(rest, burst, "every byte, in order");
    }

    #[test]
    fn the_large_buffer_is_given_back_after_a_read_of_less_than_half_the_small_one() {
        for (short, stays_large) in [
            (SMALL_BUFFER_LEN / 2 - 1, false),
            (SMALL_BUFFER_LEN / 2, true),
        ] {
            let mut reader = FrameReader::new(
                Chunks(vec![vec![1; SMALL_BUFFER_LEN], vec![2; short]]),
                None,
            );
            read_n(&mut reader, SMALL_BUFFER_LEN).unwrap();
            assert_eq!(read_n(&mut reader, short).unwrap(), vec![2; short]);
            assert_eq!(
                reader.is_large(),
                stays_large,
                "after a read of {short} bytes"
            );
        }
    }

    #[test]
    fn a_reset_between_frames_is_an_error_even_with_a_timeout_left_set() {
        // A socket reports a reset once; the next read sees the end of the stream.
        struct ResetOnce(Vec<io::Result<usize>>, Option<Duration>);
        impl Read for ResetOnce {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                match self.0.remove(0) {
                    Ok(n) => {
                        out[..n].fill(1);
                        Ok(n)
                    }
                    error => error,
                }
            }
        }
        impl TimedRead for ResetOnce {
            fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
                self.1 = timeout;
                Ok(())
            }
        }
        let reads = vec![
            Ok(4),
            Ok(4),
            Err(io::ErrorKind::ConnectionReset.into()),
            Ok(0),
        ];
        let mut reader = FrameReader::new(ResetOnce(reads, None), Some(Duration::from_secs(1)));
        assert!(reader.wait_for_frame().unwrap());
        read_n(&mut reader, 8).unwrap();
        assert!(
            reader.inner.1.is_some(),
            "a straddled frame left a timeout set"
        );
        let error = reader.wait_for_frame().unwrap_err();
        assert_eq!(
            error.kind(),
            io::ErrorKind::ConnectionReset,
            "not a clean end"
        );
    }

    #[test]
    fn an_interrupted_read_is_retried() {
        struct InterruptedOnce(bool, Trickle<'static>);
        impl Read for InterruptedOnce {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if !std::mem::replace(&mut self.0, true) {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                self.1.read(out)
            }
        }
        impl TimedRead for InterruptedOnce {
            fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
                Ok(())
            }
        }
        let source = InterruptedOnce(
            false,
            Trickle {
                data: &[5; 8],
                step: 8,
            },
        );
        let mut reader = FrameReader::new(source, None);
        assert!(reader.wait_for_frame().unwrap(), "a signal is not the end");
        assert_eq!(read_n(&mut reader, 8).unwrap(), [5; 8]);
    }

    #[test]
    fn a_body_larger_than_the_small_buffer_is_read_whole() {
        let big = vec![9u8; 4096];
        let mut reader = FrameReader::new(
            Trickle {
                data: &big,
                step: 300,
            },
            None,
        );
        assert_eq!(read_n(&mut reader, 4096).unwrap().len(), 4096);
    }

    #[test]
    fn a_frame_begun_and_not_finished_times_out_and_an_idle_wait_does_not() {
        use std::io::Write;
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let timeout = Duration::from_millis(100);
        let mut reader = FrameReader::new(&server, Some(timeout));

        // A whole frame: no timeout is ever set.
        client.write_all(&[1; 8]).unwrap();
        assert!(reader.wait_for_frame().unwrap());
        read_n(&mut reader, 8).unwrap();
        assert_eq!(server.read_timeout().unwrap(), None);

        // A frame in two pieces: the second read has a timeout...
        client.write_all(&[2; 4]).unwrap();
        assert!(reader.wait_for_frame().unwrap());
        client.write_all(&[2; 4]).unwrap();
        assert_eq!(read_n(&mut reader, 8).unwrap(), [2; 8]);
        assert_eq!(server.read_timeout().unwrap(), Some(timeout));
        // ...and a wait between frames outlasts it: the next frame comes three frame
        // timeouts later, and is read.
        let late = std::thread::spawn(move || {
            std::thread::sleep(timeout * 3);
            client.write_all(&[3; 8]).unwrap();
            client
        });
        assert!(reader.wait_for_frame().unwrap());
        assert_eq!(read_n(&mut reader, 8).unwrap(), [3; 8]);
        let mut client = late.join().unwrap();
        assert_eq!(
            server.read_timeout().unwrap(),
            None,
            "dropped between frames"
        );

        // Half a header, then silence.
        client.write_all(&[4; 4]).unwrap();
        assert!(reader.wait_for_frame().unwrap());
        let error = read_n(&mut reader, 8).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(error.to_string().contains("did not arrive"), "{error}");
    }

    #[test]
    fn a_whole_frame_is_recognised_only_when_all_of_it_is_buffered() {
        let chat = crate::protocol::request(crate::protocol::Kind::Chat, &[0; 140]);
        let whole = |bytes: &[u8]| {
            let mut reader = FrameReader::new(Chunks(vec![bytes.to_vec()]), None);
            reader.wait_for_frame().unwrap();
            reader.has_whole_frame()
        };
        assert!(whole(&chat));
        assert!(!whole(&chat[..chat.len() - 1]));
        assert!(!whole(&chat[..4]));
        assert!(
            whole(&[1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
            "an impossible length"
        );
    }
}

/// The reader against any stream: any frames, split into any chunks, cut at any byte by
/// the end of the stream, a reset or a stall. Checked by `proptest` on many random
/// cases; a spin shows as a read budget exceeded, not as a hung test.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::protocol::{self, MAX_BODY_LEN};
    use proptest::prelude::*;
    use std::collections::VecDeque;

    /// How a scripted stream ends once its chunks are used up.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ending {
        /// The peer closed: reads return 0.
        Eof,
        /// The peer reset the connection.
        Reset,
        /// The peer sends nothing more: a read with a timeout times out, one without
        /// would block forever (reported as [`BLOCKED_FOREVER`]).
        Stall,
    }

    /// What a read without a timeout on a stalled stream reports: in a real socket the
    /// thread would sleep, costing nothing, which is right between frames.
    const BLOCKED_FOREVER: &str = "would block forever";

    /// A stream that hands out `chunks` (as much of the first as fits per read), then
    /// ends as `ending` says; it counts reads and fails the test past `budget`.
    struct Scripted {
        chunks: VecDeque<Vec<u8>>,
        ending: Ending,
        timeout: Option<Duration>,
        reads: usize,
        budget: usize,
    }

    impl Read for Scripted {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            assert!(
                self.reads <= self.budget,
                "{} reads for a stream of this size: a loop without progress",
                self.reads
            );
            let Some(chunk) = self.chunks.front_mut() else {
                return match (self.ending, self.timeout) {
                    (Ending::Eof, _) => Ok(0),
                    (Ending::Reset, _) => Err(io::ErrorKind::ConnectionReset.into()),
                    (Ending::Stall, Some(_)) => Err(io::ErrorKind::WouldBlock.into()),
                    (Ending::Stall, None) => Err(io::Error::other(BLOCKED_FOREVER)),
                };
            };
            let len = chunk.len().min(out.len());
            out[..len].copy_from_slice(&chunk[..len]);
            chunk.drain(..len);
            if chunk.is_empty() {
                self.chunks.pop_front();
            }
            Ok(len)
        }
    }

    impl TimedRead for Scripted {
        fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            self.timeout = timeout;
            Ok(())
        }
    }

    /// A frame as a client sends it: a header of any type announcing its body, and
    /// whether the session reads the body or skips it.
    fn frame() -> impl Strategy<Value = (i32, Vec<u8>, bool)> {
        let body = prop_oneof![
            8 => proptest::collection::vec(any::<u8>(), 0..300),
            1 => proptest::collection::vec(any::<u8>(), 300..=MAX_BODY_LEN),
        ];
        (any::<i32>(), body, any::<bool>())
    }

    /// Reads frames as the session does until something ends the stream: the bodies it
    /// read (or `None` for a skipped one), and how it ended.
    fn read_as_the_session_does(
        reader: &mut FrameReader<Scripted>,
        skips: &[bool],
    ) -> (Vec<Option<Vec<u8>>>, io::Result<()>) {
        let mut bodies = Vec::new();
        for &skip in skips.iter().chain(std::iter::repeat(&false)) {
            match reader.wait_for_frame() {
                Ok(true) => {}
                Ok(false) => return (bodies, Ok(())),
                Err(error) => return (bodies, Err(error)),
            }
            let mut header = [0; HEADER_LEN];
            if let Err(error) = reader.read_exact(&mut header) {
                return (bodies, Err(error));
            }
            let len = Header::decode(&header)
                .body_len()
                .expect("generated lengths fit");
            if skip {
                if let Err(error) = protocol::skip(reader, len) {
                    return (bodies, Err(error));
                }
                bodies.push(None);
            } else {
                let mut body = vec![0; len];
                if let Err(error) = reader.read_exact(&mut body) {
                    return (bodies, Err(error));
                }
                bodies.push(Some(body));
            }
        }
        unreachable!("the loop ends at the end of the stream")
    }

    /// The seed of every run (see `property_tests` in lib.rs).
    const SEED: u64 = 0xF4A3_E0EA_DE45;

    proptest! {
        #![proptest_config(crate::property_tests::config(SEED))]
        #[test]
        fn any_frames_in_any_chunks_cut_anywhere_give_exactly_the_frames_then_the_right_error(
            frames in proptest::collection::vec(frame(), 0..12),
            cut_at in any::<proptest::sample::Index>(),
            chunk_lens in proptest::collection::vec(1usize..600, 1..40),
            ending in prop_oneof![Just(Ending::Eof), Just(Ending::Reset), Just(Ending::Stall)],
        ) {
            let mut wire = Vec::new();
            let mut boundaries = vec![0];
            for (kind, body, _) in &frames {
                wire.extend(protocol::request(protocol::Kind::from_wire(*kind), body));
                boundaries.push(wire.len());
            }
            let cut = cut_at.index(wire.len() + 1);
            let mut chunks = VecDeque::new();
            let mut rest = &wire[..cut];
            for &len in chunk_lens.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(len.min(rest.len()));
                chunks.push_back(chunk.to_vec());
                rest = tail;
            }
            let stream = Scripted {
                budget: chunks.len() * 2 + cut / SMALL_BUFFER_LEN + 4,
                chunks,
                ending,
                timeout: None,
                reads: 0,
            };
            let mut reader = FrameReader::new(stream, Some(Duration::from_secs(1)));
            let skips: Vec<bool> = frames.iter().map(|(_, _, skip)| *skip).collect();
            let (bodies, end) = read_as_the_session_does(&mut reader, &skips);

            // Exactly the frames wholly before the cut, in order.
            let whole = boundaries.iter().filter(|&&b| b > 0 && b <= cut).count();
            prop_assert_eq!(bodies.len(), whole);
            for ((_, body, skip), got) in frames.iter().zip(&bodies) {
                prop_assert_eq!(got, &(!skip).then(|| body.clone()));
            }
            // Then the error the cut deserves.
            let between_frames = boundaries.contains(&cut);
            match (ending, between_frames, end) {
                (Ending::Eof, true, Ok(())) => {}
                (Ending::Eof, false, Err(error)) => {
                    prop_assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof)
                }
                (Ending::Reset, _, Err(error)) => {
                    prop_assert_eq!(error.kind(), io::ErrorKind::ConnectionReset)
                }
                (Ending::Stall, true, Err(error)) => {
                    prop_assert_eq!(error.to_string(), BLOCKED_FOREVER, "waits without a timeout")
                }
                (Ending::Stall, false, Err(error)) => {
                    prop_assert_eq!(error.kind(), io::ErrorKind::TimedOut)
                }
                (ending, between_frames, end) => prop_assert!(
                    false,
                    "{ending:?} at a boundary: {between_frames}, ended with {end:?}"
                ),
            }
        }
    }
}
