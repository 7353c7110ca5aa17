//! Query parameters: `$name` placeholders, bound to values, never spliced
//! into the text.
//!
//! A value is given as text (`--param date=2018-11-12`) or typed (a
//! pipeline file's `params = { days = 7 }`). It is bound as a literal of the
//! type DataFusion inferred for its placeholder (`anomaly_score >
//! $threshold` makes `$threshold` a float); a placeholder whose type cannot
//! be inferred gets the value as given, text as `VARCHAR`, so reports say
//! what they mean with `CAST($date AS DATE)`.
//!
//! A report may declare its parameters in comment lines, with an optional
//! default and a description:
//!
//! ```sql
//! -- @param date                The UTC day (YYYY-MM-DD).
//! -- @param threshold = 0       Flag logins with anomaly_score above this.
//! ```

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A parameter's value as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text, typed by where it is used.
    Text(String),
}

impl ParamValue {
    fn scalar(&self) -> ScalarValue {
        match self {
            ParamValue::Bool(b) => ScalarValue::Boolean(Some(*b)),
            ParamValue::Int(i) => ScalarValue::Int64(Some(*i)),
            ParamValue::Float(f) => ScalarValue::Float64(Some(*f)),
            ParamValue::Text(s) => ScalarValue::Utf8(Some(s.clone())),
        }
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Text(s) => f.write_str(s),
        }
    }
}

impl From<&str> for ParamValue {
    fn from(value: &str) -> Self {
        ParamValue::Text(value.to_string())
    }
}

/// Named parameter values.
pub type Params = BTreeMap<String, ParamValue>;

/// A parameter a report declares with `-- @param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredParam {
    /// Its name, without `$`.
    pub name: String,
    /// Its default, as text; `None` when it must be given.
    pub default: Option<String>,
    /// What it means.
    pub doc: String,
}

/// The parameters `sql` declares in `-- @param NAME [= DEFAULT] [DOC]`
/// comment lines, in order. A default with spaces is quoted: `= 'a b'`.
pub fn declared_params(sql: &str) -> Vec<DeclaredParam> {
    let mut out = Vec::new();
    for line in sql.lines() {
        let Some(rest) = line.trim_start().strip_prefix("--") else { continue };
        let Some(rest) = rest.trim_start().strip_prefix("@param") else { continue };
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let rest = rest.trim_start().trim_start_matches('$');
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let (name, rest) = rest.split_at(end);
        if name.is_empty() {
            continue;
        }
        let rest = rest.trim_start();
        let (default, doc) = match rest.strip_prefix('=') {
            Some(value) => {
                let value = value.trim_start();
                if let Some(quoted) = value.strip_prefix('\'') {
                    match quoted.split_once('\'') {
                        Some((v, doc)) => (Some(v.to_string()), doc),
                        None => (Some(quoted.to_string()), ""),
                    }
                } else {
                    let end = value.find(char::is_whitespace).unwrap_or(value.len());
                    let (v, doc) = value.split_at(end);
                    (Some(v.to_string()), doc)
                }
            }
            None => (None, rest),
        };
        out.push(DeclaredParam { name: name.to_string(), default, doc: doc.trim().to_string() });
    }
    out
}

/// The parameters as given, plus the defaults `sql` declares for the ones
/// not given.
pub fn with_defaults(sql: &str, given: &Params) -> Params {
    let mut all = given.clone();
    for declared in declared_params(sql) {
        if let Some(default) = declared.default {
            all.entry(declared.name).or_insert(ParamValue::Text(default));
        }
    }
    all
}

/// Replaces every placeholder of `plan` with its value from `params`, cast
/// to the type DataFusion inferred for it. Returns the plan and the names
/// it used.
pub(crate) fn bind(
    plan: LogicalPlan,
    params: &Params,
    source_name: &str,
) -> Result<(LogicalPlan, Vec<String>)> {
    let param_error = |name: &str, message: String| Error::Param {
        source_name: source_name.to_string(),
        name: name.to_string(),
        message,
    };
    let types: HashMap<String, Option<DataType>> = plan
        .get_parameter_types()
        .map_err(|e| param_error("?", crate::session::clean_message(&e)))?;
    if types.is_empty() {
        return Ok((plan, Vec::new()));
    }
    let mut values = HashMap::new();
    let mut used = Vec::new();
    let mut names: Vec<&String> = types.keys().collect();
    names.sort();
    for id in names {
        let name = id.strip_prefix('$').unwrap_or(id);
        let Some(given) = params.get(name) else {
            return Err(param_error(
                name,
                format!(
                    "no value given (pass --param {name}=VALUE, or declare a default with `-- @param {name} = VALUE`)"
                ),
            ));
        };
        let scalar = given.scalar();
        let scalar = match types.get(id).cloned().flatten() {
            Some(ty) if ty != scalar.data_type() && ty != DataType::Null => {
                scalar.cast_to(&ty).map_err(|_| {
                    param_error(name, format!("cannot read `{given}` as {}", sql_type(&ty)))
                })?
            }
            _ => scalar,
        };
        values.insert(name.to_string(), scalar);
        used.push(name.to_string());
    }
    let plan = plan
        .with_param_values(ParamValues::from(values))
        .map_err(|e| param_error("?", crate::session::clean_message(&e)))?;
    Ok((plan, used))
}

/// A type as SQL spells it, for messages.
fn sql_type(ty: &DataType) -> String {
    match ty {
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(..) => "TIMESTAMP".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            "an unsigned integer".into()
        }
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_read_from_comments() {
        let sql = "-- What the report answers.\n\
                   -- @param date                The UTC day.\n\
                   --   @param $threshold = 0.5   Flag above this.\n\
                   -- @param who = 'a b' Quoted default.\n\
                   -- @parameters are not declarations\n\
                   SELECT 1 -- @param late = 1 also counts\n";
        let declared = declared_params(sql);
        let names: Vec<_> = declared.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["date", "threshold", "who"]);
        assert_eq!(declared[0].default, None);
        assert_eq!(declared[0].doc, "The UTC day.");
        assert_eq!(declared[1].default.as_deref(), Some("0.5"));
        assert_eq!(declared[1].doc, "Flag above this.");
        assert_eq!(declared[2].default.as_deref(), Some("a b"));
    }

    #[test]
    fn given_values_win_over_defaults() {
        let sql = "-- @param a = 1\n-- @param b = 2\nSELECT $a, $b";
        let given = Params::from([("a".to_string(), ParamValue::from("9"))]);
        let all = with_defaults(sql, &given);
        assert_eq!(all["a"], ParamValue::from("9"));
        assert_eq!(all["b"], ParamValue::from("2"));
    }

    #[test]
    fn typed_values_deserialize_untagged() {
        let v: BTreeMap<String, ParamValue> =
            serde_json::from_str(r#"{"a": 1, "b": 1.5, "c": true, "d": "x"}"#).unwrap();
        assert_eq!(v["a"], ParamValue::Int(1));
        assert_eq!(v["b"], ParamValue::Float(1.5));
        assert_eq!(v["c"], ParamValue::Bool(true));
        assert_eq!(v["d"], ParamValue::from("x"));
    }
}
