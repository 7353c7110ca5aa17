//! The report's pictures, drawn with plotters as SVG (for the HTML report)
//! and PNG (for slides and tickets).
//!
//! PNG text is drawn with a committed font (Liberation Sans, SIL OFL 1.1;
//! `fonts/`), so pictures look the same on machines without system fonts.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::report::Report;
use crate::{Error, Result};

/// Pixels of every picture.
pub const SIZE: (u32, u32) = (860, 480);

/// The font every picture's text is drawn with.
const FONT_FAMILY: &str = "sans-serif";
static FONT: &[u8] = include_bytes!("../fonts/LiberationSans-Regular.ttf");

/// The colour of normal traffic.
pub const NORMAL_COLOR: RGBColor = RGBColor(68, 68, 68);
/// One colour per case, in case order (then round again).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// A case's colour.
pub fn case_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// One picture, in both formats.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem: `scores`, `roc`, `recall`, `precision`.
    pub name: &'static str,
    /// What it shows, one line.
    pub title: String,
    /// The SVG document.
    pub svg: String,
    /// The PNG file.
    pub png: Vec<u8>,
}

/// A line chart, backend-independent.
struct Chart {
    name: &'static str,
    title: String,
    x_desc: String,
    y_desc: String,
    x: (f64, f64),
    y: (f64, f64),
    /// Labels on x show `10^x` (for log-scaled data).
    x_log10: bool,
    series: Vec<Series>,
}

struct Series {
    label: String,
    color: RGBColor,
    dashed: bool,
    width: u32,
    points: Vec<(f64, f64)>,
}

/// Every picture of a report. `normal` and `attacks` are the anomaly
/// scores (ascending) of normal events and of each case's attacks.
pub fn figures(report: &Report, normal: &[f32], attacks: &[&[f32]]) -> Result<Vec<Figure>> {
    register_font()?;
    let charts = [
        scores_chart(report, normal, attacks),
        roc_chart(report),
        recall_chart(report),
        precision_chart(report),
    ];
    charts.iter().map(render).collect()
}

fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Plot { plot: "font", message: "the committed font could not be read".into() })
    }
}

fn threshold_lines(report: &Report, y: (f64, f64)) -> Vec<Series> {
    let t = report.threshold.value;
    let mut out = vec![Series {
        label: format!("threshold {t:.3}"),
        color: BLACK,
        dashed: true,
        width: 2,
        points: vec![(t, y.0), (t, y.1)],
    }];
    if t.abs() > 1e-9 {
        out.push(Series {
            label: "0".into(),
            color: RGBColor(150, 150, 150),
            dashed: true,
            width: 1,
            points: vec![(0.0, y.0), (0.0, y.1)],
        });
    }
    out
}

fn x_range(report: &Report) -> (f64, f64) {
    let first = report.cases.first().map(|c| &c.curve);
    match first.and_then(|c| Some((c.first()?.threshold, c.last()?.threshold))) {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && hi > lo => (lo, hi),
        _ => (-1.0, 1.0),
    }
}

fn scores_chart(report: &Report, normal: &[f32], attacks: &[&[f32]]) -> Chart {
    let x = x_range(report);
    let edges = crate::curve::grid(x.0, x.1, 61);
    let centers: Vec<f64> = edges.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let curve = |sorted: &[f32]| -> Vec<(f64, f64)> {
        centers.iter().copied().zip(crate::curve::density(sorted, &edges)).collect()
    };
    let mut series = vec![Series {
        label: format!("normal ({})", report.counts.normal_events),
        color: NORMAL_COLOR,
        dashed: false,
        width: 3,
        points: curve(normal),
    }];
    for (i, (case, sorted)) in report.cases.iter().zip(attacks).enumerate() {
        series.push(Series {
            label: format!("{} ({})", case.name, case.attacks),
            color: case_color(i),
            dashed: false,
            width: 2,
            points: curve(sorted),
        });
    }
    let top = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let y = (0.0, if top > 0.0 && top.is_finite() { top * 1.08 } else { 1.0 });
    series.extend(threshold_lines(report, y));
    Chart {
        name: "scores",
        title: "Score distributions: normal traffic and each attack case".into(),
        x_desc: "anomaly_score (= -dot_product; higher is stranger)".into(),
        y_desc: "density".into(),
        x,
        y,
        x_log10: false,
        series,
    }
}

