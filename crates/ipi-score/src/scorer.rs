//! A loaded model and the one way both the batch transform and the
//! endpoint score pairs.

use std::sync::Arc;

use ipi_model::checkpoint::ModelCard;
use ipi_model::{Model, ScoringModel};

use crate::codec::{Pair, Prediction};
use crate::error::{Error, Result};

/// Scores of a batch of valid pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// ⟨entity vector, IP vector⟩ of each pair.
    pub dot_product: Vec<f32>,
    /// Whether training saw each pair's entity row.
    pub entity_seen: Vec<bool>,
    /// `[n, dim]` IP vectors, when asked for.
    pub ip_embedding: Option<Vec<f32>>,
    /// `[n, dim]` entity vectors, when asked for.
    pub entity_embedding: Option<Vec<f32>>,
}

/// A model ready to score, shareable across tasks: its first encoder layer
/// is folded into the prefix table ([`ScoringModel`]), so scoring runs no
/// matmul per pair.
#[derive(Debug, Clone)]
pub struct Scorer {
    model: Arc<ScoringModel>,
    model_id: Arc<str>,
    promoted_threshold: Option<f64>,
}

impl Scorer {
    /// Loads the model at `url` (`device` overrides its training device).
    ///
    /// `url` may be a models folder; the threshold its pointer carries is
    /// then [`promoted_threshold`](Self::promoted_threshold).
    pub async fn load(url: &str, device: Option<&str>) -> Result<Scorer> {
        let (model, card, latest) = ipi_model::checkpoint::load_promoted(url, device).await?;
        let mut scorer = Scorer::new(model, &card)?;
        scorer.promoted_threshold = latest.and_then(|l| l.threshold);
        Ok(scorer)
    }

    /// A scorer for a model already in memory.
    pub fn new(model: Model, card: &ModelCard) -> Result<Scorer> {
        Ok(Scorer {
            model: Arc::new(ScoringModel::new(model)?),
            model_id: card.model_id.as_str().into(),
            promoted_threshold: None,
        })
    }

    /// The threshold the model was promoted with, when it was loaded from a
    /// models folder whose `latest.json` carries one.
    pub fn promoted_threshold(&self) -> Option<f64> {
        self.promoted_threshold
    }

    /// The model's id (`model.json`'s `model_id`).
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Floats per embedding.
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// The entity-table row of `entity`.
    pub fn entity_row(&self, entity: &str) -> u32 {
        self.model.entity_row(entity)
    }

    /// Scores aligned `entities` and IPv4 `ips` (on this thread: CPU work).
    /// With `verbose`, the embeddings too, and `dot_product` is exactly
    /// their dot product.
    pub fn score<S: AsRef<str>>(
        &self,
        entities: &[S],
        ips: &[u32],
        verbose: bool,
    ) -> Result<Scores> {
        let rows: Vec<u32> = entities.iter().map(|e| self.entity_row(e.as_ref())).collect();
        self.score_rows(&rows, ips, verbose)
    }

    /// [`score`](Self::score) for entities given by their rows
    /// ([`entity_row`](Self::entity_row)).
    pub fn score_rows(&self, rows: &[u32], ips: &[u32], verbose: bool) -> Result<Scores> {
        let model = &self.model;
        let entity_seen = rows.iter().map(|&r| model.entity_seen(r)).collect();
        if !verbose {
            let dot_product = model.score(rows, ips)?;
            return Ok(Scores { dot_product, entity_seen, ..Scores::default() });
        }
        let dim = model.dim();
        let (entity, ip) = model.embeddings(rows, ips)?;
        let dot_product = entity
            .chunks_exact(dim)
            .zip(ip.chunks_exact(dim))
            .map(|(e, h)| ipi_model::model::dot(e, h))
            .collect();
        Ok(Scores {
            dot_product,
            entity_seen,
            ip_embedding: Some(ip),
            entity_embedding: Some(entity),
        })
    }

    /// [`score_rows`](Self::score_rows) in a blocking task, so async
    /// callers keep their threads.
    pub async fn score_blocking(
        &self,
        rows: Vec<u32>,
        ips: Vec<u32>,
        verbose: bool,
    ) -> Result<Scores> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.score_rows(&rows, &ips, verbose))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// SageMaker predictions for request pairs. Every pair must be valid:
    /// the first that is not is a [`Error::BadRequest`] naming its line.
    pub fn predict(&self, pairs: &[Pair], verbose: bool) -> Result<Vec<Prediction>> {
        let mut ips = Vec::with_capacity(pairs.len());
        for p in pairs {
            let ip = p.validate().map_err(|reason| {
                Error::BadRequest(format!(
                    "record {}: {} ({:?}, {:?})",
                    p.line,
                    reason.as_str(),
                    p.entity,
                    p.ip
                ))
            })?;
            ips.push(ip);
        }
        let entities: Vec<&str> = pairs.iter().map(|p| p.entity.as_str()).collect();
        let scores = self.score(&entities, &ips, verbose)?;
        Ok(predictions(&scores, self.dim()))
    }
}

/// SageMaker's prediction objects for `scores`.
pub fn predictions(scores: &Scores, dim: usize) -> Vec<Prediction> {
    let split = |v: &Option<Vec<f32>>, i: usize| {
        v.as_ref().map(|v| v.get(i * dim..(i + 1) * dim).unwrap_or_default().to_vec())
    };
    scores
        .dot_product
        .iter()
        .enumerate()
        .map(|(i, &dot_product)| Prediction {
            dot_product,
            ip_embedding: split(&scores.ip_embedding, i),
            entity_embedding: split(&scores.entity_embedding, i),
        })
        .collect()
}
