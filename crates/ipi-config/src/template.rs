//! `${params.NAME}`, `${steps.STEP.ATTR}`, `${each.NAME}` and
//! `${env.NAME}` references inside strings.
//!
//! `$${` is a literal `${`. A string that is exactly one reference takes
//! the referenced value itself (an int stays an int); a reference inside a
//! longer string is formatted into it.

use std::fmt;

/// One reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ref {
    /// `${params.NAME}`
    Param(String),
    /// `${steps.STEP.ATTR}`
    Step { step: String, attr: String },
    /// `${each.NAME}`: the current value of a step's `for_each`.
    Each(String),
    /// `${env.NAME}`: an environment variable, where the schema allows one.
    Env(String),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Param(name) => write!(f, "${{params.{name}}}"),
            Ref::Step { step, attr } => write!(f, "${{steps.{step}.{attr}}}"),
            Ref::Each(name) => write!(f, "${{each.{name}}}"),
            Ref::Env(name) => write!(f, "${{env.{name}}}"),
        }
    }
}

/// A piece of a parsed string.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Seg {
    /// Literal text, escapes already undone.
    Lit(String),
    /// A reference, with the byte offset of its `${` in the string.
    Ref(Ref, usize),
    /// A malformed reference, kept as written.
    Bad(String),
}

/// A parsed string: its pieces and the problems found, each with the byte
/// offset in the string where it starts.
#[derive(Clone, Debug, Default)]
pub(crate) struct Template {
    pub(crate) segs: Vec<Seg>,
    pub(crate) errors: Vec<(usize, String)>,
}

/// Whether a string holds no reference, escape or malformed `${`, so it
/// stands for itself.
pub(crate) fn is_plain(s: &str) -> bool {
    !s.contains("${")
}

impl Template {
    pub(crate) fn refs(&self) -> impl Iterator<Item = (&Ref, usize)> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Ref(r, at) => Some((r, *at)),
            _ => None,
        })
    }
}

fn is_name(s: &str) -> bool {
    crate::load::is_valid_name(s)
}

/// An environment variable name: letters, digits and `_`, not starting
/// with a digit.
pub(crate) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Split a string into literal text and references.
pub(crate) fn parse(s: &str) -> Template {
    let mut t = Template::default();
    let mut lit = String::new();
    let bytes = s.as_bytes();
    let mut start = 0; // start of the pending literal run
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) != Some(&b'$') {
            i += 1;
            continue;
        }
        if bytes.get(i + 1..i + 3) == Some(b"${") {
            lit.push_str(s.get(start..i).unwrap_or_default());
            lit.push_str("${");
            i += 3;
            start = i;
            continue;
        }
        if bytes.get(i + 1) != Some(&b'{') {
            i += 1;
            continue;
        }
        lit.push_str(s.get(start..i).unwrap_or_default());
        if !lit.is_empty() {
            t.segs.push(Seg::Lit(std::mem::take(&mut lit)));
        }
        let Some(close) = s.get(i + 2..).and_then(|rest| rest.find('}')) else {
            t.errors.push((
                i,
                "unterminated `${`; close it with `}`, or write `$${` for \
                 a literal `${`"
                    .to_owned(),
            ));
            t.segs.push(Seg::Bad(s.get(i..).unwrap_or_default().to_owned()));
            start = bytes.len();
            break;
        };
        let end = i + 2 + close; // index of `}`
        let inner = s.get(i + 2..end).unwrap_or_default();
        let raw = s.get(i..=end).unwrap_or_default();
        let parts: Vec<&str> = inner.split('.').collect();
        match parts.as_slice() {
            ["params", name] if is_name(name) => {
                t.segs.push(Seg::Ref(Ref::Param((*name).to_owned()), i));
            }
            ["each", name] if is_name(name) => {
                t.segs.push(Seg::Ref(Ref::Each((*name).to_owned()), i));
            }
            ["env", name] if is_env_name(name) => {
                t.segs.push(Seg::Ref(Ref::Env((*name).to_owned()), i));
            }
            ["steps", step, attr] if is_name(step) && is_name(attr) => {
                t.segs.push(Seg::Ref(
                    Ref::Step { step: (*step).to_owned(), attr: (*attr).to_owned() },
                    i,
                ));
            }
            _ => {
                t.errors.push((
                    i,
                    format!(
                        "invalid reference `{raw}`: expected \
                         `${{params.NAME}}`, `${{steps.STEP.ATTR}}`, \
                         `${{each.NAME}}` or `${{env.NAME}}` \
                         (write `$${{` for a literal `${{`)"
                    ),
                ));
                t.segs.push(Seg::Bad(raw.to_owned()));
            }
        }
        i = end + 1;
        start = i;
    }
    lit.push_str(s.get(start..).unwrap_or_default());
    if !lit.is_empty() || t.segs.is_empty() {
        t.segs.push(Seg::Lit(lit));
    }
    t
}

/// What a reference stands for, as decided by the caller.
pub(crate) enum Subst {
    /// Substitute this value.
    Value(toml::Value),
    /// Leave the reference as written (for step outputs not known yet).
    Keep,
}

/// Escape text so that [`parse`] reads it back literally.
fn escape(s: &str) -> String {
    s.replace("${", "$${")
}

