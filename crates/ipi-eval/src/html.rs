//! `report.html`: one self-contained page (inline SVG and CSS, no script,
//! nothing fetched), for people.

use std::fmt::Write as _;

use crate::plots::{Figure, case_color};
use crate::report::{ENTITY_PERCENTILES, Report};

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "–".into(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

const STYLE: &str = "
body { font-family: 'Liberation Sans', Arial, Helvetica, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; padding: 0 16px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
th { background: #f5f5f5; }
td.l, th.l { text-align: left; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: middle; }
.headline { font-size: 1.05em; background: #f7f9fc; border: 1px solid #dde4ee; padding: 10px 14px; }
.fail { color: #b00020; font-weight: bold; }
.pass { color: #1b5e20; font-weight: bold; }
figure { margin: 18px 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
";

/// The page.
pub fn render(report: &Report, figures: &[Figure]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>ipi evaluation: model {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&report.model_id)
    );
    let _ = write!(
        h,
        "<h1>IP Insights evaluation</h1>\n<p class=\"meta\">model <code>{}</code> ({}) on test \
         data <code>{}</code>{}{}</p>\n",
        escape(&report.model_id),
        escape(&report.model),
        escape(&report.test),
        report
            .test_window
            .as_ref()
            .map(|(a, b)| format!(", {} to {}", escape(a), escape(b)))
            .unwrap_or_default(),
        report
            .labels
            .as_ref()
            .map(|l| format!(", labels <code>{}</code>", escape(l)))
            .unwrap_or_else(|| ", no labels".into()),
    );
    headline(&mut h, report);
    cases_table(&mut h, report);
    for fig in figures {
        let _ = write!(
            h,
            "<figure id=\"fig-{}\">\n{}\n<figcaption>{} (also <code>plots/{}.png</code> and \
             <code>.svg</code>)</figcaption>\n</figure>\n",
            fig.name,
            strip_xml_declaration(&fig.svg),
            escape(&fig.title),
            fig.name
        );
    }
    thresholds_table(&mut h, report);
    entities_section(&mut h, report);
    counts_section(&mut h, report);
    h.push_str(
        "<p class=\"meta\">The same figures are in <code>report.json</code>; every entity's \
         percentiles in <code>entities.csv</code>.</p>\n</body>\n</html>\n",
    );
    h
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml").and_then(|rest| rest.split_once("?>")) {
        Some((_, after)) => after.trim_start(),
        None => svg,
    }
}

fn headline(h: &mut String, r: &Report) {
    let t = &r.threshold;
    let why = match &r.threshold_for_recall {
        Some(target) if matches!(t.rule, crate::config::Choose::Recall) => format!(
            "the highest that catches {} of <code>{}</code>",
            pct(target.target),
            escape(target.case.as_deref().unwrap_or(""))
        ),
        _ => format!(
            "the lowest that flags at most {} of normal events",
            pct(r.threshold_for_fpr.target)
        ),
    };
    let _ = write!(
        h,
        "<div class=\"headline\"><p>Chosen threshold: <b id=\"threshold\">{}</b> on anomaly_score \
         (= −dot_product; flag when above), {why}. It flags {} of normal test events.</p>\n<ul>\n",
        num(Some(t.value), 4),
        pct(r.cases.first().map_or(0.0, |c| c.at_threshold.fpr)),
    );
    for c in &r.cases {
        let _ = writeln!(
            h,
            "<li><b>{}</b>: AUC {}, precision {}, recall {} at the threshold</li>",
            escape(&c.name),
            num(c.auc, 4),
            num(c.at_threshold.precision, 4),
            num(Some(c.at_threshold.recall), 4),
        );
    }
    h.push_str("</ul>\n");
    if let Some(gate) = &r.gate {
        let checks: Vec<String> = gate
            .checks
            .iter()
            .map(|c| format!("{} AUC {} ≥ {}", escape(&c.case), num(c.auc, 4), c.min_auc))
            .collect();
        let _ = writeln!(
            h,
            "<p>Gate: <span class=\"{}\">{}</span> ({})</p>",
            if gate.passed { "pass" } else { "fail" },
            if gate.passed { "passed" } else { "FAILED" },
            checks.join("; ")
        );
    }
    h.push_str("</div>\n");
}

fn cases_table(h: &mut String, r: &Report) {
    h.push_str(
        "<h2>Detection per case</h2>\n<p>Each case is the normal test events of entities seen in \
         training against one kind of attack. The notebook case has as many attacks as normal \
         events, so its precision is the balanced one SageMaker's example reports; labelled \
         cases keep their real share of traffic.</p>\n<table id=\"cases\">\n<tr><th class=\"l\">case</th>\
         <th>attacks</th><th>normal</th><th>AUC</th><th>precision</th><th>recall</th><th>FPR</th>\
         <th>precision at 0</th><th>recall at 0</th><th>FPR at 0</th></tr>\n",
    );
    for (i, c) in r.cases.iter().enumerate() {
        let color = case_color(i);
        let _ = writeln!(
            h,
            "<tr><td class=\"l\" title=\"{}\"><span class=\"swatch\" style=\"background: rgb({},{},{})\">\
             </span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            escape(&c.description),
            color.0,
            color.1,
            color.2,
            escape(&c.name),
            c.attacks,
            c.normal,
            num(c.auc, 4),
            num(c.at_threshold.precision, 4),
            num(Some(c.at_threshold.recall), 4),
            num(Some(c.at_threshold.fpr), 4),
            num(c.at_zero.precision, 4),
            num(Some(c.at_zero.recall), 4),
            num(Some(c.at_zero.fpr), 4),
        );
    }
    h.push_str("</table>\n");
}

fn thresholds_table(h: &mut String, r: &Report) {
    h.push_str(
        "<h2>Thresholds for other targets</h2>\n<table id=\"thresholds\">\n<tr><th class=\"l\">target</th>\
         <th>threshold</th><th>FPR</th>",
    );
    for c in &r.cases {
        let _ = write!(h, "<th>recall: {}</th>", escape(&c.name));
    }
    h.push_str("</tr>\n");
    let mut rows: Vec<(String, &crate::report::Target)> =
        r.fpr_table.iter().map(|t| (format!("FPR ≤ {}", pct(t.target)), t)).collect();
    if let Some(t) = &r.threshold_for_recall {
        let case = escape(t.case.as_deref().unwrap_or(""));
        rows.push((format!("recall ≥ {} ({case})", pct(t.target)), t));
    }
    for (label, t) in rows {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{label}</td><td>{:.4}</td><td>{}</td>",
            t.value,
            pct(t.fpr)
        );
        for c in &r.cases {
            let _ = write!(h, "<td>{}</td>", num(t.recall.get(&c.name).copied(), 4));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn entities_section(h: &mut String, r: &Report) {
    let e = &r.entities;
    let _ = write!(
        h,
        "<h2>Per-entity scores</h2>\n<p>{} entities had normal test events. Across them, each \
         entity's 5th percentile of dot_product is, at the 5/25/50/75/95th percentiles: {}. \
         Entities whose own low percentiles sit under the global threshold are flagged often; \
         a per-entity threshold (say at its own p1) calibrates them. All entities are in \
         <code>entities.csv</code>; the ten busiest (20 or more events) with the lowest p5:</p>\n\
         <table id=\"entities\">\n<tr><th class=\"l\">entity</th><th>events</th><th>flagged</th>",
        e.entities,
        e.p5_across_entities.iter().map(|x| num(*x, 3)).collect::<Vec<_>>().join(" / ")
    );
    for p in ENTITY_PERCENTILES {
        let _ = write!(h, "<th>p{p}</th>");
    }
    h.push_str("</tr>\n");
    for row in &e.lowest_p5 {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
            escape(&row.entity),
            row.events,
            row.flagged
        );
        for v in &row.dot_product {
            let _ = write!(h, "<td>{}</td>", num(Some(*v), 3));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn counts_section(h: &mut String, r: &Report) {
    let c = &r.counts;
    let _ = writeln!(
        h,
        "<h2>Data</h2>\n<table id=\"counts\">\n\
         <tr><td class=\"l\">test events</td><td>{}</td></tr>\n\
         <tr><td class=\"l\">normal events of entities seen in training</td><td>{}</td></tr>\n\
         <tr><td class=\"l\">normal events of unseen entities (not scored)</td><td>{}</td></tr>\n\
         <tr><td class=\"l\">labelled attack events</td><td>{}</td></tr>\n\
         <tr><td class=\"l\">labelled attacks on unseen entities (not scored)</td><td>{}</td></tr>\n\
         <tr><td class=\"l\">label rows read (unusable)</td><td>{} ({})</td></tr>\n</table>",
        c.test_events,
        c.normal_events,
        c.normal_unseen_entity,
        c.labelled_events,
        c.labelled_unseen_entity,
        c.label_rows,
        c.label_rows_skipped
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_xml_declaration_dropped() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(strip_xml_declaration("<?xml version=\"1.0\"?>\n<svg/>"), "<svg/>");
        assert_eq!(strip_xml_declaration("<svg/>"), "<svg/>");
    }
}
