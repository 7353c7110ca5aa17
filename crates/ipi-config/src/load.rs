//! Loading and validating a pipeline file.
//!
//! Every check runs and every problem is reported, each with a position.
//! Only a TOML syntax error stops the checks early.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use indexmap::IndexMap;
use serde::Deserialize as _;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use crate::cases::{TestCase, TestSpec};
use crate::diagnostic::{Diagnostic, line_col};
use crate::pipeline::{CachePolicy, ForEach, MAX_FOR_EACH, ParamDecl, Pipeline, RetryPolicy, Step};
use crate::template::{self, Ref, Subst};
use crate::value::{date_to_toml, parse_date};
use crate::{ParamType, ParamValue, StepCatalog, dag, parse_duration};

/// What [`load`] needs besides the file.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    /// `--param NAME=VALUE` overrides, parsed by each param's declared
    /// type. A later one wins over an earlier one with the same name.
    pub overrides: &'a [(String, String)],
    /// The clock `today` and `yesterday` are resolved against (in the
    /// file's `timezone`), passed in so runs and tests are deterministic.
    pub now: DateTime<Utc>,
    /// The step kinds the caller knows.
    pub catalog: &'a dyn StepCatalog,
    /// How `${env.NAME}` is looked up: [`process_env`] for the process's
    /// environment, or a fixed map (tests, `retry` of a recorded run).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> LoadOptions<'a> {
    /// Options that read `${env.NAME}` from the process's environment.
    pub fn new(
        overrides: &'a [(String, String)],
        now: DateTime<Utc>,
        catalog: &'a dyn StepCatalog,
    ) -> LoadOptions<'a> {
        LoadOptions { overrides, now, catalog, env: &process_env }
    }
}

/// The process's environment variable `name`, if set and valid UTF-8.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether an environment variable name looks like a credential
/// (`AWS_SECRET_ACCESS_KEY`, `GITHUB_TOKEN`, `DB_PASSWORD`, ...). Such
/// names are refused in `${env.NAME}`: credentials stay in the object
/// store client's own environment, never in a pipeline's values.
pub fn is_credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const WORDS: [&str; 10] = [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE",
        "SESSION",
        "ACCESS_KEY",
        "API_KEY",
        "AUTH",
    ];
    WORDS.iter().any(|w| upper.contains(w)) || upper == "KEY" || upper.ends_with("_KEY")
}

impl fmt::Debug for LoadOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("overrides", &self.overrides)
            .field("now", &self.now)
            .field("catalog.kinds()", &self.catalog.kinds())
            .finish()
    }
}

/// Read and [`load`] a pipeline file. A file that cannot be read is one
/// diagnostic at line 1, column 1.
pub fn load_path(path: &Path, opts: &LoadOptions<'_>) -> Result<Pipeline, Vec<Diagnostic>> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => load(&file, &source, opts),
        Err(e) => Err(vec![Diagnostic {
            file,
            line: 1,
            column: 1,
            step: None,
            key: None,
            message: format!("cannot read the pipeline file: {e}"),
        }]),
    }
}

/// Parse and check a pipeline file. `file_name` is only used in
/// diagnostics.
///
/// On failure, returns every problem found, sorted by position. A TOML
/// syntax error stops the checks (the document cannot be trusted); every
/// other check always runs.
pub fn load(
    file_name: &str,
    source: &str,
    opts: &LoadOptions<'_>,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let mut cx = Cx { file: file_name, source, diags: Vec::new() };
    let (root, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        for e in errors {
            let at = e.span().map_or(0, |s| s.start);
            cx.error(at, None, None, format!("invalid TOML: {}", e.message()));
        }
        return Err(cx.finish());
    }
    let kinds = opts.catalog.kinds();
    let mut loader = Loader {
        cx,
        opts,
        kinds,
        today: NaiveDate::default(),
        param_types: IndexMap::new(),
        params: IndexMap::new(),
        decls: IndexMap::new(),
        env: IndexMap::new(),
        env_problems: IndexMap::new(),
        each: None,
    };
    let pipeline = loader.run(root.get_ref());
    let diags = loader.cx.finish();
    match pipeline {
        Some(p) if diags.is_empty() => Ok(p),
        _ => Err(diags),
    }
}

/// Names of params, steps and step outputs: letters, digits, `_` and
/// `-`, starting with a letter or `_`.
pub(crate) fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

const NAME_RULE: &str = "use letters, digits, `_` and `-`, starting with a letter or `_`";

const TOP_KEYS: &str = "version, name, description, timezone, params, steps, tests";

/// Collected diagnostics.
struct Cx<'a> {
    file: &'a str,
    source: &'a str,
    diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    fn error(
        &mut self,
        at: usize,
        step: Option<&str>,
        key: Option<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = line_col(self.source, at);
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            step: step.map(str::to_owned),
            key,
            message: message.into(),
        });
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.column));
        self.diags.dedup();
        self.diags
    }
}

/// A step as found in the file.
struct StepSrc<'d, 'i> {
    name: String,
    key_span: Range<usize>,
    table: Option<&'d DeTable<'i>>,
    /// `uses`, when it names a known kind.
    kind: Option<&'static str>,
}

struct Loader<'a> {
    cx: Cx<'a>,
    opts: &'a LoadOptions<'a>,
    kinds: Vec<&'static str>,
    today: NaiveDate,
    /// Every declared param, with its type when that is valid.
    param_types: IndexMap<String, Option<ParamType>>,
    params: IndexMap<String, ParamValue>,
    decls: IndexMap<String, ParamDecl>,
    /// Environment variables read, with their values.
    env: IndexMap<String, String>,
    /// Problems with a param default's `${env.NAME}`, reported only when
    /// `--param` does not replace the default.
    env_problems: IndexMap<String, Vec<(usize, String)>>,
    /// The `for_each` name of the step being built.
    each: Option<String>,
}

/// The top-level keys.
#[derive(Default)]
struct Envelope<'d, 'i> {
    name: Option<String>,
    description: Option<String>,
    timezone: Option<&'d Spanned<DeValue<'i>>>,
    params: Option<(Range<usize>, &'d Spanned<DeValue<'i>>)>,
    steps: Option<(Range<usize>, &'d Spanned<DeValue<'i>>)>,
    tests: Option<(Range<usize>, &'d Spanned<DeValue<'i>>)>,
}

