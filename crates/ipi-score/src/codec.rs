//! SageMaker IP Insights' request and response formats.
//!
//! Requests (`Content-Type`):
//!
//! * `text/csv`: one `entity,ip` per line, no header;
//! * `application/json`: `{"instances":[{"data":{"features":{"values":
//!   ["user_1","192.168.1.2"]}}},{"features":["user_2","10.10.1.2"]}]}`;
//! * `application/jsonlines`: one such instance per line.
//!
//! Responses (`Accept`): `application/json` (`{"predictions":[{"dot_product":
//! 0.5}]}`) or `application/jsonlines` (one `{"dot_product":0.5}` per line);
//! a `verbose=True` parameter adds `ip_embedding` and `entity_embedding`, in
//! that key order, as SageMaker's replies have them.
//!
//! Decoding checks the shape of the body only. Whether an entity is empty
//! or an address is IPv4 is checked per pair by [`Pair::validate`], so a
//! batch transform can keep the good pairs and reject the others.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// A request body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `text/csv`: `entity,ip` lines.
    Csv,
    /// `application/json`: `{"instances":[...]}`.
    Json,
    /// `application/jsonlines`: one instance per line.
    JsonLines,
}

impl ContentType {
    /// Parses a `Content-Type` value; parameters (`; charset=utf-8`) are
    /// ignored. [`Error::UnsupportedContentType`] for any other type.
    pub fn parse(value: &str) -> Result<ContentType> {
        let (essence, _) = split_media_type(value);
        match essence.as_str() {
            "text/csv" => Ok(ContentType::Csv),
            "application/json" => Ok(ContentType::Json),
            "application/jsonlines" | "application/jsonl" | "application/x-ndjson" => {
                Ok(ContentType::JsonLines)
            }
            _ => Err(Error::UnsupportedContentType(value.to_string())),
        }
    }

    /// The canonical media type.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Csv => "text/csv",
            ContentType::Json => "application/json",
            ContentType::JsonLines => "application/jsonlines",
        }
    }

    /// The format a file name's extension suggests (`.csv`, `.json`,
    /// `.jsonl`, `.jsonlines`).
    pub fn from_extension(name: &str) -> Option<ContentType> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(ContentType::Csv),
            "json" => Some(ContentType::Json),
            "jsonl" | "jsonlines" | "ndjson" => Some(ContentType::JsonLines),
            _ => None,
        }
    }
}

/// A response format: the media type and whether embeddings are included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Accept {
    /// `application/json` or `application/jsonlines` (CSV is not a
    /// response format of IP Insights).
    pub format: ResponseFormat,
    /// `verbose=True`: also return `ip_embedding` and `entity_embedding`.
    pub verbose: bool,
}

/// The media type of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFormat {
    /// `{"predictions":[...]}`.
    Json,
    /// One prediction object per line.
    JsonLines,
}

impl Default for Accept {
    /// SageMaker's default: `application/json`, not verbose.
    fn default() -> Accept {
        Accept { format: ResponseFormat::Json, verbose: false }
    }
}

impl Accept {
    /// Parses an `Accept` value such as `application/json; verbose=True`.
    /// A list (`a, b`) takes the first supported entry; `*/*`,
    /// `application/*` and an empty value mean `application/json`.
    pub fn parse(value: &str) -> Result<Accept> {
        if value.trim().is_empty() {
            return Ok(Accept::default());
        }
        for entry in value.split(',') {
            let (essence, params) = split_media_type(entry);
            let format = match essence.as_str() {
                "application/json" | "*/*" | "application/*" => ResponseFormat::Json,
                "application/jsonlines" | "application/jsonl" | "application/x-ndjson" => {
                    ResponseFormat::JsonLines
                }
                _ => continue,
            };
            let verbose = params.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("verbose")
                    && matches!(v.to_ascii_lowercase().as_str(), "true" | "1")
            });
            return Ok(Accept { format, verbose });
        }
        Err(Error::UnsupportedAccept(value.to_string()))
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self.format {
            ResponseFormat::Json => "application/json",
            ResponseFormat::JsonLines => "application/jsonlines",
        }
    }
}

/// `"Type/Sub; k=v; k2=\"v2\""` → (`"type/sub"`, `[(k, v), (k2, v2)]`).
fn split_media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect();
    (essence, params)
}

/// One `(entity, ip)` pair of a request, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// 1-based line (CSV, JSON Lines) or instance (JSON) number.
    pub line: u64,
    /// The entity, as given.
    pub entity: String,
    /// The address, as given.
    pub ip: String,
}

impl Pair {
    /// The IPv4 address as a `u32`, or why this pair cannot be scored.
    pub fn validate(&self) -> std::result::Result<u32, RejectReason> {
        validate(Some(&self.entity), self.ip.as_bytes())
    }
}

