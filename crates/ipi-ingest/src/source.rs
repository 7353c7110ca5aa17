//! Opening inputs and cutting them into chunks of whole lines: local files
//! or objects, plain or gzip. A local plain file is memory-mapped and cut in
//! place; everything else is read as a stream into buffers of ours.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::{Deref, Range};
use std::sync::Arc;

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
        Some(path) => Box::new(File::open(&path)?),
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

/// Chunk size of a mapped file, unless asked otherwise. Against 4 MiB, 4%
/// less wall time on the 10,000-user login log (sorted by user, so each
/// chunk holds ten days and makes a batch for each: longer batches cost the
/// writer less a row), for 11 MiB more peak memory; 32 MiB saved 2.5% more
/// for 30 MiB more.
const MAPPED_CHUNK: usize = 16 << 20;

/// Chunk size of a stream, unless asked otherwise. A streamed chunk is a
/// buffer of ours, and a window of them is read ahead while others parse:
/// at 16 MiB a gzip of the same log peaked at 500 MiB rather than 260,
/// and was no faster (gunzip on the reader thread sets the pace).
const STREAM_CHUNK: usize = 4 << 20;

/// Open `location` and cut it into chunks of about `target` bytes
/// ([`MAPPED_CHUNK`] or [`STREAM_CHUNK`] when `None`). A local file that
/// is not gzip is memory-mapped when `map` allows, a window at a time, so
/// its bytes are parsed where the page cache holds them instead of being
/// copied into buffers first (a tenth of an ingest's CPU time went on that
/// copy); anything else is read as a stream by [`open`].
pub fn chunks(
    location: &Location,
    handle: &tokio::runtime::Handle,
    target: Option<usize>,
    map: bool,
) -> std::io::Result<Chunks> {
    if map && let Some(path) = location.as_local_path() {
        let mut file = File::open(&path)?;
        let meta = file.metadata()?;
        if meta.is_file() && meta.len() >= 2 {
            let mut head = [0u8; 2];
            file.read_exact(&mut head)?;
            if head != [0x1f, 0x8b] {
                let target = target.unwrap_or(MAPPED_CHUNK);
                return Ok(Chunks::Mapped(MappedChunker::new(file, meta.len(), target, WINDOW)));
            }
        }
    }
    let target = target.unwrap_or(STREAM_CHUNK);
    Ok(Chunks::Stream(Chunker::new(open(location, handle)?, target)))
}

/// A run of whole lines cut from an input.
#[derive(Debug)]
pub struct Chunk {
    /// Position of the chunk in its input, from 0. Chunks are not told
    /// their first line's number: counting lines here took a pass over every
    /// byte on the one reader thread (an eighth of an ingest's CPU time), so
    /// the parser numbers a chunk's lines from 1 and the run shifts them
    /// once the chunks before are parsed ([`crate::batch::ParsedChunk::renumber`]).
    pub seq: u64,
    /// The lines, each ending in `\n` except perhaps the input's last.
    pub bytes: ChunkBytes,
}

/// Where a chunk's bytes are: in a buffer read from a stream, or in a
/// mapped file.
#[derive(Debug)]
pub enum ChunkBytes {
    Buffer(Vec<u8>),
    Mapped { map: Arc<memmap2::Mmap>, range: Range<usize> },
}

impl ChunkBytes {
    /// Drops the first `n` bytes (a table's header line).
    pub fn advance(&mut self, n: usize) {
        match self {
            ChunkBytes::Buffer(buffer) => drop(buffer.drain(..n.min(buffer.len()))),
            ChunkBytes::Mapped { range, .. } => range.start = range.end.min(range.start + n),
        }
    }

    /// The buffer, to be filled again; `None` for a mapped chunk.
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self {
            ChunkBytes::Buffer(buffer) => Some(buffer),
            ChunkBytes::Mapped { .. } => None,
        }
    }
}