impl<'a> Loader<'a> {
    fn run(&mut self, top: &DeTable<'_>) -> Option<Pipeline> {
        let env = self.envelope(top);
        let timezone = self.timezone(env.timezone);
        self.today = self.opts.now.with_timezone(&timezone).date_naive();
        self.params(env.params.as_ref());
        let steps = self.steps(env.steps.as_ref());
        let tests = self.tests(env.tests.as_ref(), &steps.0);
        Some(Pipeline {
            name: env.name?,
            description: env.description,
            file: self.cx.file.to_owned(),
            timezone,
            today: self.today,
            params: std::mem::take(&mut self.params),
            param_decls: std::mem::take(&mut self.decls),
            steps: steps.0,
            order: steps.1,
            env: std::mem::take(&mut self.env),
            tests,
            source: self.cx.source.to_owned(),
        })
    }

    fn envelope<'d, 'i>(&mut self, top: &'d DeTable<'i>) -> Envelope<'d, 'i> {
        let mut env = Envelope::default();
        let mut version = false;
        for (k, v) in top.iter() {
            let key = k.get_ref().as_ref();
            match key {
                "version" => {
                    version = true;
                    if !matches!(to_value(v), Ok(toml::Value::Integer(1))) {
                        self.cx.error(
                            v.span().start,
                            None,
                            Some("version".into()),
                            "unsupported `version`; this ipi reads `version = 1`",
                        );
                    }
                }
                "name" | "description" => match v.get_ref().as_str() {
                    Some(s) if key == "description" => {
                        env.description = Some(s.to_owned());
                    }
                    Some(s) if !s.trim().is_empty() => {
                        env.name = Some(s.to_owned());
                    }
                    _ => self.cx.error(
                        v.span().start,
                        None,
                        Some(key.to_owned()),
                        format!("`{key}` must be a non-empty string"),
                    ),
                },
                "timezone" => env.timezone = Some(v),
                "params" => env.params = Some((k.span(), v)),
                "steps" => env.steps = Some((k.span(), v)),
                "tests" => env.tests = Some((k.span(), v)),
                other => self.cx.error(
                    k.span().start,
                    None,
                    Some(other.to_owned()),
                    format!("unknown key `{other}`; expected one of: {TOP_KEYS}"),
                ),
            }
        }
        if !version {
            self.cx.error(
                0,
                None,
                Some("version".into()),
                "missing `version = 1` at the top of the file",
            );
        }
        if env.name.is_none() && top.get("name").is_none() {
            self.cx.error(
                0,
                None,
                Some("name".into()),
                "missing `name = \"...\"` at the top of the file",
            );
        }
        env
    }

    fn timezone(&mut self, v: Option<&Spanned<DeValue<'_>>>) -> chrono_tz::Tz {
        let Some(v) = v else {
            return chrono_tz::UTC;
        };
        match v.get_ref().as_str().map(str::parse::<chrono_tz::Tz>) {
            Some(Ok(tz)) => return tz,
            Some(Err(_)) => self.cx.error(
                v.span().start,
                None,
                Some("timezone".into()),
                format!(
                    "unknown time zone `{}`; use an IANA name such as UTC \
                     or Europe/Berlin",
                    v.get_ref().as_str().unwrap_or_default()
                ),
            ),
            None => self.cx.error(
                v.span().start,
                None,
                Some("timezone".into()),
                "`timezone` must be a string such as \"UTC\" or \"Europe/Berlin\"",
            ),
        }
        chrono_tz::UTC
    }

