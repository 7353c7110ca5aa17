//! What the runner keeps in the store: run manifests, cache stamps and
//! locks, all under `<store>/runs/`, where `<store>` is the pipeline's
//! `store` param (`var/ipi` when it declares none).
//!
//! ```text
//! <store>/runs/<run_id>/manifest.json                 one per run (ipi-run)
//! <store>/runs/_cache/<pipeline>/<step>/<key>.json    one per successful step (ipi-cache)
//! <store>/runs/_cache/<pipeline>/<step>/latest.json   the newest of those
//! <store>/runs/_locks/<pipeline>/<date>/lease-N.json  the run lock (see `lock`)
//! ```
//!
//! A cache key is the hash of a step's kind, its resolved config, the
//! versions of its inputs and the code version. The version of a location
//! is, in order of preference: the commit id of the ipi dataset there
//! (`_ipi_dataset.json`); the ETag (or size and modification time) of the
//! single object there; a hash of the names, sizes and ETags of every
//! object below it; `absent`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use ipi_config::Pipeline;
use ipi_storage::{Location, ObjectMeta, ObjectStoreExt as _, object_store};
use serde::{Deserialize, Serialize};

/// The run-state folder of a store.
#[derive(Debug, Clone)]
pub struct State {
    /// The store as given (`var/ipi`, `s3://bucket/ipi`).
    pub store: String,
    /// `<store>/runs`.
    pub root: Location,
}

/// The store a pipeline keeps its run state in: its `store` param, else
/// `var/ipi`.
pub fn store_of(pipeline: &Pipeline) -> String {
    pipeline
        .params
        .get("store")
        .map(ToString::to_string)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_STORE.to_owned())
}

/// The store of pipelines that declare no `store` param.
pub const DEFAULT_STORE: &str = "var/ipi";

/// A name as one path segment: letters, digits, `.`, `_`, `-`; anything
/// else becomes `_`.
pub fn segment(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with('.') { format!("_{s}") } else { s }
}

impl State {
    pub fn new(store: &str) -> anyhow::Result<State> {
        let root = Location::parse(store)?.join("runs");
        Ok(State { store: store.to_owned(), root })
    }

    pub fn manifest(&self, run_id: &str) -> Location {
        self.root.join(&segment(run_id)).join("manifest.json")
    }

    fn cache_dir(&self, pipeline: &str, step: &str) -> Location {
        self.root.join("_cache").join(&segment(pipeline)).join(&segment(step))
    }

    pub fn stamp(&self, pipeline: &str, step: &str, key: &str) -> Location {
        self.cache_dir(pipeline, step).join(&format!("{}.json", segment(key)))
    }

    /// The newest stamp of a step (of one `for_each` value, if given).
    pub fn latest_stamp(&self, pipeline: &str, step: &str, item: Option<&str>) -> Location {
        let name = match item {
            Some(item) => format!("latest-{}.json", segment(item)),
            None => "latest.json".to_owned(),
        };
        self.cache_dir(pipeline, step).join(&name)
    }

    pub fn lock_dir(&self, pipeline: &str, key: &str) -> Location {
        self.root.join("_locks").join(&segment(pipeline)).join(&segment(key))
    }
}

/// What is locked for a run: the values of the pipeline's date params,
/// joined by `_` (`2018-11-12`), or `all` when it has none.
pub fn lock_key(pipeline: &Pipeline) -> String {
    let dates: Vec<String> = pipeline
        .params
        .values()
        .filter(|v| v.param_type() == ipi_config::ParamType::Date)
        .map(ToString::to_string)
        .collect();
    if dates.is_empty() { "all".to_owned() } else { dates.join("_") }
}

/// How a run, or one of its steps, stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started yet.
    Pending,
    Running,
    /// Ran and succeeded.
    Succeeded,
    /// Not run: an earlier run's result was reused.
    Cached,
    Failed,
    /// Not run: a step it needs failed, or `--only` left it out.
    Skipped,
}

impl Status {
    /// Done without error, so dependents may run.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Succeeded | Status::Cached)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Succeeded => "ok",
            Status::Cached => "cached",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }
}

/// `runs/<run_id>/manifest.json`: everything about one run, rewritten as
/// it goes, so it is there even when the run fails or is killed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunManifest {
    /// Always `ipi-run`.
    pub format: String,
    /// Always 1.
    pub version: u32,
    pub run_id: String,
    pub pipeline: String,
    /// The pipeline file as given on the command line.
    pub file: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The clock `today` and `yesterday` were resolved against, and the
    /// file's zone.
    pub clock: DateTime<Utc>,
    pub timezone: String,
    /// Every param's value as `--param` takes it (dates resolved).
    pub params: IndexMap<String, String>,
    /// The environment variables the file read (never credentials).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// The pipeline file's text, so `retry` runs exactly this.
    pub source: String,
    pub code_version: String,
    /// The store the run state is in.
    pub store: String,
    /// The run lock's lease.
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub only: Vec<String>,
    /// Each process that worked on this run: the run, then any retries.
    #[serde(default)]
    pub sessions: Vec<Session>,
    /// The first error, when the run failed.
    #[serde(default)]
    pub error: Option<String>,
    pub steps: IndexMap<String, StepRecord>,
}

