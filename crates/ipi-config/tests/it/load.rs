//! Files that load, and what they load into.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use indexmap::IndexMap;
use ipi_config::{
    CachePolicy, LoadOptions, ParamType, ParamValue, Pipeline, RetryPolicy, load, load_path,
};

use crate::catalog::{Catalog, at, errors, opts, overrides};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn daily(over: &[(String, String)]) -> Pipeline {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/daily.toml");
    load_path(&path, &opts(over)).unwrap_or_else(|d| panic!("{d:#?}"))
}

#[test]
fn daily_loads() {
    let p = daily(&[]);
    assert_eq!(p.name, "daily");
    assert_eq!(p.description.as_deref(), Some("Synthesize, ingest and split one day."));
    assert_eq!(p.timezone, chrono_tz::UTC);
    assert_eq!(p.today, day("2024-03-10"));
    assert_eq!(p.order, ["synth", "ingest", "split", "train"]);
    assert_eq!(p.params["date"], ParamValue::Date(day("2024-03-09")));
    assert_eq!(p.params["users"], ParamValue::Int(200));
    assert_eq!(p.params["ttl"], ParamValue::Duration(Duration::from_secs(7 * 86_400)));
    assert_eq!(p.param_decls["date"].ty, ParamType::Date);
    assert_eq!(p.param_decls["date"].doc.as_deref(), Some("The UTC day to process."));
    assert!(!p.param_decls["date"].required);

    let ingest = &p.steps["ingest"];
    assert_eq!(ingest.uses, "ingest");
    assert_eq!(ingest.needs, ["synth"]);
    assert_eq!(ingest.line, 20);
    assert_eq!(
        ingest.cache,
        Some(CachePolicy {
            enabled: true,
            expire_after: Some(Duration::from_secs(7 * 86_400)),
            ignore: Vec::new()
        })
    );
    assert_eq!(ingest.retry, Some(RetryPolicy { attempts: 3, backoff: Duration::from_secs(2) }));
    // Envelope keys are not part of the body.
    let keys: Vec<&str> = ingest.body.keys().map(String::as_str).collect();
    assert_eq!(keys, ["inputs", "filter", "output"]);

    // An exact param reference keeps the param's type; an embedded one is
    // formatted; step references stay as written until run time.
    let synth = &p.steps["synth"].body;
    assert_eq!(synth["users"], toml::Value::Integer(200));
    assert_eq!(synth["output"].as_str(), Some("var/ipi/logs"));
    let split = &p.steps["split"];
    assert_eq!(split.needs, ["ingest"]);
    assert_eq!(split.body["input"].as_str(), Some("${steps.ingest.output}"));
    assert_eq!(split.body["end"].to_string(), "2024-03-09");
    assert_eq!(split.body["output"].as_str(), Some("var/ipi/splits/date=2024-03-09"));
    assert_eq!(p.steps["train"].body["hyperparameters"]["learning_rate"], toml::Value::Float(0.01));
    assert_eq!(p.dependents("ingest"), ["split"]);
}

#[test]
fn overrides_are_typed() {
    let p = daily(&overrides(&[
        ("date", "2024-01-31"),
        ("users", "5"),
        ("store", "s3://bucket/ipi"),
        ("users", "7"),
    ]));
    assert_eq!(p.params["date"], ParamValue::Date(day("2024-01-31")));
    assert_eq!(p.params["users"], ParamValue::Int(7), "the last override wins");
    assert_eq!(p.steps["synth"].body["users"], toml::Value::Integer(7));
    assert_eq!(p.steps["synth"].body["output"].as_str(), Some("s3://bucket/ipi/logs"));
    // Params keep file order whatever the override order.
    let names: Vec<&str> = p.params.keys().map(String::as_str).collect();
    assert_eq!(names, ["date", "store", "users", "lr", "ttl"]);
}

#[test]
fn resolve_body_substitutes_outputs() {
    let p = daily(&[]);
    let mut outputs: HashMap<String, IndexMap<String, toml::Value>> = HashMap::new();
    outputs.insert(
        "ingest".into(),
        IndexMap::from([
            ("output".to_owned(), toml::Value::from("s3://b/events")),
            ("rows".to_owned(), toml::Value::Integer(12)),
        ]),
    );
    let body = p.resolve_body("split", &outputs).unwrap();
    assert_eq!(body["input"].as_str(), Some("s3://b/events"));
    assert_eq!(body["end"].to_string(), "2024-03-09");

    let err = p.resolve_body("train", &outputs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "step `train`: `${steps.split.output}` has no value: step `split` has not reported `output`"
    );
    assert_eq!(p.resolve_body("nope", &outputs).unwrap_err().to_string(), "unknown step `nope`");
    // A step without references resolves to its body.
    assert_eq!(p.resolve_body("synth", &outputs).unwrap(), p.steps["synth"].body);
}