fn roc_chart(report: &Report) -> Chart {
    // FPR on a log scale: the low-FPR end is where thresholds live.
    let min_fpr = report
        .cases
        .iter()
        .map(|c| 1.0 / c.normal.max(1) as f64)
        .fold(1.0f64, f64::min)
        .clamp(1e-6, 1e-2);
    let lo = min_fpr.log10().floor();
    let mut series = vec![Series {
        label: "chance".into(),
        color: RGBColor(170, 170, 170),
        dashed: true,
        width: 1,
        points: crate::curve::grid(lo, 0.0, 50).into_iter().map(|x| (x, 10f64.powf(x))).collect(),
    }];
    for (i, case) in report.cases.iter().enumerate() {
        let auc = case.auc.map_or("-".to_string(), |a| format!("{a:.4}"));
        series.push(Series {
            label: format!("{} (AUC {auc})", case.name),
            color: case_color(i),
            dashed: false,
            width: 2,
            points: case
                .roc
                .iter()
                .map(|&(fpr, tpr)| (fpr.max(10f64.powf(lo)).log10(), tpr))
                .collect(),
        });
    }
    let t = report.threshold_for_fpr.fpr.max(10f64.powf(lo)).log10();
    series.push(Series {
        label: format!("FPR at threshold ({:.3})", report.threshold_for_fpr.fpr),
        color: BLACK,
        dashed: true,
        width: 2,
        points: vec![(t, 0.0), (t, 1.0)],
    });
    Chart {
        name: "roc",
        title: "ROC curves (false-positive rate on a log scale)".into(),
        x_desc: "false-positive rate (normal events flagged)".into(),
        y_desc: "true-positive rate (recall)".into(),
        x: (lo, 0.0),
        y: (0.0, 1.02),
        x_log10: true,
        series,
    }
}

fn recall_chart(report: &Report) -> Chart {
    let mut series = Vec::new();
    if let Some(first) = report.cases.first() {
        series.push(Series {
            label: "FPR (normal)".into(),
            color: NORMAL_COLOR,
            dashed: false,
            width: 3,
            points: first.curve.iter().map(|p| (p.threshold, p.fpr)).collect(),
        });
    }
    for (i, case) in report.cases.iter().enumerate() {
        series.push(Series {
            label: format!("recall: {}", case.name),
            color: case_color(i),
            dashed: false,
            width: 2,
            points: case.curve.iter().map(|p| (p.threshold, p.recall)).collect(),
        });
    }
    series.extend(threshold_lines(report, (0.0, 1.02)));
    Chart {
        name: "recall",
        title: "Recall and false-positive rate against threshold".into(),
        x_desc: "threshold on anomaly_score (flag when above)".into(),
        y_desc: "share flagged".into(),
        x: x_range(report),
        y: (0.0, 1.02),
        x_log10: false,
        series,
    }
}

fn precision_chart(report: &Report) -> Chart {
    let mut series = Vec::new();
    for (i, case) in report.cases.iter().enumerate() {
        series.push(Series {
            label: format!("precision: {}", case.name),
            color: case_color(i),
            dashed: false,
            width: 2,
            points: case.curve.iter().filter_map(|p| Some((p.threshold, p.precision?))).collect(),
        });
    }
    series.extend(threshold_lines(report, (0.0, 1.02)));
    Chart {
        name: "precision",
        title: "Precision against threshold (labelled cases at their real share of traffic)".into(),
        x_desc: "threshold on anomaly_score (flag when above)".into(),
        y_desc: "precision".into(),
        x: x_range(report),
        y: (0.0, 1.02),
        x_log10: false,
        series,
    }
}

fn render(chart: &Chart) -> Result<Figure> {
    let fail = |e: String| Error::Plot { plot: chart.name, message: e };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, chart).map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&root, chart).map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let png = encode_png(&rgb, w, h).map_err(fail)?;
    Ok(Figure { name: chart.name, title: chart.title.clone(), svg, png })
}

