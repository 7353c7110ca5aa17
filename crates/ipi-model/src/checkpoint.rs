//! `model.safetensors` plus `model.json`, side by side under the model's URL.
//!
//! `model.json` is written last and names the hash of the tensors it
//! belongs with, so a reader never pairs a new description with old tensors:
//! a write cut short is caught on load, and a re-run simply replaces both.

use std::collections::HashMap;

use bytes::Bytes;
use candle_core::Tensor;
use ipi_core::hash::{ENTITY_HASH_NAME, ENTITY_HASH_SEED};
use ipi_storage::Location;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::data::DataSummary;
use crate::hyper::Hyperparameters;
use crate::ip::{ENCODER_VERSION, IpEncoderSpec, PREFIXES};
use crate::model::{Dense, Model, candle_device};
use crate::sparse::Table;
use crate::train::FitReport;
use crate::{Error, Result};

/// `format` in every `model.json`.
pub const FORMAT: &str = "ipi-model";
/// Version of the checkpoint layout; loading refuses any other.
pub const FORMAT_VERSION: u32 = 1;

const ENTITY: &str = "entity_vectors";
const IP_PREFIX: &str = "ip_prefix_vectors";
const ENTITY_TRAINED: &str = "entity_trained";

/// `model.json`: what a model is and how it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The ipi version that wrote it.
    pub ipi_version: String,
    /// XXH3-64 of `model.safetensors`, hex: the model's identity.
    pub model_id: String,
    /// The hyperparameters, SageMaker's names.
    pub hyperparameters: Hyperparameters,
    /// How entity strings map to rows.
    pub entity_hash: EntityHash,
    /// How addresses map to prefix rows, and the layers after them.
    pub ip_encoder: IpEncoderCard,
    /// What it was trained on.
    pub training_data: Option<DataSummary>,
    /// What it was validated on.
    pub validation_data: Option<DataSummary>,
    /// Metrics per epoch, and whether early stopping ended training.
    pub training: FitReport,
}

/// The entity hash, recorded so that a model is never used with another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityHash {
    /// [`ipi_core::hash::ENTITY_HASH_NAME`].
    pub function: String,
    /// [`ipi_core::hash::ENTITY_HASH_SEED`].
    pub seed: u64,
    /// Rows: the hash is taken modulo this.
    pub rows: u64,
}

/// The IP encoder's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpEncoderCard {
    /// [`ENCODER_VERSION`] when written.
    pub version: u32,
    /// Prefix lengths, each a part of the prefix table.
    pub prefixes: Vec<u32>,
    /// Rows per hashed prefix.
    pub hash_buckets: u32,
    /// Fully connected layers, each followed by ReLU.
    pub layers: usize,
}

/// What to record with a model besides its tensors.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The training data.
    pub training_data: Option<DataSummary>,
    /// The validation data.
    pub validation_data: Option<DataSummary>,
    /// Metrics of the run.
    pub training: FitReport,
}

fn view(data: &[f32], shape: Vec<usize>) -> Result<TensorView<'_>> {
    TensorView::new(Dtype::F32, shape, bytemuck::cast_slice(data))
        .map_err(|e| Error::Data(format!("safetensors: {e}")))
}

fn model_files(url: &str) -> Result<(Location, Location)> {
    let root = Location::parse(url.trim_end_matches('/'))?;
    Ok((root.join("model.safetensors"), root.join("model.json")))
}

/// Writes `model` under `url` (a directory): tensors, then the card.
pub async fn save(model: &Model, url: &str, provenance: Provenance) -> Result<ModelCard> {
    let (tensors_at, card_at) = model_files(url)?;
    let dim = model.dim();
    let mut dense: Vec<(String, Vec<f32>, Vec<usize>)> = Vec::new();
    for (name, tensor) in model.dense_tensors() {
        dense.push((name, Model::host(tensor)?, tensor.dims().to_vec()));
    }
    let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
    views.push((
        ENTITY.into(),
        view(model.entity_table.data(), vec![model.entity_table.rows, dim])?,
    ));
    views.push((IP_PREFIX.into(), view(model.ip_table.data(), vec![model.ip_table.rows, dim])?));
    for (name, data, shape) in &dense {
        views.push((name.clone(), view(data, shape.clone())?));
    }
    let trained: Vec<u8> = model.entity_trained.iter().map(|&t| u8::from(t)).collect();
    let trained_view = TensorView::new(Dtype::U8, vec![trained.len()], &trained)
        .map_err(|e| Error::Data(format!("safetensors: {e}")))?;
    views.push((ENTITY_TRAINED.into(), trained_view));
    let metadata = HashMap::from([("format".to_owned(), FORMAT.to_owned())]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Data(format!("safetensors: {e}")))?;
    let model_id = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
    ipi_storage::put_atomic(&tensors_at, Bytes::from(bytes)).await?;
    let card = ModelCard {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        ipi_version: env!("CARGO_PKG_VERSION").into(),
        model_id,
        hyperparameters: model.hyperparameters.clone(),
        entity_hash: EntityHash {
            function: ENTITY_HASH_NAME.into(),
            seed: ENTITY_HASH_SEED,
            rows: model.entity_table.rows as u64,
        },
        ip_encoder: IpEncoderCard {
            version: model.ip_spec.version,
            prefixes: PREFIXES.to_vec(),
            hash_buckets: model.ip_spec.hash_buckets,
            layers: model.layers.len(),
        },
        training_data: provenance.training_data,
        validation_data: provenance.validation_data,
        training: provenance.training,
    };
    let json = serde_json::to_vec_pretty(&card).expect("a card serialises");
    ipi_storage::put_atomic(&card_at, Bytes::from(json)).await?;
    Ok(card)
}

