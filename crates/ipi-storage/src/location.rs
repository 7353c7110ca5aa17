//! [`Location`]: one name for a place, whatever store it is in.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// Characters that make a string a glob pattern rather than a name.
pub(crate) const GLOB_CHARS: &[char] = &['*', '?', '['];

/// How the stores behind [`Location`]s talk to remote services.
///
/// Transient failures (HTTP 5xx, timeouts, connection resets) are retried by
/// object_store itself with exponential backoff and jitter; client errors
/// (4xx: not found, access denied, bad signature) are not retried. Install a
/// non-default value with [`StorageOptions::install`] before the first S3
/// [`Location`] is parsed: a store is built once per bucket and then shared.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageOptions {
    /// How many times a failed request is retried. Default 5.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt. Default
    /// 3 minutes.
    pub retry_timeout: Duration,
    /// The first backoff. Default 100 ms.
    pub init_backoff: Duration,
    /// The largest backoff. Default 15 s.
    pub max_backoff: Duration,
    /// Timeout of one whole request; `None` keeps object_store's default
    /// (30 s).
    pub request_timeout: Option<Duration>,
    /// Timeout of the connect phase; `None` keeps object_store's default
    /// (5 s).
    pub connect_timeout: Option<Duration>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            max_retries: 5,
            retry_timeout: Duration::from_secs(180),
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            request_timeout: None,
            connect_timeout: None,
        }
    }
}

static OPTIONS: OnceLock<StorageOptions> = OnceLock::new();

impl StorageOptions {
    /// The options in force in this process (the defaults unless
    /// [`install`](Self::install)ed).
    pub fn current() -> &'static StorageOptions {
        OPTIONS.get_or_init(StorageOptions::default)
    }

    /// Make these the options of every store built from now on in this
    /// process. Gives the options back if options were already fixed (by an
    /// earlier `install` or by the first use of [`current`](Self::current)).
    pub fn install(self) -> std::result::Result<(), StorageOptions> {
        OPTIONS.set(self)
    }

    /// object_store's retry configuration for these options.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.init_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

/// Which store a location lives in; the key of the process-wide store cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Backend {
    Local,
    S3 { bucket: String },
    Memory { name: String },
}

/// A place in an object store: a local path, `file:///abs/path`,
/// `s3://bucket/prefix` or `memory://name/prefix`.
///
/// A location is a store (shared by every location of the same bucket or
/// memory name in the process) plus a [`Path`] inside it. It displays as a
/// URL that [`Location::parse`] reads back to an equal location, and never
/// holds a credential: S3 is configured only by the standard `AWS_*`
/// environment variables.
///
/// ```
/// use ipi_storage::Location;
///
/// let loc = Location::parse("s3://bucket/events")?.join("date=2018-11-12");
/// assert_eq!(loc.to_string(), "s3://bucket/events/date=2018-11-12");
/// assert_eq!(loc.url().as_str(), "s3://bucket/");
/// assert_eq!(loc.path().as_ref(), "events/date=2018-11-12");
/// # Ok::<(), ipi_storage::Error>(())
/// ```
#[derive(Clone)]
pub struct Location {
    backend: Backend,
    base: Url,
    path: Path,
    store: Arc<dyn ObjectStore>,
}

