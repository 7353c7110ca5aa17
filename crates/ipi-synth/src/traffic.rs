//! What a line says: requests, statuses, user agents, referers, and the
//! Apache combined-format writer.

use crate::clock::push_clf;

/// One kind of request of the simulated site.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub method: &'static str,
    pub path: &'static str,
    /// Statuses and their shares.
    pub statuses: &'static [(u16, f64)],
    /// Response size: base and spread (uniform extra).
    pub bytes: (u32, u32),
    /// Logged without the user (`-`): assets and pages before login.
    pub anonymous: bool,
    /// Share among non-login lines.
    pub weight: f64,
    /// Index into [`REFERERS`].
    pub referer: u8,
}

/// Index of the successful login in [`REQUESTS`]: the only request that
/// passes ingest's login filter (GET, path `/login_success`, status 200).
pub const LOGIN: u8 = 0;

/// Every request. Non-login lines are built so that each part of the login
/// filter has work: `/login_success` with other statuses (redirects,
/// cache hits, errors) or with `HEAD`, `/login` with `POST`, and other
/// paths with status 200.
pub const REQUESTS: &[Request] = &[
    Request {
        method: "GET",
        path: "/login_success",
        statuses: &[(200, 1.0)],
        bytes: (430, 120),
        anonymous: false,
        weight: 0.0,
        referer: 0,
    },
    Request {
        method: "POST",
        path: "/login",
        statuses: &[(302, 0.75), (401, 0.2), (429, 0.05)],
        bytes: (180, 40),
        anonymous: false,
        weight: 0.16,
        referer: 0,
    },
    Request {
        method: "GET",
        path: "/login",
        statuses: &[(200, 1.0)],
        bytes: (2900, 300),
        anonymous: true,
        weight: 0.1,
        referer: 2,
    },
    Request {
        method: "GET",
        path: "/login_success",
        statuses: &[(304, 0.55), (302, 0.3), (500, 0.1), (503, 0.05)],
        bytes: (0, 0),
        anonymous: false,
        weight: 0.06,
        referer: 0,
    },
    Request {
        method: "HEAD",
        path: "/login_success",
        statuses: &[(200, 1.0)],
        bytes: (0, 0),
        anonymous: false,
        weight: 0.02,
        referer: 1,
    },
    Request {
        method: "GET",
        path: "/",
        statuses: &[(200, 0.93), (304, 0.07)],
        bytes: (5200, 800),
        anonymous: true,
        weight: 0.1,
        referer: 1,
    },
    Request {
        method: "GET",
        path: "/static/app.js",
        statuses: &[(200, 0.45), (304, 0.55)],
        bytes: (48_000, 2000),
        anonymous: true,
        weight: 0.14,
        referer: 2,
    },
    Request {
        method: "GET",
        path: "/static/style.css",
        statuses: &[(200, 0.45), (304, 0.55)],
        bytes: (9_000, 500),
        anonymous: true,
        weight: 0.12,
        referer: 2,
    },
    Request {
        method: "GET",
        path: "/favicon.ico",
        statuses: &[(200, 0.7), (404, 0.3)],
        bytes: (1150, 0),
        anonymous: true,
        weight: 0.05,
        referer: 1,
    },
    Request {
        method: "GET",
        path: "/account",
        statuses: &[(200, 0.85), (302, 0.15)],
        bytes: (7400, 900),
        anonymous: false,
        weight: 0.07,
        referer: 3,
    },
    Request {
        method: "GET",
        path: "/api/v1/messages?page=1",
        statuses: &[(200, 0.92), (500, 0.04), (503, 0.04)],
        bytes: (1800, 2400),
        anonymous: false,
        weight: 0.1,
        referer: 3,
    },
    Request {
        method: "POST",
        path: "/api/v1/events",
        statuses: &[(204, 1.0)],
        bytes: (0, 0),
        anonymous: false,
        weight: 0.05,
        referer: 3,
    },
    Request {
        method: "GET",
        path: "/logout",
        statuses: &[(302, 1.0)],
        bytes: (210, 20),
        anonymous: false,
        weight: 0.03,
        referer: 3,
    },
];

/// Referers; `-` is none.
pub const REFERERS: &[&str] = &[
    "https://www.example.com/login",
    "-",
    "https://www.example.com/",
    "https://www.example.com/login_success",
];