/// Why a pair cannot be scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The entity is null or empty.
    EmptyEntity,
    /// The address is not a dotted-quad IPv4 address (IPv6 included).
    InvalidIp,
    /// The record is not an `entity,ip` pair.
    Malformed,
}

impl RejectReason {
    /// The text kept in `_rejects/`' `reason` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::EmptyEntity => "empty_entity",
            RejectReason::InvalidIp => "invalid_ip",
            RejectReason::Malformed => "malformed",
        }
    }
}

/// Checks a pair: a non-empty entity and an IPv4 address.
pub fn validate(entity: Option<&str>, ip: &[u8]) -> std::result::Result<u32, RejectReason> {
    if entity.is_none_or(|e| e.trim().is_empty()) {
        return Err(RejectReason::EmptyEntity);
    }
    ipi_core::ipv4::parse(ip.trim_ascii()).ok_or(RejectReason::InvalidIp)
}

/// A record that is not a pair at all: kept for `_rejects/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// 1-based line or instance number.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
    /// The record's bytes.
    pub raw: Vec<u8>,
}

/// A decoded body: its pairs, and the records that were not pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The pairs, in order.
    pub pairs: Vec<Pair>,
    /// Records that could not be read as pairs.
    pub bad: Vec<BadRecord>,
}

impl Decoded {
    /// Adds `lines` to every record's line number (for a piece of a body
    /// that starts after `lines` lines).
    pub fn shift_lines(&mut self, lines: u64) {
        self.pairs.iter_mut().for_each(|p| p.line += lines);
        self.bad.iter_mut().for_each(|b| b.line += lines);
    }
}

/// Decodes a request body. A body that is not valid at all (JSON that does
/// not parse, no `instances` array, not UTF-8 where text is needed) is an
/// error; a single record of the wrong shape is a [`BadRecord`].
pub fn decode(content_type: ContentType, body: &[u8]) -> Result<Decoded> {
    match content_type {
        ContentType::Csv => Ok(decode_csv(body)),
        ContentType::JsonLines => Ok(decode_jsonlines(body)),
        ContentType::Json => decode_json(body),
    }
}

fn decode_csv(body: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.trim_ascii().is_empty() {
            continue;
        }
        let bad = |message: &str| BadRecord { line, message: message.into(), raw: raw.to_vec() };
        let Ok(text) = std::str::from_utf8(raw) else {
            out.bad.push(bad("not UTF-8"));
            continue;
        };
        let fields: Vec<&str> = text.split(',').map(unquote).collect();
        match fields.as_slice() {
            [entity, ip] => {
                out.pairs.push(Pair { line, entity: (*entity).to_string(), ip: (*ip).to_string() })
            }
            _ => {
                out.bad.push(bad(&format!("expected 2 fields (entity,ip), found {}", fields.len())))
            }
        }
    }
    out
}

/// A CSV field without surrounding spaces and one pair of double quotes.
fn unquote(field: &str) -> &str {
    let field = field.trim();
    field.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(field)
}

fn decode_jsonlines(body: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        if raw.trim_ascii().is_empty() {
            continue;
        }
        let parsed = serde_json::from_slice::<Value>(raw)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| instance(&v));
        match parsed {
            Ok((entity, ip)) => out.pairs.push(Pair { line, entity, ip }),
            Err(message) => out.bad.push(BadRecord { line, message, raw: raw.to_vec() }),
        }
    }
    out
}

fn decode_json(body: &[u8]) -> Result<Decoded> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("not JSON: {e}")))?;
    let Some(instances) = value.get("instances").and_then(Value::as_array) else {
        return Err(Error::BadRequest(
            "expected {\"instances\": [...]} at the top level".to_string(),
        ));
    };
    let mut out = Decoded::default();
    for (i, v) in instances.iter().enumerate() {
        let line = i as u64 + 1;
        match instance(v) {
            Ok((entity, ip)) => out.pairs.push(Pair { line, entity, ip }),
            Err(message) => {
                out.bad.push(BadRecord { line, message, raw: v.to_string().into_bytes() })
            }
        }
    }
    Ok(out)
}

/// One instance: `{"data":{"features":{"values":[e, ip]}}}`,
/// `{"features":[e, ip]}`, or (leniently) a bare `[e, ip]`.
fn instance(v: &Value) -> std::result::Result<(String, String), String> {
    let values = v
        .pointer("/data/features/values")
        .or_else(|| v.get("features"))
        .or_else(|| v.is_array().then_some(v));
    let Some(values) = values.and_then(Value::as_array) else {
        return Err(
            "expected {\"data\":{\"features\":{\"values\":[entity, ip]}}} or {\"features\":[entity, ip]}"
                .to_string(),
        );
    };
    match values.as_slice() {
        [Value::String(e), Value::String(ip)] => Ok((e.clone(), ip.clone())),
        [_, _] => Err("entity and ip must be strings".to_string()),
        other => Err(format!("expected 2 values (entity, ip), found {}", other.len())),
    }
}