impl Location {
    /// Parses a local path (relative ones are made absolute against the
    /// current directory, `.` and `..` are resolved lexically), a
    /// `file://`, `s3://` or `memory://` URL.
    ///
    /// Strings holding a glob character (`*`, `?`, `[`) are refused: list
    /// them with [`expand`](crate::expand). So are URLs with credentials,
    /// queries or fragments, and other schemes.
    pub fn parse(input: &str) -> Result<Location> {
        let invalid = |reason: &str| Error::InvalidLocation {
            input: redact(input),
            reason: reason.to_string(),
        };
        if input.trim().is_empty() {
            return Err(invalid("empty location"));
        }
        if let Some(c) = input.chars().find(|c| GLOB_CHARS.contains(c)) {
            return Err(invalid(&format!(
                "contains the glob character `{c}`; use ipi_storage::expand to list what it matches"
            )));
        }
        if !input.contains("://") {
            let path = local_path(PathBuf::from(input)).map_err(|r| invalid(&r))?;
            return Location::new(Backend::Local, path);
        }
        let url = Url::parse(input).map_err(|e| invalid(&e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "credentials do not belong in a URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("query strings and fragments are not supported"));
        }
        if url.port().is_some() {
            return Err(invalid("a port is not supported here; set AWS_ENDPOINT_URL instead"));
        }
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "file" => {
                if !host.is_empty() && host != "localhost" {
                    return Err(invalid(
                        "file:// URLs must not name a host (use file:///abs/path)",
                    ));
                }
                let path = url.to_file_path().map_err(|()| invalid("not an absolute file path"))?;
                let path = local_path(path).map_err(|r| invalid(&r))?;
                Location::new(Backend::Local, path)
            }
            "s3" | "memory" => {
                if host.is_empty() {
                    return Err(invalid(if url.scheme() == "s3" {
                        "an s3:// URL needs a bucket (s3://bucket/prefix)"
                    } else {
                        "a memory:// URL needs a store name (memory://name/prefix)"
                    }));
                }
                let path = Path::from_url_path(url.path()).map_err(|e| invalid(&e.to_string()))?;
                let backend = if url.scheme() == "s3" {
                    Backend::S3 { bucket: host.to_string() }
                } else {
                    Backend::Memory { name: host.to_string() }
                };
                Location::new(backend, path).map_err(|e| match e {
                    Error::InvalidLocation { reason, .. } => invalid(&reason),
                    other => other,
                })
            }
            other => Err(invalid(&format!(
                "unsupported scheme `{other}://`; expected a path, file://, s3:// or memory://"
            ))),
        }
    }

    /// A location on the local disk, taken literally: unlike
    /// [`parse`](Self::parse), glob characters are part of the name (for
    /// paths a program made itself, such as a temporary directory's).
    /// Relative paths are made absolute against the current directory.
    ///
    /// ```
    /// use ipi_storage::Location;
    ///
    /// let loc = Location::from_local_path(std::path::Path::new("/tmp/run[1]/x.parquet"))?;
    /// assert_eq!(loc.to_string(), "file:///tmp/run%5B1%5D/x.parquet");
    /// # Ok::<(), ipi_storage::Error>(())
    /// ```
    pub fn from_local_path(path: &std::path::Path) -> Result<Location> {
        let path = local_path(path.to_path_buf()).map_err(|reason| Error::InvalidLocation {
            input: path.display().to_string(),
            reason,
        })?;
        Location::new(Backend::Local, path)
    }

    fn new(backend: Backend, path: Path) -> Result<Location> {
        let base = match &backend {
            Backend::Local => "file:///".to_string(),
            Backend::S3 { bucket } => format!("s3://{bucket}/"),
            Backend::Memory { name } => format!("memory://{name}/"),
        };
        let base = Url::parse(&base)
            .map_err(|e| Error::InvalidLocation { input: base.clone(), reason: e.to_string() })?;
        let store = cached_store(&backend)?;
        Ok(Location { backend, base, path, store })
    }

    /// The store this location lives in: the same instance for every
    /// location of the same bucket (or memory name, or the local disk) in
    /// this process.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The path of this location inside [`store`](Self::store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's base URL, as object_store and DataFusion register it:
    /// `s3://bucket/`, `file:///` or `memory://name/`.
    pub fn url(&self) -> Url {
        self.base.clone()
    }

    /// The location `relative` below this one. Empty and `.` segments are
    /// skipped; other segments are taken literally (`..` does not go up).
    pub fn join(&self, relative: &str) -> Location {
        let mut path = self.path.clone();
        for segment in relative.split('/').filter(|s| !s.is_empty() && *s != ".") {
            path = path.join(segment);
        }
        self.with_path(path)
    }

    /// Another path in the same store (e.g. an [`ObjectMeta`]'s location).
    ///
    /// [`ObjectMeta`]: object_store::ObjectMeta
    pub fn with_path(&self, path: Path) -> Location {
        Location {
            backend: self.backend.clone(),
            base: self.base.clone(),
            path,
            store: Arc::clone(&self.store),
        }
    }

    /// The last segment of the path, if any.
    pub fn filename(&self) -> Option<&str> {
        self.path.filename()
    }

    /// The local filesystem path, for locations on the local disk.
    pub fn as_local_path(&self) -> Option<PathBuf> {
        match self.backend {
            Backend::Local => {
                let mut p = PathBuf::from("/");
                p.extend(self.path.parts().map(|part| part.as_ref().to_string()));
                Some(p)
            }
            _ => None,
        }
    }

    /// True for locations in an in-process `memory://` store.
    pub fn is_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory { .. })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str())?;
        for (i, part) in self.path.parts().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            encode_segment(part.as_ref(), f)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        self.backend == other.backend && self.path == other.path
    }
}