/// Substitute the references of a parsed string. `resolve` decides each
/// reference; an `Err` from it, or a table or array that would have to be
/// formatted into a longer string, is returned as the error message.
///
/// When any reference is kept, the result is itself a template: literal
/// `${` is written back as `$${`, so that the string can be parsed again.
pub(crate) fn substitute(
    t: &Template,
    resolve: &mut dyn FnMut(&Ref) -> Result<Subst, String>,
) -> Result<toml::Value, String> {
    if let [Seg::Ref(r, _)] = t.segs.as_slice() {
        return Ok(match resolve(r)? {
            Subst::Value(v) => v,
            Subst::Keep => toml::Value::String(r.to_string()),
        });
    }
    let mut parts = Vec::with_capacity(t.segs.len());
    let mut kept = false;
    for seg in &t.segs {
        parts.push(match seg {
            Seg::Ref(r, _) => match resolve(r)? {
                Subst::Value(v) => Some(embed(r, &v)?),
                Subst::Keep => {
                    kept = true;
                    None
                }
            },
            _ => None,
        });
    }
    let mut out = String::new();
    for (seg, part) in t.segs.iter().zip(parts) {
        match (seg, part) {
            (Seg::Lit(s), _) | (Seg::Bad(s), _) if kept => {
                out.push_str(&escape(s));
            }
            (Seg::Lit(s), _) | (Seg::Bad(s), _) => out.push_str(s),
            (Seg::Ref(_, _), Some(text)) if kept => {
                out.push_str(&escape(&text));
            }
            (Seg::Ref(_, _), Some(text)) => out.push_str(&text),
            (Seg::Ref(r, _), None) => out.push_str(&r.to_string()),
        }
    }
    Ok(toml::Value::String(out))
}

/// Format a value for use inside a longer string.
fn embed(r: &Ref, v: &toml::Value) -> Result<String, String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(x) => format!("{x:?}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => {
            return Err(format!(
                "`{r}` is {} and cannot be written into a longer string; \
                 use it as the whole value instead",
                if v.is_array() { "an array" } else { "a table" }
            ));
        }
    })
}

/// Rebuild a value, replacing every string by `f(path, string)`. Paths
/// are key names and array indices.
pub(crate) fn map_strings(
    v: &toml::Value,
    path: &mut Vec<String>,
    f: &mut dyn FnMut(&[String], &str) -> toml::Value,
) -> toml::Value {
    match v {
        toml::Value::String(s) => f(path, s),
        toml::Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    path.push(i.to_string());
                    let out = map_strings(item, path, f);
                    path.pop();
                    out
                })
                .collect(),
        ),
        toml::Value::Table(t) => toml::Value::Table(map_table(t, path, f)),
        other => other.clone(),
    }
}

/// [`map_strings`] over every entry of a table.
pub(crate) fn map_table(
    t: &toml::Table,
    path: &mut Vec<String>,
    f: &mut dyn FnMut(&[String], &str) -> toml::Value,
) -> toml::Table {
    t.iter()
        .map(|(k, item)| {
            path.push(k.clone());
            let out = map_strings(item, path, f);
            path.pop();
            (k.clone(), out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> Ref {
        Ref::Param(name.into())
    }

    #[test]
    fn parses_pieces() {
        let t = parse("${params.store}/logs/${steps.a.output}x");
        assert!(t.errors.is_empty());
        assert_eq!(
            t.segs,
            vec![
                Seg::Ref(p("store"), 0),
                Seg::Lit("/logs/".into()),
                Seg::Ref(Ref::Step { step: "a".into(), attr: "output".into() }, 21),
                Seg::Lit("x".into()),
            ]
        );
        assert!(is_plain("plain $ text {}"));
        assert!(!is_plain("$${x}"));
        assert_eq!(parse("a$${x}").segs, vec![Seg::Lit("a${x}".into())]);
        assert_eq!(parse("").segs, vec![Seg::Lit(String::new())]);
    }

    #[test]
    fn reports_bad_references() {
        let t = parse("ab${params}cd${env.HOME-X}${params.x");
        let at: Vec<usize> = t.errors.iter().map(|e| e.0).collect();
        assert_eq!(at, vec![2, 13, 26]);
        assert!(t.errors[2].1.starts_with("unterminated"));
        let ok = parse("${env.IPI_BUCKET}/${each.date}");
        assert!(ok.errors.is_empty());
        let refs: Vec<String> = ok.refs().map(|(r, _)| r.to_string()).collect();
        assert_eq!(refs, ["${env.IPI_BUCKET}", "${each.date}"]);
        assert!(parse("${steps.a.b.c}").errors.len() == 1);
        assert!(parse("${params.}").errors.len() == 1);
        assert!(parse("${ params.x }").errors.len() == 1);
    }

    #[test]
    fn substitutes() {
        let mut r = |r: &Ref| match r {
            Ref::Param(n) if n == "n" => Ok(Subst::Value(toml::Value::Integer(7))),
            Ref::Param(n) if n == "l" => Ok(Subst::Value(toml::Value::Array(vec![]))),
            Ref::Param(_) => Ok(Subst::Value(toml::Value::String("a${b".into()))),
            Ref::Step { .. } | Ref::Each(_) | Ref::Env(_) => Ok(Subst::Keep),
        };
        let s = |text: &str, r: &mut dyn FnMut(&Ref) -> Result<Subst, String>| {
            substitute(&parse(text), r)
        };
        assert_eq!(s("${params.n}", &mut r), Ok(toml::Value::Integer(7)));
        assert_eq!(s("n=${params.n}", &mut r), Ok("n=7".into()));
        assert_eq!(s("$${params.n}", &mut r), Ok("${params.n}".into()));
        assert_eq!(s("${params.s}", &mut r), Ok("a${b".into()));
        assert_eq!(s("${steps.a.o}", &mut r), Ok("${steps.a.o}".into()));
        // With a kept reference, the result stays a template.
        assert_eq!(
            s("$${x}/${params.s}/${steps.a.o}", &mut r),
            Ok("$${x}/a$${b/${steps.a.o}".into())
        );
        assert!(s("x${params.l}", &mut r).is_err());
        assert_eq!(s("${params.l}", &mut r), Ok(toml::Value::Array(vec![])));
    }
}