/// One prediction, with the embeddings when verbose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// ⟨entity vector, IP vector⟩.
    pub dot_product: f32,
    /// The IP vector (verbose only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_embedding: Option<Vec<f32>>,
    /// The entity vector (verbose only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_embedding: Option<Vec<f32>>,
}

/// Encodes predictions in the `accept` format (the `verbose` flag is the
/// caller's: it decides whether the predictions carry embeddings).
pub fn encode(accept: Accept, predictions: &[Prediction]) -> Vec<u8> {
    let mut encoder = Encoder::new(accept);
    let mut out = Vec::with_capacity(predictions.len() * 24 + 16);
    encoder.items(predictions, &mut out);
    encoder.finish(&mut out);
    out
}

/// Encodes a response piece by piece, so that a long one is written as it
/// is scored: the bytes are those [`encode`] gives for all the pieces.
#[derive(Debug)]
pub struct Encoder {
    format: ResponseFormat,
    /// Predictions encoded so far.
    written: u64,
}

impl Encoder {
    /// An encoder for the `accept` format.
    pub fn new(accept: Accept) -> Encoder {
        Encoder { format: accept.format, written: 0 }
    }

    /// Appends `predictions` to `out`.
    pub fn items(&mut self, predictions: &[Prediction], out: &mut Vec<u8>) {
        for p in predictions {
            if self.format == ResponseFormat::Json {
                out.extend_from_slice(if self.written == 0 { b"{\"predictions\":[" } else { b"," });
            }
            // Serialising plain structs of floats cannot fail.
            serde_json::to_writer(&mut *out, p).unwrap_or_default();
            if self.format == ResponseFormat::JsonLines {
                out.push(b'\n');
            }
            self.written += 1;
        }
    }

    /// Appends the end of the response to `out`.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.format == ResponseFormat::Json {
            out.extend_from_slice(if self.written == 0 { b"{\"predictions\":[]}" } else { b"]}" });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(line: u64, entity: &str, ip: &str) -> Pair {
        Pair { line, entity: entity.into(), ip: ip.into() }
    }

    #[test]
    fn content_types_parse_with_parameters() {
        assert_eq!(ContentType::parse("text/csv").unwrap(), ContentType::Csv);
        assert_eq!(ContentType::parse("text/csv; charset=utf-8").unwrap(), ContentType::Csv);
        assert_eq!(ContentType::parse("Application/JSON").unwrap(), ContentType::Json);
        assert_eq!(ContentType::parse("application/jsonlines").unwrap(), ContentType::JsonLines);
        assert!(matches!(ContentType::parse("text/plain"), Err(Error::UnsupportedContentType(_))));
        assert_eq!(ContentType::from_extension("a/b.JSONL"), Some(ContentType::JsonLines));
        assert_eq!(ContentType::from_extension("a/b.parquet"), None);
    }

    #[test]
    fn accept_values_parse_like_sagemaker() {
        let json = Accept { format: ResponseFormat::Json, verbose: false };
        assert_eq!(Accept::parse("application/json").unwrap(), json);
        assert_eq!(Accept::parse("").unwrap(), json);
        assert_eq!(Accept::parse("*/*").unwrap(), json);
        assert_eq!(
            Accept::parse("application/json; verbose=True").unwrap(),
            Accept { format: ResponseFormat::Json, verbose: true }
        );
        assert_eq!(
            Accept::parse("application/jsonlines;verbose=true").unwrap(),
            Accept { format: ResponseFormat::JsonLines, verbose: true }
        );
        assert_eq!(
            Accept::parse("text/html, application/jsonlines").unwrap(),
            Accept { format: ResponseFormat::JsonLines, verbose: false }
        );
        assert!(matches!(Accept::parse("text/csv"), Err(Error::UnsupportedAccept(_))));
    }