impl Eq for Location {}

impl std::hash::Hash for Location {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.backend.hash(state);
        self.path.hash(state);
    }
}

impl PartialOrd for Location {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Location {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.backend, &self.path).cmp(&(&other.backend, &other.path))
    }
}

impl std::str::FromStr for Location {
    type Err = Error;

    fn from_str(s: &str) -> Result<Location> {
        Location::parse(s)
    }
}

/// Percent-encodes one path segment for the URL form: everything but
/// unreserved and harmless sub-delimiter ASCII, so `%`, spaces and glob
/// characters survive a round trip through [`Location::parse`]. Non-ASCII
/// text is written as is (URL parsers encode it).
fn encode_segment(segment: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for c in segment.chars() {
        let keep = !c.is_ascii()
            || c.is_ascii_alphanumeric()
            || matches!(c, '-' | '.' | '_' | '~' | '!' | '$' | '&' | '\'' | '(' | ')' | '+')
            || matches!(c, ',' | ';' | '=' | ':' | '@');
        if keep {
            write!(f, "{c}")?;
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                write!(f, "%{b:02X}")?;
            }
        }
    }
    Ok(())
}

/// Makes a local path absolute and lexically normal, then a store path
/// relative to the filesystem root.
fn local_path(path: PathBuf) -> std::result::Result<Path, String> {
    let absolute = if path.is_absolute() {
        path
    } else {
        let cwd = std::env::current_dir().map_err(|e| {
            format!("cannot resolve a relative path without a current directory: {e}")
        })?;
        cwd.join(path)
    };
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other.as_os_str()),
        }
    }
    Path::from_absolute_path(&normal).map_err(|e| e.to_string())
}

/// The input with any `user:password@` removed, for error messages.
fn redact(input: &str) -> String {
    match Url::parse(input) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            let mut shown = url.to_string();
            if let Some(rest) = shown.strip_prefix(&format!("{}://", url.scheme())) {
                shown = format!("{}://***@{rest}", url.scheme());
            }
            shown
        }
        _ => input.to_string(),
    }
}

/// The process-wide stores, one per local disk, bucket or memory name.
fn cached_store(backend: &Backend) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<Backend, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(store) = stores.get(backend) {
        return Ok(Arc::clone(store));
    }
    let store: Arc<dyn ObjectStore> = match backend {
        // No automatic cleanup of empty directories: it walks up to the
        // filesystem root and would remove empty directories that are not
        // ours. Dataset commits tidy their own tree instead.
        Backend::Local => Arc::new(LocalFileSystem::new()),
        Backend::Memory { .. } => Arc::new(InMemory::new()),
        Backend::S3 { bucket } => Arc::new(
            s3_builder(bucket, StorageOptions::current())
                .build()
                .map_err(|e| Error::store(format!("s3://{bucket}/"), e))?,
        ),
    };
    stores.insert(backend.clone(), Arc::clone(&store));
    Ok(store)
}

