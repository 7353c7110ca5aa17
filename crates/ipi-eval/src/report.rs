//! `report.json`: every figure of an evaluation, for machines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cases::{ALL_LABELLED, Cases, NOTEBOOK};
use crate::config::{Choose, EvaluateConfig, Gate};
use crate::curve::{self, Point, Scored};

/// `format` of every `report.json`.
pub const FORMAT: &str = "ipi-eval-report";
/// Version of the report's layout.
pub const FORMAT_VERSION: u32 = 1;

/// Thresholds (on `anomaly_score`) in each case's `curve`.
pub const CURVE_POINTS: usize = 81;
/// Smallest step (fpr + tpr) between two stored ROC points.
pub const ROC_STEP: f64 = 0.002;
/// The percentiles of each entity's normal `dot_product`s.
pub const ENTITY_PERCENTILES: [f64; 5] = [1.0, 5.0, 10.0, 50.0, 90.0];
/// FPR targets listed in the report's threshold table.
pub const FPR_TABLE: [f64; 6] = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1];

/// An evaluation's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The model's URL.
    pub model: String,
    /// The model's id (`model_id` of `model.json`).
    pub model_id: String,
    /// The test data's URL.
    pub test: String,
    /// The test window, RFC 3339, when the data has timestamps.
    pub test_window: Option<(String, String)>,
    /// The labels' URL, if any.
    pub labels: Option<String>,
    /// How scores are read.
    pub score: String,
    /// What went into the cases.
    pub counts: crate::cases::Counts,
    /// The threshold the step outputs, and why.
    pub threshold: Threshold,
    /// The threshold for `target_fpr`.
    pub threshold_for_fpr: Target,
    /// The threshold for `target_recall` on the recall case.
    pub threshold_for_recall: Option<Target>,
    /// Thresholds for a range of FPR targets, on the normal events.
    pub fpr_table: Vec<Target>,
    /// One entry per case, `notebook` first.
    pub cases: Vec<CaseReport>,
    /// Per-entity score percentiles, summarised (every entity is in
    /// `entities.csv`).
    pub entities: EntitySummary,
    /// The gate's verdict, when a gate is configured.
    pub gate: Option<GateVerdict>,
}

/// The chosen threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Threshold {
    /// `fpr` or `recall`: which target chose it.
    pub rule: Choose,
    /// Flag when `anomaly_score > value`.
    pub value: f64,
}

/// A threshold for a target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// The target: an FPR, or a recall.
    pub target: f64,
    /// The case a recall target is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// The threshold on `anomaly_score`.
    pub value: f64,
    /// The FPR it gives on normal test events.
    pub fpr: f64,
    /// The recall it gives on each case.
    pub recall: BTreeMap<String, f64>,
}

/// One case's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    /// `notebook`, an attack kind, or `all_labelled`.
    pub name: String,
    /// What its attacks are.
    pub description: String,
    /// Whether its attacks were generated rather than labelled.
    pub generated: bool,
    /// Normal events.
    pub normal: u64,
    /// Attack events.
    pub attacks: u64,
    /// The probability that an attack has the higher anomaly score.
    pub auc: Option<f64>,
    /// At the chosen threshold.
    pub at_threshold: Point,
    /// At threshold 0 (flag negative dot products).
    pub at_zero: Point,
    /// At the `target_fpr` threshold.
    pub at_target_fpr: Point,
    /// Quantiles (1, 5, 25, 50, 75, 95, 99 %) of the normal and attack
    /// anomaly scores.
    pub quantiles: Quantiles,
    /// `(fpr, tpr)` points of the ROC curve, thinned.
    pub roc: Vec<(f64, f64)>,
    /// Detection at [`CURVE_POINTS`] thresholds across the scores' range.
    pub curve: Vec<Point>,
}

/// Anomaly-score quantiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quantiles {
    /// The quantiles' levels.
    pub levels: Vec<f64>,
    /// Of normal events.
    pub normal: Vec<Option<f64>>,
    /// Of attacks.
    pub attack: Vec<Option<f64>>,
}

