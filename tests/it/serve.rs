//! `ipi-pipeline serve`: the SageMaker-compatible endpoint, driven over
//! plain HTTP/1.1 on loopback: every request and response format, the same
//! scores as the batch transform, 4xx for bad input, concurrent requests,
//! and a clean exit on SIGTERM.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::score::train_model;
use crate::util::{ipi, run, text};

/// A port nothing listens on now (bound to :0, read, released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The server process; killed if the test fails before it stops it.
struct Server {
    child: Option<Child>,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer (413) and close before reading a large body.
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { unchunk(rest) } else { rest.to_vec() };
    Reply { status, headers, body }
}

fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

fn post(server: &Server, content_type: &str, accept: Option<&str>, body: &[u8]) -> Reply {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(accept) = accept {
        headers.push(("Accept", accept));
    }
    request(&server.address, "POST", "/invocations", &headers, body)
}

/// Starts `serve` on a free port with a 4 KiB body limit and waits for /ping.
fn start(dir: &Path) -> Server {
    let address = format!("127.0.0.1:{}", free_port());
    let child = ipi(dir)
        .args(["serve", "--model", "model", "--listen", &address, "--max-body-bytes", "4096"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server { child: Some(child), address };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(&server.address).is_ok() {
            let ping = request(&server.address, "GET", "/ping", &[], b"");
            if ping.status == 200 {
                return server;
            }
        }
        let child = server.child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            let output = server.child.take().unwrap().wait_with_output().unwrap();
            panic!("serve exited early with {status}: {}", text(&output));
        }
        assert!(Instant::now() < deadline, "serve did not answer /ping within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` (TERM, INT) and returns the exit code and the logs.
fn stop(mut server: Server, signal: &str) -> (Option<i32>, String) {
    let child = server.child.take().unwrap();
    let kill =
        run(std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()]));
    assert!(kill.status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop within 30 s of SIG{signal}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code(), text(&output))
}

const CSV: &str = "user_1,35.37.0.1\nuser_2,10.10.1.2\nnobody_seen,8.8.8.8\n";

fn dots(reply: &serde_json::Value) -> Vec<f64> {
    reply["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["dot_product"].as_f64().unwrap())
        .collect()
}

#[test]
fn serve_answers_sagemaker_requests_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_model(d);
    let server = start(d);

    // The health check: 200, empty body.
    let ping = request(&server.address, "GET", "/ping", &[], b"");
    assert_eq!(ping.status, 200);
    assert!(ping.body.is_empty(), "{}", ping.text());

    // CSV in, the default Accept (application/json) out.
    let reply = post(&server, "text/csv", None, CSV.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let json = reply.json();
    assert_eq!(json.as_object().unwrap().len(), 1, "{json}");
    let expected = dots(&json);
    assert_eq!(expected.len(), 3);
    assert!(reply.text().starts_with("{\"predictions\":[{\"dot_product\":"), "{}", reply.text());

    // The same pairs as JSON and JSON Lines, in both shapes of instance.
    let json_body = r#"{"instances":[{"data":{"features":{"values":["user_1","35.37.0.1"]}}},{"features":["user_2","10.10.1.2"]},{"features":["nobody_seen","8.8.8.8"]}]}"#;
    let reply = post(&server, "application/json", Some("application/json"), json_body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(dots(&reply.json()), expected);
    let jsonl_body = "{\"features\":[\"user_1\",\"35.37.0.1\"]}\n{\"data\":{\"features\":{\"values\":[\"user_2\",\"10.10.1.2\"]}}}\n{\"features\":[\"nobody_seen\",\"8.8.8.8\"]}\n";
    let reply = post(
        &server,
        "application/jsonlines",
        Some("application/jsonlines"),
        jsonl_body.as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/jsonlines"));
    let lines: Vec<serde_json::Value> =
        reply.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (line, &dot) in lines.iter().zip(&expected) {
        assert_eq!(line.as_object().unwrap().len(), 1, "{line}");
        assert_eq!(line["dot_product"].as_f64().unwrap(), dot);
    }

    // verbose=True: the embeddings, in SageMaker's key order, and
    // dot_product is their dot product.
    for accept in ["application/json; verbose=True", "application/jsonlines;verbose=True"] {
        let reply = post(&server, "text/csv", Some(accept), CSV.as_bytes());
        assert_eq!(reply.status, 200, "{}", reply.text());
        let text = reply.text();
        let raws: Vec<String> = if accept.starts_with("application/json;") {
            let json = reply.json();
            json["predictions"].as_array().unwrap().iter().map(|p| p.to_string()).collect()
        } else {
            text.lines().map(str::to_string).collect()
        };
        assert_eq!(raws.len(), 3, "{text}");
        // Key order is checked on the raw reply (serde_json's Value sorts keys).
        for chunk in text.split("\"dot_product\"").skip(1) {
            let ip = chunk.find("\"ip_embedding\"").unwrap();
            let entity = chunk.find("\"entity_embedding\"").unwrap();
            assert!(ip < entity, "{text}");
        }
        for (raw, &expected_dot) in raws.iter().zip(&expected) {
            let p: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(p.as_object().unwrap().len(), 3, "{raw}");
            let ip: Vec<f64> = serde_json::from_value(p["ip_embedding"].clone()).unwrap();
            let e: Vec<f64> = serde_json::from_value(p["entity_embedding"].clone()).unwrap();
            assert_eq!(ip.len(), 16);
            assert_eq!(e.len(), 16);
            let dot: f64 = ip.iter().zip(&e).map(|(a, b)| a * b).sum();
            let got = p["dot_product"].as_f64().unwrap();
            assert!((dot - got).abs() < 1e-5, "{dot} vs {got}");
            assert!((got - expected_dot).abs() < 1e-5, "{got} vs {expected_dot}");
        }
    }

    // The batch transform scores the same pairs the same.
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.csv"), CSV).unwrap();
    let out = run(ipi(d).args([
        "score",
        "--model",
        "model",
        "--input",
        "in/a.csv",
        "--output",
        "out",
        "--accept",
        "application/json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let batch: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/a.csv.out")).unwrap()).unwrap();
    assert_eq!(dots(&batch), expected);

    // Bad input: 4xx with a message, never 500.
    let big = "user_1,35.37.0.1\n".repeat(400); // 6,800 bytes > 4,096
    let reply = post(&server, "text/csv", None, big.as_bytes());
    assert_eq!(reply.status, 413, "{}", reply.text());
    let reply = post(&server, "application/json", None, b"{not json at all");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("not JSON"), "{}", reply.text());
    let reply = post(&server, "text/csv", None, b"user_1,35.37.0.1\njust garbage\n");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("line 2"), "{}", reply.text());
    let reply = post(
        &server,
        "application/jsonlines",
        None,
        b"{\"features\":[\"u\",\"1.2.3.4\"]}\n\xff\xfe\n",
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("line 2"), "{}", reply.text());
    let reply = post(
        &server,
        "application/json",
        None,
        br#"{"instances":[{"features":["u","1.2.3.4"]},{"features":["u"]}]}"#,
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("instance 2"), "{}", reply.text());
    // IPv6 and invalid addresses refuse the request, naming the record.
    for body in ["user_1,35.37.0.1\nuser_3,2001:db8::1\n", "user_1,35.37.0.1\nuser_3,300.1.1.1\n"] {
        let reply = post(&server, "text/csv", None, body.as_bytes());
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert!(reply.text().contains("record 2: invalid_ip"), "{}", reply.text());
    }
    let reply = post(&server, "text/csv", None, b",35.37.0.1\n");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("empty_entity"), "{}", reply.text());
    let reply = post(&server, "text/csv", None, b"");
    assert_eq!(reply.status, 400, "{}", reply.text());
    let reply = post(&server, "text/plain", None, CSV.as_bytes());
    assert_eq!(reply.status, 415, "{}", reply.text());
    assert!(reply.text().contains("text/csv"), "{}", reply.text());
    let reply = request(&server.address, "POST", "/invocations", &[], CSV.as_bytes());
    assert_eq!(reply.status, 415, "{}", reply.text());
    let reply = post(&server, "text/csv", Some("text/csv"), CSV.as_bytes());
    assert_eq!(reply.status, 406, "{}", reply.text());
    assert!(reply.text().contains("application/jsonlines"), "{}", reply.text());

    // Concurrent requests all get the same, right answer.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let address = server.address.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| {
                        let headers = [("Content-Type", "text/csv")];
                        request(&address, "POST", "/invocations", &headers, CSV.as_bytes())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in handles {
        for reply in handle.join().unwrap() {
            assert_eq!(reply.status, 200, "{}", reply.text());
            assert_eq!(dots(&reply.json()), expected);
        }
    }

    // SIGTERM: a clean exit, a startup line with the address and model id,
    // and no request bodies in the logs.
    let address = server.address.clone();
    let (code, logs) = stop(server, "TERM");
    assert_eq!(code, Some(0), "{logs}");
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("model/model.json")).unwrap()).unwrap();
    let model_id = card["model_id"].as_str().unwrap();
    assert!(logs.contains(&address) && logs.contains(model_id), "{logs}");
    assert!(!logs.contains("35.37.0.1") && !logs.contains("user_1"), "{logs}");
}

#[test]
fn serve_refuses_a_missing_model_and_a_bad_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(ipi(dir.path()).args(["serve", "--model", "nope", "--listen", "127.0.0.1:1"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = run(ipi(dir.path()).args(["serve", "--model", "m", "--listen", "not-an-address"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Ctrl-C (SIGINT) stops the endpoint cleanly too.
#[test]
fn serve_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    train_model(dir.path());
    let server = start(dir.path());
    let reply = post(&server, "text/csv", None, CSV.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (code, logs) = stop(server, "INT");
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("Ctrl-C"), "{logs}");
}
