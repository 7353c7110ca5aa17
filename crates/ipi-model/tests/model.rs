//! The model's maths: gradients against finite differences, the first loss,
//! determinism, learning, and checkpoints.

use candle_core::Tensor;
use ipi_model::data::{Pairs, from_pairs};
use ipi_model::ip::IpEncoderSpec;
use ipi_model::train::{Batch, FitOptions, Quiet, Sampler, Trainer, fit};
use ipi_model::{Hyperparameters, Model};

fn small(layers: usize) -> Hyperparameters {
    Hyperparameters {
        num_entity_vectors: 50,
        vector_dim: 6,
        num_ip_encoder_layers: layers,
        random_negative_sampling_rate: 2,
        shuffled_negative_sampling_rate: 2,
        mini_batch_size: 4,
        seed: 3,
        ..Hyperparameters::default()
    }
}

/// A model with larger values than the initial ones, so that every term of
/// the gradient matters and ReLUs are both on and off.
fn spread(model: &mut Model) {
    for (i, x) in model.entity_table.data_mut().iter_mut().enumerate() {
        *x = ((i as f32 * 0.7123).sin()) * 0.8;
    }
    for (i, x) in model.ip_table.data_mut().iter_mut().enumerate() {
        *x = ((i as f32 * 1.3311).cos()) * 0.5;
    }
}

fn batch(spec: IpEncoderSpec) -> Batch {
    let ips = [0x0A00_0001u32, 0xC0A8_0102, 0x0102_0304, 0x0A00_0002, 0xFFFF_0000, 0x7F00_0001];
    let positives = [0x0A00_0001u32, 0xC0A8_0102, 0x0102_0304, 0x0A00_0102];
    let mut bags: Vec<[u32; 4]> = positives.iter().map(|&ip| spec.rows_of(ip)).collect();
    for k in 0..8 {
        bags.push(spec.rows_of(ips[k % ips.len()].wrapping_add(k as u32 * 977)));
    }
    Batch {
        entity_rows: vec![[1], [7], [12], [30]],
        ip_bags: bags,
        perms: vec![vec![2, 0, 3, 1], vec![3, 2, 1, 0]],
    }
}

fn mean_loss(trainer: &Trainer, batch: &Batch) -> f64 {
    let (stats, _) = trainer.gradients(batch).unwrap();
    stats.cross_entropy()
}

#[test]
fn gradients_match_finite_differences() {
    for layers in [0, 1, 2] {
        let mut model =
            Model::new(&small(layers), IpEncoderSpec { version: 1, hash_buckets: 64 }).unwrap();
        spread(&mut model);
        let spec = model.ip_spec;
        let b = batch(spec);
        let trainer = Trainer::new(model).unwrap();
        let (_, grads) = trainer.gradients(&b).unwrap();
        let dim = trainer.model.dim();
        let eps = 1e-3f32;
        // The central difference of the loss when `nudge` moves one value.
        let numeric = |nudge: &dyn Fn(&mut Model, f32)| {
            let loss = |delta: f32| {
                let mut m = trainer.model.clone();
                nudge(&mut m, delta);
                mean_loss(&Trainer::new(m).unwrap(), &b)
            };
            (loss(eps) - loss(-eps)) / (2.0 * eps as f64)
        };
        let check = |analytic: f32, numeric: f64, what: &str| {
            let (analytic, tol) = (f64::from(analytic), 2e-4 + 1e-2 * numeric.abs());
            assert!(
                (analytic - numeric).abs() <= tol,
                "layers {layers}, {what}: analytic {analytic} vs numeric {numeric}"
            );
        };
        let mut checked = 0;

        // Entity rows: each batch row is a distinct table row.
        for (i, &[row]) in b.entity_rows.iter().enumerate() {
            for d in 0..dim {
                let at = row as usize * dim + d;
                let n = numeric(&|m, delta| m.entity_table.data_mut()[at] += delta);
                check(grads.entity[i * dim + d], n, "entity");
                checked += 1;
            }
        }
        // Prefix-table rows: the gradient of a row sums over its references.
        let rows = [b.ip_bags[0][0], b.ip_bags[1][1], b.ip_bags[2][3], b.ip_bags[5][2]];
        for row in rows {
            for d in 0..dim {
                let analytic: f32 = (b.ip_bags.iter().enumerate())
                    .flat_map(|(n, bag)| bag.iter().filter(|&&r| r == row).map(move |_| n))
                    .map(|n| grads.ip_input[n * dim + d])
                    .sum();
                let at = row as usize * dim + d;
                let n = numeric(&|m, delta| m.ip_table.data_mut()[at] += delta);
                check(analytic, n, "ip table");
                checked += 1;
            }
        }
        // Dense layers: some weights, every bias.
        for l in 0..layers {
            let w = Model::host(&trainer.model.layers[l].weight).unwrap();
            let bias = Model::host(&trainer.model.layers[l].bias).unwrap();
            for k in [0, 7, 20, 35] {
                let n = numeric(&|m, delta| {
                    let mut w = w.clone();
                    w[k] += delta;
                    m.layers[l].weight = Tensor::from_vec(w, (dim, dim), &m.device).unwrap();
                });
                check(grads.layers[l].0[k], n, &format!("weight {l}.{k}"));
                checked += 1;
            }
            for k in 0..dim {
                let n = numeric(&|m, delta| {
                    let mut bias = bias.clone();
                    bias[k] += delta;
                    m.layers[l].bias = Tensor::from_vec(bias, dim, &m.device).unwrap();
                });
                check(grads.layers[l].1[k], n, &format!("bias {l}.{k}"));
                checked += 1;
            }
        }
        assert!(checked >= 48);
    }
}

