//! What `ipi-pipeline run` and `test` rely on: `${env.NAME}` where
//! allowed, `for_each`, `cache = false` and `[[tests]]`.

use std::collections::HashMap;

use chrono::NaiveDate;
use indexmap::IndexMap;
use ipi_config::{LoadOptions, ParamValue, TestData, load};

use crate::catalog::{Catalog, col, noon, overrides};

fn env(name: &str) -> Option<String> {
    match name {
        "IPI_BUCKET" => Some("security-ml".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("hunter2".to_owned()),
        _ => None,
    }
}

fn load_with(
    source: &str,
    given: &[(String, String)],
) -> Result<ipi_config::Pipeline, Vec<String>> {
    let opts = LoadOptions { overrides: given, now: noon(), catalog: &Catalog, env: &env };
    load("run.toml", source, &opts).map_err(|d| d.iter().map(ToString::to_string).collect())
}

#[test]
fn env_in_url_param_defaults() {
    let source = r#"version = 1
name = "env"
[params]
store = { type = "url", default = "s3://${env.IPI_BUCKET}/ipi" }
[steps.a]
uses = "synth"
users = 1
output = "${params.store}/a"
"#;
    let p = load_with(source, &[]).unwrap();
    assert_eq!(p.params["store"], ParamValue::Url("s3://security-ml/ipi".into()));
    assert_eq!(p.steps["a"].body["output"].as_str(), Some("s3://security-ml/ipi/a"));
    assert_eq!(p.env.get("IPI_BUCKET").map(String::as_str), Some("security-ml"));

    // An unset variable is an error only when --param does not replace it.
    let unset = source.replace("IPI_BUCKET", "IPI_NOT_SET");
    assert_eq!(
        load_with(&unset, &[]).unwrap_err(),
        [format!(
            "run.toml:4:{}: environment variable `IPI_NOT_SET` is not set",
            col(&unset, 4, "${env")
        )]
    );
    let p = load_with(&unset, &overrides(&[("store", "var/ipi")])).unwrap();
    assert_eq!(p.params["store"], ParamValue::Url("var/ipi".into()));
    assert!(p.env.is_empty());
}

#[test]
fn env_is_refused_for_credentials_and_unmarked_keys() {
    let source = r#"version = 1
name = "env"
[params]
store = { type = "url", default = "s3://x/${env.AWS_SECRET_ACCESS_KEY}" }
n = { type = "int", default = "${env.IPI_BUCKET}" }
[steps.a]
uses = "synth"
users = 1
output = "${env.IPI_BUCKET}/a"
"#;
    let errors = load_with(source, &[]).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("run.toml:4:") && errors[0].contains("looks like a credential"));
    assert!(errors[1].contains("only url and string params"), "{errors:#?}");
    assert!(
        errors[2].starts_with(&format!("run.toml:9:{}: step `a`:", col(source, 9, "${env")))
            && errors[2].contains("allowed only in url and string param defaults"),
        "{errors:#?}"
    );
    // No secret is ever shown back.
    assert!(!errors.concat().contains("hunter2"));
}

#[test]
fn for_each_over_a_date_range() {
    let source = r#"version = 1
name = "backfill"
[params]
from = { type = "date" }
to = { type = "date", default = "yesterday" }
[steps.a]
uses = "synth"
for_each = { date = "${params.from}..${params.to}" }
users = 1
output = "out/date=${each.date}"
cache = false
"#;
    let p = load_with(source, &overrides(&[("from", "2024-03-07")])).unwrap();
    let each = p.steps["a"].for_each.clone().unwrap();
    assert_eq!(each.name, "date");
    let day = |s: &str| ParamValue::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
    assert_eq!(each.values, [day("2024-03-07"), day("2024-03-08"), day("2024-03-09")]);
    assert!(!p.steps["a"].cache.clone().unwrap().enabled);
    let body = p.resolve_with("a", &HashMap::new(), Some(&each.values[1]), &toml::Table::new());
    assert_eq!(body.unwrap()["output"].as_str(), Some("out/date=2024-03-08"));
    // Replaced keys are taken as given.
    let replace = toml::Table::from_iter([("output".to_owned(), toml::Value::from("x${y"))]);
    let body = p.resolve_with("a", &HashMap::new(), Some(&each.values[0]), &replace).unwrap();
    assert_eq!(body["output"].as_str(), Some("x${y"));

    // A range that ends before it starts, and `${each.x}` elsewhere.
    let errors = load_with(source, &overrides(&[("from", "2024-03-12")])).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("ends before it starts"), "{errors:#?}");
    let stray = source.replace("for_each = { date = \"${params.from}..${params.to}\" }\n", "");
    let errors = load_with(&stray, &overrides(&[("from", "2024-03-07")])).unwrap_err();
    assert_eq!(
        errors,
        [format!(
            "run.toml:9:{}: step `a`: `${{each.date}}` needs `for_each = {{ date = ... }}` in this step",
            col(&stray, 9, "${each")
        )]
    );
    let list = source.replace("\"${params.from}..${params.to}\"", "[\"x\", \"y\"]");
    let p = load_with(&list, &overrides(&[("from", "2024-03-07")])).unwrap();
    assert_eq!(
        p.steps["a"].for_each.clone().unwrap().values,
        [ParamValue::String("x".into()), ParamValue::String("y".into())]
    );
}

