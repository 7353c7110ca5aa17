//! The tables of a store: which datasets become which table names, and a
//! DataFusion [`TableProvider`] over the committed files of one dataset.
//!
//! A dataset's files are the ones its manifest (`_ipi_dataset.json`) lists,
//! never what a listing finds: files of a writer still running or one that
//! crashed, `_rejects/` and `_manifest.json` are not part of it. Datasets
//! without a manifest (Parquet written by other tools) are read the way
//! [`Dataset::open_or_glob`] reads them: every visible `**/*.parquet`.
//!
//! Hive partition directories (`date=2018-11-12/`) become columns: `date`
//! values that are all dates are `DATE` (Date32), integers `BIGINT`, the
//! rest `VARCHAR`. A filter on partition columns alone picks the files
//! before anything is read, so a query of one day of a year of scores
//! opens one day's files.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::{expr_applicable_for_cols, filter_partitioned_file};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use ipi_storage::{Dataset, Location, ObjectMeta};

use crate::error::{Error, Result};

/// Where each standard table is looked for, relative to the store; the
/// first that holds a dataset wins. `train`, `validation` and `test` are
/// found by [`discover`] under `splits/` instead.
pub const STANDARD_TABLES: &[(&str, &[&str])] = &[
    ("events", &["events"]),
    ("scores", &["scores"]),
    // `ipi-pipeline synth --output X` writes X/labels; pipelines/daily.toml
    // synthesises into ${store}/demo, the README's example into var/ipi/synth.
    ("labels", &["labels", "demo/labels", "synth/labels"]),
];

/// The tables partitioned by UTC day (`date=YYYY-MM-DD/`): they have a
/// `date` column even while they have no files (a day without logins).
pub const DAILY_TABLES: &[&str] = &["events", "scores", "labels"];

/// The split tables, under `splits/` or the latest `splits/YYYY-MM-DD/`.
pub const SPLIT_TABLES: &[&str] = &["train", "validation", "test"];

/// A dataset found for a table name.
#[derive(Debug, Clone)]
pub struct FoundTable {
    /// The table name in SQL.
    pub name: String,
    /// The dataset.
    pub dataset: Dataset,
}

/// Finds the standard tables in `store`, keeping only those that exist:
/// `events`, `scores`, `labels` ([`STANDARD_TABLES`]) and `train`,
/// `validation`, `test` from `splits/{name}` or, failing that, from the
/// latest `splits/YYYY-MM-DD/` that holds any of them (all three from the
/// same day).
pub async fn discover(store: &Location) -> Result<Vec<FoundTable>> {
    let mut found = Vec::new();
    for (name, candidates) in STANDARD_TABLES {
        for candidate in *candidates {
            if let Some(dataset) = open_if_exists(&store.join(candidate)).await? {
                found.push(FoundTable { name: (*name).to_string(), dataset });
                break;
            }
        }
    }
    let splits = store.join("splits");
    let mut direct = Vec::new();
    for name in SPLIT_TABLES {
        if let Some(dataset) = open_if_exists(&splits.join(name)).await? {
            direct.push(FoundTable { name: (*name).to_string(), dataset });
        }
    }
    if direct.is_empty() {
        for day in split_days(&splits).await?.into_iter().rev() {
            for name in SPLIT_TABLES {
                if let Some(dataset) = open_if_exists(&splits.join(&day).join(name)).await? {
                    direct.push(FoundTable { name: (*name).to_string(), dataset });
                }
            }
            if !direct.is_empty() {
                break;
            }
        }
    }
    found.extend(direct);
    Ok(found)
}

