//! Listing objects: raw, by glob pattern, and expanding user input.
//!
//! Names whose path segment (below the place a listing starts from) begins
//! with `_` or `.` are hidden, as in Hive, Spark and pyarrow: `_rejects/`,
//! `_ipi_dataset.json`, `.DS_Store` and the like are not data. A pattern
//! can still name a hidden directory literally (`_rejects/*.parquet`).

use futures::TryStreamExt;
use globset::{GlobBuilder, GlobMatcher};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::error::{Error, Result};
use crate::location::{GLOB_CHARS, Location};

/// Characters that start a pattern in a path segment (globset's syntax).
const PATTERN_CHARS: &[char] = &['*', '?', '[', '{', '\\'];

/// True when `input` holds a glob character (`*`, `?`, `[`): [`expand`]
/// lists what it matches, and [`Location::parse`] refuses it.
pub fn is_glob(input: &str) -> bool {
    input.contains(GLOB_CHARS)
}

/// True for a hidden name: one that starts with `_` or `.`.
pub fn is_hidden(segment: &str) -> bool {
    segment.starts_with('_') || segment.starts_with('.')
}

/// Every object under `location` (hidden ones included), sorted by path.
pub async fn list_all(location: &Location) -> Result<Vec<ObjectMeta>> {
    let store = location.store();
    let prefix = (!location.path().is_root()).then(|| location.path().clone());
    let mut metas: Vec<ObjectMeta> =
        store.list(prefix.as_ref()).try_collect().await.map_err(|e| Error::store(location, e))?;
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(metas)
}

/// The objects below `location` whose path relative to it matches `pattern`
/// (globset syntax: `*` and `?` stay within one segment, `**` crosses
/// segments, `[a-z]` and `{a,b}` work), sorted by path.
///
/// Hidden names are skipped except where the pattern names them literally.
///
/// ```
/// # async fn f() -> ipi_storage::Result<()> {
/// use ipi_storage::{Location, list_glob};
///
/// let events = Location::parse("memory://doc-glob/events")?;
/// let november = list_glob(&events, "date=2018-11-*/*.parquet").await?;
/// # Ok(()) }
/// ```
pub async fn list_glob(location: &Location, pattern: &str) -> Result<Vec<ObjectMeta>> {
    let glob = RelativeGlob::new(pattern)?;
    let base = location.join(&glob.literal_prefix);
    let mut metas = list_all(&base).await?;
    metas.retain(|meta| glob.matches(location.path(), &meta.location));
    Ok(metas)
}

/// What a user-given input names, as `(location, metadata)` pairs sorted by
/// path:
///
/// * a string with a glob character (`*`, `?`, `[`) is split at the last
///   `/` before the first one; the part before is listed and the rest is a
///   [`list_glob`] pattern (`s3://b/logs/2018-11-*/*.gz`);
/// * a single object expands to itself;
/// * a prefix (directory) expands to every visible object below it.
///
/// Nothing found is an empty list, not an error.
pub async fn expand(input: &str) -> Result<Vec<(Location, ObjectMeta)>> {
    let Some(first) = input.find(GLOB_CHARS) else {
        let location = Location::parse(input)?;
        if !location.path().is_root() {
            match location.store().head(location.path()).await {
                Ok(meta) => return Ok(vec![(location, meta)]),
                Err(e) if Error::is_missing(&e) => {}
                Err(e) => return Err(Error::store(&location, e)),
            }
        }
        let metas = list_glob(&location, "**").await?;
        return Ok(metas
            .into_iter()
            .map(|m| (location.with_path(m.location.clone()), m))
            .collect());
    };
    let head = input.get(..first).unwrap_or_default();
    let (base, pattern) = match head.rfind('/') {
        Some(0) => ("/", input.get(1..)),
        Some(slash) => (input.get(..slash).unwrap_or_default(), input.get(slash + 1..)),
        None => (".", Some(input)),
    };
    let pattern = pattern.unwrap_or_default();
    if base.ends_with(":/") {
        return Err(Error::InvalidLocation {
            input: input.to_string(),
            reason: "glob characters are only allowed after the bucket or store name".into(),
        });
    }
    // `file:///*.log` splits into `file://` and `*.log`: list from the root.
    let base = if base.ends_with("://") { format!("{base}/") } else { base.to_string() };
    let location = Location::parse(&base)?;
    let metas = list_glob(&location, pattern).await?;
    Ok(metas.into_iter().map(|m| (location.with_path(m.location.clone()), m)).collect())
}

