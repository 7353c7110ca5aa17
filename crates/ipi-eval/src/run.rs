//! The `evaluate` step: load, build the cases, measure, draw, write.

use bytes::Bytes;
use ipi_storage::Location;

use crate::cases::{self, Labels};
use crate::config::EvaluateConfig;
use crate::curve::Scored;
use crate::report::{self, Report};
use crate::{Error, Result, html, plots};

/// What an evaluation wrote.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Every figure (also in `report.json`).
    pub report: Report,
    /// The output folder.
    pub output: String,
    /// The files written, relative to `output`.
    pub files: Vec<String>,
}

/// Evaluates the model as `config` says and writes `report.html`,
/// `report.json`, `entities.csv` and `plots/{scores,roc,recall,precision}.{svg,png}`
/// under `config.output`. A failed gate is not an error here: see
/// [`Report::gate_failure`]; the report is written either way.
pub async fn evaluate(config: &EvaluateConfig) -> Result<Evaluation> {
    if let Some((field, message)) = config.problems().into_iter().next() {
        return Err(Error::Config { field, message });
    }
    let (model, card) =
        ipi_model::checkpoint::load(&config.model, config.device.as_deref()).await?;
    let rows = card.entity_hash.rows;
    let train = ipi_model::data::load(&config.train, rows).await?;
    let test = ipi_model::data::load_with_details(&config.test, rows).await?;
    let labels: Option<Labels> = match config.labels_url() {
        Some(url) => Some(cases::read_labels(url).await?),
        None => None,
    };
    tracing::info!(
        train_rows = train.len(),
        test_rows = test.len(),
        label_rows = labels.as_ref().map(|l| l.rows),
        "Evaluation data loaded."
    );
    let test_window = match (&test.summary.time_min, &test.summary.time_max) {
        (Some(a), Some(b)) => Some((a.clone(), b.clone())),
        _ => None,
    };
    let owned = config.clone();
    let model_id = card.model_id.clone();
    let work = tokio::task::spawn_blocking(move || {
        measure(&owned, &model_id, test_window, &model, &train, &test, labels.as_ref())
    });
    let (report, figures, entities_csv) =
        work.await.map_err(|e| Error::Task(format!("evaluation: {e}")))??;
    for case in &report.cases {
        tracing::info!(
            case = %case.name,
            attacks = case.attacks,
            auc = case.auc.map(|a| format!("{a:.4}")),
            precision = case.at_threshold.precision.map(|p| format!("{p:.4}")),
            recall = format!("{:.4}", case.at_threshold.recall),
            "Case measured."
        );
    }

    let root = Location::parse(config.output.trim_end_matches('/'))?;
    let mut files: Vec<(String, Bytes)> = Vec::new();
    for fig in &figures {
        files.push((format!("plots/{}.svg", fig.name), Bytes::from(fig.svg.clone())));
        files.push((format!("plots/{}.png", fig.name), Bytes::from(fig.png.clone())));
    }
    files.push(("entities.csv".into(), Bytes::from(entities_csv)));
    let json =
        serde_json::to_vec_pretty(&report).map_err(|e| Error::Task(format!("report.json: {e}")))?;
    files.push(("report.json".into(), Bytes::from(json)));
    // The page last: when it is there, everything it names is.
    files.push(("report.html".into(), Bytes::from(html::render(&report, &figures))));
    let mut written = Vec::new();
    for (name, bytes) in files {
        ipi_storage::put_atomic(&root.join(&name), bytes).await?;
        written.push(name);
    }
    tracing::info!(output = %root, threshold = report.threshold.value, "Evaluation written.");
    Ok(Evaluation { report, output: root.to_string(), files: written })
}

type Measured = (Report, Vec<plots::Figure>, String);

/// Cases, figures and pictures: the CPU-bound part.
fn measure(
    config: &EvaluateConfig,
    model_id: &str,
    test_window: Option<(String, String)>,
    model: &ipi_model::Model,
    train: &ipi_model::data::Pairs,
    test: &ipi_model::data::Pairs,
    labels: Option<&Labels>,
) -> Result<Measured> {
    let cases = cases::build(model, train, test, labels, config.seed)?;
    let anomaly = |dots: &[f32]| -> Vec<f32> { dots.iter().map(|&d| -d).collect() };
    let normal = Scored::new(anomaly(&cases.normal), Vec::new());
    let scored: Vec<Scored> = cases
        .cases
        .iter()
        .map(|c| {
            Scored::new(anomaly(c.normal.as_ref().unwrap_or(&cases.normal)), anomaly(&c.attack))
        })
        .collect();
    let mut report = report::build(config, model_id, test_window, &cases, &scored, &normal, &[]);
    let entities = report::entity_rows(&cases, report.threshold.value);
    report.entities = report::entity_summary(&entities);
    let attacks: Vec<&[f32]> = scored.iter().map(Scored::attack).collect();
    let figures = plots::figures(&report, normal.normal(), &attacks)?;
    Ok((report, figures, report::entities_csv(&entities)))
}