const WITH_TESTS: &str = r#"version = 1
name = "t"
[params]
store = { type = "url", default = "var/ipi" }
[steps.a]
uses = "synth"
users = 1
output = "${params.store}/a"
[steps.b]
uses = "ingest"
inputs = ["${steps.a.output}"]
output = "${params.store}/b"

[[tests]]
name = "ingest keeps logins"
step = "b"
input = { lines = ["one", "two"] }
with = { output = "${params.store}/elsewhere" }
expect = { metrics = { rows = 1 }, rows = [{ entity = "u" }] }

[[tests]]
name = "bad lines fail"
step = "b"
input = { rows = [{ entity = "u", ip = "1.2.3.4" }], file = "x.csv" }
expect = { error = "rejected" }
"#;

#[test]
fn tests_in_the_file() {
    let p = load_with(WITH_TESTS, &[]).unwrap();
    assert_eq!(p.tests.len(), 2);
    let t = &p.tests[0];
    assert_eq!((t.name.as_str(), t.step.as_str(), t.line), ("ingest keeps logins", "b", 14));
    assert_eq!(t.with["output"].as_str(), Some("var/ipi/elsewhere"));
    let input = t.input.clone().unwrap();
    assert_eq!(input.data, TestData::Lines(vec!["one".into(), "two".into()]));
    assert_eq!(t.expect.metrics["rows"], toml::Value::Integer(1));
    assert_eq!(t.expect.rows.as_ref().map(Vec::len), Some(1));
    let t = &p.tests[1];
    assert_eq!(t.expect.error.as_deref(), Some("rejected"));
    assert_eq!(t.input.clone().unwrap().file.as_deref(), Some("x.csv"));
    assert!(matches!(t.input.clone().unwrap().data, TestData::Rows(rows) if rows.len() == 1));
}

#[test]
fn broken_tests_are_reported_with_positions() {
    let source = WITH_TESTS
        .replace("step = \"b\"\ninput = { lines", "step = \"nope\"\ninput = { lines")
        .replace("expect = { error = \"rejected\" }", "expect = { eror = \"rejected\" }")
        .replace("with = { output", "with = { x = \"${steps.a.output}\", output");
    let errors = load_with(&source, &[]).unwrap_err();
    let expected = [
        format!(
            "run.toml:16:{}: test `ingest keeps logins`: unknown step `nope`; steps: a, b",
            col(&source, 16, "\"nope\"")
        ),
        format!(
            "run.toml:18:{}: test `ingest keeps logins`: `with` can refer only to params, not `${{steps.a.output}}`",
            col(&source, 18, "{")
        ),
        format!(
            "run.toml:25:{}: test `bad lines fail`: unknown key `eror`, expected one of `error`, `output`, `metrics`, `rows`, `num_rows`",
            col(&source, 25, "eror")
        ),
    ];
    assert_eq!(errors, expected);
}

#[test]
fn outputs_of_a_for_each_step_are_those_of_each_run() {
    // `resolve_body` outside a for_each value refuses `${each.*}`.
    let source = r#"version = 1
name = "x"
[steps.a]
uses = "synth"
for_each = { n = [1, 2] }
users = "${each.n}"
output = "o"
"#;
    let p = load_with(source, &[]).unwrap();
    let outputs: HashMap<String, IndexMap<String, toml::Value>> = HashMap::new();
    assert!(p.resolve_body("a", &outputs).is_err());
    let body = p.resolve_with("a", &outputs, Some(&ParamValue::Int(2)), &toml::Table::new());
    assert_eq!(body.unwrap()["users"], toml::Value::Integer(2));
}