    fn params(&mut self, section: Option<&(Range<usize>, &Spanned<DeValue<'_>>)>) {
        let mut spans: IndexMap<String, usize> = IndexMap::new();
        if let Some((_, v)) = section {
            match v.get_ref().as_table() {
                Some(t) => {
                    for (k, decl) in t.iter() {
                        spans.insert(k.get_ref().to_string(), k.span().start);
                        self.param(k, decl);
                    }
                }
                None => self.cx.error(
                    v.span().start,
                    None,
                    Some("params".into()),
                    "`params` must be a table of declarations, like \
                     [params] date = { type = \"date\", default = \"yesterday\" }",
                ),
            }
        }
        let section_at = section.map_or(0, |(k, _)| k.start);
        let mut given: IndexMap<&str, &str> = IndexMap::new();
        for (name, value) in self.opts.overrides {
            given.insert(name, value);
        }
        for (name, text) in given {
            let Some(ty) = self.param_types.get(name) else {
                let declared = list(self.param_types.keys());
                self.cx.error(
                    section_at,
                    None,
                    None,
                    format!(
                        "--param {name}={text}: unknown param `{name}`; \
                         declared params: {declared}"
                    ),
                );
                continue;
            };
            let Some(ty) = *ty else { continue };
            let at = spans.get(name).copied().unwrap_or(section_at);
            match ty.parse_value(text, self.today) {
                Ok(v) => {
                    self.params.insert(name.to_owned(), v);
                }
                Err(e) => self.cx.error(
                    at,
                    None,
                    Some(format!("params.{name}")),
                    format!("--param {name}={text}: param `{name}` has type {ty}: {e}"),
                ),
            }
        }
        // A default's `${env.NAME}` only matters when no --param replaced it.
        let overridden: Vec<&str> = self.opts.overrides.iter().map(|(k, _)| k.as_str()).collect();
        for (name, problems) in std::mem::take(&mut self.env_problems) {
            if overridden.contains(&name.as_str()) {
                continue;
            }
            for (at, message) in problems {
                self.cx.error(at, None, Some(format!("params.{name}")), message);
            }
        }
        // Keep file order, and report params that have no value.
        let mut ordered = IndexMap::new();
        for (name, ty) in &self.param_types {
            if let Some(v) = self.params.swap_remove(name) {
                ordered.insert(name.clone(), v);
            } else if let (Some(ty), Some(decl)) = (ty, self.decls.get(name))
                && decl.required
            {
                self.cx.error(
                    spans.get(name).copied().unwrap_or(section_at),
                    None,
                    Some(format!("params.{name}")),
                    format!(
                        "param `{name}` has no default and was not given; \
                         pass --param {name}=VALUE ({})",
                        ty.hint()
                    ),
                );
            }
        }
        self.params = ordered;
    }

    fn param(&mut self, k: &Spanned<DeString<'_>>, decl: &Spanned<DeValue<'_>>) {
        let name = k.get_ref().to_string();
        let key = Some(format!("params.{name}"));
        let at = k.span().start;
        if !is_valid_name(&name) {
            self.cx.error(
                at,
                None,
                key.clone(),
                format!("invalid param name `{name}`: {NAME_RULE}"),
            );
        }
        self.param_types.insert(name.clone(), None);
        let Some(t) = decl.get_ref().as_table() else {
            self.cx.error(
                decl.span().start,
                None,
                key,
                format!(
                    "param `{name}` must be a table like \
                     {{ type = \"int\", default = 200 }}"
                ),
            );
            return;
        };
        let mut ty = None;
        let mut default = None;
        let mut doc = None;
        for (dk, dv) in t.iter() {
            match dk.get_ref().as_ref() {
                "type" => match dv.get_ref().as_str().map(str::parse::<ParamType>) {
                    Some(Ok(t)) => ty = Some(t),
                    Some(Err(e)) => self.cx.error(
                        dv.span().start,
                        None,
                        key.clone(),
                        format!("param `{name}`: {e}"),
                    ),
                    None => self.cx.error(
                        dv.span().start,
                        None,
                        key.clone(),
                        format!("param `{name}`: `type` must be a string"),
                    ),
                },
                "default" => default = Some(dv),
                "doc" => match dv.get_ref().as_str() {
                    Some(s) => doc = Some(s.to_owned()),
                    None => self.cx.error(
                        dv.span().start,
                        None,
                        key.clone(),
                        format!("param `{name}`: `doc` must be a string"),
                    ),
                },
                other => self.cx.error(
                    dk.span().start,
                    None,
                    key.clone(),
                    format!(
                        "param `{name}`: unknown key `{other}`; expected \
                         type, default or doc"
                    ),
                ),
            }
        }
        if t.get("type").is_none() {
            self.cx.error(
                at,
                None,
                key.clone(),
                format!(
                    "param `{name}` has no `type`; use one of: string, int, \
                     float, bool, date, url, duration"
                ),
            );
        }
        let Some(ty) = ty else { return };
        self.param_types.insert(name.clone(), Some(ty));
        self.decls.insert(name.clone(), ParamDecl { ty, doc, required: default.is_none() });
        let Some(dv) = default else { return };
        let typed = match to_value(dv).map(|v| self.default_env(&name, ty, v, dv)) {
            Ok(Some(v)) => typed_from_toml(ty, &v, self.today),
            // Its `${env.NAME}` problems are reported unless overridden.
            Ok(None) => return,
            Err((_, e)) => Err(e),
        };
        match typed {
            Ok(v) => {
                self.params.insert(name, v);
            }
            Err(e) => self.cx.error(
                dv.span().start,
                None,
                key,
                format!("param `{name}`: default is not a valid {ty}: {e}"),
            ),
        }
    }

    /// A param default with its `${env.NAME}` references substituted (a
    /// default holding `${env.` is a template, `$${` a literal `${`).
    /// Only `url` and `string` params may use them (a bucket, a prefix);
    /// problems are kept aside until overrides are known (`None` then).
    fn default_env(
        &mut self,
        name: &str,
        ty: ParamType,
        value: toml::Value,
        dv: &Spanned<DeValue<'_>>,
    ) -> Option<toml::Value> {
        let toml::Value::String(text) = &value else { return Some(value) };
        // Defaults are literal text unless they use the environment (so
        // `default = "a${b"` stays as written).
        if !text.contains("${env.") {
            return Some(value);
        }
        let t = template::parse(text);
        let span = dv.span();
        let mut problems: Vec<(usize, String)> = t
            .errors
            .iter()
            .map(|(at, e)| (str_offset(self.cx.source, &span, text, *at), e.clone()))
            .collect();
        let allowed = matches!(ty, ParamType::Url | ParamType::String);
        for (r, at) in t.refs() {
            let at = str_offset(self.cx.source, &span, text, at);
            let problem = match r {
                Ref::Env(_) if !allowed => Some(format!(
                    "param `{name}`: `{r}`: only url and string params may \
                     take their default from the environment"
                )),
                Ref::Env(var) => self.env_problem(var),
                other => Some(format!(
                    "param `{name}`: a default can refer only to `${{env.NAME}}`, \
                     not `{other}` (write `$${{` for a literal `${{`)"
                )),
            };
            if let Some(p) = problem {
                problems.push((at, p));
            }
        }
        if !problems.is_empty() {
            self.env_problems.entry(name.to_owned()).or_default().extend(problems);
            return None;
        }
        let env = &self.env;
        template::substitute(&t, &mut |r| match r {
            Ref::Env(var) => {
                Ok(Subst::Value(toml::Value::String(env.get(var).cloned().unwrap_or_default())))
            }
            _ => Ok(Subst::Keep),
        })
        .ok()
    }

    /// Read `${env.NAME}` for a place that may use it; the problem, if any.
    fn env_problem(&mut self, var: &str) -> Option<String> {
        if is_credential_name(var) {
            return Some(format!(
                "`${{env.{var}}}` looks like a credential; credentials never go in \
                 pipeline files (the S3 client reads AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY from its own environment)"
            ));
        }
        if self.env.contains_key(var) {
            return None;
        }
        match (self.opts.env)(var) {
            Some(v) if v.contains(['\n', '\r']) => {
                Some(format!("environment variable `{var}` holds a line break"))
            }
            Some(v) => {
                self.env.insert(var.to_owned(), v);
                None
            }
            None => Some(format!("environment variable `{var}` is not set")),
        }
    }

    fn steps(
        &mut self,
        section: Option<&(Range<usize>, &Spanned<DeValue<'_>>)>,
    ) -> (IndexMap<String, Step>, Vec<String>) {
        let mut srcs: Vec<StepSrc<'_, '_>> = Vec::new();
        // A pipeline without steps is valid: it runs nothing.
        if let Some((_, v)) = section {
            match v.get_ref().as_table() {
                Some(t) => {
                    for (name, table) in t.iter() {
                        srcs.push(self.step_head(name, table));
                    }
                }
                None => self.cx.error(
                    v.span().start,
                    None,
                    Some("steps".into()),
                    "`steps` must be a table of named steps: [steps.NAME]",
                ),
            }
        }

        // Bodies, dependencies and their positions.
        let mut built: Vec<Option<Built>> = Vec::new();
        for src in &srcs {
            built.push(self.step_body(src, &srcs));
        }

        // Order and cycles.
        let index: IndexMap<&str, usize> =
            srcs.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let deps: Vec<Vec<usize>> = built
            .iter()
            .map(|b| {
                b.iter()
                    .flat_map(|b| b.deps.keys())
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect()
            })
            .collect();
        let order: Vec<String> =
            dag::order(&deps).into_iter().map(|i| srcs[i].name.clone()).collect();
        for cycle in dag::cycles(&deps) {
            let first = cycle[0];
            let next = cycle.get(1).copied().unwrap_or(first);
            let at = built[first]
                .as_ref()
                .and_then(|b| b.deps.get(&srcs[next].name).copied())
                .unwrap_or(srcs[first].key_span.start);
            let mut names: Vec<&str> = cycle.iter().map(|&i| srcs[i].name.as_str()).collect();
            names.push(&srcs[first].name);
            self.cx.error(
                at,
                Some(&srcs[first].name),
                None,
                format!("dependency cycle: {} (each step needs the next)", names.join(" -> ")),
            );
        }

        let mut steps = IndexMap::new();
        for (src, b) in srcs.iter().zip(built) {
            let (Some(b), Some(kind)) = (b, src.kind) else { continue };
            steps.insert(
                src.name.clone(),
                Step {
                    name: src.name.clone(),
                    uses: kind.to_owned(),
                    needs: b.deps.into_keys().collect(),
                    cache: b.cache,
                    retry: b.retry,
                    for_each: b.for_each,
                    body: b.body,
                    line: line_col(self.cx.source, src.key_span.start).0,
                    template: b.template,
                },
            );
        }
        (steps, order)
    }

    fn step_head<'d, 'i>(
        &mut self,
        k: &'d Spanned<DeString<'i>>,
        v: &'d Spanned<DeValue<'i>>,
    ) -> StepSrc<'d, 'i> {
        let name = k.get_ref().to_string();
        let mut src = StepSrc { name: name.clone(), key_span: k.span(), table: None, kind: None };
        if !is_valid_name(&name) {
            self.cx.error(
                k.span().start,
                Some(&name),
                None,
                format!("invalid step name `{name}`: {NAME_RULE}"),
            );
        }
        let Some(table) = v.get_ref().as_table() else {
            self.cx.error(
                v.span().start,
                Some(&name),
                None,
                format!("a step must be a table: [steps.{name}] with `uses = ...`"),
            );
            return src;
        };
        src.table = Some(table);
        let known = list(self.kinds.iter());
        match table.get("uses") {
            None => self.cx.error(
                k.span().start,
                Some(&name),
                Some("uses".into()),
                format!("missing `uses`, the step kind; known: {known}"),
            ),
            Some(u) => match u.get_ref().as_str() {
                Some(kind) => match self.kinds.iter().find(|&&x| x == kind) {
                    Some(&k) => src.kind = Some(k),
                    None => self.cx.error(
                        u.span().start,
                        Some(&name),
                        Some("uses".into()),
                        format!("unknown step kind `{kind}`; known: {known}"),
                    ),
                },
                None => self.cx.error(
                    u.span().start,
                    Some(&name),
                    Some("uses".into()),
                    format!("`uses` must be a string naming the step kind; known: {known}"),
                ),
            },
        }
        src
    }

    fn step_body(&mut self, src: &StepSrc<'_, '_>, all: &[StepSrc<'_, '_>]) -> Option<Built> {
        let table = src.table?;
        let step = src.name.as_str();
        let mut b = Built::default();
        let mut bad: Vec<Vec<String>> = Vec::new();
        if let Some(v) = table.get("needs") {
            self.needs(src, v, all, &mut b.deps);
        }
        self.each = None;
        if let Some(v) = table.get("for_each") {
            b.for_each = self.for_each(step, v);
            self.each = b.for_each.as_ref().map(|f| f.name.clone()).or_else(|| {
                // A broken `for_each` still names its variable: no second
                // error for each `${each.NAME}`.
                v.get_ref()
                    .as_table()
                    .and_then(|t| t.iter().next())
                    .map(|(k, _)| k.get_ref().to_string())
            });
        }
        for (k, v) in table.iter() {
            let key = k.get_ref().as_ref();
            match key {
                "uses" | "needs" | "for_each" => {}
                "cache" => b.cache = self.cache(step, v),
                "retry" => b.retry = self.retry(step, v),
                _ => {
                    match to_value(v) {
                        Ok(value) => {
                            b.template.insert(key.to_owned(), value);
                        }
                        Err((at, e)) => {
                            self.cx.error(at, Some(step), Some(key.to_owned()), e);
                            bad.push(vec![key.to_owned()]);
                            continue;
                        }
                    }
                    let mut path = vec![key.to_owned()];
                    scan_strings(v, &mut path, &mut |path, text, span| {
                        self.check_refs(src, all, path, text, span, &mut b.deps, &mut bad);
                    });
                }
            }
        }

        if let (Some(policy), Some(v)) = (&b.cache, table.get("cache")) {
            for key in policy.ignore.iter().filter(|k| !b.template.contains_key(k.as_str())) {
                self.cx.error(
                    v.span().start,
                    Some(step),
                    Some("cache.ignore".into()),
                    format!("`cache.ignore` names `{key}`, which this step does not set"),
                );
            }
        }

        // The body with params substituted, step outputs left as written.
        b.body = template::map_table(&b.template, &mut Vec::new(), &mut |_, text| {
            if template::is_plain(text) {
                return toml::Value::String(text.to_owned());
            }
            let t = template::parse(text);
            template::substitute(&t, &mut |r| {
                Ok(match r {
                    Ref::Param(p) => {
                        self.params.get(p).map_or(Subst::Keep, |v| Subst::Value(v.to_toml()))
                    }
                    Ref::Env(var) => self
                        .env
                        .get(var)
                        .map_or(Subst::Keep, |v| Subst::Value(toml::Value::String(v.clone()))),
                    Ref::Step { .. } | Ref::Each(_) => Subst::Keep,
                })
            })
            .unwrap_or_else(|_| toml::Value::String(text.to_owned()))
        });

        // What the catalog checks: step outputs as typed placeholders.
        let Some(kind) = src.kind else { return Some(b) };
        let today = self.today;
        let catalog = self.opts.catalog;
        let first_each =
            b.for_each.as_ref().and_then(|f| f.values.first()).map(ParamValue::to_toml);
        let check_body = template::map_table(&b.template, &mut Vec::new(), &mut |_, text| {
            let t = template::parse(text);
            template::substitute(&t, &mut |r| {
                Ok(Subst::Value(match r {
                    Ref::Param(p) => match (self.params.get(p), self.param_types.get(p)) {
                        (Some(v), _) => v.to_toml(),
                        (None, Some(Some(ty))) => placeholder(*ty, "param", p, today),
                        _ => toml::Value::String(String::new()),
                    },
                    Ref::Env(var) => {
                        toml::Value::String(self.env.get(var).cloned().unwrap_or_default())
                    }
                    Ref::Each(_) => {
                        first_each.clone().unwrap_or_else(|| toml::Value::String(String::new()))
                    }
                    Ref::Step { step, attr } => all
                        .iter()
                        .find(|s| &s.name == step)
                        .and_then(|s| s.kind)
                        .and_then(|k| catalog.outputs(k).into_iter().find(|(a, _)| a == attr))
                        .map_or_else(
                            || toml::Value::String(String::new()),
                            |(_, ty)| placeholder(ty, step, attr, today),
                        ),
                }))
            })
            .unwrap_or_else(|_| toml::Value::String(text.to_owned()))
        });
        for e in catalog.check(kind, &check_body) {
            if bad.iter().any(|p| e.path.starts_with(p)) {
                continue;
            }
            let unknown_key = e.message.starts_with("unknown key");
            let at = locate(table, &e.path, src.key_span.start, unknown_key);
            let dotted = e.path.join(".");
            let names_key =
                e.path.last().is_some_and(|last| e.message.contains(&format!("`{last}`")));
            let message = if e.path.is_empty() || names_key {
                e.message
            } else {
                format!("`{dotted}`: {}", e.message)
            };
            self.cx.error(at, Some(step), (!e.path.is_empty()).then_some(dotted), message);
        }
        Some(b)
    }

    /// Check the references in one string of a step body.
    #[allow(clippy::too_many_arguments)]
    fn check_refs(
        &mut self,
        src: &StepSrc<'_, '_>,
        all: &[StepSrc<'_, '_>],
        path: &[String],
        text: &str,
        span: Range<usize>,
        deps: &mut IndexMap<String, usize>,
        bad: &mut Vec<Vec<String>>,
    ) {
        let t = template::parse(text);
        let step = Some(src.name.as_str());
        let key = Some(path.join("."));
        let mut is_bad = !t.errors.is_empty();
        for (at, e) in &t.errors {
            let at = str_offset(self.cx.source, &span, text, *at);
            self.cx.error(at, step, key.clone(), e.clone());
        }
        for (r, at) in t.refs() {
            let at = str_offset(self.cx.source, &span, text, at);
            let problem = match r {
                Ref::Param(p) if self.param_types.contains_key(p) => None,
                Ref::Param(p) => Some(format!(
                    "unknown param `{p}` in `{r}`; declared params: {}",
                    list(self.param_types.keys())
                )),
                Ref::Env(var) => {
                    let allowed =
                        src.kind.map(|k| self.opts.catalog.env_keys(k)).unwrap_or_default();
                    let field = path.iter().rev().find(|seg| seg.parse::<usize>().is_err());
                    match field {
                        Some(f) if allowed.contains(&f.as_str()) => self.env_problem(var),
                        _ => Some(format!(
                            "`{r}`: environment variables are allowed only in url and \
                             string param defaults and in the keys the schema marks ({})",
                            if allowed.is_empty() {
                                "none for this step".to_owned()
                            } else {
                                allowed.join(", ")
                            }
                        )),
                    }
                }
                Ref::Each(name) => match &self.each {
                    Some(each) if each == name => None,
                    Some(each) => {
                        Some(format!("unknown `{r}`: this step's `for_each` names `{each}`"))
                    }
                    None => {
                        Some(format!("`{r}` needs `for_each = {{ {name} = ... }}` in this step"))
                    }
                },
                Ref::Step { step: to, .. } if to == &src.name => {
                    Some(format!("`{r}` refers to this step's own output"))
                }
                Ref::Step { step: to, attr } => match all.iter().find(|s| &s.name == to) {
                    None => Some(format!(
                        "unknown step `{to}` in `{r}`; steps: {}",
                        list(all.iter().map(|s| &s.name))
                    )),
                    Some(target) => {
                        deps.entry(to.clone()).or_insert(at);
                        target.kind.and_then(|kind| {
                            let outs = self.opts.catalog.outputs(kind);
                            (!outs.iter().any(|(a, _)| a == attr)).then(|| {
                                format!(
                                    "unknown output `{attr}` in `{r}`: step \
                                         `{to}` (uses `{kind}`) has: {}",
                                    list(outs.iter().map(|(a, _)| a))
                                )
                            })
                        })
                    }
                },
            };
            if let Some(message) = problem {
                is_bad = true;
                self.cx.error(at, step, key.clone(), message);
            }
        }
        if is_bad {
            bad.push(path.to_vec());
        }
    }

    fn needs(
        &mut self,
        src: &StepSrc<'_, '_>,
        v: &Spanned<DeValue<'_>>,
        all: &[StepSrc<'_, '_>],
        deps: &mut IndexMap<String, usize>,
    ) {
        let step = Some(src.name.as_str());
        let Some(items) = v.get_ref().as_array() else {
            self.cx.error(
                v.span().start,
                step,
                Some("needs".into()),
                "`needs` must be a list of step names, like needs = [\"ingest\"]",
            );
            return;
        };
        for item in items.iter() {
            let at = item.span().start;
            match item.get_ref().as_str() {
                Some(n) if n == src.name => {
                    self.cx.error(at, step, Some("needs".into()), "a step cannot need itself");
                }
                Some(n) if all.iter().any(|s| s.name == n) => {
                    deps.entry(n.to_owned()).or_insert(at);
                }
                Some(n) => self.cx.error(
                    at,
                    step,
                    Some("needs".into()),
                    format!(
                        "`needs` names unknown step `{n}`; steps: {}",
                        list(all.iter().map(|s| &s.name))
                    ),
                ),
                None => self.cx.error(
                    at,
                    step,
                    Some("needs".into()),
                    "`needs` entries must be step names (strings)",
                ),
            }
        }
    }

    fn cache(&mut self, step: &str, v: &Spanned<DeValue<'_>>) -> Option<CachePolicy> {
        if let Some(enabled) = v.get_ref().as_bool() {
            return Some(CachePolicy { enabled, ..CachePolicy::default() });
        }
        let Some(t) = v.get_ref().as_table() else {
            self.cx.error(
                v.span().start,
                Some(step),
                Some("cache".into()),
                "`cache` must be false, true or a table like { expire_after = \"7d\", ignore = [\"train\"] }",
            );
            return None;
        };
        let mut policy = CachePolicy::default();
        for (k, item) in t.iter() {
            match k.get_ref().as_ref() {
                "expire_after" => {
                    policy.expire_after = self.envelope_duration(step, "cache.expire_after", item);
                }
                "ignore" => {
                    let keys = item.get_ref().as_array().and_then(|a| {
                        a.iter().map(|k| k.get_ref().as_str().map(str::to_owned)).collect()
                    });
                    match keys {
                        Some(keys) => policy.ignore = keys,
                        None => self.cx.error(
                            item.span().start,
                            Some(step),
                            Some("cache.ignore".into()),
                            "`cache.ignore` must be a list of the step's keys, like [\"train\"]",
                        ),
                    }
                }
                other => self.cx.error(
                    k.span().start,
                    Some(step),
                    Some(format!("cache.{other}")),
                    format!("unknown key `{other}` in `cache`; expected: expire_after, ignore"),
                ),
            }
        }
        Some(policy)
    }

    fn for_each(&mut self, step: &str, v: &Spanned<DeValue<'_>>) -> Option<ForEach> {
        let shape = "`for_each` must be a table with one name, like \
                     { date = \"${params.from}..${params.to}\" } or { day = [\"2018-11-12\", \"2018-11-13\"] }";
        let Some(t) = v.get_ref().as_table() else {
            self.cx.error(v.span().start, Some(step), Some("for_each".into()), shape);
            return None;
        };
        let mut entries = t.iter();
        let Some((k, item)) = entries.next() else {
            self.cx.error(v.span().start, Some(step), Some("for_each".into()), shape);
            return None;
        };
        if let Some((extra, _)) = entries.next() {
            self.cx.error(extra.span().start, Some(step), Some("for_each".into()), shape);
            return None;
        }
        let name = k.get_ref().to_string();
        let key = format!("for_each.{name}");
        if !is_valid_name(&name) {
            self.cx.error(
                k.span().start,
                Some(step),
                Some(key),
                format!("invalid `for_each` name `{name}`: {NAME_RULE}"),
            );
            return None;
        }
        let at = item.span().start;
        let values = match self.envelope_value(step, &key, item)? {
            toml::Value::String(text) => self.date_range(&text),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(ParamValue::String(s.clone())),
                    toml::Value::Integer(n) => Ok(ParamValue::Int(*n)),
                    toml::Value::Float(x) => Ok(ParamValue::Float(*x)),
                    toml::Value::Boolean(b) => Ok(ParamValue::Bool(*b)),
                    toml::Value::Datetime(_) => typed_from_toml(ParamType::Date, i, self.today),
                    other => {
                        Err(format!("list items must be plain values, found {}", describe(other)))
                    }
                })
                .collect::<Result<Vec<_>, String>>()
                .and_then(|v| {
                    if v.is_empty() {
                        Err("the list is empty".to_owned())
                    } else if v.len() > MAX_FOR_EACH {
                        Err(format!("{} values; at most {MAX_FOR_EACH}", v.len()))
                    } else {
                        Ok(v)
                    }
                }),
            other => Err(format!(
                "expected a date range \"FROM..TO\" or a list, found {}",
                describe(&other)
            )),
        };
        match values {
            Ok(values) => Some(ForEach { name, values }),
            Err(e) => {
                self.cx.error(at, Some(step), Some(key.clone()), format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// Every day of `FROM..TO`, both included.
    fn date_range(&self, text: &str) -> Result<Vec<ParamValue>, String> {
        let Some((from, to)) = text.split_once("..") else {
            return Err(format!(
                "expected a date range such as \"2018-11-10..2018-11-13\", got `{text}`"
            ));
        };
        let from = parse_date(from.trim(), self.today)?;
        let to = parse_date(to.trim(), self.today)?;
        if from > to {
            return Err(format!("the range {from}..{to} ends before it starts"));
        }
        let days = (to - from).num_days().unsigned_abs();
        if days >= MAX_FOR_EACH as u64 {
            return Err(format!("{} days; at most {MAX_FOR_EACH}", days + 1));
        }
        Ok(from.iter_days().take_while(|d| *d <= to).map(ParamValue::Date).collect())
    }

    fn tests(
        &mut self,
        section: Option<&(Range<usize>, &Spanned<DeValue<'_>>)>,
        steps: &IndexMap<String, Step>,
    ) -> Vec<TestCase> {
        let Some((_, v)) = section else { return Vec::new() };
        let Some(items) = v.get_ref().as_array() else {
            self.cx.error(
                v.span().start,
                None,
                Some("tests".into()),
                "`tests` must be an array of tables: [[tests]] with name, step and expect",
            );
            return Vec::new();
        };
        let mut out: Vec<TestCase> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = item.span().start;
            let Some(table) = item.get_ref().as_table() else {
                self.cx.error(at, None, Some(format!("tests.{i}")), "a test must be a table");
                continue;
            };
            let label = table
                .get("name")
                .and_then(|n| n.get_ref().as_str())
                .map_or_else(|| format!("test {}", i + 1), |n| format!("test `{n}`"));
            let value = match to_value(item) {
                Ok(toml::Value::Table(t)) => t,
                Ok(_) => continue,
                Err((at, e)) => {
                    self.cx.error(at, None, Some(format!("tests.{i}")), format!("{label}: {e}"));
                    continue;
                }
            };
            let errors = crate::check_with_serde::<TestSpec>(&value);
            for e in &errors {
                let unknown = e.message.starts_with("unknown key");
                let pos = locate(table, &e.path, at, unknown);
                let dotted = e.path.join(".");
                let message = if e.path.is_empty()
                    || e.message
                        .contains(&format!("`{}`", e.path.last().map_or("", String::as_str)))
                {
                    e.message.clone()
                } else {
                    format!("`{dotted}`: {}", e.message)
                };
                self.cx.error(
                    pos,
                    None,
                    Some(format!("tests.{i}.{dotted}")),
                    format!("{label}: {message}"),
                );
            }
            if !errors.is_empty() {
                continue;
            }
            let Ok(spec) = value.try_into::<TestSpec>() else { continue };
            let mut bad = false;
            for (path, message) in spec.problems() {
                bad = true;
                let pos = locate(table, &path, at, false);
                self.cx.error(
                    pos,
                    None,
                    Some(format!("tests.{i}.{}", path.join("."))),
                    format!("{label}: {message}"),
                );
            }
            if !steps.contains_key(&spec.step) {
                bad = true;
                self.cx.error(
                    locate(table, &["step".to_owned()], at, false),
                    None,
                    Some(format!("tests.{i}.step")),
                    format!("{label}: unknown step `{}`; steps: {}", spec.step, list(steps.keys())),
                );
            }
            if out.iter().any(|t| t.name == spec.name) {
                bad = true;
                self.cx.error(
                    locate(table, &["name".to_owned()], at, false),
                    None,
                    Some(format!("tests.{i}.name")),
                    format!("{label}: another test has this name"),
                );
            }
            // `with`: params substituted; nothing else can be known.
            let mut problem = None;
            let params = &self.params;
            let with = template::map_table(&spec.with, &mut Vec::new(), &mut |_, text| {
                if template::is_plain(text) {
                    return toml::Value::String(text.to_owned());
                }
                let t = template::parse(text);
                if let Some((_, e)) = t.errors.first() {
                    problem.get_or_insert_with(|| e.clone());
                }
                template::substitute(&t, &mut |r| match r {
                    Ref::Param(p) => params
                        .get(p)
                        .map(|v| Subst::Value(v.to_toml()))
                        .ok_or_else(|| format!("unknown param `{p}` in `{r}`")),
                    other => Err(format!("`with` can refer only to params, not `{other}`")),
                })
                .unwrap_or_else(|e| {
                    problem.get_or_insert(e);
                    toml::Value::String(text.to_owned())
                })
            });
            if let Some(message) = problem {
                bad = true;
                self.cx.error(
                    locate(table, &["with".to_owned()], at, false),
                    None,
                    Some(format!("tests.{i}.with")),
                    format!("{label}: {message}"),
                );
            }
            if !bad {
                let line = line_col(self.cx.source, at).0;
                out.push(spec.into_case(with, line));
            }
        }
        out
    }

    fn retry(&mut self, step: &str, v: &Spanned<DeValue<'_>>) -> Option<RetryPolicy> {
        let Some(t) = v.get_ref().as_table() else {
            self.cx.error(
                v.span().start,
                Some(step),
                Some("retry".into()),
                "`retry` must be a table like { attempts = 3, backoff = \"2s\" }",
            );
            return None;
        };
        let mut policy = RetryPolicy::default();
        for (k, item) in t.iter() {
            match k.get_ref().as_ref() {
                "attempts" => {
                    let key = "retry.attempts";
                    match self.envelope_value(step, key, item) {
                        None => {}
                        Some(toml::Value::Integer(n)) if let Ok(n @ 1..) = u32::try_from(n) => {
                            policy.attempts = n;
                        }
                        Some(other) => self.cx.error(
                            item.span().start,
                            Some(step),
                            Some(key.into()),
                            format!(
                                "`attempts` must be a whole number from 1 to {}, found {}",
                                u32::MAX,
                                describe(&other)
                            ),
                        ),
                    }
                }
                "backoff" => {
                    if let Some(d) = self.envelope_duration(step, "retry.backoff", item) {
                        policy.backoff = d;
                    }
                }
                other => self.cx.error(
                    k.span().start,
                    Some(step),
                    Some(format!("retry.{other}")),
                    format!("unknown key `{other}` in `retry`; expected: attempts, backoff"),
                ),
            }
        }
        Some(policy)
    }

    fn envelope_duration(
        &mut self,
        step: &str,
        key: &str,
        v: &Spanned<DeValue<'_>>,
    ) -> Option<std::time::Duration> {
        let value = self.envelope_value(step, key, v)?;
        let parsed = match &value {
            toml::Value::String(s) => parse_duration(s),
            other => {
                Err(format!("expected {}, found {}", ParamType::Duration.hint(), describe(other)))
            }
        };
        parsed
            .map_err(|e| {
                self.cx.error(
                    v.span().start,
                    Some(step),
                    Some(key.into()),
                    format!("`{key}`: {e}"),
                );
            })
            .ok()
    }

    /// A value of `cache` or `retry`, with `${params.NAME}` substituted.
    fn envelope_value(
        &mut self,
        step: &str,
        key: &str,
        v: &Spanned<DeValue<'_>>,
    ) -> Option<toml::Value> {
        let value = match to_value(v) {
            Ok(value) => value,
            Err((at, e)) => {
                self.cx.error(at, Some(step), Some(key.into()), e);
                return None;
            }
        };
        let toml::Value::String(text) = &value else {
            return Some(value);
        };
        if template::is_plain(text) {
            return Some(value);
        }
        let t = template::parse(text);
        let mut problem = t.errors.first().map(|(_, e)| e.clone());
        let out = template::substitute(&t, &mut |r| match r {
            Ref::Param(p) => match self.params.get(p) {
                Some(v) => Ok(Subst::Value(v.to_toml())),
                None if self.param_types.contains_key(p) => Err(String::new()),
                None => Err(format!(
                    "unknown param `{p}` in `{r}`; declared params: {}",
                    list(self.param_types.keys())
                )),
            },
            Ref::Step { .. } => Err(format!("`{key}` cannot refer to step outputs (`{r}`)")),
            Ref::Env(_) | Ref::Each(_) => {
                Err(format!("`{key}` can refer only to params, not `{r}`"))
            }
        });
        match out {
            Ok(v) if problem.is_none() => Some(v),
            Ok(_) => {
                let at = v.span().start;
                self.cx.error(at, Some(step), Some(key.into()), problem.take().unwrap_or_default());
                None
            }
            // An empty message: a param whose declaration was already
            // reported.
            Err(e) if e.is_empty() => None,
            Err(e) => {
                self.cx.error(v.span().start, Some(step), Some(key.into()), e);
                None
            }
        }
    }
}

/// What one step turned into.
#[derive(Default)]
struct Built {
    /// Dependencies, in order of first mention, with the byte offset of
    /// that mention.
    deps: IndexMap<String, usize>,
    cache: Option<CachePolicy>,
    retry: Option<RetryPolicy>,
    for_each: Option<ForEach>,
    template: toml::Table,
    body: toml::Table,
}

/// `a, b, c`, or `none`.
fn list<T: AsRef<str>>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|s| s.as_ref().to_owned()).collect();
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

/// A parsed TOML value as a [`toml::Value`]; an error carries the byte
/// offset of the value that failed (e.g. an integer out of range).
fn to_value(v: &Spanned<DeValue<'_>>) -> Result<toml::Value, (usize, String)> {
    toml::Value::deserialize(ValueDeserializer::from(v.clone()))
        .map_err(|e| (e.span().map_or(v.span().start, |s| s.start), e.message().to_owned()))
}

/// A value for error messages: `the string "abc"`, `an array`.
fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {:?}", s),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(x) => format!("the float {x:?}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the datetime {d}"),
        toml::Value::Array(_) => "an array".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

/// A TOML value as a param of type `ty`.
fn typed_from_toml(ty: ParamType, v: &toml::Value, today: NaiveDate) -> Result<ParamValue, String> {
    use toml::Value as V;
    match (ty, v) {
        (ParamType::String, V::String(s)) => Ok(ParamValue::String(s.clone())),
        (ParamType::Url, V::String(s)) if !s.is_empty() => Ok(ParamValue::Url(s.clone())),
        (ParamType::Int, V::Integer(i)) => Ok(ParamValue::Int(*i)),
        (ParamType::Float, V::Float(x)) => Ok(ParamValue::Float(*x)),
        (ParamType::Float, V::Integer(i)) => Ok(ParamValue::Float(*i as f64)),
        (ParamType::Bool, V::Boolean(b)) => Ok(ParamValue::Bool(*b)),
        (ParamType::Date, V::String(s)) => parse_date(s, today).map(ParamValue::Date),
        (ParamType::Date, V::Datetime(d)) if d.time.is_none() && d.offset.is_none() => d
            .date
            .and_then(|d| {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
            })
            .map(ParamValue::Date)
            .ok_or_else(|| format!("`{d}` is not a calendar day")),
        (ParamType::Duration, V::String(s)) => parse_duration(s).map(ParamValue::Duration),
        _ => Err(format!("expected {}, found {}", ty.hint(), describe(v))),
    }
}

/// The stand-in for a value not known before running, used only to let
/// the catalog type-check a body.
fn placeholder(ty: ParamType, step: &str, attr: &str, today: NaiveDate) -> toml::Value {
    match ty {
        ParamType::Url => toml::Value::String(format!("memory://ipi-placeholder/{step}/{attr}")),
        ParamType::String => toml::Value::String(String::new()),
        ParamType::Int => toml::Value::Integer(0),
        ParamType::Float => toml::Value::Float(0.0),
        ParamType::Bool => toml::Value::Boolean(false),
        ParamType::Date => toml::Value::Datetime(date_to_toml(today)),
        ParamType::Duration => toml::Value::String("1s".to_owned()),
    }
}

/// Called with a string's key path, text and source span.
type OnString<'f> = dyn FnMut(&[String], &str, Range<usize>) + 'f;

/// Call `f(path, text, span)` for every string inside `v`.
fn scan_strings(v: &Spanned<DeValue<'_>>, path: &mut Vec<String>, f: &mut OnString<'_>) {
    match v.get_ref() {
        DeValue::String(s) => f(path, s, v.span()),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                scan_strings(item, path, f);
                path.pop();
            }
        }
        DeValue::Table(t) => {
            for (k, item) in t.iter() {
                path.push(k.get_ref().to_string());
                scan_strings(item, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The source offset of byte `idx` of a string value whose source span is
/// `span`. Exact while the source text up to `idx` has no escapes, else
/// the start of the string.
fn str_offset(source: &str, span: &Range<usize>, decoded: &str, idx: usize) -> usize {
    let raw = source.get(span.clone()).unwrap_or_default();
    let mut prefix = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else if raw.starts_with('"') || raw.starts_with('\'') {
        1
    } else {
        0
    };
    if prefix == 3 {
        let rest = raw.get(3..).unwrap_or_default();
        if rest.starts_with('\n') {
            prefix += 1;
        } else if rest.starts_with("\r\n") {
            prefix += 2;
        }
    }
    let same = match (raw.get(prefix..), decoded.get(..idx)) {
        (Some(body), Some(head)) => body.starts_with(head),
        _ => false,
    };
    if same { span.start + prefix + idx } else { span.start }
}

/// Where a key path of a step body is in the source: the key itself when
/// `prefer_key` (or when the path stops short), else its value. An empty
/// path is the step's name.
fn locate(table: &DeTable<'_>, path: &[String], step_at: usize, prefer_key: bool) -> usize {
    let mut key_at = step_at;
    let mut value_at = None;
    let mut node: Option<&DeValue<'_>> = None;
    for seg in path {
        let found = match node {
            None => table.get_key_value(seg.as_str()).map(|(k, v)| (k.span().start, v)),
            Some(DeValue::Table(t)) => {
                t.get_key_value(seg.as_str()).map(|(k, v)| (k.span().start, v))
            }
            Some(DeValue::Array(items)) => {
                seg.parse::<usize>().ok().and_then(|i| items.get(i)).map(|v| (v.span().start, v))
            }
            Some(_) => None,
        };
        let Some((k, v)) = found else {
            return key_at;
        };
        key_at = k;
        value_at = Some(v.span().start);
        node = Some(v.get_ref());
    }
    if prefer_key { key_at } else { value_at.unwrap_or(key_at) }
}