/// 200 users, each with addresses in a home /16 of its own.
fn homes(users: usize, per_user: usize, seed: u64, num_entity_vectors: u64) -> Pairs {
    let names: Vec<String> = (0..users).map(|u| format!("user_{u}")).collect();
    let mut pairs = Vec::new();
    let mut x = seed;
    for (u, name) in names.iter().enumerate() {
        let home = (u as u32 + 11).wrapping_mul(0x9E37_79B9) & 0xFFFF_0000;
        for _ in 0..per_user {
            x = ipi_model::ip::mix64(x.wrapping_add(0x9E37));
            pairs.push((name.as_str(), home | (x as u32 & 0x0000_0FFF)));
        }
    }
    from_pairs(pairs, num_entity_vectors)
}

#[test]
fn a_fresh_models_first_loss_is_ln_2() {
    let h = Hyperparameters {
        num_entity_vectors: 20_000,
        vector_dim: 128,
        mini_batch_size: 1000,
        learning_rate: 0.01,
        random_negative_sampling_rate: 5,
        ..Hyperparameters::default()
    };
    let data = homes(1000, 5, 1, h.num_entity_vectors);
    let model = Model::new(&h, IpEncoderSpec::default()).unwrap();
    let mut sampler = Sampler::new(&model);
    let order = sampler.epoch_order(data.len());
    let b = sampler.batch(&data, &order[..1000]);
    let trainer = Trainer::new(model).unwrap();
    let loss = mean_loss(&trainer, &b);
    assert!((loss - std::f64::consts::LN_2).abs() < 0.01, "first loss {loss}");
}

fn quick(seed: u64) -> Hyperparameters {
    Hyperparameters {
        num_entity_vectors: 400,
        vector_dim: 16,
        epochs: 3,
        mini_batch_size: 100,
        learning_rate: 0.01,
        random_negative_sampling_rate: 2,
        shuffled_negative_sampling_rate: 1,
        seed,
        ..Hyperparameters::default()
    }
}

#[test]
fn training_learns_home_networks_and_validation_auc_is_reported() {
    let h = quick(5);
    let train = homes(200, 30, 1, h.num_entity_vectors);
    let validation = homes(200, 5, 2, h.num_entity_vectors);
    let model = Model::new(&h, IpEncoderSpec::default()).unwrap();
    let (_, report) =
        fit(model, &train, Some(&validation), &FitOptions::default(), &mut Quiet).unwrap();
    assert_eq!(report.epochs.len(), 3);
    let first = &report.epochs[0];
    let last = &report.epochs[2];
    assert!(last.binary_classification_cross_entropy < first.binary_classification_cross_entropy);
    let auc = last.validation_discriminator_auc.unwrap();
    assert!(auc > 0.95, "validation AUC {auc}");
    assert!(last.throughput_pairs_per_sec > 0.0);
}

#[test]
fn the_same_seed_gives_the_same_model_and_another_seed_does_not() {
    let h = quick(9);
    let train = homes(100, 20, 1, h.num_entity_vectors);
    let run = |h: &Hyperparameters| {
        let model = Model::new(h, IpEncoderSpec::default()).unwrap();
        fit(model, &train, None, &FitOptions::default(), &mut Quiet).unwrap().0
    };
    let (a, b) = (run(&h), run(&h));
    assert_eq!(a.entity_table, b.entity_table);
    assert_eq!(a.ip_table, b.ip_table);
    assert_eq!(
        Model::host(&a.layers[0].weight).unwrap(),
        Model::host(&b.layers[0].weight).unwrap()
    );
    let c = run(&Hyperparameters { seed: 10, ..h });
    assert_ne!(a.entity_table, c.entity_table);
}