/// An RGB buffer as a PNG file.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Pixels on the right kept for the legend, so it never hides a curve.
const LEGEND_WIDTH: u32 = 250;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &Chart) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (x, y) = (sane(spec.x), sane(spec.y));
    let (plot, legend) = root.split_horizontally(SIZE.0.saturating_sub(LEGEND_WIDTH));
    let mut chart = ChartBuilder::on(&plot)
        .caption(&spec.title, (FONT_FAMILY, 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let log_label = |v: &f64| format_log10(*v);
    let plain_label = |v: &f64| format_tick(*v);
    chart
        .configure_mesh()
        .x_desc(spec.x_desc.as_str())
        .y_desc(spec.y_desc.as_str())
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(if spec.x_log10 { &log_label } else { &plain_label })
        .y_label_formatter(&plain_label)
        .label_style((FONT_FAMILY, 13))
        .axis_desc_style((FONT_FAMILY, 14))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    for s in &spec.series {
        let style = ShapeStyle { color: s.color.to_rgba(), filled: false, stroke_width: s.width };
        let points: Vec<(f64, f64)> =
            s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        if points.is_empty() {
            continue;
        }
        if s.dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?;
        } else {
            chart.draw_series(LineSeries::new(points, style))?;
        }
    }
    // The legend, beside the plot: a line in each series' style, its label.
    let text = TextStyle::from((FONT_FAMILY, 13).into_font()).color(&RGBColor(34, 34, 34));
    for (i, s) in spec.series.iter().enumerate() {
        let y = 52 + 20 * i as i32;
        let style = ShapeStyle { color: s.color.to_rgba(), filled: false, stroke_width: s.width };
        let line = vec![(6, y), (30, y)];
        if s.dashed {
            legend.draw(&DashedPathElement::new(line, 5, 3, style))?;
        } else {
            legend.draw(&PathElement::new(line, style))?;
        }
        legend.draw(&Text::new(s.label.clone(), (38, y - 7), text.clone()))?;
    }
    Ok(())
}

/// A range plotters can draw: finite, and not empty.
fn sane((lo, hi): (f64, f64)) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-9 { (lo - 0.5, hi + 0.5) } else { (lo, hi) }
}

fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.to_owned() }
    }
}

fn format_log10(v: f64) -> String {
    let p = 10f64.powf(v);
    if p >= 0.01 { format_tick(p) } else { format!("1e{}", v.round() as i64) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_well() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(-2.5), "-2.5");
        assert_eq!(format_tick(150.0), "150");
        assert_eq!(format_log10(-3.0), "1e-3");
        assert_eq!(format_log10(-1.0), "0.1");
        assert_eq!(format_log10(0.0), "1");
    }

    #[test]
    fn a_chart_renders_to_svg_and_to_a_png_with_ink_in_the_series_colour() {
        register_font().unwrap();
        let chart = Chart {
            name: "test",
            title: "A test".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            x_log10: false,
            series: vec![Series {
                label: "diagonal".into(),
                color: PALETTE[0],
                dashed: false,
                width: 3,
                points: vec![(0.0, 0.0), (1.0, 1.0)],
            }],
        };
        let fig = render(&chart).unwrap();
        assert!(fig.svg.starts_with("<svg"), "{}", fig.svg.chars().take(40).collect::<String>());
        assert!(fig.svg.contains("diagonal") && fig.svg.contains("A test"));
        let decoder = png::Decoder::new(std::io::Cursor::new(&fig.png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), SIZE);
        let c = PALETTE[0];
        let ink = buf.chunks(3).filter(|p| p[0] == c.0 && p[1] == c.1 && p[2] == c.2).count();
        // A 3-pixel line across the plot area is well over a thousand pixels.
        assert!(ink > 1000, "{ink} pixels in the series colour");
        // Axes and text were drawn too.
        let dark = buf.chunks(3).filter(|p| p[0] < 60 && p[1] < 60 && p[2] < 60).count();
        assert!(dark > 200, "{dark} dark pixels");
    }
}