/// Desktop browsers: indexes 0 to [`DESKTOP_AGENTS`] - 1 of [`USER_AGENTS`].
pub const DESKTOP_AGENTS: usize = 6;
/// Phones and tablets follow the desktop browsers.
pub const MOBILE_AGENTS: usize = 5;
/// Scripts that only credential stuffers use, after the mobile ones.
pub const SCRIPT_AGENTS: usize = 2;

/// User agents, desktop then mobile then scripts.
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:63.0) Gecko/20100101 Firefox/63.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.17763",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 9; Pixel 3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.110 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 8.0.0; SM-G960F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.80 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 7.0; Moto G (5)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.80 Mobile Safari/537.36",
    "python-requests/2.20.1",
    "Go-http-client/1.1",
];

/// One line of the log, before formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// The instant, UTC seconds.
    pub t: i64,
    /// The client address.
    pub addr: u32,
    /// The offset the timestamp is written in, minutes east of UTC.
    pub offset_minutes: i16,
    /// Index into [`REQUESTS`].
    pub request: u8,
    pub status: u16,
    /// Response bytes; 0 is written as `-`.
    pub bytes: u32,
    /// Index into [`USER_AGENTS`].
    pub agent: u8,
    /// Index into [`REFERERS`].
    pub referer: u8,
    /// Logged without the user.
    pub anonymous: bool,
    /// 0 for normal traffic, else 1 + the [`crate::AttackKind`] index.
    pub attack: u8,
    /// A normal login from a network visited while travelling.
    pub travel: bool,
}

impl Line {
    /// Whether ingest's login filter keeps the line.
    pub fn is_login(&self) -> bool {
        self.request == LOGIN
    }
}

/// Appends a decimal number.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a dotted quad.
#[inline]
pub fn push_ip(out: &mut Vec<u8>, addr: u32) {
    for (i, octet) in addr.to_be_bytes().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_u64(out, u64::from(octet));
    }
}

/// An upper bound of [`push_line`]'s output, to size buffers once.
pub fn line_bound(line: &Line) -> usize {
    let request = &REQUESTS[line.request as usize];
    107 + request.method.len()
        + request.path.len()
        + REFERERS[line.referer as usize].len()
        + USER_AGENTS[line.agent as usize].len()
}

/// Appends one Apache combined-format line of `user`, with its newline:
/// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`.
pub fn push_line(out: &mut Vec<u8>, user: u64, line: &Line) {
    let request = &REQUESTS[line.request as usize];
    push_ip(out, line.addr);
    if line.anonymous {
        out.extend_from_slice(b" - - [");
    } else {
        out.extend_from_slice(b" - user_");
        push_u64(out, user);
        out.extend_from_slice(b" [");
    }
    push_clf(out, line.t, line.offset_minutes);
    out.extend_from_slice(b"] \"");
    out.extend_from_slice(request.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\" ");
    push_u64(out, u64::from(line.status));
    out.push(b' ');
    if line.bytes == 0 {
        out.push(b'-');
    } else {
        push_u64(out, u64::from(line.bytes));
    }
    out.extend_from_slice(b" \"");
    out.extend_from_slice(REFERERS[line.referer as usize].as_bytes());
    out.extend_from_slice(b"\" \"");
    out.extend_from_slice(USER_AGENTS[line.agent as usize].as_bytes());
    out.extend_from_slice(b"\"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_request_passes_the_login_filter() {
        for (i, r) in REQUESTS.iter().enumerate() {
            let passes = r.method == "GET"
                && r.path.starts_with("/login_success")
                && r.statuses.iter().any(|s| s.0 == 200);
            assert_eq!(passes, i == usize::from(LOGIN), "{r:?}");
        }
        assert_eq!(USER_AGENTS.len(), DESKTOP_AGENTS + MOBILE_AGENTS + SCRIPT_AGENTS);
    }

    #[test]
    fn a_line_looks_like_apache_combined() {
        let line = Line {
            t: 1_542_153_599,
            addr: 0x0102_0304,
            offset_minutes: -300,
            request: LOGIN,
            status: 200,
            bytes: 476,
            agent: 0,
            referer: 1,
            anonymous: false,
            attack: 0,
            travel: false,
        };
        let mut out = Vec::new();
        push_line(&mut out, 42, &line);
        assert!(out.len() <= line_bound(&line));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "1.2.3.4 - user_42 [13/Nov/2018:18:59:59 -0500] \"GET /login_success HTTP/1.1\" 200 476 \"-\" \"Mozilla/5.0 (Windows"
            ),
            "{text}"
        );
        assert!(text.ends_with("Safari/537.36\"\n"));
    }
}