/// A compiled pattern relative to a listing root.
#[derive(Debug)]
pub(crate) struct RelativeGlob {
    matcher: GlobMatcher,
    /// The leading segments without pattern characters, joined by `/`:
    /// listing starts there, and they may be hidden names.
    literal_prefix: String,
    literal_segments: usize,
}

impl RelativeGlob {
    pub(crate) fn new(pattern: &str) -> Result<Self> {
        let pattern = pattern.trim_start_matches('/');
        let matcher = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|source| Error::InvalidGlob { pattern: pattern.to_string(), source })?
            .compile_matcher();
        let segments: Vec<&str> = pattern.split('/').collect();
        let literal: Vec<&str> = segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .take_while(|s| !s.contains(PATTERN_CHARS))
            .copied()
            .collect();
        Ok(RelativeGlob {
            matcher,
            literal_prefix: literal.join("/"),
            literal_segments: literal.len(),
        })
    }

    /// Whether `path` (somewhere below `root`) matches.
    pub(crate) fn matches(&self, root: &Path, path: &Path) -> bool {
        let Some(parts) = path.prefix_match(root) else { return false };
        let parts: Vec<_> = parts.collect();
        if parts.iter().skip(self.literal_segments).any(|p| is_hidden(p.as_ref())) {
            return false;
        }
        let relative = parts.iter().map(|p| p.as_ref()).collect::<Vec<_>>().join("/");
        !relative.is_empty() && self.matcher.is_match(relative.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, relative: &str) -> bool {
        let root = Path::from("data/events");
        let path = Path::parse(format!("data/events/{relative}")).unwrap();
        RelativeGlob::new(pattern).unwrap().matches(&root, &path)
    }

    #[test]
    fn star_stays_within_a_segment() {
        assert!(matches("*.parquet", "a.parquet"));
        assert!(!matches("*.parquet", "date=2018-11-12/a.parquet"));
        assert!(matches("date=2018-11-*/*.parquet", "date=2018-11-12/a.parquet"));
        assert!(!matches("date=2018-11-*/*.parquet", "date=2018-12-01/a.parquet"));
        assert!(!matches("date=2018-11-*/*.parquet", "date=2018-11-12/a.csv"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(matches("**/*.parquet", "a.parquet"));
        assert!(matches("**/*.parquet", "date=2018-11-12/hour=01/a.parquet"));
        assert!(matches("**", "x/y/z"));
        assert!(!matches("**/*.parquet", "date=2018-11-12/a.parquet.tmp"));
    }

    #[test]
    fn classes_and_alternates() {
        assert!(matches("access-[0-9].log", "access-7.log"));
        assert!(!matches("access-[0-9].log", "access-x.log"));
        assert!(matches("{a,b}/*.gz", "b/x.gz"));
        assert!(matches("?.gz", "x.gz"));
    }

    #[test]
    fn hidden_names_are_skipped_below_the_literal_prefix() {
        assert!(!matches("**/*.parquet", "_rejects/a.parquet"));
        assert!(!matches("**/*.parquet", "date=2018-11-12/.a.parquet"));
        assert!(!matches("**/*.parquet", "date=2018-11-12/_tmp/a.parquet"));
        assert!(!matches("**", "_ipi_dataset.json"));
        assert!(matches("_rejects/*.parquet", "_rejects/a.parquet"));
        assert!(!matches("_rejects/*.parquet", "_rejects/_x.parquet"));
    }

    #[test]
    fn hidden_names_above_the_root_do_not_count() {
        let root = Path::from("tmp/.tmpAbC/_work/events");
        let path = Path::from("tmp/.tmpAbC/_work/events/a.parquet");
        assert!(RelativeGlob::new("*.parquet").unwrap().matches(&root, &path));
        let elsewhere = Path::from("tmp/other/a.parquet");
        assert!(!RelativeGlob::new("**").unwrap().matches(&root, &elsewhere));
    }

    #[test]
    fn literal_prefix_is_where_listing_starts() {
        let g = RelativeGlob::new("a/b/date=*/x/*.parquet").unwrap();
        assert_eq!(g.literal_prefix, "a/b");
        assert_eq!(RelativeGlob::new("a/b/c.parquet").unwrap().literal_prefix, "a/b");
        assert_eq!(RelativeGlob::new("**/*.parquet").unwrap().literal_prefix, "");
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(matches!(RelativeGlob::new("a[").unwrap_err(), Error::InvalidGlob { .. }));
    }
}
