//! The model: an entity table, a prefix table and the dense IP encoder.

use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use crate::hyper::{self, Hyperparameters};
use crate::ip::IpEncoderSpec;
use crate::sparse::Table;
use crate::{Error, Result};

/// Standard deviation of the embedding tables' initial values.
pub const INIT_STD: f32 = 0.01;

/// Rows initialised from one random stream: fixed, so the initial tables do
/// not depend on the number of threads.
const INIT_CHUNK_ROWS: usize = 8192;

/// One fully connected layer of the IP encoder, followed by ReLU.
#[derive(Debug, Clone)]
pub struct Dense {
    /// `[out, in]`, as `candle_nn::Linear` and PyTorch store it.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Tensor,
}

impl Dense {
    /// `relu(x · Wᵀ + b)` for `x` of `[n, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?.relu()?)
    }
}

/// A trained or fresh IP Insights model.
#[derive(Debug, Clone)]
pub struct Model {
    /// The hyperparameters it was made with.
    pub hyperparameters: Hyperparameters,
    /// How addresses map to rows of `ip_table`.
    pub ip_spec: IpEncoderSpec,
    /// `num_entity_vectors × vector_dim`, indexed by the stable entity hash.
    pub entity_table: Table,
    /// The prefix embeddings, `ip_spec.rows() × vector_dim`.
    pub ip_table: Table,
    /// `num_ip_encoder_layers` layers, on `device`.
    pub layers: Vec<Dense>,
    /// Where the dense layers live.
    pub device: Device,
    /// For each entity row, whether a training pair used it: scores of
    /// entities whose row was never trained mean little. (Entities hashed
    /// into a trained row by collision count as seen.)
    pub entity_trained: Vec<bool>,
}

/// The candle device for the `device` hyperparameter.
pub fn candle_device(name: &str) -> Result<Device> {
    match hyper::parse_device(name) {
        Some(hyper::Device::Cpu) => Ok(Device::Cpu),
        Some(hyper::Device::Cuda(n)) => Ok(Device::new_cuda(n)?),
        None => Err(Error::Hyperparameters(format!(
            "device = {name:?} is out of range: allowed cpu, cuda or cuda:N"
        ))),
    }
}

impl Model {
    /// A fresh model: tables drawn from N(0, 0.01²), layers initialised as
    /// PyTorch's `Linear` is (uniform in ±1/√fan_in), all from `seed`.
    pub fn new(hyperparameters: &Hyperparameters, ip_spec: IpEncoderSpec) -> Result<Model> {
        hyperparameters.validate()?;
        let device = candle_device(&hyperparameters.device)?;
        let dim = hyperparameters.vector_dim;
        let seed = hyperparameters.seed;
        let entity_rows = usize::try_from(hyperparameters.num_entity_vectors)
            .map_err(|_| Error::Hyperparameters("num_entity_vectors is too large".into()))?;
        let entity_table = random_table(entity_rows, dim, seed, 1);
        let ip_table = random_table(ip_spec.rows(), dim, seed, 2);
        let bound = 1.0 / (dim as f64).sqrt();
        let mut layers = Vec::with_capacity(hyperparameters.num_ip_encoder_layers);
        for l in 0..hyperparameters.num_ip_encoder_layers {
            let mut rng = stream(seed, 3, l as u64);
            let uniform = rand_distr::Uniform::new(-bound, bound).expect("a valid range");
            let w: Vec<f32> = (0..dim * dim).map(|_| uniform.sample(&mut rng) as f32).collect();
            let b: Vec<f32> = (0..dim).map(|_| uniform.sample(&mut rng) as f32).collect();
            layers.push(Dense {
                weight: Tensor::from_vec(w, (dim, dim), &device)?,
                bias: Tensor::from_vec(b, dim, &device)?,
            });
        }
        Ok(Model {
            hyperparameters: hyperparameters.clone(),
            ip_spec,
            entity_table,
            ip_table,
            layers,
            device,
            entity_trained: vec![false; entity_rows],
        })
    }

    /// Whether training saw the entity row `row`.
    pub fn entity_seen(&self, row: u32) -> bool {
        self.entity_trained.get(row as usize).copied().unwrap_or(false)
    }

    /// Floats per vector.
    pub fn dim(&self) -> usize {
        self.entity_table.dim
    }

    /// The entity-table row of an entity string.
    pub fn entity_row(&self, entity: &str) -> u32 {
        ipi_core::hash::entity_row(entity, self.entity_table.rows as u64) as u32
    }

    /// The encoder's input for each address: its summed prefix rows.
    pub fn ip_inputs(&self, ips: &[u32]) -> Vec<f32> {
        let mut x = vec![0.0; ips.len() * self.dim()];
        self.ip_table.gather_sum(&self.ip_spec.bags(ips), &mut x);
        x
    }

    /// Runs the dense layers on `x` (`[n, dim]`), keeping every layer's
    /// output (`outputs[0]` is `x` itself).
    pub fn encode(&self, x: Tensor) -> Result<Vec<Tensor>> {
        let mut outputs = Vec::with_capacity(self.layers.len() + 1);
        outputs.push(x);
        for layer in &self.layers {
            let h = layer.forward(outputs.last().expect("x is there"))?;
            outputs.push(h);
        }
        Ok(outputs)
    }