/// Per-entity percentiles of normal `dot_product`s, summarised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntitySummary {
    /// Entities with normal test events.
    pub entities: u64,
    /// The percentiles computed per entity (`entities.csv` columns `p1` ...).
    pub percentiles: Vec<f64>,
    /// Across entities, the quantiles (5, 25, 50, 75, 95 %) of each
    /// entity's 5th percentile.
    pub p5_across_entities: Vec<Option<f64>>,
    /// Entities with at least 20 normal events and the lowest 5th
    /// percentile: those a global threshold flags most often.
    pub lowest_p5: Vec<EntityRow>,
}

/// One entity's percentiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntityRow {
    /// The entity.
    pub entity: String,
    /// Its normal test events.
    pub events: u64,
    /// Its `dot_product` percentiles, as [`ENTITY_PERCENTILES`].
    pub dot_product: Vec<f64>,
    /// Its normal events flagged at the chosen threshold.
    pub flagged: u64,
}

/// Whether the gate passed, and each failure with its figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateVerdict {
    /// True when every floor was met.
    pub passed: bool,
    /// Each floor: `(case, floor, auc)`.
    pub checks: Vec<GateCheck>,
}

/// One floor of the gate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateCheck {
    /// The case.
    pub case: String,
    /// The lowest acceptable AUC.
    pub min_auc: f64,
    /// The case's AUC; `None` when the case has no attacks.
    pub auc: Option<f64>,
    /// Whether it passed.
    pub passed: bool,
}

const QUANTILE_LEVELS: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/// Builds the report; `scored` holds each case's anomaly scores, in the
/// order of `cases.cases`.
pub(crate) fn build(
    config: &EvaluateConfig,
    model_id: &str,
    test_window: Option<(String, String)>,
    cases: &Cases,
    scored: &[Scored],
    normal: &Scored,
    entity_rows: &[EntityRow],
) -> Report {
    let target = |target: f64, case: Option<String>, value: f64| Target {
        target,
        case,
        value,
        fpr: normal.at(value).fpr,
        recall: cases
            .cases
            .iter()
            .zip(scored)
            .map(|(c, s)| (c.name.clone(), s.at(value).recall))
            .collect(),
    };
    let fpr_threshold = normal.threshold_for_fpr(config.target_fpr).unwrap_or(0.0);
    let target_fpr = target(config.target_fpr, None, fpr_threshold);
    let recall_case = recall_case(config, cases);
    let recall_target = recall_case.and_then(|i| {
        let value = scored[i].threshold_for_recall(config.target_recall)?;
        Some(target(config.target_recall, Some(cases.cases[i].name.clone()), value))
    });
    let threshold = match (config.choose, &recall_target) {
        (Choose::Recall, Some(t)) => Threshold { rule: Choose::Recall, value: t.value },
        _ => Threshold { rule: Choose::Fpr, value: fpr_threshold },
    };
    let fpr_table = FPR_TABLE
        .iter()
        .filter_map(|&t| Some(target(t, None, normal.threshold_for_fpr(t)?)))
        .collect();
    let (lo, hi) = score_range(scored, normal);
    let thresholds = curve::grid(lo, hi, CURVE_POINTS);
    let reports: Vec<CaseReport> = cases
        .cases
        .iter()
        .zip(scored)
        .map(|(case, s)| CaseReport {
            name: case.name.clone(),
            description: case.description.clone(),
            generated: case.generated,
            normal: s.normal().len() as u64,
            attacks: s.attack().len() as u64,
            auc: s.auc(),
            at_threshold: s.at(threshold.value),
            at_zero: s.at(0.0),
            at_target_fpr: s.at(fpr_threshold),
            quantiles: Quantiles {
                levels: QUANTILE_LEVELS.to_vec(),
                normal: QUANTILE_LEVELS.iter().map(|&q| curve::quantile(s.normal(), q)).collect(),
                attack: QUANTILE_LEVELS.iter().map(|&q| curve::quantile(s.attack(), q)).collect(),
            },
            roc: s.roc(ROC_STEP),
            curve: thresholds.iter().map(|&t| s.at(t)).collect(),
        })
        .collect();
    let gate = config.gate.as_ref().map(|g| verdict(g, &reports));
    Report {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        model: config.model.clone(),
        model_id: model_id.to_owned(),
        test: config.test.clone(),
        test_window,
        labels: config.labels_url().map(str::to_owned),
        score: "anomaly_score = -dot_product; an event is flagged when anomaly_score > threshold"
            .into(),
        counts: cases.counts.clone(),
        threshold,
        threshold_for_fpr: target_fpr,
        threshold_for_recall: recall_target,
        fpr_table,
        cases: reports,
        entities: entity_summary(entity_rows),
        gate,
    }
}

