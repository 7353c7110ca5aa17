//! Training-step throughput: `cargo bench -p ipi-model --bench train_step`.
//!
//! Prints pairs per second (positives and negatives together) for the
//! tutorial's hyperparameters on 10,000 synthetic users, and the step time
//! at `num_entity_vectors` = 20,000 against 10,000,000, which shows that a
//! step costs what the batch touches, not what the tables hold.
//!
//! `IPI_BENCH_STEPS` (default 200) sets the steps timed per case;
//! `IPI_BENCH_BIG` (default 10000000) the large table's rows.

use std::time::Instant;

use ipi_model::data::{Pairs, from_pairs};
use ipi_model::train::{Sampler, Trainer};
use ipi_model::{Hyperparameters, Model};

fn data(num_entity_vectors: u64) -> Pairs {
    // 10,000 users, each around a home /16 and a few /24s within it.
    let mut pairs = Vec::new();
    let names: Vec<String> = (0..10_000).map(|u| format!("user_{u}")).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for (u, name) in names.iter().enumerate() {
        for k in 0..100u64 {
            x = ipi_model::ip::mix64(x.wrapping_add(k));
            let home = ((u as u32).wrapping_mul(2_654_435_761)) & 0xFFFF_0000;
            pairs.push((name.as_str(), home | (x as u32 & 0x0000_03FF)));
        }
    }
    from_pairs(pairs, num_entity_vectors)
}

fn run(num_entity_vectors: u64, steps: usize) -> f64 {
    let h = Hyperparameters {
        num_entity_vectors,
        vector_dim: 128,
        mini_batch_size: 1000,
        learning_rate: 0.01,
        random_negative_sampling_rate: 5,
        shuffled_negative_sampling_rate: 1,
        ..Hyperparameters::default()
    };
    let t = Instant::now();
    let model = Model::new(&h, Default::default()).expect("a model");
    let init = t.elapsed().as_secs_f64();
    let pairs = data(num_entity_vectors);
    let mut sampler = Sampler::new(&model);
    let order = sampler.epoch_order(pairs.len());
    let batches: Vec<_> =
        order.chunks(1000).take(steps + 10).map(|w| sampler.batch(&pairs, w)).collect();
    let mut trainer = Trainer::new(model).expect("a trainer");
    for b in &batches[..10] {
        trainer.step(b).expect("a step");
    }
    let t = Instant::now();
    let mut pairs_done = 0;
    for b in &batches[10..] {
        pairs_done += trainer.step(b).expect("a step").pairs;
    }
    let secs = t.elapsed().as_secs_f64();
    let per_step = secs / steps as f64 * 1e3;
    println!(
        "num_entity_vectors {num_entity_vectors:>11}: {per_step:7.2} ms/step  {:>9.0} pairs/s  (init {init:.1} s, {steps} steps, {} threads)",
        pairs_done as f64 / secs,
        rayon::current_num_threads()
    );
    per_step
}

fn main() {
    let steps = std::env::var("IPI_BENCH_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let big =
        std::env::var("IPI_BENCH_BIG").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let small = run(20_000, steps);
    if big > 0 {
        let large = run(big, steps);
        println!("step time ratio {big} / 20000 rows: {:.2}", large / small);
    }
}