impl From<Vec<u8>> for ChunkBytes {
    fn from(buffer: Vec<u8>) -> ChunkBytes {
        ChunkBytes::Buffer(buffer)
    }
}

impl Deref for ChunkBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ChunkBytes::Buffer(buffer) => buffer,
            ChunkBytes::Mapped { map, range } => &map[range.clone()],
        }
    }
}

/// An input's chunks, from a stream or a mapped file.
pub enum Chunks {
    Stream(Chunker<Box<dyn Read + Send>>),
    Mapped(MappedChunker),
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chunks::Stream(chunker) => f.debug_tuple("Stream").field(&chunker.bytes_read).finish(),
            Chunks::Mapped(chunker) => f.debug_tuple("Mapped").field(&chunker.pos).finish(),
        }
    }
}

impl Chunks {
    /// The next chunk, `None` at the end.
    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        match self {
            Chunks::Stream(chunker) => chunker.next_chunk(),
            Chunks::Mapped(chunker) => chunker.next_chunk(),
        }
    }

    /// Hands back a parsed chunk's bytes; a buffer is filled again.
    pub fn recycle(&mut self, bytes: ChunkBytes) {
        if let (Chunks::Stream(chunker), Some(buffer)) = (self, bytes.into_buffer()) {
            chunker.recycle(buffer);
        }
    }

    /// Bytes read so far (after decompression).
    pub fn bytes_read(&self) -> u64 {
        match self {
            Chunks::Stream(chunker) => chunker.bytes_read,
            Chunks::Mapped(chunker) => chunker.bytes_read(),
        }
    }
}

/// Bytes of a file mapped at once. Pages of a mapping count as the
/// process's resident memory until it is unmapped, so a file is mapped a
/// window at a time: this bounds what an ingest holds to the window and
/// the chunks still being parsed, whatever the file's size.
const WINDOW: usize = 32 << 20;

/// Cuts a local file into chunks of about `target` bytes at line
/// boundaries, as [`Chunker`] does a stream, but copying nothing: each chunk
/// is a range of a mapped window of the file.
#[derive(Debug)]
pub struct MappedChunker {
    file: File,
    /// The file's size when it was opened; bytes appended since are not read.
    len: u64,
    /// The window mapped now, and where in the file it starts.
    window: Option<(u64, Arc<memmap2::Mmap>)>,
    /// Where the next chunk starts in the file.
    pos: u64,
    target: usize,
    /// Bytes to map at once ([`WINDOW`] but in tests).
    window_bytes: usize,
    seq: u64,
}

impl MappedChunker {
    fn new(file: File, len: u64, target: usize, window_bytes: usize) -> MappedChunker {
        MappedChunker {
            file,
            len,
            window: None,
            pos: 0,
            target: target.max(1),
            window_bytes: window_bytes.max(1),
            seq: 0,
        }
    }

    /// Bytes cut into chunks so far.
    fn bytes_read(&self) -> u64 {
        self.pos
    }

    /// The next chunk, `None` at the end. A chunk ends at the first `\n` at
    /// or after `target` bytes, or at the end of the file.
    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        let mut want = self.target.max(self.window_bytes);
        loop {
            let mut fresh = false;
            let (base, map) = match &self.window {
                // The window holds a whole target's worth past `pos`, or
                // reaches the end of the file.
                Some((base, map))
                    if self.pos + self.target as u64 <= base + map.len() as u64
                        || base + map.len() as u64 == self.len =>
                {
                    (*base, Arc::clone(map))
                }
                _ => {
                    let len = want.min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
                    let map = Arc::new(map_window(&self.file, self.pos, len)?);
                    self.window = Some((self.pos, Arc::clone(&map)));
                    fresh = true;
                    (self.pos, map)
                }
            };
            let start = usize::try_from(self.pos - base).unwrap_or(usize::MAX);
            let rest = map.get(start..).unwrap_or_default();
            let at_end = base + map.len() as u64 == self.len;
            let from = self.target.min(rest.len()).saturating_sub(1);
            let end = match memchr::memchr(b'\n', &rest[from..]) {
                Some(found) => from + found + 1,
                None if at_end => rest.len(),
                None => {
                    // The chunk's last line runs past the window: map a
                    // window from `pos`, twice as large when even that
                    // held no line end (a line longer than the window).
                    if fresh {
                        want = want.saturating_mul(2);
                    }
                    self.window = None;
                    continue;
                }
            };
            let chunk = Chunk {
                seq: self.seq,
                bytes: ChunkBytes::Mapped { map, range: start..start + end },
            };
            self.pos += end as u64;
            self.seq += 1;
            return Ok(Some(chunk));
        }
    }
}

