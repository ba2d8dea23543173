//! Reading whole frames from a socket, many per system call when the client pipelines,
//! with a buffer that costs an idle client almost nothing.
//!
//! Ten thousand idle clients each hold a read buffer, so its size is multiplied: it
//! starts small, enough for any one request a client sends and waits on. When a single
//! read fills it, the client is sending faster than we read, and the buffer grows so
//! that the next reads take dozens of frames at once. Once the client goes quiet (the
//! buffer runs empty and a read comes back short) it shrinks again.

use std::io::{self, Read};

/// The buffer of a client that sends one request at a time: a CHAT request (148 bytes)
/// fits, and this is what 10,000 idle clients multiply.
pub const SMALL_BUFFER_LEN: usize = 256;
/// The buffer of a client that pipelines: about 55 CHAT requests per read.
pub const LARGE_BUFFER_LEN: usize = 8 * 1024;

pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// `buf[start..end]` is read but not yet consumed.
    start: usize,
    end: usize,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: vec![0; SMALL_BUFFER_LEN],
            start: 0,
            end: 0,
        }
    }

    /// What has been read and not yet consumed: reading this much cannot block.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// True at a clean end of the stream: nothing buffered and the peer closed its side.
    /// Blocks until there is at least one byte or the end.
    pub fn at_end(&mut self) -> io::Result<bool> {
        if self.start < self.end {
            return Ok(false);
        }
        Ok(self.fill()? == 0)
    }

    /// The next `len` bytes, reading as needed; `UnexpectedEof` if the stream ends first.
    pub fn take(&mut self, len: usize) -> io::Result<&[u8]> {
        while self.end - self.start < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a frame",
                ));
            }
        }
        let taken = self.start..self.start + len;
        self.start += len;
        Ok(&self.buf[taken])
    }

    /// Reads once more into the free space; returns how many bytes came (0: end).
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            // Move the partial frame to the front, making room behind it.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A frame larger than the small buffer (bodies go up to 4096 bytes).
            self.buf.resize(LARGE_BUFFER_LEN.max(self.end * 2), 0);
        }
        let read = loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        self.end += read;
        if self.end == self.buf.len() && self.buf.len() < LARGE_BUFFER_LEN {
            // The client sent more than we could take at once: it is pipelining.
            self.buf.resize(LARGE_BUFFER_LEN, 0);
        } else if self.end < SMALL_BUFFER_LEN / 2 && self.buf.len() > SMALL_BUFFER_LEN {
            // A short read into a large buffer: the burst is over, give the memory back.
            self.buf.truncate(SMALL_BUFFER_LEN);
            self.buf.shrink_to_fit();
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, as a socket may.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
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
            let mut reader = FrameReader::new(Trickle { data: &data, step });
            let mut got = Vec::new();
            for len in [8, 140, 8, 40, 1000, 804] {
                got.extend_from_slice(reader.take(len).unwrap());
            }
            assert_eq!(got, data, "step {step}");
            assert!(reader.at_end().unwrap());
        }
    }

    #[test]
    fn a_stream_ending_mid_frame_is_unexpected_eof() {
        let mut reader = FrameReader::new(Trickle {
            data: &[1, 2, 3],
            step: 2,
        });
        assert!(!reader.at_end().unwrap());
        let error = reader.take(8).unwrap_err();
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
        let mut reader = FrameReader::new(Chunks(vec![vec![1; 1000], vec![2; 100]]));
        reader.take(512).unwrap();
        assert_eq!(
            reader.buf.len(),
            LARGE_BUFFER_LEN,
            "a full read means pipelining"
        );
        assert_eq!(reader.take(488).unwrap(), &[1; 488][..]);
        assert_eq!(reader.buf.len(), LARGE_BUFFER_LEN);
        assert_eq!(reader.take(100).unwrap(), &[2; 100][..]);
        assert_eq!(
            reader.buf.len(),
            SMALL_BUFFER_LEN,
            "a short read: quiet again"
        );
    }

    #[test]
    fn a_body_larger_than_the_small_buffer_is_read_whole() {
        let big = vec![9u8; 4096];
        let mut reader = FrameReader::new(Trickle {
            data: &big,
            step: 300,
        });
        assert_eq!(reader.take(4096).unwrap().len(), 4096);
    }
}