/// The index of the case `target_recall` is about.
fn recall_case(config: &EvaluateConfig, cases: &Cases) -> Option<usize> {
    let find = |name: &str| cases.cases.iter().position(|c| c.name == name);
    match &config.recall_case {
        Some(name) => find(name),
        None => find(ALL_LABELLED).or_else(|| find(NOTEBOOK)),
    }
}

/// The range of anomaly scores the curves span: the 0.5th to 99.5th
/// percentile of all scores, widened to include 0.
pub(crate) fn score_range(scored: &[Scored], normal: &Scored) -> (f64, f64) {
    let mut lo = curve::quantile(normal.normal(), 0.005).unwrap_or(-1.0);
    let mut hi = curve::quantile(normal.normal(), 0.995).unwrap_or(1.0);
    for s in scored {
        lo = lo.min(curve::quantile(s.attack(), 0.005).unwrap_or(lo));
        hi = hi.max(curve::quantile(s.attack(), 0.995).unwrap_or(hi));
    }
    lo = lo.min(0.0);
    hi = hi.max(0.0);
    if !(lo.is_finite() && hi.is_finite()) {
        return (-1.0, 1.0);
    }
    if hi - lo < 1e-6 {
        return (lo - 1.0, hi + 1.0);
    }
    (lo, hi)
}

fn verdict(gate: &Gate, cases: &[CaseReport]) -> GateVerdict {
    let floors = gate.min_auc.map(|f| (NOTEBOOK.to_string(), f));
    let floors =
        floors.into_iter().chain(gate.min_auc_by_case.iter().map(|(k, &f)| (k.clone(), f)));
    let checks: Vec<GateCheck> = floors
        .map(|(case, min_auc)| {
            let auc = cases.iter().find(|c| c.name == case).and_then(|c| c.auc);
            GateCheck { passed: auc.is_some_and(|a| a >= min_auc), case, min_auc, auc }
        })
        .collect();
    GateVerdict { passed: checks.iter().all(|c| c.passed), checks }
}

/// Each entity's percentiles of its normal `dot_product`s, sorted by name.
pub(crate) fn entity_rows(cases: &Cases, threshold: f64) -> Vec<EntityRow> {
    let mut by_entity: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    for (&e, &dot) in cases.normal_entity.iter().zip(&cases.normal) {
        if dot.is_nan() {
            continue;
        }
        let name = cases.names.get(e as usize).map_or("", String::as_str);
        by_entity.entry(name).or_default().push(dot);
    }
    by_entity
        .into_iter()
        .map(|(entity, mut dots)| {
            dots.sort_unstable_by(f32::total_cmp);
            let dot_product = ENTITY_PERCENTILES
                .iter()
                .map(|&p| curve::quantile(&dots, p / 100.0).unwrap_or(f64::NAN))
                .collect();
            let flagged = dots.iter().filter(|&&d| -f64::from(d) > threshold).count() as u64;
            EntityRow { entity: entity.to_owned(), events: dots.len() as u64, dot_product, flagged }
        })
        .collect()
}

