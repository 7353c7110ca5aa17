//! The SageMaker-compatible HTTP endpoint behind `ipi-pipeline serve`.
//!
//! * `GET /ping`: 200 with an empty body once the model is loaded
//!   (SageMaker's health check).
//! * `POST /invocations`: a request body in any of SageMaker's
//!   `Content-Type`s ([`ContentType`]), answered in the `Accept` format
//!   ([`Accept`]: `application/json` by default, `application/jsonlines`,
//!   and `; verbose=True` for the embeddings).
//!
//! Bad input never gets a 500: a body over the limit is 413, an unknown
//! `Content-Type` 415, an unknown `Accept` 406, and a body that cannot be
//! read, or a record that is not an `entity,ip` pair, or a pair that cannot
//! be scored (an empty entity, an address that is not IPv4, IPv6 included)
//! is 400 with a plain-text message naming the line or instance. Unlike the
//! batch transform, which sets such rows aside in `_rejects/`, the endpoint
//! refuses the whole request: a reply with fewer predictions than instances
//! would misalign the caller's rows, and SageMaker's replies are positional.
//!
//! The model is loaded once and shared; each request is decoded, scored and
//! encoded on a blocking thread, so slow requests do not hold up the others
//! or `/ping`. SIGTERM or Ctrl-C stops accepting connections, lets the
//! requests in flight finish, and returns.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::codec::{self, Accept, ContentType};
use crate::error::{Error, Result};
use crate::scorer::Scorer;

/// SageMaker's limit on a real-time request's payload: 6 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// How to run the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The model folder (`model.safetensors` + `model.json`), path or `s3://`.
    pub model: String,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Runs the IP encoder on this device instead of the training one.
    pub device: Option<String>,
}

impl ServeConfig {
    /// A config for `model` on `127.0.0.1:8080` with SageMaker's 6 MiB limit.
    pub fn new(model: impl Into<String>) -> ServeConfig {
        ServeConfig {
            model: model.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            device: None,
        }
    }
}

/// Loads the model, listens on `config.listen` and serves until SIGTERM or
/// Ctrl-C; then finishes the requests in flight and returns `Ok`.
pub async fn serve(config: &ServeConfig) -> Result<()> {
    let scorer = Scorer::load(&config.model, config.device.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen { address: config.listen.to_string(), source })?;
    let address = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(
        "serving model {} on http://{address} (max body {} bytes)",
        scorer.model_id(),
        config.max_body_bytes
    );
    axum::serve(listener, router(scorer, config.max_body_bytes))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| Error::Listen { address: address.to_string(), source })?;
    tracing::info!("stopped serving on http://{address}");
    Ok(())
}

/// The endpoint's routes, for `scorer`, refusing bodies over `max_body_bytes`.
pub fn router(scorer: Scorer, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/invocations", post(invocations))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(scorer)
}

async fn ping() -> StatusCode {
    StatusCode::OK
}

async fn invocations(
    State(scorer): State<Scorer>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    match invoke(scorer, &headers, body).await {
        Ok((accept, reply)) => {
            ([(header::CONTENT_TYPE, accept.content_type())], reply).into_response()
        }
        Err((status, message)) => {
            if status.is_server_error() {
                tracing::error!("/invocations failed: {message}");
            } else {
                // Not the message: it can quote the request's entities.
                tracing::debug!("/invocations refused: {status}");
            }
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n"))
                .into_response()
        }
    }
}

type Refusal = (StatusCode, String);

async fn invoke(
    scorer: Scorer,
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<(Accept, Vec<u8>), Refusal> {
    let content_type = match headers.get(header::CONTENT_TYPE) {
        None => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "missing Content-Type: use text/csv, application/json or application/jsonlines"
                    .to_string(),
            ));
        }
        Some(value) => ContentType::parse(header_text(value)).map_err(refusal)?,
    };
    let accept = match headers.get(header::ACCEPT) {
        None => Accept::default(),
        Some(value) => Accept::parse(header_text(value)).map_err(refusal)?,
    };
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            (status, "request body is over the endpoint's limit (--max-body-bytes)".to_string())
        } else if status.is_server_error() {
            (
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {}", rejection.body_text()),
            )
        } else {
            (status, rejection.body_text())
        }
    })?;
    if body.trim_ascii().is_empty() {
        return Err((StatusCode::BAD_REQUEST, "empty request body".to_string()));
    }
    let reply = tokio::task::spawn_blocking(move || {
        let decoded = codec::decode(content_type, &body)?;
        if let Some(bad) = decoded.bad.first() {
            let what = match content_type {
                ContentType::Json => "instance",
                ContentType::Csv | ContentType::JsonLines => "line",
            };
            return Err(Error::BadRequest(format!("{what} {}: {}", bad.line, bad.message)));
        }
        let predictions = scorer.predict(&decoded.pairs, accept.verbose)?;
        Ok(codec::encode(accept, &predictions))
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("a scoring task failed: {e}")))?
    .map_err(refusal)?;
    Ok((accept, reply))
}

/// A header's value as text; bytes that are not visible ASCII make it
/// unparseable, which the parsers then refuse with the type's message.
fn header_text(value: &axum::http::HeaderValue) -> &str {
    value.to_str().unwrap_or("<not ASCII>")
}

/// The status an error is answered with.
fn refusal(error: Error) -> Refusal {
    let status = match &error {
        Error::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::UnsupportedAccept(_) => StatusCode::NOT_ACCEPTABLE,
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, error.to_string())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: finishing the requests in flight"),
        () = terminate => tracing::info!("SIGTERM: finishing the requests in flight"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_client_statuses() {
        assert_eq!(
            refusal(Error::UnsupportedContentType("text/plain".into())).0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            refusal(Error::UnsupportedAccept("text/csv".into())).0,
            StatusCode::NOT_ACCEPTABLE
        );
        let (status, message) = refusal(Error::BadRequest("line 3: x".into()));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn the_default_config_is_sagemakers() {
        let config = ServeConfig::new("model");
        assert_eq!(config.max_body_bytes, 6 * 1024 * 1024);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    }
}
