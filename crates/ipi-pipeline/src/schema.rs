//! `ipi-pipeline schema`: the JSON Schema of pipeline files, for editors
//! (completion and checks as you type; `ipi-pipeline validate` stays the
//! authority).
//!
//! The envelope is written out here. Each step kind's keys come from the
//! kind itself: its `check` is asked about an empty table (its required
//! keys come back as "missing key") and about one unknown key (serde lists
//! every key it knows), so a kind added to the registry appears without
//! anything to keep in step here. Value types are not known that way; any
//! value is allowed, and `validate` checks them.

use serde_json::{Map, Value, json};

use crate::steps::{Registry, StepKind};

const PROBE: &str = "__ipi_schema_probe__";

/// The backquoted names in `text`.
fn quoted_names(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// A kind's keys (every one serde lists) and its required keys.
fn keys_of(kind: &dyn StepKind) -> (Vec<String>, Vec<String>) {
    let mut probe = toml::Table::new();
    probe.insert(PROBE.to_owned(), toml::Value::Integer(0));
    let unknown = format!("unknown key `{PROBE}`");
    let mut keys: Vec<String> = kind
        .check(&probe)
        .into_iter()
        .find(|e| e.message.starts_with(&unknown))
        .map(|e| {
            let after = e.message.get(unknown.len()..).unwrap_or_default().to_owned();
            quoted_names(&after)
        })
        .unwrap_or_default();
    let required: Vec<String> = kind
        .check(&toml::Table::new())
        .into_iter()
        .filter(|e| e.path.is_empty())
        .filter_map(|e| {
            e.message.strip_prefix("missing key `")?.split('`').next().map(str::to_owned)
        })
        .collect();
    for r in &required {
        if !keys.contains(r) {
            keys.push(r.clone());
        }
    }
    // `synth` takes `logs` besides its config struct's keys.
    if kind.kind() == "synth" && !keys.iter().any(|k| k == "logs") {
        keys.push("logs".to_owned());
    }
    (keys, required)
}

/// The whole schema.
pub fn schema(registry: &Registry) -> Value {
    let name_pattern = "^[A-Za-z_][A-Za-z0-9_-]*$";
    let mut defs = Map::new();
    let mut branches = Vec::new();
    let kinds: Vec<&str> = registry.iter().map(|k| k.kind()).collect();
    for kind in registry.iter() {
        let (keys, required) = keys_of(kind);
        let env_keys = ipi_config::StepCatalog::env_keys(registry, kind.kind());
        let mut props = Map::new();
        props.insert("uses".into(), json!({ "const": kind.kind() }));
        for common in ["needs", "cache", "retry", "for_each"] {
            props.insert(common.into(), json!({ "$ref": format!("#/$defs/{common}") }));
        }
        for key in &keys {
            let mut p = json!({
                "description": "May use ${params.NAME}, ${steps.STEP.ATTR} and, with for_each, ${each.NAME}."
            });
            if env_keys.contains(&key.as_str()) {
                p["x-ipi-env"] = json!(true);
                p["description"] = json!("May also use ${env.NAME} (never a credential).");
            }
            props.insert(key.clone(), p);
        }
        let outputs: Vec<String> =
            kind.outputs().iter().map(|(n, t)| format!("{n} ({t})")).collect();
        let mut def = json!({
            "type": "object",
            "description": format!("{} Exposes: {}.", kind.about(), outputs.join(", ")),
            "properties": props,
            "required": ["uses"],
        });
        if !keys.is_empty() {
            // Only when the keys are known; otherwise anything is allowed.
            def["additionalProperties"] = json!(false);
        }
        let mut req = vec![json!("uses")];
        req.extend(required.iter().map(|r| json!(r)));
        def["required"] = Value::Array(req);
        let def_name = format!("step_{}", kind.kind());
        defs.insert(def_name.clone(), def);
        branches.push(json!({
            "if": { "properties": { "uses": { "const": kind.kind() } }, "required": ["uses"] },
            "then": { "$ref": format!("#/$defs/{def_name}") }
        }));
    }
    defs.insert(
        "step".into(),
        json!({
            "type": "object",
            "description": "A step: `uses` names its kind; the other keys are the kind's own.",
            "required": ["uses"],
            "properties": { "uses": { "enum": kinds } },
            "allOf": branches,
        }),
    );
    defs.insert(
        "duration".into(),
        json!({ "type": "string", "pattern": "^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$",
                "description": "A duration such as 1d, 12h, 30m, 45s or 1d12h." }),
    );
    defs.insert(
        "needs".into(),
        json!({ "type": "array", "items": { "type": "string", "pattern": name_pattern },
                "description": "Steps that must succeed first (references to their outputs add these too)." }),
    );
    defs.insert(
        "cache".into(),
        json!({ "description": "Reuse an earlier run's result while config, inputs and code are unchanged (the default); false to always run.",
                "oneOf": [
                    { "type": "boolean" },
                    { "type": "object", "additionalProperties": false,
                      "properties": {
                          "expire_after": { "$ref": "#/$defs/duration" },
                          "ignore": { "type": "array", "items": { "type": "string" },
                                      "description": "Keys of the step (and the inputs they name) that do not decide reuse." } } }
                ] }),
    );
    defs.insert(
        "retry".into(),
        json!({ "type": "object", "additionalProperties": false,
                "description": "Attempts for transient storage errors only (default 3, backoff 1s, doubling).",
                "properties": {
                    "attempts": { "type": "integer", "minimum": 1 },
                    "backoff": { "$ref": "#/$defs/duration" } } }),
    );
    defs.insert(
        "for_each".into(),
        json!({ "type": "object", "minProperties": 1, "maxProperties": 1,
                "description": "Run the step once per value: a date range \"FROM..TO\" (both included) or a list; the body refers to the value as ${each.NAME}.",
                "additionalProperties": { "oneOf": [ { "type": "string" }, { "type": "array", "minItems": 1 } ] } }),
    );
    defs.insert(
        "param".into(),
        json!({ "type": "object", "additionalProperties": false, "required": ["type"],
                "properties": {
                    "type": { "enum": ipi_config::ParamType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>() },
                    "default": { "x-ipi-env": true,
                                 "description": "Without one, the param must be given with --param. Dates take today, yesterday or YYYY-MM-DD; url and string defaults may use ${env.NAME} (never a credential)." },
                    "doc": { "type": "string" } } }),
    );
    let row = json!({ "type": "object", "additionalProperties": { "type": ["string", "integer", "number", "boolean"] } });
    defs.insert(
        "test".into(),
        json!({ "type": "object", "additionalProperties": false, "required": ["name", "step", "expect"],
                "description": "A unit test of one step, run by `ipi-pipeline test FILE`.",
                "properties": {
                    "name": { "type": "string", "minLength": 1 },
                    "step": { "type": "string", "pattern": name_pattern },
                    "input": { "type": "object", "additionalProperties": false,
                               "properties": {
                                   "key": { "type": "string" },
                                   "file": { "type": "string" },
                                   "lines": { "type": "array", "items": { "type": "string" } },
                                   "rows": { "type": "array", "items": row } } },
                    "with": { "type": "object", "description": "Step keys to use instead of the step's own." },
                    "expect": { "type": "object", "additionalProperties": false,
                                "properties": {
                                    "error": { "type": "string" },
                                    "output": { "type": "string" },
                                    "metrics": { "type": "object" },
                                    "rows": { "type": "array", "items": row },
                                    "num_rows": { "type": "integer", "minimum": 0 } } } } }),
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/ipi/pipeline.schema.json",
        "title": "ipi pipeline file",
        "description": "A pipeline file for `ipi-pipeline run|validate|plan|graph|test` (version 1).",
        "type": "object",
        "additionalProperties": false,
        "required": ["version", "name"],
        "properties": {
            "version": { "const": 1 },
            "name": { "type": "string", "minLength": 1 },
            "description": { "type": "string" },
            "timezone": { "type": "string", "description": "IANA zone today and yesterday are resolved in (default UTC)." },
            "params": { "type": "object", "propertyNames": { "pattern": name_pattern },
                        "additionalProperties": { "$ref": "#/$defs/param" } },
            "steps": { "type": "object", "propertyNames": { "pattern": name_pattern },
                       "additionalProperties": { "$ref": "#/$defs/step" } },
            "tests": { "type": "array", "items": { "$ref": "#/$defs/test" } }
        },
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_keys() {
        let s = schema(&Registry::builtin());
        let ingest = &s["$defs"]["step_ingest"];
        for key in ["inputs", "output", "format", "filter", "uses", "cache"] {
            assert!(ingest["properties"].get(key).is_some(), "ingest lacks {key}: {ingest}");
        }
        assert_eq!(ingest["additionalProperties"], json!(false));
        let required = ingest["required"].as_array().unwrap();
        assert!(required.contains(&json!("output")), "{required:?}");
        assert!(s["$defs"]["step_synth"]["properties"].get("logs").is_some());
        assert_eq!(s["properties"]["version"]["const"], 1);
    }
}