pub(crate) fn entity_summary(rows: &[EntityRow]) -> EntitySummary {
    let p5_index = ENTITY_PERCENTILES.iter().position(|&p| p == 5.0).unwrap_or(0);
    let p5 = |r: &EntityRow| r.dot_product.get(p5_index).copied().unwrap_or(f64::NAN);
    let mut all: Vec<f32> = rows.iter().map(|r| p5(r) as f32).filter(|x| !x.is_nan()).collect();
    all.sort_unstable_by(f32::total_cmp);
    let mut busy: Vec<&EntityRow> = rows.iter().filter(|r| r.events >= 20).collect();
    busy.sort_by(|a, b| p5(a).total_cmp(&p5(b)));
    EntitySummary {
        entities: rows.len() as u64,
        percentiles: ENTITY_PERCENTILES.to_vec(),
        p5_across_entities: [0.05, 0.25, 0.5, 0.75, 0.95]
            .iter()
            .map(|&q| curve::quantile(&all, q))
            .collect(),
        lowest_p5: busy.into_iter().take(10).cloned().collect(),
    }
}

/// `entities.csv`: `entity,events,flagged,p1,p5,p10,p50,p90` (of
/// `dot_product`), one row per entity.
pub(crate) fn entities_csv(rows: &[EntityRow]) -> String {
    let mut out = String::from("entity,events,flagged");
    for p in ENTITY_PERCENTILES {
        out.push_str(&format!(",p{p}"));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&csv_field(&r.entity));
        out.push_str(&format!(",{},{}", r.events, r.flagged));
        for v in &r.dot_product {
            out.push_str(&format!(",{v:.6}"));
        }
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl Report {
    /// The case named `name`.
    pub fn case(&self, name: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// A message with the figures when the gate failed; `None` otherwise.
    pub fn gate_failure(&self) -> Option<String> {
        let gate = self.gate.as_ref().filter(|g| !g.passed)?;
        let failed: Vec<String> = gate
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| match c.auc {
                Some(auc) => format!("{} AUC {auc:.4} < {}", c.case, c.min_auc),
                None => format!("{} has no attacks to measure (floor {})", c.case, c.min_auc),
            })
            .collect();
        Some(format!("evaluation gate failed: {}", failed.join("; ")))
    }

    /// A short table for people: every case's AUC, and detection at the
    /// chosen threshold and at 0.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "model {} on {} ({} normal events of {} entities seen in training)\n",
            self.model_id, self.test, self.counts.normal_events, self.entities.entities
        );
        out.push_str(&format!(
            "threshold {:.4} on anomaly_score (= -dot_product), chosen for {}\n",
            self.threshold.value,
            match (&self.threshold.rule, &self.threshold_for_recall) {
                (Choose::Recall, Some(t)) =>
                    format!("recall {} on {}", t.target, t.case.as_deref().unwrap_or("")),
                _ => format!("FPR {}", self.threshold_for_fpr.target),
            }
        ));
        out.push_str(&format!(
            "{:<20} {:>8} {:>7}  {:>9} {:>7} {:>7}  {:>9} {:>7} {:>7}\n",
            "case", "attacks", "AUC", "precision", "recall", "FPR", "prec@0", "rec@0", "FPR@0"
        ));
        let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
        for c in &self.cases {
            out.push_str(&format!(
                "{:<20} {:>8} {:>7}  {:>9} {:>7.4} {:>7.4}  {:>9} {:>7.4} {:>7.4}\n",
                c.name,
                c.attacks,
                f(c.auc),
                f(c.at_threshold.precision),
                c.at_threshold.recall,
                c.at_threshold.fpr,
                f(c.at_zero.precision),
                c.at_zero.recall,
                c.at_zero.fpr,
            ));
        }
        if let Some(gate) = &self.gate {
            out.push_str(if gate.passed { "gate: passed\n" } else { "gate: FAILED\n" });
        }
        out
    }
}
