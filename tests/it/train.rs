//! `ipi-pipeline train`: SageMaker's CSV in, a model out, locally and on the
//! S3-compatible server; hyperparameters out of range refused.

use std::fmt::Write as _;

use crate::s3::s3_prefix;
use crate::util::{ipi, run, text};

/// A SageMaker-style training CSV: 60 users, each at addresses in a home
/// /16 of its own.
fn sagemaker_csv() -> String {
    let mut csv = String::new();
    for u in 0..60u32 {
        let (a, b) = (10 + u % 200, (u * 37) % 256);
        for k in 0..25u32 {
            writeln!(csv, "user_{u},{a}.{b}.{}.{}", k % 4, (k * 53) % 256).unwrap();
        }
    }
    csv
}

fn hyperparameters() -> [&'static str; 12] {
    [
        "--num-entity-vectors",
        "120",
        "--vector-dim",
        "16",
        "--epochs",
        "3",
        "--mini-batch-size",
        "50",
        "--learning-rate",
        "0.01",
        "--random-negative-sampling-rate",
        "2",
    ]
}

#[test]
fn train_on_sagemaker_csv_writes_a_model_with_its_card() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), sagemaker_csv()).unwrap();
    std::fs::write(dir.path().join("validation.csv"), sagemaker_csv()).unwrap();
    let out = run(ipi(dir.path())
        .args([
            "train",
            "--train",
            "train.csv",
            "--validation",
            "validation.csv",
            "--model",
            "model",
        ])
        .args(hyperparameters())
        .arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let card: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(card["format"], "ipi-model");
    assert_eq!(card["hyperparameters"]["vector_dim"], 16);
    assert_eq!(card["hyperparameters"]["shuffled_negative_sampling_rate"], 1);
    assert_eq!(card["training_data"]["rows"], 1500);
    assert_eq!(card["training_data"]["entities"], 60);
    let epochs = card["training"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    let auc = epochs[2]["validation:discriminator_auc"].as_f64().unwrap();
    assert!(auc > 0.9, "validation AUC {auc}");
    assert!(dir.path().join("model/model.safetensors").is_file());
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model/model.json")).unwrap())
            .unwrap();
    assert_eq!(written["model_id"], card["model_id"]);

    // The same seed and data give the same model bytes.
    let again = run(ipi(dir.path())
        .args(["train", "--train", "train.csv", "--model", "model2"])
        .args(hyperparameters()));
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let third = run(ipi(dir.path())
        .args(["train", "--train", "train.csv", "--model", "model3"])
        .args(hyperparameters()));
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    assert_eq!(
        std::fs::read(dir.path().join("model2/model.safetensors")).unwrap(),
        std::fs::read(dir.path().join("model3/model.safetensors")).unwrap()
    );
}

#[test]
fn out_of_range_hyperparameters_are_refused_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), sagemaker_csv()).unwrap();
    let out = run(ipi(dir.path()).args([
        "train",
        "--train",
        "train.csv",
        "--model",
        "model",
        "--vector-dim",
        "5000",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("vector_dim = 5000 is out of range: allowed 4 to 4096"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("model").exists());
}

#[test]
fn a_bad_training_line_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = sagemaker_csv();
    csv.push_str("user_x,not-an-ip\n");
    std::fs::write(dir.path().join("train.csv"), csv).unwrap();
    let out = run(ipi(dir.path())
        .args(["train", "--train", "train.csv", "--model", "model"])
        .args(hyperparameters()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("train.csv:1501: field `ip`: \"not-an-ip\""), "{}", text(&out));
    assert!(!dir.path().join("model").exists());
}

#[test]
fn train_reads_and_writes_s3() {
    let Some(prefix) = s3_prefix() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), sagemaker_csv()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let train_url = format!("{prefix}/train.csv");
    rt.block_on(async {
        let location = ipi_storage::Location::parse(&train_url).unwrap();
        ipi_storage::put_atomic(&location, sagemaker_csv().into()).await.unwrap();
    });
    let model = format!("{prefix}/model");
    let out = run(ipi(dir.path())
        .args(["train", "--train", &train_url, "--model", &model])
        .args(hyperparameters())
        .arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let card: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Both objects are on the server, and the tensors are the ones the card names.
    rt.block_on(async {
        let root = ipi_storage::Location::parse(&model).unwrap();
        let tensors = ipi_storage::get_bytes(&root.join("model.safetensors")).await.unwrap();
        let id = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&tensors));
        assert_eq!(card["model_id"], id);
        let (loaded, _) = ipi_model::checkpoint::load(&model, None).await.unwrap();
        assert_eq!(loaded.dim(), 16);
    });
}
