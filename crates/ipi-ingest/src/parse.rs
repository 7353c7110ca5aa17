//! The byte-level access-log line parser.
//!
//! One function, [`parse_line`], turns one line of an Apache or Nginx access
//! log into a [`Record`] that borrows from the line wherever it can, or into a
//! [`Reject`] that says which field is wrong and why. It never allocates on
//! the common path (no escapes), never panics, and never uses a regex: fields
//! are found with `memchr` and checked byte by byte.
//!
//! The formats, in Apache's `LogFormat` notation:
//!
//! | format | fields |
//! |---|---|
//! | `common` | `%h %l %u %t "%r" %>s %b` |
//! | `combined` | `common` + ` "%{Referer}i" "%{User-Agent}i"` |
//! | `vhost_combined` | `%v:%p ` + `combined` |
//!
//! Extra trailing fields (Nginx often logs `"$http_x_forwarded_for"` after
//! the user agent) are ignored. The `%h` field may be an X-Forwarded-For style
//! list (`10.0.0.2, 10.0.0.1, 85.181.35.98`): the first address is the client
//! and the whole list is kept.

use std::borrow::Cow;
use std::fmt;

use memchr::{memchr, memchr2};

/// The line layouts ipi reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineFormat {
    /// `%h %l %u %t "%r" %>s %b`
    Common,
    /// `common` plus quoted referer and user agent.
    Combined,
    /// `%v:%p ` before `combined`.
    VhostCombined,
    /// Decide per line: an optional leading virtual host (`%v` or `%v:%p`)
    /// or quoted forwarded list, then `common`, then referer and user agent
    /// when they are there. For files that mix layouts, as concatenated logs
    /// from several servers do.
    Auto,
}

impl LineFormat {
    /// The name used on the command line and in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            LineFormat::Common => "common",
            LineFormat::Combined => "combined",
            LineFormat::VhostCombined => "vhost_combined",
            LineFormat::Auto => "auto",
        }
    }
}

/// One parsed line. Text fields borrow from the line unless an escape had to
/// be decoded or invalid UTF-8 replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// `%v:%p` (or `%v`) when the line starts with a virtual host.
    pub vhost: Option<Cow<'a, str>>,
    /// The client address as written: the first of a forwarded list.
    pub client: Cow<'a, str>,
    /// The whole `%h` field when it was a list of addresses.
    pub forwarded_for: Option<Cow<'a, str>>,
    /// `%u`, the authenticated user; `None` for `-`.
    pub user: Option<Cow<'a, str>>,
    /// The instant, in microseconds since the Unix epoch, UTC.
    pub timestamp_us: i64,
    /// The offset the line was written with, in minutes east of UTC.
    pub tz_offset_minutes: i16,
    /// The request method, `None` when the request was empty or malformed.
    pub method: Option<Cow<'a, str>>,
    /// The request target; the whole request when it had no method.
    pub path: Option<Cow<'a, str>>,
    /// The protocol, e.g. `HTTP/1.1`.
    pub protocol: Option<Cow<'a, str>>,
    /// `%>s`; `None` only for table inputs without a status column.
    pub status: Option<u16>,
    /// `%b`; `None` for `-`.
    pub bytes: Option<u64>,
    /// `None` for `-`, or in `common`.
    pub referer: Option<Cow<'a, str>>,
    /// `None` for `-`, or in `common`.
    pub user_agent: Option<Cow<'a, str>>,
}

impl<'a> Record<'a> {
    /// A row of a table input: no request line, referer or agent. An empty
    /// entity or `-` means none, as in logs.
    pub fn table_row(
        client: Cow<'a, str>,
        entity: Option<Cow<'a, str>>,
        timestamp_us: i64,
        tz_offset_minutes: i16,
        status: Option<u16>,
    ) -> Record<'a> {
        Record {
            vhost: None,
            client,
            forwarded_for: None,
            user: entity.filter(|e| !e.is_empty() && e != "-"),
            timestamp_us,
            tz_offset_minutes,
            method: None,
            path: None,
            protocol: None,
            status,
            bytes: None,
            referer: None,
            user_agent: None,
        }
    }
}