/// Map `len` bytes of `file` from `offset`, read-only.
///
/// A mapping is only as steady as the file under it: if another process
/// truncates the file while it is mapped, reading the lost pages raises
/// SIGBUS and the ingest dies (nothing is committed, so nothing is lost and
/// a re-run is clean), and bytes rewritten in place would change under the
/// parser. Logs are appended to, which a map of the size at open time does
/// not see; a log rotated with `copytruncate` while it is being ingested is
/// the case to avoid, and `mmap = false` (`--no-mmap`) reads it with plain
/// `read` calls instead. polars and ripgrep map their inputs the same way.
#[allow(unsafe_code)]
fn map_window(file: &File, offset: u64, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only, and the parser accepts any bytes at all
    // (it is fuzzed), so bytes changed by another process can make a wrong
    // row but not unsound code; truncation is the SIGBUS described above, a
    // crash and not a silent corruption.
    let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map(file) }?;
    // Chunks are parsed front to back: read ahead generously. Advice is
    // only a hint, so a kernel that refuses it changes nothing.
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
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
        let chunk = Chunk { seq: self.seq, bytes: bytes.into() };
        self.seq += 1;
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

    /// What a mapped chunker cuts `input` into, through windows of
    /// `window` bytes.
    fn mapped_chunks(input: &[u8], target: usize, window: usize) -> Vec<Chunk> {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, input).unwrap();
        let mut chunker = MappedChunker::new(file, input.len() as u64, target, window);
        let mut out = Vec::new();
        while let Some(chunk) = chunker.next_chunk().unwrap() {
            out.push(chunk);
        }
        assert_eq!(chunker.bytes_read(), input.len() as u64);
        out
    }

    /// The chunks hold the input in order, each but the last ends a line,
    /// none is empty, and each is numbered by its position.
    fn check(input: &[u8], got: &[Chunk], what: &str) {
        let joined: Vec<u8> = got.iter().flat_map(|c| c.bytes.to_vec()).collect();
        assert_eq!(joined, input, "{what}");
        for (i, chunk) in got.iter().enumerate() {
            assert_eq!(chunk.seq, i as u64, "{what}");
            if i + 1 < got.len() {
                assert!(chunk.bytes.ends_with(b"\n"), "{what}");
            }
            assert!(!chunk.bytes.is_empty(), "{what}");
        }
    }

    #[test]
    fn mapped_chunks_cross_windows_and_long_lines() {
        // Short lines, a line longer than any window, and no final `\n`.
        let mut input = Vec::new();
        for i in 0..40 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        input.extend_from_slice(&[b'x'; 100]);
        input.push(b'\n');
        input.extend_from_slice(b"a\nbb\nlast");
        for target in [1, 2, 7, 16, 64, 500] {
            for window in [1, 3, 8, 32, 4096] {
                let got = mapped_chunks(&input, target, window);
                check(&input, &got, &format!("target {target}, window {window}"));
            }
        }
        assert!(mapped_chunks(b"\n", 4, 4).len() == 1);
    }

    #[test]
    fn cuts_only_at_line_ends() {
        let input = b"a\nbb\nccc\ndddd\ne";
        for target in 1..20 {
            check(input, &chunks(input, target), &format!("target {target}"));
        }
        assert!(chunks(b"", 4).is_empty());
    }
}