#[tokio::test]
async fn checkpoints_round_trip_and_refuse_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("model").to_string_lossy().into_owned();
    let h = quick(1);
    let train = homes(50, 10, 1, h.num_entity_vectors);
    let model = Model::new(&h, IpEncoderSpec::default()).unwrap();
    let (model, report) = fit(model, &train, None, &FitOptions::default(), &mut Quiet).unwrap();
    let provenance = ipi_model::checkpoint::Provenance {
        training_data: Some(train.summary.clone()),
        validation_data: None,
        training: report,
    };
    let card = ipi_model::checkpoint::save(&model, &url, provenance.clone()).await.unwrap();
    let (loaded, loaded_card) = ipi_model::checkpoint::load(&url, None).await.unwrap();
    assert_eq!(loaded_card.model_id, card.model_id);
    assert_eq!(loaded.entity_table, model.entity_table);
    assert_eq!(loaded.ip_table, model.ip_table);
    let ips = [0x0A00_0001, 0xC0A8_0102];
    assert_eq!(loaded.score(&[1, 2], &ips).unwrap(), model.score(&[1, 2], &ips).unwrap());
    assert_eq!(loaded_card.training_data.unwrap().rows, 500);
    // Which entity rows training saw is kept, for scoring.
    assert_eq!(loaded.entity_trained, model.entity_trained);
    let seen = loaded.entity_row("user_3");
    assert!(loaded.entity_seen(seen));
    assert_eq!(loaded.entity_trained.iter().filter(|&&t| t).count() as u64, {
        let rows: std::collections::HashSet<u32> = train.entity_rows.iter().copied().collect();
        rows.len() as u64
    });

    // Saving the same model again gives the same bytes.
    let first = std::fs::read(dir.path().join("model/model.safetensors")).unwrap();
    ipi_model::checkpoint::save(&model, &url, provenance).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("model/model.safetensors")).unwrap(), first);

    // Tensors that are not the ones the card describes are refused.
    let mut other = model.clone();
    other.entity_table.data_mut()[0] += 1.0;
    let other_url = dir.path().join("other").to_string_lossy().into_owned();
    ipi_model::checkpoint::save(&other, &other_url, Default::default()).await.unwrap();
    std::fs::copy(
        dir.path().join("other/model.safetensors"),
        dir.path().join("model/model.safetensors"),
    )
    .unwrap();
    let err = ipi_model::checkpoint::load(&url, None).await.unwrap_err().to_string();
    assert!(err.contains("is not the one model.json describes"), "{err}");

    // A card of another format version is refused with both versions named.
    let card_path = dir.path().join("other/model.json");
    let text = std::fs::read_to_string(&card_path).unwrap();
    std::fs::write(&card_path, text.replace("\"format_version\": 1", "\"format_version\": 99"))
        .unwrap();
    let err = ipi_model::checkpoint::load(&other_url, None).await.unwrap_err().to_string();
    assert!(err.contains("v99 cannot be read") && err.contains("reads ipi-model v1"), "{err}");
}

/// `n` (entity row, address) pairs: 50 rows, addresses spread out.
fn pairs(n: usize) -> (Vec<u32>, Vec<u32>) {
    let rows = (0..n as u32).map(|i| i % 50).collect();
    let ips = (0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
    (rows, ips)
}

/// A [`small`] model with `layers` encoder layers and [`spread`] values.
fn spread_model(layers: usize) -> Model {
    let spec = IpEncoderSpec { version: 1, hash_buckets: 1 << 10 };
    let mut model = Model::new(&small(layers), spec).unwrap();
    spread(&mut model);
    model
}

#[test]
fn fused_scores_equal_the_dot_of_the_embeddings_bit_for_bit() {
    // More pairs than one scoring step, with 0, 1 and 2 encoder layers;
    // the spread values switch ReLUs on and off.
    let n = 70_001;
    let (rows, ips) = pairs(n);
    for layers in 0..3 {
        let model = spread_model(layers);
        let scores = model.score(&rows, &ips).unwrap();
        let (e, h) = model.embeddings(&rows, &ips).unwrap();
        let dim = model.dim();
        assert_eq!(scores.len(), n);
        let mut positive = 0;
        for (i, score) in scores.iter().enumerate() {
            let expected = ipi_model::model::dot(&e[i * dim..][..dim], &h[i * dim..][..dim]);
            assert_eq!(score.to_bits(), expected.to_bits(), "pair {i}, {layers} layers");
            positive += usize::from(*score > 0.0);
        }
        assert!(positive > n / 10 && positive < n * 9 / 10, "{positive} of {n} positive");
    }
}

#[test]
fn a_folded_model_scores_as_the_model_does() {
    // The folded first layer changes only the order of float additions:
    // scores and IP vectors agree with the model's to rounding, and the
    // folded scores are still exactly the dot of the folded embeddings.
    let n = 20_001;
    let (rows, ips) = pairs(n);
    for layers in 0..3 {
        let model = spread_model(layers);
        let want = model.score(&rows, &ips).unwrap();
        let (want_e, want_h) = model.embeddings(&rows, &ips).unwrap();
        let dim = model.dim();
        let folded = ipi_model::ScoringModel::new(model).unwrap();
        let got = folded.score(&rows, &ips).unwrap();
        let (e, h) = folded.embeddings(&rows, &ips).unwrap();
        assert_eq!(e, want_e, "entity vectors are gathered, not computed");
        let worst = |a: &[f32], b: &[f32]| {
            a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f32::max)
        };
        assert!(worst(&got, &want) < 1e-5, "{layers} layers: {}", worst(&got, &want));
        assert!(worst(&h, &want_h) < 1e-5, "{layers} layers: {}", worst(&h, &want_h));
        for i in 0..n {
            let expected = ipi_model::model::dot(&e[i * dim..][..dim], &h[i * dim..][..dim]);
            assert_eq!(got[i].to_bits(), expected.to_bits(), "pair {i}, {layers} layers");
        }
    }
}