/// Loads the model under `url`, refusing one this version cannot use.
/// `device` overrides the device it was trained on.
///
/// `url` may also be a models folder: the model its `latest.json` names
/// is loaded (see [`crate::registry`]).
pub async fn load(url: &str, device: Option<&str>) -> Result<(Model, ModelCard)> {
    let (model, card, _) = load_promoted(url, device).await?;
    Ok((model, card))
}

/// [`load`], also returning the models folder's pointer when `url` is a
/// models folder (its threshold, when it has one, comes with the model).
pub async fn load_promoted(
    url: &str,
    device: Option<&str>,
) -> Result<(Model, ModelCard, Option<crate::registry::Latest>)> {
    let (resolved, latest) = crate::registry::resolve(url).await?;
    let (model, card) = load_folder(&resolved, device).await?;
    crate::registry::check(&resolved, latest.as_ref(), &card)?;
    Ok((model, card, latest))
}

/// Loads the model folder at `url`.
async fn load_folder(url: &str, device: Option<&str>) -> Result<(Model, ModelCard)> {
    let (tensors_at, card_at) = model_files(url)?;
    let bad = |message: String| Error::Checkpoint { url: url.to_owned(), message };
    let card_bytes = ipi_storage::get_bytes(&card_at).await.map_err(|e| {
        if e.is_not_found() {
            bad("no model.json (nor a models folder's latest.json) here; train a model with \
                 `ipi-pipeline train --model URL`, or promote one with `ipi-pipeline promote`"
                .into())
        } else {
            e.into()
        }
    })?;
    let card: ModelCard = serde_json::from_slice(&card_bytes)
        .map_err(|e| bad(format!("model.json is not a model card: {e}")))?;
    if card.format != FORMAT || card.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "format {} v{} cannot be read by ipi {} (reads {FORMAT} v{FORMAT_VERSION})",
            card.format,
            card.format_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    if card.entity_hash.function != ENTITY_HASH_NAME || card.entity_hash.seed != ENTITY_HASH_SEED {
        return Err(bad(format!(
            "entity hash {:?} is not {ENTITY_HASH_NAME} seed {ENTITY_HASH_SEED}",
            card.entity_hash
        )));
    }
    if card.ip_encoder.version != ENCODER_VERSION || card.ip_encoder.prefixes != PREFIXES {
        return Err(bad(format!(
            "IP encoder v{} {:?} is not v{ENCODER_VERSION} {PREFIXES:?}",
            card.ip_encoder.version, card.ip_encoder.prefixes
        )));
    }
    let bytes = ipi_storage::get_bytes(&tensors_at).await?;
    let id = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
    if id != card.model_id {
        return Err(bad(format!(
            "model.safetensors (id {id}) is not the one model.json describes ({}); was a write interrupted?",
            card.model_id
        )));
    }
    let tensors =
        SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("model.safetensors: {e}")))?;
    let h = &card.hyperparameters;
    let dim = h.vector_dim;
    let spec = IpEncoderSpec {
        version: card.ip_encoder.version,
        hash_buckets: card.ip_encoder.hash_buckets,
    };
    let table = |name: &str, rows: usize| -> Result<Table> {
        let t = tensors.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if t.dtype() != Dtype::F32 || t.shape() != [rows, dim] {
            return Err(bad(format!(
                "{name} is {:?} {:?}, expected F32 [{rows}, {dim}]",
                t.dtype(),
                t.shape()
            )));
        }
        Ok(Table::from_le_bytes(rows, dim, bytes.slice_ref(t.data())))
    };
    let entity_table = table(ENTITY, card.entity_hash.rows as usize)?;
    let ip_table = table(IP_PREFIX, spec.rows())?;
    let mut hyperparameters = h.clone();
    if let Some(device) = device {
        hyperparameters.device = device.to_owned();
    }
    let device = candle_device(&hyperparameters.device)?;
    let mut layers = Vec::new();
    for l in 0..card.ip_encoder.layers {
        let get = |name: String, shape: &[usize]| -> Result<Tensor> {
            let t = tensors.tensor(&name).map_err(|e| bad(format!("{name}: {e}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(bad(format!(
                    "{name} is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            let data: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
            Ok(Tensor::from_vec(data, shape, &device)?)
        };
        layers.push(Dense {
            weight: get(format!("ip_encoder.{l}.weight"), &[dim, dim])?,
            bias: get(format!("ip_encoder.{l}.bias"), &[dim])?,
        });
    }
    let trained =
        tensors.tensor(ENTITY_TRAINED).map_err(|e| bad(format!("{ENTITY_TRAINED}: {e}")))?;
    if trained.dtype() != Dtype::U8 || trained.shape() != [entity_table.rows] {
        return Err(bad(format!(
            "{ENTITY_TRAINED} is {:?} {:?}",
            trained.dtype(),
            trained.shape()
        )));
    }
    let entity_trained = trained.data().iter().map(|&b| b != 0).collect();
    let model = Model {
        hyperparameters,
        ip_spec: spec,
        entity_table,
        ip_table,
        layers,
        device,
        entity_trained,
    };
    Ok((model, card))
}