/// Why a line was rejected: the field and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The field, in the events schema's words (`timestamp`, `status`, ...).
    pub field: &'static str,
    /// What was wrong, for a person.
    pub kind: RejectKind,
}

/// The kinds of problem a line can have.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectKind {
    /// The line was empty or only whitespace.
    Empty,
    /// The line ended before this field.
    Missing,
    /// A quoted field had no closing quote.
    Unterminated,
    /// The field was not of the expected shape.
    Malformed(&'static str),
    /// A date that does not exist, such as 31 February.
    ImpossibleDate,
    /// An offset beyond ±14:00 or with minutes over 59.
    ImpossibleOffset,
}

impl Reject {
    /// A short, stable reason code for counting (`status: malformed`).
    pub fn code(&self) -> String {
        let kind = match self.kind {
            RejectKind::Empty => "empty line",
            RejectKind::Missing => "missing",
            RejectKind::Unterminated => "unterminated quote",
            RejectKind::Malformed(_) => "malformed",
            RejectKind::ImpossibleDate => "impossible date",
            RejectKind::ImpossibleOffset => "impossible offset",
        };
        if self.kind == RejectKind::Empty {
            kind.to_owned()
        } else {
            format!("{}: {kind}", self.field)
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RejectKind::Empty => write!(f, "empty line"),
            RejectKind::Missing => write!(f, "field `{}`: the line ends before it", self.field),
            RejectKind::Unterminated => {
                write!(f, "field `{}`: the quoted text has no closing quote", self.field)
            }
            RejectKind::Malformed(expected) => {
                write!(f, "field `{}`: expected {expected}", self.field)
            }
            RejectKind::ImpossibleDate => {
                write!(f, "field `{}`: no such date or time of day", self.field)
            }
            RejectKind::ImpossibleOffset => {
                write!(f, "field `{}`: the UTC offset is beyond ±14:00", self.field)
            }
        }
    }
}

impl std::error::Error for Reject {}

fn reject(field: &'static str, kind: RejectKind) -> Reject {
    Reject { field, kind }
}