    /// The IP vectors of `ips`, `[n, dim]` on the host.
    pub fn ip_vectors(&self, ips: &[u32]) -> Result<Vec<f32>> {
        let n = ips.len();
        let x = Tensor::from_vec(self.ip_inputs(ips), (n, self.dim()), &Device::Cpu)?
            .to_device(&self.device)?;
        let h = self.encode(x)?.pop().expect("at least the input");
        Ok(h.flatten_all()?.to_vec1()?)
    }

    /// `dot_product` of each `(entity row, address)` pair: the log-odds that
    /// the pair is real. Scores `SCORE_CHUNK` pairs at a time, so memory
    /// stays bounded.
    ///
    /// The last layer's bias, ReLU and the dot product with the entity row
    /// are one pass over its matmul's output, read where it lies: no IP
    /// vector and no entity vector is copied. The result is the same, bit
    /// for bit, as [`dot`] over [`embeddings`](Self::embeddings).
    pub fn score(&self, entity_rows: &[u32], ips: &[u32]) -> Result<Vec<f32>> {
        assert_eq!(entity_rows.len(), ips.len());
        let dim = self.dim();
        let last = match self.layers.split_last() {
            Some((last, hidden)) => Some((last, hidden, Model::host(&last.bias)?)),
            None => None,
        };
        let mut out = Vec::with_capacity(ips.len());
        for (rows, ips) in entity_rows.chunks(SCORE_CHUNK).zip(ips.chunks(SCORE_CHUNK)) {
            let x = self.ip_inputs(ips);
            let Some((last, hidden, bias)) = &last else {
                // No encoder layers: the IP vector is the summed prefix rows.
                out.par_extend(
                    x.par_chunks(dim)
                        .zip(rows.par_iter())
                        .map(|(h, &r)| dot(self.entity_table.row(r), h)),
                );
                continue;
            };
            let mut h =
                Tensor::from_vec(x, (ips.len(), dim), &Device::Cpu)?.to_device(&self.device)?;
            for layer in *hidden {
                h = layer.forward(&h)?;
            }
            let z = h.matmul(&last.weight.t()?)?.to_device(&Device::Cpu)?;
            with_host(&z, |z| {
                out.par_extend(
                    z.par_chunks(dim)
                        .zip(rows.par_iter())
                        .map(|(z, &r)| relu_dot(self.entity_table.row(r), z, bias)),
                );
            })?;
        }
        Ok(out)
    }

    /// The entity and IP vectors of aligned `(entity row, address)` pairs,
    /// each `[n, dim]` on the host; a pair's score is their dot product.
    pub fn embeddings(&self, entity_rows: &[u32], ips: &[u32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let h = self.ip_vectors(ips)?;
        let mut e = vec![0.0; entity_rows.len() * self.dim()];
        self.entity_table.gather(entity_rows, &mut e);
        Ok((e, h))
    }

    /// The dense layers' tensors, named as in `model.safetensors`.
    pub fn dense_tensors(&self) -> Vec<(String, &Tensor)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            out.push((format!("ip_encoder.{l}.weight"), &layer.weight));
            out.push((format!("ip_encoder.{l}.bias"), &layer.bias));
        }
        out
    }

    /// A tensor's values on the host (for checkpoints and tests).
    pub fn host(t: &Tensor) -> Result<Vec<f32>> {
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
    }
}

/// Pairs scored per step of [`Model::score`]: its buffers (4 MiB at 128
/// floats) are reused by the allocator instead of mapped and faulted in anew.
pub(crate) const SCORE_CHUNK: usize = 8192;

/// Runs `f` on a contiguous f32 CPU tensor's values where they lie (a
/// copy only for another layout or device).
fn with_host<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(values)), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(f(&values[start..end]));
        }
    }
    Ok(f(&Model::host(t)?))
}

/// `Σ e_i · relu(z_i + b_i)`: [`dot`] of `e` and the layer output for the
/// pre-activation `z`, in the same order of additions.
#[inline]
pub fn relu_dot(e: &[f32], z: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ce, cz, cb) = (e.chunks_exact(8), z.chunks_exact(8), b.chunks_exact(8));
    let (re, rz, rb) = (ce.remainder(), cz.remainder(), cb.remainder());
    for ((x, y), c) in ce.zip(cz).zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * (y[k] + c[k]).max(0.0);
        }
    }
    let mut s: f32 = acc.iter().sum();
    for ((x, y), c) in re.iter().zip(rz).zip(rb) {
        s += x * (y + c).max(0.0);
    }
    s
}

/// `Σ a_i b_i`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums: the compiler vectorises this, and the order is fixed.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// The random stream for `(seed, table, chunk)`.
fn stream(seed: u64, table: u64, chunk: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&table.to_le_bytes());
    key[16..24].copy_from_slice(&chunk.to_le_bytes());
    key[24..].copy_from_slice(b"ipimodel");
    ChaCha8Rng::from_seed(key)
}

/// A table drawn from N(0, INIT_STD²), chunk by chunk in parallel.
fn random_table(rows: usize, dim: usize, seed: u64, table: u64) -> Table {
    let mut data = vec![0.0f32; rows * dim];
    let normal = Normal::new(0.0f32, INIT_STD).expect("a valid deviation");
    data.par_chunks_mut(INIT_CHUNK_ROWS * dim).enumerate().for_each(|(c, chunk)| {
        let mut rng = stream(seed, table, c as u64);
        for x in chunk {
            *x = normal.sample(&mut rng);
        }
    });
    Table::new(rows, dim, data)
}