#[test]
fn today_follows_the_file_timezone() {
    let source = r#"
version = 1
name = "tz"
timezone = "Asia/Tokyo"
[params]
today = { type = "date", default = "today" }
yesterday = { type = "date", default = "yesterday" }
[steps.a]
uses = "synth"
users = 1
output = "x/${params.today}/${params.yesterday}"
"#;
    // 23:30 UTC is already the next morning in Tokyo.
    let opts = LoadOptions::new(&[], at("2024-03-10T23:30:00Z"), &Catalog);
    let p = load("tz.toml", source, &opts).unwrap();
    assert_eq!(p.timezone, chrono_tz::Asia::Tokyo);
    assert_eq!(p.today, day("2024-03-11"));
    assert_eq!(p.steps["a"].body["output"].as_str(), Some("x/2024-03-11/2024-03-10"));
    // The same instant in UTC.
    let utc = source.replace("Asia/Tokyo", "UTC");
    let p = load("tz.toml", &utc, &opts).unwrap();
    assert_eq!(p.steps["a"].body["output"].as_str(), Some("x/2024-03-10/2024-03-09"));
}

#[test]
fn order_is_stable_and_follows_references() {
    let source = r#"
version = 1
name = "order"
[steps.late]
uses = "train"
input = "${steps.mid.output}"
[steps.first]
uses = "synth"
users = 1
output = "a"
[steps.mid]
uses = "train"
input = "${steps.first.output}"
[steps.other]
uses = "synth"
users = 2
output = "b"
[steps.last]
uses = "train"
input = "${steps.other.output}/${steps.late.output}"
needs = ["first"]
"#;
    let p = load("order.toml", source, &opts(&[])).unwrap();
    assert_eq!(p.order, ["first", "mid", "late", "other", "last"]);
    assert_eq!(p.steps["last"].needs, ["first", "other", "late"]);
}

#[test]
fn escapes_and_exact_references() {
    let source = r#"
version = 1
name = "esc"
[params]
n = { type = "int", default = 3 }
on = { type = "bool", default = true }
odd = { type = "string", default = "a${b" }
[steps.a]
uses = "synth"
users = "${params.n}"
output = "$${not.a.ref}/${params.odd}/${params.on}"
[steps.b]
uses = "train"
input = "$${x}-${params.odd}-${steps.a.output}"
"#;
    let p = load("esc.toml", source, &opts(&[])).unwrap();
    assert_eq!(p.steps["a"].body["users"], toml::Value::Integer(3));
    assert_eq!(p.steps["a"].body["output"].as_str(), Some("${not.a.ref}/a${b/true"));
    // A string still waiting for a step output stays a template.
    assert_eq!(p.steps["b"].body["input"].as_str(), Some("$${x}-a$${b-${steps.a.output}"));
    let outputs = HashMap::from([(
        "a".to_owned(),
        IndexMap::from([("output".to_owned(), toml::Value::from("o${x}"))]),
    )]);
    let body = p.resolve_body("b", &outputs).unwrap();
    assert_eq!(body["input"].as_str(), Some("${x}-a${b-o${x}"));
}

#[test]
fn required_param_given_by_override() {
    let source = r#"
version = 1
name = "req"
[params]
users = { type = "int" }
[steps.a]
uses = "synth"
users = "${params.users}"
output = "x"
"#;
    let p = load("req.toml", source, &opts(&overrides(&[("users", "9")]))).unwrap();
    assert_eq!(p.params["users"], ParamValue::Int(9));
    assert!(p.param_decls["users"].required);
    assert_eq!(
        errors(source, &[]),
        [
            "test.toml:5:1: param `users` has no default and was not given; pass --param users=VALUE (an integer such as 200)"
        ]
    );
}

#[test]
fn a_pipeline_without_steps_is_valid() {
    let source =
        "version = 1\nname = \"empty\"\n[params]\nd = { type = \"date\", default = \"today\" }\n";
    let p = load("empty.toml", source, &opts(&[])).unwrap();
    assert!(p.steps.is_empty() && p.order.is_empty());
    assert_eq!(p.params["d"], ParamValue::Date(day("2024-03-10")));
    let p = load("empty.toml", &format!("{source}[steps]\n"), &opts(&[])).unwrap();
    assert!(p.steps.is_empty());
}