    #[test]
    fn csv_bodies_decode_line_by_line() {
        let body = b"user_1,192.168.1.2\r\n\n\"user_2\", 10.10.1.2\nonly_one_field\nuser_3,::1\n";
        let d = decode(ContentType::Csv, body).unwrap();
        assert_eq!(
            d.pairs,
            [pair(1, "user_1", "192.168.1.2"), pair(3, "user_2", "10.10.1.2"), {
                pair(5, "user_3", "::1")
            }]
        );
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].line, 4);
        assert_eq!(d.bad[0].raw, b"only_one_field");
        assert_eq!(d.pairs[2].validate(), Err(RejectReason::InvalidIp));
        assert_eq!(d.pairs[0].validate(), Ok(0xC0A8_0102));
    }

    #[test]
    fn json_bodies_take_both_instance_shapes() {
        let body = br#"{"instances":[{"data":{"features":{"values":["user_1","192.168.1.2"]}}},{"features":["user_2","10.10.1.2"]}]}"#;
        let d = decode(ContentType::Json, body).unwrap();
        assert_eq!(d.pairs, [pair(1, "user_1", "192.168.1.2"), pair(2, "user_2", "10.10.1.2")]);
        assert!(d.bad.is_empty());
    }

    #[test]
    fn json_bodies_of_the_wrong_shape_are_bad_requests() {
        for body in [&b"{"[..], b"[]", b"{\"instances\": 3}", b"\xff"] {
            assert!(matches!(decode(ContentType::Json, body), Err(Error::BadRequest(_))));
        }
        let d = decode(
            ContentType::Json,
            br#"{"instances":[{"features":["a"]},{"x":1},{"features":[1,2]}]}"#,
        )
        .unwrap();
        assert!(d.pairs.is_empty());
        assert_eq!(d.bad.iter().map(|b| b.line).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn jsonlines_bodies_decode_line_by_line() {
        let body = b"{\"features\":[\"user_1\",\"1.2.3.4\"]}\n\n{\"data\":{\"features\":{\"values\":[\"user_2\",\"5.6.7.8\"]}}}\nnot json\n";
        let d = decode(ContentType::JsonLines, body).unwrap();
        assert_eq!(d.pairs, [pair(1, "user_1", "1.2.3.4"), pair(3, "user_2", "5.6.7.8")]);
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].line, 4);
        assert!(d.bad[0].message.starts_with("not JSON"), "{}", d.bad[0].message);
    }

    #[test]
    fn empty_entities_and_ipv6_are_rejected() {
        assert_eq!(validate(Some(""), b"1.2.3.4"), Err(RejectReason::EmptyEntity));
        assert_eq!(validate(None, b"1.2.3.4"), Err(RejectReason::EmptyEntity));
        assert_eq!(validate(Some("u"), b"2001:db8::1"), Err(RejectReason::InvalidIp));
        assert_eq!(validate(Some("u"), b"256.1.1.1"), Err(RejectReason::InvalidIp));
        assert_eq!(validate(Some("u"), b"1.2.3.4"), Ok(0x0102_0304));
    }

    #[test]
    fn responses_have_sagemakers_shapes() {
        let plain = [
            Prediction { dot_product: 0.0, ip_embedding: None, entity_embedding: None },
            Prediction { dot_product: 2.0, ip_embedding: None, entity_embedding: None },
        ];
        let json = String::from_utf8(encode(Accept::default(), &plain)).unwrap();
        assert_eq!(json, r#"{"predictions":[{"dot_product":0.0},{"dot_product":2.0}]}"#);
        let lines = Accept { format: ResponseFormat::JsonLines, verbose: false };
        let jsonl = String::from_utf8(encode(lines, &plain)).unwrap();
        assert_eq!(jsonl, "{\"dot_product\":0.0}\n{\"dot_product\":2.0}\n");

        let verbose = [Prediction {
            dot_product: 1.5,
            ip_embedding: Some(vec![1.0, 0.5]),
            entity_embedding: Some(vec![1.0, 1.0]),
        }];
        let accept = Accept { format: ResponseFormat::Json, verbose: true };
        let json = String::from_utf8(encode(accept, &verbose)).unwrap();
        assert_eq!(
            json,
            r#"{"predictions":[{"dot_product":1.5,"ip_embedding":[1.0,0.5],"entity_embedding":[1.0,1.0]}]}"#
        );
        assert_eq!(encode(Accept::default(), &[]), br#"{"predictions":[]}"#);
    }

    #[test]
    fn a_response_encoded_in_pieces_is_the_whole_response() {
        let all: Vec<Prediction> = (0..5)
            .map(|i| Prediction {
                dot_product: i as f32,
                ip_embedding: None,
                entity_embedding: None,
            })
            .collect();
        for format in [ResponseFormat::Json, ResponseFormat::JsonLines] {
            let accept = Accept { format, verbose: false };
            let mut encoder = Encoder::new(accept);
            let mut out = Vec::new();
            for piece in [&all[..0], &all[..2], &all[2..3], &all[3..]] {
                encoder.items(piece, &mut out);
            }
            encoder.finish(&mut out);
            assert_eq!(out, encode(accept, &all), "{format:?}");
        }
    }
}