/// One process working on a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// `run` or `retry`.
    pub command: String,
    pub host: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    pub status: Status,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub uses: String,
    #[serde(flatten)]
    pub exec: Execution,
    /// With `for_each`: one entry per value. The step's own fields then
    /// sum them up (rows, rejects, attempts, seconds) and its `exposes`
    /// are the last value's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemRecord>,
}

/// One value of a `for_each` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRecord {
    pub value: String,
    #[serde(flatten)]
    pub exec: Execution,
}

/// How one execution of a step went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    pub status: Status,
    /// Times it was tried in this run (0 when cached or skipped).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub seconds: f64,
    /// Why it ran or was reused.
    #[serde(default)]
    pub cache: Option<CacheRecord>,
    /// The resolved config it ran with (null until resolved).
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub inputs: Vec<Io>,
    #[serde(default)]
    pub outputs: Vec<Io>,
    /// What `${steps.NAME.ATTR}` resolves to for the steps after it.
    #[serde(default)]
    pub exposes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub rows: Option<u64>,
    #[serde(default)]
    pub rejected: Option<u64>,
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
}

impl Execution {
    pub fn new(status: Status) -> Execution {
        Execution {
            status,
            attempts: 0,
            started_at: None,
            finished_at: None,
            seconds: 0.0,
            cache: None,
            config: serde_json::Value::Null,
            inputs: Vec::new(),
            outputs: Vec::new(),
            exposes: serde_json::Map::new(),
            rows: None,
            rejected: None,
            metrics: BTreeMap::new(),
            error: None,
        }
    }
}

/// An input or output of a step, with its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Io {
    /// The step key it comes from.
    pub key: String,
    pub url: String,
    /// Its version (see the module docs); `None` when it could not be told.
    #[serde(default)]
    pub version: Option<String>,
}

/// The cache decision for a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The cache key: config, input versions and code, hashed.
    pub key: String,
    /// Whether an earlier result was reused.
    pub hit: bool,
    /// Why (a hit names the run it reuses; a miss says what changed).
    pub reason: String,
    /// The run whose result was reused.
    #[serde(default)]
    pub run_id: Option<String>,
}

/// `runs/_cache/<pipeline>/<step>/<key>.json`: a step that succeeded,
/// what it read and wrote, and what it reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stamp {
    /// Always `ipi-cache`.
    pub format: String,
    pub version: u32,
    pub key: String,
    pub pipeline: String,
    pub step: String,
    /// The `for_each` value, if any.
    #[serde(default)]
    pub item: Option<String>,
    pub uses: String,
    pub run_id: String,
    pub finished_at: DateTime<Utc>,
    pub code_version: String,
    pub config: serde_json::Value,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    pub exposes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub rows: Option<u64>,
    #[serde(default)]
    pub rejected: Option<u64>,
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
}

/// Read a JSON object; `None` when there is none.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    location: &Location,
) -> anyhow::Result<Option<T>> {
    match ipi_storage::get_bytes(location).await {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{location} is not what ipi wrote there: {e}"))?,
        )),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Write a JSON object in one atomic PUT.
pub async fn write_json<T: Serialize>(location: &Location, value: &T) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    ipi_storage::put_atomic(location, bytes.into()).await?;
    Ok(())
}

/// The version of what is at `url` (see the module docs).
pub async fn version_of(url: &str) -> Result<String, ipi_storage::Error> {
    if ipi_storage::is_glob(url) {
        let found = ipi_storage::expand(url).await?;
        let metas: Vec<ObjectMeta> = found.into_iter().map(|(_, m)| m).collect();
        return Ok(listing_version("glob", &metas));
    }
    let location = Location::parse(url)?;
    match ipi_storage::Dataset::open(&location).await {
        Ok(dataset) => {
            if let Some(commit) = dataset.commit_id() {
                return Ok(format!("dataset:{commit}"));
            }
        }
        Err(ipi_storage::Error::NotADataset { .. }) => {}
        Err(e) => return Err(e),
    }
    if !location.path().is_root() {
        match location.store().head(location.path()).await {
            Ok(meta) => return Ok(object_version(&meta)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) if is_not_a_directory(&e) => {}
            Err(source) => {
                return Err(ipi_storage::Error::ObjectStore { url: location.to_string(), source });
            }
        }
    }
    let metas = ipi_storage::list_all(&location).await?;
    Ok(listing_version("tree", &metas))
}

fn is_not_a_directory(error: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::NotADirectory;
        }
        cause = e.source();
    }
    false
}

fn object_version(meta: &ObjectMeta) -> String {
    match &meta.e_tag {
        Some(tag) => format!("etag:{}:{}", tag.trim_matches('"'), meta.size),
        None => format!("size:{}:{}", meta.size, meta.last_modified.timestamp_micros()),
    }
}

