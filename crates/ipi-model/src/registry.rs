//! The models folder: dated models and a `latest.json` pointer to the
//! newest one that passed its checks.
//!
//! The daily job trains into `${store}/models/<date>/` and, once the model
//! has passed the pipeline's quality gate, *promotes* it: `latest.json` in
//! `${store}/models/` is replaced (atomically) by a pointer to it. The
//! nightly batch transform and the endpoint then load `${store}/models`,
//! which [`resolve`] turns into the model the pointer names. A night whose
//! model failed its gate is never promoted, so scoring keeps the last good
//! model.
//!
//! ```text
//! models/
//!   2018-11-12/model.safetensors, model.json
//!   2018-11-13/model.safetensors, model.json
//!   latest.json   {"model": "2018-11-13", "model_id": "6b00…", "threshold": 5.41, …}
//! ```
//!
//! The pointer can also carry the `anomaly_score` threshold the model was
//! evaluated to flag at (the pipeline's evaluate step chooses it on the
//! test window): whoever scores with the folder flags at that threshold
//! unless told another, so a model and its threshold are promoted together.
//!
//! The pointer names a model below the folder by its relative path, so the
//! whole folder can be copied or moved; models elsewhere are named by URL.

use bytes::Bytes;
use ipi_storage::Location;
use serde::{Deserialize, Serialize};

use crate::checkpoint::ModelCard;
use crate::error::{Error, Result};

/// The pointer's file name in a models folder.
pub const LATEST: &str = "latest.json";

/// What `latest.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latest {
    /// The model: a path relative to the models folder, or a URL.
    pub model: String,
    /// The promoted model's `model_id`: a later write to that folder that
    /// changes the model is caught on load instead of silently served.
    pub model_id: String,
    /// When it was promoted (RFC 3339, UTC).
    pub promoted_at: String,
    /// The `anomaly_score` threshold to flag at with this model, when one
    /// was chosen for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// Where a model URL points: a model folder (`model.json` there) as is, or
/// a models folder (`latest.json` there) as the model its pointer names.
/// Also returns the pointer, when there was one.
pub async fn resolve(url: &str) -> Result<(String, Option<Latest>)> {
    let root = Location::parse(url.trim_end_matches('/'))?;
    match ipi_storage::get_bytes(&root.join(LATEST)).await {
        Ok(bytes) => {
            let latest: Latest = serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
                url: root.join(LATEST).to_string(),
                message: format!("not a models pointer: {e}"),
            })?;
            Ok((model_url(&root, &latest.model), Some(latest)))
        }
        Err(e) if e.is_not_found() => Ok((url.to_owned(), None)),
        Err(e) => Err(e.into()),
    }
}

/// Points `models/latest.json` at the model in `model` (which must load:
/// its card is read and its tensors checked), with the threshold to flag
/// at, replacing the pointer atomically. Returns the new pointer.
pub async fn promote(model: &str, models: &str, threshold: Option<f64>) -> Result<Latest> {
    if let Some(t) = threshold.filter(|t| !t.is_finite()) {
        return Err(Error::Data(format!("threshold {t} is not a finite number")));
    }
    let (_, card) = crate::checkpoint::load(model, Some("cpu")).await?;
    let root = Location::parse(models.trim_end_matches('/'))?;
    let target = Location::parse(model.trim_end_matches('/'))?;
    let latest = Latest {
        model: relative_to(&root, &target).unwrap_or_else(|| target.to_string()),
        model_id: card.model_id,
        promoted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        threshold,
    };
    let json = serde_json::to_vec_pretty(&latest).expect("a pointer serialises");
    ipi_storage::put_atomic(&root.join(LATEST), Bytes::from(json)).await?;
    Ok(latest)
}

/// Checks a loaded model against the pointer that led to it.
pub(crate) fn check(url: &str, latest: Option<&Latest>, card: &ModelCard) -> Result<()> {
    match latest {
        Some(latest) if latest.model_id != card.model_id => Err(Error::Checkpoint {
            url: url.to_owned(),
            message: format!(
                "latest.json promoted model {} but the folder now holds {}; promote it again \
                 (`ipi-pipeline promote`) if the new model is good",
                latest.model_id, card.model_id
            ),
        }),
        _ => Ok(()),
    }
}

/// The model a pointer names, as a URL.
fn model_url(root: &Location, name: &str) -> String {
    if name.contains("://") || name.starts_with('/') {
        name.to_owned()
    } else {
        root.join(name).to_string()
    }
}

/// `target`'s path below `root`, when it is in the same store below it.
fn relative_to(root: &Location, target: &Location) -> Option<String> {
    let (root_url, target_url) = (root.url(), target.url());
    if root_url.scheme() != target_url.scheme() || root_url.host() != target_url.host() {
        return None;
    }
    let root_path = root.path().as_ref();
    let rest = target.path().as_ref().strip_prefix(root_path)?.strip_prefix('/')?;
    (!rest.is_empty()).then(|| rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_below_the_folder_are_named_relatively() {
        let root = Location::parse("memory://reg/models").unwrap();
        let below = Location::parse("memory://reg/models/2018-11-13").unwrap();
        let beside = Location::parse("memory://reg/other/2018-11-13").unwrap();
        assert_eq!(relative_to(&root, &below).as_deref(), Some("2018-11-13"));
        assert_eq!(relative_to(&root, &beside), None);
        assert_eq!(relative_to(&root, &root), None);
        assert_eq!(model_url(&root, "2018-11-13"), below.to_string());
        assert_eq!(model_url(&root, "s3://b/m"), "s3://b/m");
    }

    #[test]
    fn pointers_written_before_thresholds_still_read() {
        let old =
            r#"{"model": "2018-11-13", "model_id": "00ff", "promoted_at": "2018-11-14T06:00:00Z"}"#;
        let latest: Latest = serde_json::from_str(old).unwrap();
        assert_eq!(latest.threshold, None);
        let with = Latest { threshold: Some(5.25), ..latest };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""threshold":5.25"#), "{json}");
        assert_eq!(serde_json::from_str::<Latest>(&json).unwrap(), with);
    }
}