/// The S3 client: the standard `AWS_*` variables (endpoint, keys, region,
/// `AWS_ALLOW_HTTP`), path-style requests (virtual-hosted style does not
/// work against a bare IP endpoint), `If-None-Match`/`If-Match` conditional
/// puts, and our retry settings.
fn s3_builder(bucket: &str, options: &StorageOptions) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(options.retry_config());
    if builder.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
        builder = builder.with_region("us-east-1");
    }
    if let Some(t) = options.request_timeout {
        let key = AmazonS3ConfigKey::Client(ClientConfigKey::Timeout);
        builder = builder.with_config(key, format!("{}ms", t.as_millis()));
    }
    if let Some(t) = options.connect_timeout {
        let key = AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout);
        builder = builder.with_config(key, format!("{}ms", t.as_millis()));
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Location {
        Location::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) -> String {
        match Location::parse(s) {
            Err(Error::InvalidLocation { input, reason }) => format!("{input}: {reason}"),
            other => panic!("{s} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn absolute_paths_and_file_urls_are_the_same_location() {
        let a = parse("/var/ipi/events");
        assert_eq!(a.to_string(), "file:///var/ipi/events");
        assert_eq!(a.path().as_ref(), "var/ipi/events");
        assert_eq!(a.url().as_str(), "file:///");
        assert_eq!(parse("file:///var/ipi/events"), a);
        assert_eq!(parse("file://localhost/var/ipi/events/"), a);
        assert_eq!(parse("/var/./ipi/x/../events"), a);
        assert_eq!(a.as_local_path(), Some(PathBuf::from("/var/ipi/events")));
        assert_eq!(parse("/").to_string(), "file:///");
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let loc = parse("var/ipi");
        assert_eq!(loc.as_local_path(), Some(cwd.join("var/ipi")));
        assert_eq!(parse("./var/ipi/"), loc);
        assert_eq!(parse("."), parse(cwd.to_str().unwrap()));
    }

    #[test]
    fn s3_urls() {
        let loc = parse("s3://ipi-bucket/prefix/events/");
        assert_eq!(loc.to_string(), "s3://ipi-bucket/prefix/events");
        assert_eq!(loc.url().as_str(), "s3://ipi-bucket/");
        assert_eq!(loc.path().as_ref(), "prefix/events");
        assert_eq!(loc.as_local_path(), None);
        let root = parse("s3://ipi-bucket");
        assert!(root.path().is_root());
        assert_eq!(root.to_string(), "s3://ipi-bucket/");
        assert_eq!(parse("S3://ipi-bucket/"), root);
    }

    #[test]
    fn memory_urls_share_one_store_per_name() {
        let a = parse("memory://loc-test/a");
        let b = parse("memory://loc-test/b/c");
        let other = parse("memory://loc-test-other/a");
        assert!(Arc::ptr_eq(&a.store(), &b.store()));
        assert!(!Arc::ptr_eq(&a.store(), &other.store()));
        assert_ne!(a, other);
        assert_eq!(a.url().as_str(), "memory://loc-test/");
        assert_eq!(b.to_string(), "memory://loc-test/b/c");
        assert!(a.is_memory());
    }

    #[test]
    fn s3_stores_are_shared_per_bucket() {
        let a = parse("s3://shared-bucket/a");
        let b = parse("s3://shared-bucket/b");
        assert!(Arc::ptr_eq(&a.store(), &b.store()));
        assert!(!Arc::ptr_eq(&a.store(), &parse("s3://other-bucket/a").store()));
    }

    #[test]
    fn join_and_with_path() {
        let root = parse("memory://join/ds");
        let part = root.join("date=2018-11-12/").join("part-0.parquet");
        assert_eq!(part.to_string(), "memory://join/ds/date=2018-11-12/part-0.parquet");
        assert_eq!(root.join(""), root);
        assert_eq!(root.join("./a//b"), root.join("a/b"));
        assert_eq!(part.filename(), Some("part-0.parquet"));
        assert_eq!(root.with_path(Path::from("x/y")).to_string(), "memory://join/x/y");
    }

    #[test]
    fn display_round_trips() {
        let cases = [
            parse("/tmp/with space/ünïcode/a=b"),
            parse("s3://b/100%25/x"),
            parse("memory://rt/a%2Ab/c%5B1%5D"),
            parse("s3://b/a%23b").join("c%d"),
            parse("memory://rt/"),
        ];
        for loc in cases {
            let shown = loc.to_string();
            assert_eq!(parse(&shown), loc, "{shown}");
        }
        assert_eq!(parse("memory://rt/a%2Ab").path().as_ref(), "a*b");
    }

    #[test]
    fn bad_inputs_are_refused_with_a_reason() {
        assert!(refused("").contains("empty"));
        assert!(refused("gs://bucket/x").contains("unsupported scheme"));
        assert!(refused("s3:///x").contains("bucket"));
        assert!(refused("memory:///x").contains("store name"));
        assert!(refused("s3://b/x/*.parquet").contains("expand"));
        assert!(refused("logs/access-[0-9].log").contains("glob"));
        assert!(refused("s3://b/x?versionId=1").contains("glob"));
        assert!(refused("file://server/share/x").contains("host"));
        assert!(refused("s3://b:9000/x").contains("AWS_ENDPOINT_URL"));
    }

    #[test]
    fn credentials_in_urls_are_refused_and_not_echoed() {
        let msg = refused("s3://AKIDEXAMPLE:sup3rs3cret@bucket/x");
        assert!(msg.contains("AWS_ACCESS_KEY_ID"), "{msg}");
        assert!(!msg.contains("sup3rs3cret"), "{msg}");
        assert!(!msg.contains("AKIDEXAMPLE"), "{msg}");
    }

    #[test]
    fn retry_config_follows_options() {
        let retry = StorageOptions::default().retry_config();
        assert_eq!(retry.max_retries, 5);
        assert_eq!(retry.backoff.init_backoff, Duration::from_millis(100));
    }
}