/// The dataset at `root`, or `None` where there is none.
pub async fn open_if_exists(root: &Location) -> Result<Option<Dataset>> {
    match Dataset::open_or_glob(root).await {
        Ok(dataset) => Ok(Some(dataset)),
        Err(ipi_storage::Error::NotADataset { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `YYYY-MM-DD` directories directly under `splits`, sorted.
async fn split_days(splits: &Location) -> Result<Vec<String>> {
    let store = splits.store();
    let listing = match store.list_with_delimiter(Some(splits.path())).await {
        Ok(listing) => listing,
        Err(ipi_storage::object_store::Error::NotFound { .. }) => {
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(Error::Table { name: "splits".into(), message: format!("{splits}: {e}") });
        }
    };
    let mut days: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .filter(|name| NaiveDate::parse_from_str(name, "%Y-%m-%d").is_ok())
        .collect();
    days.sort();
    Ok(days)
}

/// One dataset as a read-only table: its committed Parquet files, with the
/// Hive partition directories as columns.
#[derive(Debug)]
pub struct DatasetTable {
    root: Location,
    store_url: ObjectStoreUrl,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    schema: SchemaRef,
    files: Vec<PartitionedFile>,
}

impl DatasetTable {
    /// The table over `dataset`. Its schema is the manifest's (the last
    /// commit's writer schema: older files lacking a column read it as
    /// null), or, for Parquet found without a manifest, the merged schema of
    /// every file's footer.
    ///
    /// `daily` ([`DAILY_TABLES`]) makes sure of a `date` column, null for
    /// files outside `date=` folders.
    pub async fn new(state: &dyn Session, dataset: &Dataset, daily: bool) -> Result<DatasetTable> {
        let root = dataset.root().clone();
        let store_url = ObjectStoreUrl::parse(root.url().as_str())
            .map_err(|e| Error::execution(format!("registering {root}"), e))?;
        let file_schema = match dataset.schema().filter(|_| dataset.manifest().is_some()) {
            Some(schema) => Arc::clone(schema),
            None if dataset.files().is_empty() => Arc::new(Schema::empty()),
            None => {
                let objects: Vec<ObjectMeta> = dataset
                    .files()
                    .iter()
                    .map(|f| ObjectMeta {
                        location: f.location.path().clone(),
                        last_modified: chrono::DateTime::UNIX_EPOCH,
                        size: f.size,
                        e_tag: None,
                        version: None,
                    })
                    .collect();
                ParquetFormat::default()
                    .with_options(state.default_table_options().parquet)
                    .infer_schema(state, &root.store(), &objects)
                    .await
                    .map_err(|e| Error::execution(format!("reading the schema of {root}"), e))?
            }
        };
        // Drop the writers' metadata (`ipi.schema`): results are not
        // datasets of that kind any more.
        let file_schema = Arc::new(Schema::new(file_schema.fields().clone()));
        let mut partitions = Partitions::parse(dataset, &file_schema);
        let date = ipi_core::schema::PARTITION_COLUMN;
        if daily
            && file_schema.field_with_name(date).is_err()
            && !partitions.keys.iter().any(|(key, _)| key == date)
        {
            partitions.keys.push((date.to_string(), DataType::Date32));
            for values in &mut partitions.values {
                values.push(ScalarValue::Date32(None));
            }
        }
        let partition_fields: Vec<FieldRef> = partitions
            .keys
            .iter()
            .map(|(key, ty)| Arc::new(Field::new(key, ty.clone(), true)))
            .collect();
        let files = dataset
            .files()
            .iter()
            .zip(partitions.values)
            .map(|(f, values)| {
                PartitionedFile::new(f.location.path().as_ref(), f.size)
                    .with_partition_values(values)
            })
            .collect();
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.extend(partition_fields.iter().cloned());
        Ok(DatasetTable {
            root,
            store_url,
            file_schema,
            partition_fields,
            schema: Arc::new(Schema::new(fields)),
            files,
        })
    }

    /// Where the dataset is.
    pub fn root(&self) -> &Location {
        &self.root
    }

    /// How many files the dataset has.
    pub fn num_files(&self) -> usize {
        self.files.len()
    }

    fn partition_names(&self) -> Vec<&str> {
        self.partition_fields.iter().map(|f| f.name().as_str()).collect()
    }

    /// Whether `filter` can be decided from the partition columns alone.
    fn prunes(&self, filter: &Expr) -> bool {
        let names = self.partition_names();
        !names.is_empty() && expr_applicable_for_cols(&names, filter)
    }
}

#[async_trait]
impl TableProvider for DatasetTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let partition_filters: Vec<Expr> =
            filters.iter().filter(|f| self.prunes(f)).cloned().collect();
        let partition_schema = DFSchema::try_from(Schema::new(self.partition_fields.clone()))?;
        let mut files = Vec::with_capacity(self.files.len());
        for file in &self.files {
            if let Some(file) =
                filter_partitioned_file(file.clone(), &partition_filters, &partition_schema)?
            {
                files.push(file);
            }
        }
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let groups = FileGroup::new(files).split_files(state.config().target_partitions().max(1));
        let format = ParquetFormat::default().with_options(state.default_table_options().parquet);
        let source = format.file_source(
            TableSchema::builder(Arc::clone(&self.file_schema))
                .with_table_partition_cols(self.partition_fields.clone())
                .build(),
        );
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Partition filters are applied exactly by choosing files; the rest
        // are pushed into the Parquet scan (row-group statistics) and
        // applied again above it.
        Ok(filters
            .iter()
            .map(|f| {
                if self.prunes(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }
}

/// The Hive partition columns of a dataset and each file's values.
#[derive(Debug)]
struct Partitions {
    /// Column names and types, in the order they first appear.
    keys: Vec<(String, DataType)>,
    /// Per file (in the dataset's order), one value per key; null where a
    /// file's directory lacks the key.
    values: Vec<Vec<ScalarValue>>,
}

impl Partitions {
    fn parse(dataset: &Dataset, file_schema: &Schema) -> Partitions {
        let per_file: Vec<BTreeMap<String, String>> = dataset
            .files()
            .iter()
            .map(|f| {
                f.partition
                    .split('/')
                    .filter_map(|segment| segment.split_once('='))
                    .filter(|(key, _)| !key.is_empty() && file_schema.field_with_name(key).is_err())
                    .map(|(key, value)| (key.to_string(), value.to_string()))
                    .collect()
            })
            .collect();
        let mut names: Vec<String> = Vec::new();
        for file in &per_file {
            for key in file.keys() {
                if !names.contains(key) {
                    names.push(key.clone());
                }
            }
        }
        let keys: Vec<(String, DataType)> = names
            .into_iter()
            .map(|key| {
                let values = per_file.iter().filter_map(|f| f.get(&key));
                let ty = infer_type(values);
                (key, ty)
            })
            .collect();
        let values = per_file
            .iter()
            .map(|file| {
                keys.iter()
                    .map(|(key, ty)| typed_value(file.get(key).map(String::as_str), ty))
                    .collect()
            })
            .collect();
        Partitions { keys, values }
    }
}

/// DuckDB's and Spark's choice: dates are dates, integers integers, the
/// rest text.
fn infer_type<'a>(values: impl Iterator<Item = &'a String> + Clone) -> DataType {
    let mut values = values.peekable();
    if values.peek().is_none() {
        return DataType::Utf8;
    }
    if values.clone().all(|v| parse_date(v).is_some()) {
        DataType::Date32
    } else if values.clone().all(|v| v.parse::<i64>().is_ok()) {
        DataType::Int64
    } else {
        DataType::Utf8
    }
}

fn parse_date(value: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
    let days = date.signed_duration_since(NaiveDate::default()).num_days();
    // NaiveDate::default() is 1970-01-01.
    i32::try_from(days).ok()
}

fn typed_value(value: Option<&str>, ty: &DataType) -> ScalarValue {
    match ty {
        DataType::Date32 => ScalarValue::Date32(value.and_then(parse_date)),
        DataType::Int64 => ScalarValue::Int64(value.and_then(|v| v.parse().ok())),
        _ => ScalarValue::Utf8(value.map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_typed_like_duckdb() {
        let dates = ["2018-11-12".to_string(), "2018-11-13".to_string()];
        assert_eq!(infer_type(dates.iter()), DataType::Date32);
        let ints = ["1".to_string(), "20".to_string()];
        assert_eq!(infer_type(ints.iter()), DataType::Int64);
        let mixed = ["2018-11-12".to_string(), "x".to_string()];
        assert_eq!(infer_type(mixed.iter()), DataType::Utf8);
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2018-02-30"), None);
        assert_eq!(typed_value(None, &DataType::Date32), ScalarValue::Date32(None));
    }
}