fn listing_version(kind: &str, metas: &[ObjectMeta]) -> String {
    if metas.is_empty() {
        return "absent".to_owned();
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for m in metas {
        hasher.update(m.location.as_ref().as_bytes());
        hasher.update(b"\0");
        hasher.update(object_version(m).as_bytes());
        hasher.update(b"\n");
    }
    format!("{kind}:{}:{:032x}", metas.len(), hasher.digest128())
}

/// The version of this program: `IPI_CODE_VERSION` when set (a release
/// tag, say), else the package version and a hash of the executable, so
/// that any rebuild with other code misses the cache.
pub fn code_version() -> String {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            if let Ok(v) = std::env::var("IPI_CODE_VERSION")
                && !v.trim().is_empty()
            {
                return v.trim().to_owned();
            }
            let version = env!("CARGO_PKG_VERSION");
            match exe_hash() {
                Ok(hash) => format!("{version}+{hash}"),
                Err(error) => {
                    tracing::warn!(%error, "Cannot hash the executable; the cache keys on the package version only.");
                    version.to_owned()
                }
            }
        })
        .clone()
}

fn exe_hash() -> std::io::Result<String> {
    let mut file = std::fs::File::open(std::env::current_exe()?)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(format!("{:016x}", hasher.digest()))
}

/// A TOML value as JSON (dates and times as their TOML text).
pub fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => table_to_json(t),
    }
}

pub fn table_to_json(table: &toml::Table) -> serde_json::Value {
    serde_json::Value::Object(table.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect())
}

/// A JSON value as TOML; `None` for null (TOML has none).
pub fn json_to_toml(value: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(items.iter().filter_map(json_to_toml).collect()),
        J::Object(map) => toml::Value::Table(
            map.iter().filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?))).collect(),
        ),
    })
}

/// JSON with object keys sorted, for hashing.
pub fn canonical(value: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match value {
        J::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", J::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        J::Array(items) => {
            format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// The cache key of a step: its kind, resolved config, input versions and
/// the code version.
pub fn cache_key(uses: &str, config: &serde_json::Value, inputs: &[Io], code: &str) -> String {
    let inputs: Vec<serde_json::Value> =
        inputs.iter().map(|i| serde_json::json!([i.key, i.url, i.version])).collect();
    let text = canonical(&serde_json::json!({
        "uses": uses, "config": config, "inputs": inputs, "code": code,
    }));
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_key_order_but_not_values() {
        let a = serde_json::json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b = serde_json::json!({"a": {"x": "s", "y": [1, 2]}, "b": 1});
        assert_eq!(canonical(&a), canonical(&b));
        let io =
            |v: &str| vec![Io { key: "input".into(), url: "u".into(), version: Some(v.into()) }];
        assert_eq!(cache_key("k", &a, &io("1"), "c"), cache_key("k", &b, &io("1"), "c"));
        assert_ne!(cache_key("k", &a, &io("1"), "c"), cache_key("k", &a, &io("2"), "c"));
        assert_ne!(cache_key("k", &a, &io("1"), "c"), cache_key("k", &a, &io("1"), "d"));
        let c = serde_json::json!({"b": 2, "a": {"y": [1, 2], "x": "s"}});
        assert_ne!(cache_key("k", &a, &io("1"), "c"), cache_key("k", &c, &io("1"), "c"));
    }

    #[test]
    fn toml_and_json_round_trip() {
        let t: toml::Table =
            "a = 1\nb = 0.5\nc = 'x'\nd = [true]\ne = { f = 2018-11-12 }".parse().unwrap();
        let j = table_to_json(&t);
        assert_eq!(j["e"]["f"], "2018-11-12");
        let back = json_to_toml(&j).unwrap();
        assert_eq!(back["a"], toml::Value::Integer(1));
        assert_eq!(back["b"], toml::Value::Float(0.5));
        assert_eq!(back["d"], toml::Value::Array(vec![toml::Value::Boolean(true)]));
    }

    #[test]
    fn segments_are_safe() {
        assert_eq!(segment("daily"), "daily");
        assert_eq!(segment("my pipeline/x"), "my_pipeline_x");
        assert_eq!(segment(""), "_");
        assert_eq!(segment(".."), "_..");
    }

    #[tokio::test]
    async fn versions_of_datasets_objects_and_trees() {
        let root = format!("memory://state-tests/{}", uuid::Uuid::now_v7());
        let loc = |p: &str| Location::parse(&format!("{root}/{p}")).unwrap();
        assert_eq!(version_of(&format!("{root}/nothing")).await.unwrap(), "absent");
        ipi_storage::put_atomic(&loc("tree/a.txt"), "a".into()).await.unwrap();
        let object = version_of(&format!("{root}/tree/a.txt")).await.unwrap();
        let tree = version_of(&format!("{root}/tree")).await.unwrap();
        assert!(tree.starts_with("tree:1:"), "{tree}");
        assert_ne!(object, tree);
        ipi_storage::put_atomic(&loc("tree/b.txt"), "b".into()).await.unwrap();
        assert_ne!(version_of(&format!("{root}/tree")).await.unwrap(), tree);
        let glob = version_of(&format!("{root}/tree/*.txt")).await.unwrap();
        assert!(glob.starts_with("glob:2:"), "{glob}");
    }
}