/// A cursor over the bytes of one line.
struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.line.get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// Skip spaces (and tabs) between fields.
    fn skip_blanks(&mut self) {
        while let Some(b' ' | b'\t') = self.line.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next space-delimited token.
    #[inline]
    fn token(&mut self, field: &'static str) -> Result<&'a [u8], Reject> {
        self.skip_blanks();
        if self.at_end() {
            return Err(reject(field, RejectKind::Missing));
        }
        let rest = self.rest();
        // Tokens are short: a plain loop beats memchr's set-up.
        let len = rest.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(rest.len());
        self.pos += len;
        Ok(&rest[..len])
    }

    /// The next byte, if it is `byte`.
    fn eat(&mut self, byte: u8) -> bool {
        if self.line.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Whether the next byte after blanks is `byte` (it is not consumed).
    fn next_is(&mut self, byte: u8) -> bool {
        self.skip_blanks();
        self.line.get(self.pos) == Some(&byte)
    }

    /// A `"quoted"` field, raw (escapes still in). The closing quote is the
    /// first unescaped `"` that is followed by a blank or the end of the
    /// line, so a stray quote inside a field does not end it.
    fn quoted(&mut self, field: &'static str) -> Result<&'a [u8], Reject> {
        self.quoted_raw(field).map(|q| q.raw)
    }

    /// [`Cursor::quoted`], saying whether the field holds a backslash.
    ///
    /// Inlined: returned through memory, its `Result` was read back before
    /// the callee's stores had landed, a stall on every quoted field.
    #[inline(always)]
    fn quoted_raw(&mut self, field: &'static str) -> Result<Quoted<'a>, Reject> {
        self.skip_blanks();
        if self.at_end() {
            return Err(reject(field, RejectKind::Missing));
        }
        if !self.eat(b'"') {
            return Err(reject(field, RejectKind::Malformed("a quoted string")));
        }
        let rest = self.rest();
        let mut i = 0;
        let mut escaped = false;
        while let Some(found) = memchr2(b'"', b'\\', &rest[i..]) {
            let at = i + found;
            if rest[at] == b'\\' {
                escaped = true;
                i = at + 2;
                if i > rest.len() {
                    break;
                }
                continue;
            }
            match rest.get(at + 1) {
                None | Some(b' ' | b'\t') => {
                    self.pos += at + 1;
                    return Ok(Quoted { raw: &rest[..at], escaped });
                }
                Some(_) => i = at + 1,
            }
        }
        Err(reject(field, RejectKind::Unterminated))
    }
}

/// `%h %l %u`: the client (the first of a forwarded list), the list, and
/// the user.
struct Hosts<'a> {
    first: &'a [u8],
    /// The whole `%h` field when it is a list.
    list: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
}

impl<'a> Hosts<'a> {
    /// Read `%h %l %u`; `%h` may be a forwarded list: `a, b, c` (each but
    /// the last ends in `,`) or `a,b`.
    fn read(cur: &mut Cursor<'a>) -> Result<Hosts<'a>, Reject> {
        cur.skip_blanks();
        let host_start = cur.pos;
        let mut first = cur.token("ip")?;
        let mut listed = false;
        if first.last() == Some(&b',') {
            listed = true;
            first = &first[..first.len() - 1];
            while cur.token("ip")?.last() == Some(&b',') {}
        } else if let Some(comma) = first.iter().position(|&b| b == b',') {
            // "a,b" without spaces (a short token: a loop, not memchr).
            listed = true;
            first = &first[..comma];
        }
        if first.is_empty() {
            return Err(reject("ip", RejectKind::Malformed("a client address")));
        }
        let list = listed.then(|| &cur.line[host_start..cur.pos]);
        let _ident = cur.token("ident")?;
        let user = dash_is_none(cur.token("entity")?);
        Ok(Hosts { first, list, user })
    }
}

/// A quoted field's raw bytes, and whether a backslash is among them.
#[derive(Clone, Copy)]
struct Quoted<'a> {
    raw: &'a [u8],
    escaped: bool,
}

/// Decode Apache's escapes (`\"`, `\\`, `\xHH`, `\n`, `\t`, `\r`) and turn the
/// bytes into text, borrowing when there was nothing to decode. Bytes that are
/// not UTF-8 become U+FFFD; the raw line is what keeps them losslessly.
pub fn unescape(raw: &[u8]) -> Cow<'_, str> {
    if memchr(b'\\', raw).is_none() {
        return text(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        match raw[i + 1] {
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'x' => {
                let hex = raw.get(i + 2..i + 4).and_then(|h| {
                    let hi = (h[0] as char).to_digit(16)?;
                    let lo = (h[1] as char).to_digit(16)?;
                    Some((hi * 16 + lo) as u8)
                });
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 4;
                    continue;
                }
                out.extend_from_slice(b"\\x");
            }
            other => out.extend_from_slice(&[b'\\', other]),
        }
        i += 2;
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
    }
}

/// `-` means "no value" in every optional field.
fn dash_is_none(raw: &[u8]) -> Option<&[u8]> {
    (raw != b"-").then_some(raw)
}

/// Bytes as text: borrowed when they are UTF-8, with U+FFFD for invalid
/// sequences otherwise.
fn text(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// A line, and the same line as text when it is all UTF-8 (checked once,
/// with SIMD). Fields are cut at ASCII delimiters, so a field of a valid line
/// is valid too and is sliced from the text with no check of its own: a
/// line holds several fields, and checking each was a tenth of the parse.
#[derive(Clone, Copy)]
struct LineText<'a> {
    bytes: &'a [u8],
    utf8: Option<&'a str>,
}

impl<'a> LineText<'a> {
    fn new(bytes: &'a [u8]) -> LineText<'a> {
        LineText { bytes, utf8: simdutf8::basic::from_utf8(bytes).ok() }
    }

    /// `part`, a slice of this line, as text ([`text`] when the line is not
    /// UTF-8).
    #[inline(always)]
    fn text(self, part: &'a [u8]) -> Cow<'a, str> {
        let start = (part.as_ptr() as usize).wrapping_sub(self.bytes.as_ptr() as usize);
        let found = self
            .utf8
            .zip(start.checked_add(part.len()))
            .and_then(|(whole, end)| whole.get(start..end));
        match found {
            Some(part) => Cow::Borrowed(part),
            None => text(part),
        }
    }

    /// A quoted field as text: [`unescape`], skipping the search for escapes
    /// when [`Cursor::quoted_raw`] saw none.
    fn decode(self, field: Quoted<'a>) -> Cow<'a, str> {
        if field.escaped { unescape(field.raw) } else { self.text(field.raw) }
    }
}

/// Which optional text fields [`parse_line_with`] decodes into text. The
/// others are still found and checked (so a line is accepted or rejected the
/// same way whatever is decoded) but left `None`, which saves the UTF-8
/// checks, unescaping and copies of fields nobody keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decode {
    /// `method`, `path` and `protocol`.
    pub request: bool,
    pub referer: bool,
    pub user_agent: bool,
    pub vhost: bool,
    pub forwarded_for: bool,
}

impl Decode {
    /// Decode every field.
    pub const ALL: Decode =
        Decode { request: true, referer: true, user_agent: true, vhost: true, forwarded_for: true };
}

/// Parse one line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_line(line: &[u8], format: LineFormat) -> Result<Record<'_>, Reject> {
    parse_line_with(line, format, Decode::ALL)
}

/// [`parse_line`], decoding only the optional fields `decode` asks for.
#[inline]
pub fn parse_line_with(
    line: &[u8],
    format: LineFormat,
    decode: Decode,
) -> Result<Record<'_>, Reject> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(reject("line", RejectKind::Empty));
    }
    let mut cur = Cursor { line, pos: 0 };

    let mut vhost = None;
    let mut quoted_list = None;
    let hosts = match format {
        LineFormat::VhostCombined => {
            vhost = Some(cur.token("vhost")?);
            Hosts::read(&mut cur)?
        }
        LineFormat::Common | LineFormat::Combined => Hosts::read(&mut cur)?,
        LineFormat::Auto if line.first() == Some(&b'"') => {
            // Nginx's `"$http_x_forwarded_for" $remote_addr ...`.
            quoted_list = Some(cur.quoted("ip")?);
            Hosts::read(&mut cur)?
        }
        LineFormat::Auto => {
            // Most lines are plain `%h %l %u [`: read them that way first,
            // and look for a leading field only when the timestamp is not
            // where it should be.
            match Hosts::read(&mut cur) {
                Ok(hosts) if cur.next_is(b'[') => hosts,
                _ => {
                    cur.pos = 0;
                    match leading_prefix(line) {
                        Leading::None => {}
                        Leading::Vhost => vhost = Some(cur.token("vhost")?),
                        Leading::List => {
                            // The same, unquoted: `a, b c - - [...`.
                            let start = cur.pos;
                            while cur.token("ip")?.last() == Some(&b',') {}
                            quoted_list = Some(&line[start..cur.pos]);
                        }
                    }
                    Hosts::read(&mut cur)?
                }
            }
        }
    };
    let Hosts { mut first, mut list, user } = hosts;
    if let Some(quoted) = quoted_list.filter(|list| !list.is_empty() && *list != b"-") {
        // The first address of the forwarded list is the client; the
        // connecting address is a proxy.
        let end = memchr(b',', quoted).unwrap_or(quoted.len());
        first = quoted[..end].trim_ascii();
        list = Some(quoted);
    }

    cur.skip_blanks();
    if !cur.eat(b'[') {
        return Err(if cur.at_end() {
            reject("timestamp", RejectKind::Missing)
        } else {
            reject("timestamp", RejectKind::Malformed("`[dd/Mon/yyyy:HH:MM:SS ±hhmm]`"))
        });
    }
    let rest = cur.rest();
    // The timestamp has a fixed width: look there before searching.
    let close = match rest.get(TIMESTAMP_LEN) {
        Some(b']') => TIMESTAMP_LEN,
        _ => memchr(b']', rest)
            .ok_or_else(|| reject("timestamp", RejectKind::Malformed("a closing `]`")))?,
    };
    let (timestamp_us, tz_offset_minutes) = parse_timestamp(&rest[..close])?;
    cur.pos += close + 1;

    let request = cur.quoted_raw("request")?;
    // The text fields wanted end here, unless the referer or agent is.
    let wanted = if decode.referer || decode.user_agent { line } else { &line[..cur.pos] };
    let text = LineText::new(wanted);
    let (method, path, protocol) =
        if decode.request { split_request_with(text, request) } else { (None, None, None) };

    let status = parse_status(cur.token("status")?)?;
    let bytes = match dash_is_none(cur.token("bytes")?) {
        None => None,
        Some(digits) => Some(
            parse_u64(digits)
                .ok_or_else(|| reject("bytes", RejectKind::Malformed("a byte count or `-`")))?,
        ),
    };

    cur.skip_blanks();
    let (referer, user_agent) = match format {
        LineFormat::Common => (None, None),
        LineFormat::Auto if cur.at_end() => (None, None),
        LineFormat::Combined | LineFormat::VhostCombined | LineFormat::Auto => {
            let referer = cur.quoted_raw("referer")?;
            let user_agent = cur.quoted_raw("user_agent")?;
            (decoded(text, referer, decode.referer), decoded(text, user_agent, decode.user_agent))
        }
    };

    Ok(Record {
        vhost: vhost.filter(|_| decode.vhost).map(|v| text.text(v)),
        client: text.text(first),
        forwarded_for: list.filter(|_| decode.forwarded_for).map(|l| text.text(l)),
        user: user.map(|u| text.text(u)),
        timestamp_us,
        tz_offset_minutes,
        method,
        path,
        protocol,
        status: Some(status),
        bytes,
        referer,
        user_agent,
    })
}

/// An optional quoted field as text when it is `wanted`; `-` means none.
fn decoded<'a>(text: LineText<'a>, field: Quoted<'a>, wanted: bool) -> Option<Cow<'a, str>> {
    (wanted && field.raw != b"-").then(|| text.decode(field))
}

/// What comes before `%h` in an `auto` line.
enum Leading {
    None,
    /// `%v` or `%v:%p`.
    Vhost,
    /// An unquoted forwarded list, then `%h`.
    List,
}

/// Count the tokens before ` [`, a forwarded list (`a, b, c`) counting as
/// one: three is plain `%h %l %u`, four has something in front of `%h`.
///
/// One pass over the bytes up to the timestamp's ` [` (the first `[` that
/// follows a space): the prefix is short, so a plain loop beats memchr.
fn leading_prefix(line: &[u8]) -> Leading {
    let mut groups = 0;
    let mut first_is_list = false;
    // Whether the last token ended in `,`, so the next one continues its
    // group; and whether a token is being read.
    let mut continued = false;
    let mut in_token = false;
    let mut previous = 0u8;
    for (i, &b) in line.iter().enumerate() {
        if b == b'[' && i > 0 && previous == b' ' {
            return match (groups, first_is_list) {
                (4, true) => Leading::List,
                (4, false) => Leading::Vhost,
                _ => Leading::None,
            };
        }
        if b == b' ' {
            if in_token {
                in_token = false;
                if !continued {
                    groups += 1;
                    if groups > 4 {
                        return Leading::None;
                    }
                } else if groups == 1 {
                    first_is_list = true;
                }
                continued = previous == b',';
            }
        } else {
            in_token = true;
        }
        previous = b;
    }
    Leading::None
}

type Request<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>, Option<Cow<'a, str>>);

/// `GET /a b HTTP/1.1` → method, target, protocol. A request that is not
/// `METHOD TARGET [PROTOCOL]` keeps its whole text in `path`.
fn split_request_with<'a>(line: LineText<'a>, request: Quoted<'a>) -> Request<'a> {
    let raw = request.raw;
    // Without a backslash in the request there is none in its parts.
    let unescape = |part| if request.escaped { unescape(part) } else { line.text(part) };
    if raw.is_empty() || raw == b"-" {
        return (None, None, None);
    }
    let is_method = |m: &[u8]| {
        !m.is_empty() && m.iter().all(|b| b.is_ascii_uppercase() || *b == b'_' || *b == b'-')
    };
    let Some(first_space) = memchr(b' ', raw) else {
        return (None, Some(unescape(raw)), None);
    };
    let method = &raw[..first_space];
    if !is_method(method) {
        return (None, Some(unescape(raw)), None);
    }
    let after = &raw[first_space + 1..];
    match memchr::memrchr(b' ', after) {
        Some(last) if after[last + 1..].starts_with(b"HTTP/") => (
            Some(line.text(method)),
            Some(unescape(&after[..last])),
            Some(line.text(&after[last + 1..])),
        ),
        _ => (Some(line.text(method)), Some(unescape(after)), None),
    }
}

fn parse_status(raw: &[u8]) -> Result<u16, Reject> {
    match raw {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(reject("status", RejectKind::Malformed("a three-digit HTTP status"))),
    }
}

fn parse_u64(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 19 {
        return None;
    }
    raw.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0')))
}

fn digits<const N: usize>(raw: &[u8]) -> Option<u32> {
    if raw.len() != N {
        return None;
    }
    raw.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

fn month(raw: &[u8]) -> Option<u32> {
    Some(match raw {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// The length of `10/Oct/2000:13:55:36 -0700`.
const TIMESTAMP_LEN: usize = 26;

/// `10/Oct/2000:13:55:36 -0700` → (UTC microseconds, offset minutes).
pub fn parse_timestamp(raw: &[u8]) -> Result<(i64, i16), Reject> {
    const SHAPE: &str = "`dd/Mon/yyyy:HH:MM:SS ±hhmm`";
    let malformed = || reject("timestamp", RejectKind::Malformed(SHAPE));
    if raw.len() != TIMESTAMP_LEN
        || raw[2] != b'/'
        || raw[6] != b'/'
        || raw[11] != b':'
        || raw[14] != b':'
        || raw[17] != b':'
        || raw[20] != b' '
    {
        return Err(malformed());
    }
    let day = digits::<2>(&raw[0..2]).ok_or_else(malformed)?;
    let month = month(&raw[3..6]).ok_or_else(malformed)?;
    let year = digits::<4>(&raw[7..11]).ok_or_else(malformed)?;
    let hour = digits::<2>(&raw[12..14]).ok_or_else(malformed)?;
    let minute = digits::<2>(&raw[15..17]).ok_or_else(malformed)?;
    let second = digits::<2>(&raw[18..20]).ok_or_else(malformed)?;
    let sign: i32 = match raw[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(malformed()),
    };
    let off_h = digits::<2>(&raw[22..24]).ok_or_else(malformed)?;
    let off_m = digits::<2>(&raw[24..26]).ok_or_else(malformed)?;
    if off_m > 59 || off_h * 60 + off_m > 14 * 60 {
        return Err(reject("timestamp", RejectKind::ImpossibleOffset));
    }
    let offset_minutes = sign * (off_h * 60 + off_m) as i32;
    if !(1..=days_in_month(year, month)).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return Err(reject("timestamp", RejectKind::ImpossibleDate));
    }
    let local_seconds = days_from_civil(year as i64, month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second);
    let utc_seconds = local_seconds - i64::from(offset_minutes) * 60;
    Ok((utc_seconds * 1_000_000, offset_minutes as i16))
}

/// Days in `month` (1 to 12) of `year`, proleptic Gregorian.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a (valid) proleptic Gregorian date: Howard
/// Hinnant's `days_from_civil`, without chrono's general-purpose checks.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &[u8] = br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    #[test]
    fn parses_apache_documentation_example() {
        let r = parse_line(COMBINED, LineFormat::Combined).unwrap();
        assert_eq!(r.client, "127.0.0.1");
        assert_eq!(r.user.as_deref(), Some("frank"));
        // 13:55:36 at -07:00 is 20:55:36 UTC.
        assert_eq!(r.timestamp_us, 971_211_336_000_000);
        assert_eq!(r.tz_offset_minutes, -420);
        assert_eq!(r.method.as_deref(), Some("GET"));
        assert_eq!(r.path.as_deref(), Some("/apache_pb.gif"));
        assert_eq!(r.protocol.as_deref(), Some("HTTP/1.0"));
        assert_eq!(r.status, Some(200));
        assert_eq!(r.bytes, Some(2326));
        assert_eq!(r.referer.as_deref(), Some("http://www.example.com/start.html"));
        assert_eq!(r.user_agent.as_deref(), Some("Mozilla/4.08 [en] (Win98; I ;Nav)"));
        assert!(matches!(r.path, Some(Cow::Borrowed(_))), "no escapes, no copy");
    }

    #[test]
    fn common_and_vhost_formats() {
        let common = br#"10.1.2.3 - - [01/Jan/2020:00:00:00 +0000] "POST /login HTTP/1.1" 302 -"#;
        let r = parse_line(common, LineFormat::Common).unwrap();
        assert_eq!((r.user, r.bytes, r.referer), (None, None, None));
        let vhost = br#"example.com:443 10.1.2.3 - bob [01/Jan/2020:00:00:00 +0000] "GET / HTTP/2.0" 200 5 "-" "curl/8""#;
        let r = parse_line(vhost, LineFormat::VhostCombined).unwrap();
        assert_eq!(r.vhost.as_deref(), Some("example.com:443"));
        assert_eq!(r.user.as_deref(), Some("bob"));
        assert_eq!(r.referer, None);
    }

    #[test]
    fn escapes_in_quoted_fields() {
        let line = br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET /a\"b HTTP/1.1" 200 1 "-" "UA \"quoted\" \xc3\xa9 \x01""#;
        let r = parse_line(line, LineFormat::Combined).unwrap();
        assert_eq!(r.path.as_deref(), Some("/a\"b"));
        assert_eq!(r.user_agent.as_deref(), Some("UA \"quoted\" é \u{1}"));
        // \xHH that does not decode to UTF-8 is replaced, never a panic.
        assert_eq!(unescape(br"\xff"), "\u{fffd}");
        assert_eq!(unescape(br"\x4"), "\\x4");
        assert_eq!(unescape(b"trailing\\"), "trailing\\");
    }

    #[test]
    fn empty_and_odd_requests() {
        let line = br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "" 400 0 "-" "-""#;
        let r = parse_line(line, LineFormat::Combined).unwrap();
        assert_eq!((r.method, r.path, r.protocol), (None, None, None));
        let line = br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "\x16\x03\x01\x00" 400 0 "-" "-""#;
        let r = parse_line(line, LineFormat::Combined).unwrap();
        assert_eq!(r.method, None);
        assert_eq!(r.path.as_deref(), Some("\u{16}\u{3}\u{1}\u{0}"));
    }

    #[test]
    fn ipv6_forwarded_lists_crlf_and_extra_fields() {
        let line = b"2001:db8::1 - - [01/Jan/2020:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\" \"-\"\r";
        let r = parse_line(line, LineFormat::Combined).unwrap();
        assert_eq!(r.client, "2001:db8::1");
        assert_eq!(r.forwarded_for, None);
        let line = br#"10.0.0.2, 10.0.0.1, 85.181.35.98 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "UA""#;
        let r = parse_line(line, LineFormat::Combined).unwrap();
        assert_eq!(r.client, "10.0.0.2");
        assert_eq!(r.forwarded_for.as_deref(), Some("10.0.0.2, 10.0.0.1, 85.181.35.98"));
    }

    #[test]
    fn offsets_and_impossible_times() {
        let at = |ts: &str| parse_timestamp(ts.as_bytes());
        assert_eq!(at("01/Jan/2020:05:30:00 +0530").unwrap(), (1_577_836_800_000_000, 330));
        assert_eq!(at("01/Jan/2020:05:45:00 +0545").unwrap().1, 345);
        assert_eq!(at("31/Dec/2019:10:00:00 -1400").unwrap().1, -840);
        assert_eq!(at("29/Feb/2020:00:00:00 +0000").map(|_| ()), Ok(()));
        for (bad, kind) in [
            ("29/Feb/2019:00:00:00 +0000", RejectKind::ImpossibleDate),
            ("31/Apr/2020:00:00:00 +0000", RejectKind::ImpossibleDate),
            ("01/Jan/2020:24:00:00 +0000", RejectKind::ImpossibleDate),
            ("01/Jan/2020:00:00:00 +1401", RejectKind::ImpossibleOffset),
            ("01/Jan/2020:00:00:00 +0260", RejectKind::ImpossibleOffset),
        ] {
            assert_eq!(at(bad).unwrap_err().kind, kind, "{bad}");
        }
        for bad in
            ["01/Foo/2020:00:00:00 +0000", "1/Jan/2020:00:00:00 +0000", "01/Jan/2020:00:00:00 0000"]
        {
            assert!(matches!(at(bad).unwrap_err().kind, RejectKind::Malformed(_)), "{bad}");
        }
    }

    #[test]
    fn rejects_say_which_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty line"),
            (b"1.2.3.4 - -", "timestamp: missing"),
            (
                br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 2O0 1 "-" "-""#,
                "status: malformed",
            ),
            (
                br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 x "-" "-""#,
                "bytes: malformed",
            ),
            (
                br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "cut off"#,
                "user_agent: unterminated quote",
            ),
            (
                br#"1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET / HTTP/1.1" 200 1"#,
                "referer: missing",
            ),
        ];
        for (line, code) in cases {
            let err = parse_line(line, LineFormat::Combined).unwrap_err();
            assert_eq!(err.code(), *code, "{}", String::from_utf8_lossy(line));
        }
    }
}

#[cfg(test)]
mod auto_tests {
    use super::*;

    #[test]
    fn auto_detects_layout_per_line() {
        // (line, vhost, client, user agent)
        type Case<'a> = (&'a [u8], Option<&'a str>, &'a str, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (br#"www.crowdsec.net 1.2.3.4 - - [08/Jun/2020:08:04:43 +0000] "GET / HTTP/1.1" 200 803 "-" "UA""#, Some("www.crowdsec.net"), "1.2.3.4", Some("UA")),
            (br#"vhost:443 1.2.3.4 - - [08/Jun/2020:08:04:43 +0000] "GET / HTTP/1.1" 200 803 "-" "UA""#, Some("vhost:443"), "1.2.3.4", Some("UA")),
            (br#"1.2.3.4 - - [05/Mar/2021:09:01:38 +0100] "POST /x HTTP/1.0" 200 1513"#, None, "1.2.3.4", None),
            (br#"10.0.0.2, 10.0.0.1, 85.181.35.98 - bob [07/Dec/2016:11:05:07 +0100] "GET / HTTP/1.1" 200 571 "-" "UA""#, None, "10.0.0.2", Some("UA")),
            (br#"2a03::8000, 10.225.192.17 10.2.2.121 - - [30/Dec/2016:06:47:09 +0000] "GET /t HTTP/1.1" 404 8571 "-" "UA""#, None, "2a03::8000", Some("UA")),
            (br#""10.5.102.222, 199.96.1.1" 10.2.1.185 - - [22/Jan/2016:13:18:29 +0000] "GET /a HTTP/1.1" 200 25507 "-" "Amazon CloudFront""#, None, "10.5.102.222", Some("Amazon CloudFront")),
        ];
        for (line, vhost, client, ua) in cases {
            let r = parse_line(line, LineFormat::Auto)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
            assert_eq!(r.vhost.as_deref(), *vhost);
            assert_eq!(r.client, *client);
            assert_eq!(r.user_agent.as_deref(), *ua);
        }
    }
}
