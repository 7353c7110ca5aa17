//! Opening inputs as byte streams: local files or objects, plain or gzip.

use std::io::{BufReader, Read};

use futures::TryStreamExt as _;
use ipi_storage::{Location, ObjectStoreExt as _};

/// Read buffer size for inputs.
const BUFFER: usize = 1 << 20;

/// Open `location` for blocking reads, decompressing gzip (detected from
/// the first two bytes, so a misnamed file still reads; multi-member gzip,
/// as `cat a.gz b.gz` makes, is read whole).
///
/// Must be called from a thread that may block (not an async worker); object
/// store reads are driven on `handle`.
pub fn open(
    location: &Location,
    handle: &tokio::runtime::Handle,
) -> std::io::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = match location.as_local_path() {
        Some(path) => Box::new(std::fs::File::open(&path)?),
        None => {
            let store = location.store();
            let path = location.path().clone();
            let result = handle.block_on(store.get(&path)).map_err(std::io::Error::other)?;
            let stream = result.into_stream().map_err(std::io::Error::other);
            let reader = tokio_util::io::StreamReader::new(stream);
            Box::new(tokio_util::io::SyncIoBridge::new_with_handle(reader, handle.clone()))
        }
    };
    // Look at the first two bytes, then put them back in front. A plain
    // input is read with no buffer of ours in between: the chunker's reads
    // are large, and a buffer would copy every byte once more.
    let mut raw = raw;
    let mut head = [0u8; 2];
    let mut filled = 0;
    while filled < head.len() {
        match raw.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let stream = std::io::Cursor::new(head).take(filled as u64).chain(raw);
    if head[..filled] == [0x1f, 0x8b] {
        let buffered = BufReader::with_capacity(BUFFER, stream);
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
    } else {
        Ok(Box::new(stream))
    }
}

/// A run of whole lines cut from an input.
#[derive(Debug)]
pub struct Chunk {
    /// Position of the chunk in its input, from 0.
    pub seq: u64,
    /// The 1-based number of the chunk's first line.
    pub first_line: u64,
    /// The lines, each ending in `\n` except perhaps the input's last.
    pub bytes: Vec<u8>,
}

/// Cuts a byte stream into chunks of about `target` bytes at line
/// boundaries. A line longer than `target` makes a longer chunk; nothing is
/// ever split mid-line.
#[derive(Debug)]
pub struct Chunker<R> {
    reader: R,
    target: usize,
    carry: Vec<u8>,
    seq: u64,
    next_line: u64,
    done: bool,
    /// Buffers of chunks already parsed, to fill again: fresh ones cost a
    /// page fault per 4 KiB.
    spare: Vec<Vec<u8>>,
    /// Bytes read from the (decompressed) stream so far.
    pub bytes_read: u64,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader`.
    pub fn new(reader: R, target: usize) -> Chunker<R> {
        Chunker {
            reader,
            target: target.max(1),
            carry: Vec::new(),
            seq: 0,
            next_line: 1,
            done: false,
            spare: Vec::new(),
            bytes_read: 0,
        }
    }

    /// Hand back a chunk's buffer once it is parsed, to be filled again.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < 8 {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// The next chunk, `None` at the end.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        loop {
            let filled = buf.len();
            if filled >= self.target
                && let Some(last_newline) = memchr::memrchr(b'\n', &buf)
            {
                self.carry.extend_from_slice(&buf[last_newline + 1..]);
                buf.truncate(last_newline + 1);
                return Ok(Some(self.emit(buf)));
            }
            // Read into spare capacity: `read_to_end` does not zero it first.
            let want = (filled.max(self.target) + self.target / 4 + 1 - filled) as u64;
            buf.reserve(want as usize);
            // (`read_to_end` retries interrupted reads itself.)
            let n = (&mut self.reader).take(want).read_to_end(&mut buf)?;
            self.bytes_read += n as u64;
            if n == 0 {
                self.done = true;
                return Ok((!buf.is_empty()).then(|| self.emit(buf)));
            }
        }
    }

    fn emit(&mut self, bytes: Vec<u8>) -> Chunk {
        let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
        let ends_open = !bytes.ends_with(b"\n");
        let chunk = Chunk { seq: self.seq, first_line: self.next_line, bytes };
        self.seq += 1;
        self.next_line += lines + u64::from(ends_open);
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(input: &[u8], target: usize) -> Vec<Chunk> {
        let mut chunker = Chunker::new(input, target);
        let mut out = Vec::new();
        while let Some(chunk) = chunker.next_chunk().unwrap() {
            out.push(chunk);
        }
        out
    }

    #[test]
    fn cuts_only_at_line_ends_and_numbers_lines() {
        let input = b"a\nbb\nccc\ndddd\ne";
        for target in 1..20 {
            let got = chunks(input, target);
            let joined: Vec<u8> = got.iter().flat_map(|c| c.bytes.clone()).collect();
            assert_eq!(joined, input, "target {target}");
            for chunk in &got[..got.len() - 1] {
                assert!(chunk.bytes.ends_with(b"\n"));
            }
            // Each chunk's first line number matches its position.
            for chunk in &got {
                let offset = joined.len()
                    - got
                        .iter()
                        .skip_while(|c| c.seq != chunk.seq)
                        .map(|c| c.bytes.len())
                        .sum::<usize>();
                let before = joined[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
                assert_eq!(chunk.first_line, before + 1);
            }
        }
        assert!(chunks(b"", 4).is_empty());
    }
}
