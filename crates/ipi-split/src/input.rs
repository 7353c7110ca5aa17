//! What to split, found in any store: a committed dataset, or Parquet or
//! CSV files without a manifest. Files that are not on the local disk are
//! staged there (streamed, never whole in memory) for polars, which is
//! built without its cloud readers.

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use ipi_storage::Location;

use crate::error::{Error, Result};

/// How the input files are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Parquet,
    /// With a header line naming the columns.
    Csv,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// The files of the input, in order.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub format: Format,
    pub files: Vec<Location>,
}

/// The files at `root`: those of its committed manifest
/// (`_ipi_dataset.json`) if it has one; otherwise `root` itself if it is a
/// `.parquet` or `.csv` object, or else every visible `.parquet` or `.csv`
/// object below it (one kind only).
pub(crate) async fn resolve(root: &Location) -> Result<Input> {
    match ipi_storage::Dataset::open(root).await {
        Ok(dataset) => {
            let files = dataset.files().iter().map(|f| f.location.clone()).collect();
            return Ok(Input { format: Format::Parquet, files });
        }
        Err(ipi_storage::Error::NotADataset { .. }) => {}
        Err(e) => return Err(Error::storage("input", e)),
    }
    let found =
        ipi_storage::expand(&root.to_string()).await.map_err(|e| Error::storage("input", e))?;
    let (mut parquet, mut csv) = (Vec::new(), Vec::new());
    for (location, _) in found {
        let name = location.filename().unwrap_or_default().to_ascii_lowercase();
        if name.ends_with(".parquet") {
            parquet.push(location);
        } else if name.ends_with(".csv") {
            csv.push(location);
        }
    }
    match (parquet.is_empty(), csv.is_empty()) {
        (false, true) => Ok(Input { format: Format::Parquet, files: parquet }),
        (true, false) => Ok(Input { format: Format::Csv, files: csv }),
        (false, false) => Err(Error::input(
            root,
            format!(
                "holds both Parquet ({}) and CSV ({}) files; split one kind at a time",
                parquet.len(),
                csv.len()
            ),
        )),
        (true, true) => Err(Error::input(
            root,
            "is not a committed dataset (no _ipi_dataset.json), a .parquet or .csv file, or a directory holding some",
        )),
    }
}

/// Local paths of `files`: the file itself when it is on the local disk, a
/// copy in `dir` otherwise (four copies at a time).
pub(crate) async fn stage(input: &Input, dir: &Path) -> Result<Vec<PathBuf>> {
    let extension = input.format.name();
    // Owned items: a stream of futures that borrow from its items is not
    // `Send` for every lifetime, which the pipeline's step futures must be.
    let jobs: Vec<(Location, PathBuf)> = input
        .files
        .iter()
        .enumerate()
        .map(|(i, file)| (file.clone(), dir.join(format!("{i:05}.{extension}"))))
        .collect();
    futures::stream::iter(jobs)
        .map(|(file, path)| async move {
            if let Some(path) = file.as_local_path() {
                return Ok(path);
            }
            let local =
                Location::from_local_path(&path).map_err(|e| Error::storage(path.display(), e))?;
            let bytes = ipi_storage::copy_object(&file, &local)
                .await
                .map_err(|e| Error::storage(format!("staging {file}"), e))?;
            tracing::debug!(url = %file, bytes, "Staged an input file.");
            Ok(path)
        })
        .buffered(4)
        .try_collect()
        .await
}
