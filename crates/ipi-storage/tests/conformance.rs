//! One conformance suite, run against every backend: `memory://`, a local
//! temporary directory, and S3 (object_store's `src/integration.rs` idea).
//!
//! The S3 run needs `IPI_TEST_S3_URL` (e.g. `s3://ipi-test/conformance`) and
//! the standard `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP` variables. Without
//! it the S3 tests print a line and pass, unless `IPI_TEST_S3_REQUIRED=1`.
//! Every run writes below its own `<IPI_TEST_S3_URL>/<uuid>/<test>/`.
//!
//! All tests share one multi-thread runtime: a store is cached per bucket for
//! the whole process, and its HTTP connection pool must outlive any single
//! test's runtime.

use std::sync::{Arc, OnceLock};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use futures::TryStreamExt;
use ipi_storage::object_store::buffered::BufWriter;
use ipi_storage::{
    Dataset, DatasetWriter, Error, Location, ObjectStoreExt, ParquetOptions, ParquetSink,
    ParquetSource, ReadOptions, WriteMode, WriterOptions, copy_object, expand, get_bytes, list_all,
    list_glob, put_atomic, put_if_absent, read_parquet,
};
use tokio::io::AsyncWriteExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// One id per test process, so reruns never see each other's objects.
fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::now_v7().to_string())
}

/// A fresh, empty root for one test on one backend; `None` when the backend
/// is not configured (S3 without `IPI_TEST_S3_URL`).
struct Root {
    location: Location,
    _dir: Option<tempfile::TempDir>,
}

enum Backend {
    Memory,
    Local,
    S3,
}

fn root(backend: Backend, test: &str) -> Option<Root> {
    match backend {
        Backend::Memory => {
            let url = format!("memory://conformance-{}/{test}", run_id());
            Some(Root { location: Location::parse(&url).expect("a memory URL"), _dir: None })
        }
        Backend::Local => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join(test);
            let location =
                Location::parse(path.to_str().expect("a UTF-8 temp path")).expect("a local path");
            Some(Root { location, _dir: Some(dir) })
        }
        Backend::S3 => {
            let required = std::env::var("IPI_TEST_S3_REQUIRED").is_ok_and(|v| v == "1");
            match std::env::var("IPI_TEST_S3_URL") {
                Ok(url) if !url.is_empty() => {
                    let base = Location::parse(&url).expect("IPI_TEST_S3_URL is a location");
                    Some(Root { location: base.join(run_id()).join(test), _dir: None })
                }
                _ if required => panic!("IPI_TEST_S3_REQUIRED=1 but IPI_TEST_S3_URL is not set"),
                _ => {
                    eprintln!("skipped: set IPI_TEST_S3_URL to run the S3 conformance test {test}");
                    None
                }
            }
        }
    }
}

/// Runs each named test body against each backend, as
/// `memory::<name>`, `local::<name>` and `s3::<name>`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory { $( #[test] fn $name() { super::run(super::Backend::Memory, stringify!($name), super::$name); } )* }
        mod local { $( #[test] fn $name() { super::run(super::Backend::Local, stringify!($name), super::$name); } )* }
        mod s3 { $( #[test] fn $name() { super::run(super::Backend::S3, stringify!($name), super::$name); } )* }
    };
}

fn run<F, Fut>(backend: Backend, name: &str, body: F)
where
    F: FnOnce(Location) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(root) = root(backend, name) else { return };
    let location = root.location.clone();
    runtime().block_on(async {
        body(location.clone()).await;
        // Tidy up a shared bucket; a failing test leaves its objects to look at.
        for meta in list_all(&location).await.unwrap_or_default() {
            let _ = location.store().delete(&meta.location).await;
        }
    });
}

conformance!(
    put_get_round_trip,
    delete_removes_the_object,
    put_if_absent_writes_once,
    conditional_update_rejects_a_stale_version,
    list_and_glob,
    expand_globs_files_and_prefixes,
    multipart_upload_round_trip,
    parquet_sink_streams_large_files,
    commit_is_atomic_and_idempotent,
    replace_partitions_keeps_untouched_partitions,
    stale_writers_conflict,
    open_or_glob_reads_foreign_parquet,
    interleaved_partitions_keep_write_order,
    closed_partitions_finish_in_the_background_and_reopen,
    failed_partitions_publish_nothing,
    copy_object_streams_to_and_from_local_disk,
    add_file_publishes_parquet_written_elsewhere,
    carried_row_groups_keep_their_columns_and_gain_new_ones,
);

// ---- helpers ---------------------------------------------------------------

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("day", DataType::Utf8, false),
    ]))
}

fn batch(day: &str, ids: std::ops::Range<i64>) -> RecordBatch {
    let n = ids.end - ids.start;
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids)),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| day))),
        ],
    )
    .expect("a valid batch")
}

/// Deterministic bytes that do not compress (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Paths relative to `root` of every object below it, sorted.
async fn raw_listing(root: &Location) -> Vec<String> {
    let prefix = format!("{}/", root.path());
    list_all(root)
        .await
        .expect("listing")
        .into_iter()
        .map(|m| {
            m.location.as_ref().strip_prefix(&prefix).unwrap_or(m.location.as_ref()).to_string()
        })
        .collect()
}

async fn sum_ids(dataset: &Dataset) -> i64 {
    let mut sum = 0;
    for file in dataset.files() {
        let options = ReadOptions::default().with_columns(["id"]).with_file_size(file.size);
        let batches: Vec<RecordBatch> =
            read_parquet(&file.location, &options).await.unwrap().try_collect().await.unwrap();
        for b in batches {
            let ids = b.column(0).as_any().downcast_ref::<Int64Array>().expect("id is Int64");
            sum += ids.values().iter().sum::<i64>();
        }
    }
    sum
}

/// The ids of each partition's files, in file order (paths sort by file
/// number), concatenated.
async fn ids_by_partition(dataset: &Dataset) -> std::collections::BTreeMap<String, Vec<i64>> {
    let mut out = std::collections::BTreeMap::<String, Vec<i64>>::new();
    for file in dataset.files() {
        let options = ReadOptions::default().with_columns(["id"]).with_file_size(file.size);
        let batches: Vec<RecordBatch> =
            read_parquet(&file.location, &options).await.unwrap().try_collect().await.unwrap();
        let ids = out.entry(file.partition.clone()).or_default();
        for b in batches {
            let column = b.column(0).as_any().downcast_ref::<Int64Array>().expect("id is Int64");
            ids.extend(column.values().iter().copied());
        }
    }
    out
}

// ---- object basics ---------------------------------------------------------

async fn put_get_round_trip(root: Location) {
    let loc = root.join("a/b/run.json");
    put_atomic(&loc, Bytes::from_static(b"{\"ok\":true}")).await.unwrap();
    assert_eq!(get_bytes(&loc).await.unwrap(), Bytes::from_static(b"{\"ok\":true}"));
    put_atomic(&loc, Bytes::from_static(b"{\"ok\":false}")).await.unwrap();
    assert_eq!(get_bytes(&loc).await.unwrap(), Bytes::from_static(b"{\"ok\":false}"));
    let meta = root.store().head(loc.path()).await.unwrap();
    assert_eq!(meta.size, 12);
    let missing = get_bytes(&root.join("nope")).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    assert!(missing.to_string().contains(&root.join("nope").to_string()), "{missing}");
}

async fn delete_removes_the_object(root: Location) {
    let loc = root.join("gone.txt");
    put_atomic(&loc, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(raw_listing(&root).await, ["gone.txt"]);
    ipi_storage::delete(&loc).await.unwrap();
    assert!(get_bytes(&loc).await.unwrap_err().is_not_found());
    assert!(raw_listing(&root).await.is_empty());
}

async fn put_if_absent_writes_once(root: Location) {
    let loc = root.join("_SUCCESS");
    assert!(put_if_absent(&loc, Bytes::from_static(b"first")).await.unwrap());
    assert!(!put_if_absent(&loc, Bytes::from_static(b"second")).await.unwrap());
    assert_eq!(get_bytes(&loc).await.unwrap(), Bytes::from_static(b"first"));
}

/// What the manifest PUT of a commit relies on to catch racing writers:
/// `If-Match` on S3 and in memory. Local disk has no conditional update, and
/// commits fall back to a plain atomic PUT there.
async fn conditional_update_rejects_a_stale_version(root: Location) {
    use ipi_storage::object_store::{
        Error as StoreError, PutMode, PutOptions, PutResult, UpdateVersion,
    };
    let loc = root.join("_ipi_dataset.json");
    let store = root.store();
    let first = store.put(loc.path(), Bytes::from_static(b"1").into()).await.unwrap();
    let second = store.put(loc.path(), Bytes::from_static(b"2").into()).await.unwrap();
    let update = |v: &PutResult| PutOptions::from(PutMode::Update(UpdateVersion::from(v.clone())));
    let stale = store.put_opts(loc.path(), Bytes::from_static(b"3").into(), update(&first)).await;
    if root.as_local_path().is_some() {
        assert!(matches!(stale, Err(StoreError::NotImplemented { .. })));
        return;
    }
    assert!(
        matches!(stale, Err(StoreError::Precondition { .. })),
        "a stale If-Match was accepted: {stale:?}"
    );
    store.put_opts(loc.path(), Bytes::from_static(b"4").into(), update(&second)).await.unwrap();
    assert_eq!(get_bytes(&loc).await.unwrap(), Bytes::from_static(b"4"));
}

// ---- listing ---------------------------------------------------------------

const TREE: &[&str] = &[
    "date=2018-11-11/part-0.parquet",
    "date=2018-11-12/part-0.parquet",
    "date=2018-11-12/part-1.parquet",
    "date=2018-11-12/_tmp.parquet",
    "date=2018-12-01/part-0.parquet",
    "_rejects/r.parquet",
    ".hidden/h.parquet",
    "readme.txt",
];

async fn put_tree(root: &Location) {
    for path in TREE {
        put_atomic(&root.join(path), Bytes::from(path.as_bytes().to_vec())).await.unwrap();
    }
}

fn names(root: &Location, metas: &[ipi_storage::ObjectMeta]) -> Vec<String> {
    let prefix = format!("{}/", root.path());
    metas.iter().map(|m| m.location.as_ref().strip_prefix(&prefix).unwrap().to_string()).collect()
}

async fn list_and_glob(root: Location) {
    put_tree(&root).await;
    let mut all: Vec<&str> = TREE.to_vec();
    all.sort_unstable();
    assert_eq!(raw_listing(&root).await, all);

    let parquet = list_glob(&root, "**/*.parquet").await.unwrap();
    assert_eq!(
        names(&root, &parquet),
        [
            "date=2018-11-11/part-0.parquet",
            "date=2018-11-12/part-0.parquet",
            "date=2018-11-12/part-1.parquet",
            "date=2018-12-01/part-0.parquet",
        ]
    );
    let november = list_glob(&root, "date=2018-11-*/*.parquet").await.unwrap();
    assert_eq!(names(&root, &november).len(), 3);
    let day = list_glob(&root, "date=2018-11-12/part-[0-9].parquet").await.unwrap();
    assert_eq!(
        names(&root, &day),
        ["date=2018-11-12/part-0.parquet", "date=2018-11-12/part-1.parquet"]
    );
    let rejects = list_glob(&root, "_rejects/*.parquet").await.unwrap();
    assert_eq!(names(&root, &rejects), ["_rejects/r.parquet"]);
    assert!(list_glob(&root, "nothing/*.parquet").await.unwrap().is_empty());
    assert!(list_glob(&root.join("absent"), "**").await.unwrap().is_empty());
}

async fn expand_globs_files_and_prefixes(root: Location) {
    put_tree(&root).await;
    let shown = |found: Vec<(Location, ipi_storage::ObjectMeta)>| {
        found
            .into_iter()
            .map(|(loc, meta)| {
                assert_eq!(loc.path(), &meta.location);
                loc.to_string()
            })
            .collect::<Vec<_>>()
    };

    let globbed = shown(expand(&format!("{root}/date=2018-11-*/*.parquet")).await.unwrap());
    assert_eq!(
        globbed,
        [
            root.join("date=2018-11-11/part-0.parquet").to_string(),
            root.join("date=2018-11-12/part-0.parquet").to_string(),
            root.join("date=2018-11-12/part-1.parquet").to_string(),
        ]
    );
    let file = root.join("readme.txt").to_string();
    assert_eq!(shown(expand(&file).await.unwrap()), std::slice::from_ref(&file));
    let prefix = shown(expand(&root.to_string()).await.unwrap());
    assert_eq!(prefix.len(), 5, "{prefix:?}");
    assert_eq!(prefix.last(), Some(&file));
    assert!(expand(&root.join("absent").to_string()).await.unwrap().is_empty());
}

// ---- multipart -------------------------------------------------------------

async fn multipart_upload_round_trip(root: Location) {
    const PART: usize = 5 * 1024 * 1024;
    let loc = root.join("big.bin");
    let data = noise(2 * PART + 123_457, 7);
    let mut upload = BufWriter::with_capacity(root.store(), loc.path().clone(), PART);
    for chunk in data.chunks(1024 * 1024) {
        upload.write_all(chunk).await.unwrap();
    }
    upload.shutdown().await.unwrap();

    let meta = root.store().head(loc.path()).await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    if !root.is_memory() && root.as_local_path().is_none() {
        // S3 names a multipart object's ETag "<md5 of part md5s>-<parts>".
        let etag = meta.e_tag.clone().unwrap_or_default();
        assert!(etag.trim_matches('"').ends_with("-3"), "not a 3-part upload: {etag}");
    }
    let back = get_bytes(&loc).await.unwrap();
    assert!(back == data, "the bytes read back differ");
}

async fn parquet_sink_streams_large_files(root: Location) {
    let loc = root.join("large.parquet");
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let options = ParquetOptions {
        max_row_group_rows: 200_000,
        upload_part_size: 5 * 1024 * 1024,
        ..ParquetOptions::default()
    };
    let mut sink = ParquetSink::create(&loc, schema.clone(), &options).unwrap();
    let mut expected = 0i64;
    let words = noise(8 * 900_000, 11);
    for chunk in words.chunks(8 * 100_000) {
        let values: Vec<i64> =
            chunk.chunks_exact(8).map(|w| i64::from_le_bytes(w.try_into().unwrap()) >> 8).collect();
        expected = values.iter().fold(expected, |acc, v| acc.wrapping_add(*v));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]).unwrap();
        sink.write(&batch).await.unwrap();
    }
    assert!(get_bytes(&loc).await.unwrap_err().is_not_found(), "visible before close");
    let written = sink.close().await.unwrap();
    assert_eq!(written.rows, 900_000);
    assert!(written.size > 5 * 1024 * 1024, "only {} bytes: no multipart", written.size);
    assert_eq!(root.store().head(loc.path()).await.unwrap().size, written.size);

    let mut stream =
        read_parquet(&loc, &ReadOptions::default().with_batch_size(50_000)).await.unwrap();
    assert_eq!(stream.schema().as_ref(), schema.as_ref());
    let (mut rows, mut sum) = (0usize, 0i64);
    while let Some(batch) = stream.try_next().await.unwrap() {
        assert!(batch.num_rows() <= 50_000);
        rows += batch.num_rows();
        let v = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        sum = v.values().iter().fold(sum, |acc, x| acc.wrapping_add(*x));
    }
    assert_eq!((rows, sum), (900_000, expected));

    let footer = ipi_storage::read_parquet_metadata(&loc, None).await.unwrap();
    assert_eq!(footer.metadata().num_row_groups(), 5);
    assert!(footer.metadata().file_metadata().created_by().unwrap_or_default().starts_with("ipi "));
    let missing =
        read_parquet(&loc, &ReadOptions::default().with_columns(["nope"])).await.unwrap_err();
    assert!(matches!(missing, Error::ColumnNotFound { .. }), "{missing:?}");
}

/// Objects stream from this backend to the local disk and back, in parts,
/// whatever their size; a copy from nowhere writes nothing.
async fn copy_object_streams_to_and_from_local_disk(root: Location) {
    let dir = tempfile::tempdir().unwrap();
    let data = noise(2 * 10 * 1024 * 1024 + 99, 3);
    let small = root.join("small.bin");
    put_atomic(&small, Bytes::from(data.clone())).await.unwrap();
    let local = Location::from_local_path(&dir.path().join("a [copy]/big.bin")).unwrap();
    assert_eq!(copy_object(&small, &local).await.unwrap(), data.len() as u64);
    assert!(std::fs::read(dir.path().join("a [copy]/big.bin")).unwrap() == data);
    let back = root.join("back/big.bin");
    assert_eq!(copy_object(&local, &back).await.unwrap(), data.len() as u64);
    assert!(get_bytes(&back).await.unwrap() == data, "the bytes copied back differ");
    let empty = root.join("empty");
    put_atomic(&empty, Bytes::new()).await.unwrap();
    assert_eq!(copy_object(&empty, &root.join("empty2")).await.unwrap(), 0);
    let err = copy_object(&root.join("absent"), &root.join("nothing")).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(get_bytes(&root.join("nothing")).await.unwrap_err().is_not_found());
}

/// Parquet files made by another encoder are published by the commit like
/// the writer's own; other column types are refused.
async fn add_file_publishes_parquet_written_elsewhere(root: Location) {
    let dir = tempfile::tempdir().unwrap();
    let made = Location::from_local_path(&dir.path().join("made.parquet")).unwrap();
    let mut sink = ParquetSink::create(&made, schema(), &ParquetOptions::default()).unwrap();
    sink.write(&batch("x", 0..10)).await.unwrap();
    sink.close().await.unwrap();
    let empty = Location::from_local_path(&dir.path().join("empty.parquet")).unwrap();
    ParquetSink::create(&empty, schema(), &ParquetOptions::default())
        .unwrap()
        .close()
        .await
        .unwrap();

    let ds = root.join("ds");
    let mut writer = DatasetWriter::new(ds.clone(), schema(), WriteMode::Overwrite);
    let added = writer.add_file(None, &made).await.unwrap();
    assert_eq!(added.rows, 10);
    assert_eq!(added.location, ds.join(&format!("part-{}-00000.parquet", writer.txn())));
    assert_eq!(writer.add_file("d=1", &empty).await.unwrap().rows, 0);
    writer.write("d=2", &batch("d", 10..15)).await.unwrap();
    let err = writer.add_file("d=2", &made).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPartition { .. }), "{err:?}");
    let other: SchemaRef = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let err = DatasetWriter::new(ds.clone(), other, WriteMode::Overwrite)
        .add_file(None, &made)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
    assert!(matches!(Dataset::open(&ds).await.unwrap_err(), Error::NotADataset { .. }));

    let summary = writer.commit().await.unwrap();
    assert_eq!((summary.files, summary.rows), (3, 15));
    let dataset = Dataset::open(&ds).await.unwrap();
    assert_eq!(dataset.partitions(), ["", "d=1", "d=2"]);
    assert_eq!(sum_ids(&dataset).await, (0..15).sum::<i64>());
}

async fn carried_row_groups_keep_their_columns_and_gain_new_ones(root: Location) {
    // A source of three row groups of 10 rows (ids 0..30), with a page index.
    let source = root.join("source.parquet");
    let options = ParquetOptions { max_row_group_rows: 10, ..ParquetOptions::default() };
    let mut sink = ParquetSink::create(&source, schema(), &options).unwrap();
    sink.write(&batch("x", 0..30)).await.unwrap();
    sink.close().await.unwrap();
    // Another with the same columns but `id` written plain, not
    // dictionary-encoded: other pages, the same types, so it carries too.
    let plain = ParquetOptions { plain_columns: vec!["id".into()], ..ParquetOptions::default() };
    let dictionary = root.join("plain.parquet");
    let mut sink = ParquetSink::create(&dictionary, schema(), &plain).unwrap();
    sink.write(&batch("y", 100..105)).await.unwrap();
    sink.close().await.unwrap();
    // And one whose `id` is Int32: not carried.
    let narrow: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("day", DataType::Utf8, false),
    ]));
    let other = root.join("other.parquet");
    let mut sink = ParquetSink::create(&other, narrow.clone(), &ParquetOptions::default()).unwrap();
    let columns: Vec<arrow_array::ArrayRef> = vec![
        Arc::new(arrow_array::Int32Array::from(vec![1, 2])),
        Arc::new(StringArray::from(vec!["z", "z"])),
    ];
    sink.write(&RecordBatch::try_new(narrow, columns).unwrap()).await.unwrap();
    sink.close().await.unwrap();

    let mut fields: Vec<Field> = schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("twice", DataType::Int64, false));
    let out_schema: SchemaRef = Arc::new(Schema::new(fields));
    let extra_schema: SchemaRef =
        Arc::new(Schema::new(vec![Field::new("twice", DataType::Int64, false)]));
    let ds = root.join("ds");
    let mut writer = DatasetWriter::new(ds.clone(), out_schema.clone(), WriteMode::Overwrite);
    let mut carried = writer.carry("d=1", 2).unwrap();

    let source = ParquetSource::open(&source, None).await.unwrap();
    assert_eq!(source.num_row_groups(), 3);
    assert!(source.row_group_bytes(0) > 0);
    // Row groups 2 and 0, in that order, with `twice` = 2 × id.
    for index in [2, 0] {
        let group = source.row_group(index).await.unwrap();
        assert!(carried.accepts(&group));
        let ids: Vec<RecordBatch> =
            group.read(Some(&["id", "nope"]), 4).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(ids.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [4, 4, 2]);
        let ids: Vec<i64> = ids
            .iter()
            .flat_map(|b| {
                b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()
            })
            .collect();
        assert_eq!(ids, (index as i64 * 10..index as i64 * 10 + 10).collect::<Vec<_>>());
        let twice = Int64Array::from_iter_values(ids.iter().map(|i| 2 * i));
        let extra = RecordBatch::try_new(extra_schema.clone(), vec![Arc::new(twice)]).unwrap();
        // The new columns must have the row group's rows.
        let short = extra.slice(0, 3);
        assert!(carried.append(&group, &short).await.is_err());
        carried.append(&group, &extra).await.unwrap();
    }
    let plain = ParquetSource::open(&dictionary, None).await.unwrap();
    let group = plain.row_group(0).await.unwrap();
    let other = ParquetSource::open(&other, None).await.unwrap();
    let narrow_group = other.row_group(0).await.unwrap();
    assert!(!carried.accepts(&narrow_group));
    assert!(carried.append(&narrow_group, &extra_schema_rows(&extra_schema, 2)).await.is_err());
    assert!(carried.accepts(&group));
    let twice = Int64Array::from_iter_values((100..105).map(|i| 2 * i));
    carried
        .append(&group, &RecordBatch::try_new(extra_schema.clone(), vec![Arc::new(twice)]).unwrap())
        .await
        .unwrap();
    assert_eq!(carried.rows(), 25);
    writer.add_carried(carried).await.unwrap();
    // An empty carried file is dropped.
    let empty = writer.carry("d=2", 2).unwrap();
    writer.add_carried(empty).await.unwrap();
    let summary = writer.commit().await.unwrap();
    assert_eq!((summary.files, summary.rows), (1, 25));

    let dataset = Dataset::open(&ds).await.unwrap();
    assert_eq!(dataset.partitions(), ["d=1"]);
    let file = &dataset.files()[0];
    assert!(file.path.ends_with("-c00000.parquet"), "{}", file.path);
    let options = ReadOptions::default().with_file_size(file.size);
    let batches: Vec<RecordBatch> =
        read_parquet(&file.location, &options).await.unwrap().try_collect().await.unwrap();
    assert_eq!(batches[0].schema().fields(), out_schema.fields());
    let column = |b: &RecordBatch, i: usize| -> Vec<i64> {
        b.column(i).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()
    };
    let ids: Vec<i64> = batches.iter().flat_map(|b| column(b, 0)).collect();
    let twice: Vec<i64> = batches.iter().flat_map(|b| column(b, 2)).collect();
    let days: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let days = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            days.iter().map(|d| d.unwrap_or_default().to_string()).collect::<Vec<_>>()
        })
        .collect();
    let expected: Vec<i64> = (20..30).chain(0..10).chain(100..105).collect();
    assert_eq!(ids, expected);
    assert_eq!(twice, expected.iter().map(|i| 2 * i).collect::<Vec<_>>());
    assert_eq!(days.iter().filter(|d| *d == "x").count(), 20);
    assert_eq!(days.iter().filter(|d| *d == "y").count(), 5);
    // The carried chunks keep their statistics: the first row group's ids
    // run from 20 to 29.
    let footer = ipi_storage::read_parquet_metadata(&file.location, Some(file.size)).await.unwrap();
    let stats = footer.metadata().row_group(0).column(0).statistics().unwrap();
    assert_eq!(stats.min_bytes_opt(), Some(&20i64.to_le_bytes()[..]));
    assert_eq!(stats.max_bytes_opt(), Some(&29i64.to_le_bytes()[..]));
}

/// `n` rows of `schema`'s single Int64 column.
fn extra_schema_rows(schema: &SchemaRef, n: i64) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from_iter_values(0..n))])
        .unwrap()
}

// ---- atomic commit ---------------------------------------------------------

async fn commit_is_atomic_and_idempotent(root: Location) {
    // A fresh prefix is not a dataset, even with a writer's files in it.
    let mut writer = DatasetWriter::new(root.clone(), schema(), WriteMode::Overwrite);
    writer.write("date=2018-11-12", &batch("2018-11-12", 0..100)).await.unwrap();
    writer.close_files().await.unwrap();
    assert_eq!(raw_listing(&root).await.len(), 1);
    let err = Dataset::open(&root).await.unwrap_err();
    assert!(matches!(err, Error::NotADataset { .. }), "{err:?}");

    // (b) After commit: the new content.
    let first = writer.commit().await.unwrap();
    assert_eq!((first.files, first.rows), (1, 100));
    let dataset = Dataset::open(&root).await.unwrap();
    assert_eq!(dataset.num_rows(), 100);
    assert_eq!(dataset.commit_id(), Some(first.commit.as_str()));
    assert_eq!(dataset.partitions(), ["date=2018-11-12"]);
    assert_eq!(dataset.schema().map(|s| s.fields().clone()), Some(schema().fields().clone()));
    assert_eq!(sum_ids(&dataset).await, (0..100).sum::<i64>());

    // (a) A writer that wrote files but did not commit changes nothing; its
    // files are orphans.
    let mut dropped = DatasetWriter::new(root.clone(), schema(), WriteMode::Overwrite);
    dropped.write("date=2018-11-12", &batch("2018-11-12", 0..7)).await.unwrap();
    dropped.write("date=2018-11-13", &batch("2018-11-13", 0..7)).await.unwrap();
    dropped.close_files().await.unwrap();
    drop(dropped);
    assert_eq!(raw_listing(&root).await.len(), 4); // manifest + 1 committed + 2 orphans
    let still = Dataset::open(&root).await.unwrap();
    assert_eq!(still.num_rows(), 100);
    assert_eq!(still.commit_id(), Some(first.commit.as_str()));

    // (c) Re-running the same write does not duplicate, and the clean-up
    // removes the replaced file and the orphans.
    for mode in [WriteMode::Overwrite, WriteMode::ReplacePartitions] {
        let mut again = DatasetWriter::new(root.clone(), schema(), mode);
        again.write("date=2018-11-12", &batch("2018-11-12", 0..100)).await.unwrap();
        let summary = again.commit().await.unwrap();
        assert_eq!((summary.files, summary.rows), (1, 100), "{mode:?}");
        assert_eq!(summary.delete_failures, 0);
        let dataset = Dataset::open(&root).await.unwrap();
        assert_eq!(dataset.num_rows(), 100, "{mode:?}");
        assert_eq!(sum_ids(&dataset).await, (0..100).sum::<i64>());
        let expected_file = format!("date=2018-11-12/part-{}-00000.parquet", summary.commit);
        assert_eq!(
            raw_listing(&root).await,
            [ipi_storage::MANIFEST_NAME.to_string(), expected_file]
        );
    }

    // Append adds; an empty Overwrite empties.
    let mut append = DatasetWriter::new(root.clone(), schema(), WriteMode::Append);
    append.write(None, &batch("", 100..150)).await.unwrap();
    append.commit().await.unwrap();
    let dataset = Dataset::open(&root).await.unwrap();
    assert_eq!(dataset.num_rows(), 150);
    assert_eq!(dataset.partitions(), ["", "date=2018-11-12"]);
    let empty =
        DatasetWriter::new(root.clone(), schema(), WriteMode::Overwrite).commit().await.unwrap();
    assert_eq!((empty.files, empty.rows, empty.deleted), (0, 0, 2));
    assert_eq!(raw_listing(&root).await, [ipi_storage::MANIFEST_NAME]);
}

async fn replace_partitions_keeps_untouched_partitions(root: Location) {
    // Objects that belong to others live beside the dataset.
    put_atomic(&root.join("_rejects/part-0.parquet"), Bytes::from_static(b"r")).await.unwrap();
    put_atomic(&root.join("_manifest.json"), Bytes::from_static(b"{}")).await.unwrap();

    let mut writer = DatasetWriter::new(root.clone(), schema(), WriteMode::ReplacePartitions)
        .with_options(WriterOptions { target_file_rows: Some(40), ..WriterOptions::default() });
    for day in ["2018-11-11", "2018-11-12", "2018-11-13"] {
        for chunk in 0..3 {
            writer
                .write(format!("date={day}").as_str(), &batch(day, chunk * 20..chunk * 20 + 20))
                .await
                .unwrap();
        }
    }
    let first = writer.commit().await.unwrap();
    // 60 rows a day, rolled over at 40 rows: two files a day.
    assert_eq!((first.files, first.files_written, first.rows), (6, 6, 180));

    let mut rerun = DatasetWriter::new(root.clone(), schema(), WriteMode::ReplacePartitions);
    rerun.write("date=2018-11-12", &batch("2018-11-12", 1000..1010)).await.unwrap();
    rerun.mark_written("date=2018-11-13").unwrap(); // replaced by nothing
    let second = rerun.commit().await.unwrap();
    assert_eq!(second.partitions_written, ["date=2018-11-12", "date=2018-11-13"]);
    assert_eq!((second.files, second.rows, second.deleted), (3, 70, 4));

    let dataset = Dataset::open(&root).await.unwrap();
    assert_eq!(dataset.partitions(), ["date=2018-11-11", "date=2018-11-12"]);
    let by_day = |day: &str| {
        dataset.files().iter().filter(|f| f.partition == day).map(|f| f.rows).sum::<u64>()
    };
    assert_eq!(by_day("date=2018-11-11"), 60);
    assert_eq!(by_day("date=2018-11-12"), 10);
    assert_eq!(sum_ids(&dataset).await, (0..60).sum::<i64>() + (1000..1010).sum::<i64>());
    for file in dataset.files() {
        if file.partition == "date=2018-11-11" {
            assert!(file.path.contains(&first.commit), "{}", file.path);
        } else {
            assert!(file.path.contains(&second.commit), "{}", file.path);
        }
    }
    let listing = raw_listing(&root).await;
    assert!(listing.contains(&"_rejects/part-0.parquet".to_string()), "{listing:?}");
    assert!(listing.contains(&"_manifest.json".to_string()), "{listing:?}");
    assert_eq!(listing.len(), 3 + 3);

    // A different schema cannot be mixed in.
    let other: SchemaRef = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let err =
        DatasetWriter::new(root.clone(), other, WriteMode::Append).commit().await.unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
}

async fn stale_writers_conflict(root: Location) {
    let mut writers = Vec::new();
    for ids in [0..5, 5..10, 10..15] {
        let mut w = DatasetWriter::new(root.clone(), schema(), WriteMode::Append);
        w.write("date=2018-11-12", &batch("2018-11-12", ids)).await.unwrap();
        w.close_files().await.unwrap();
        writers.push(w);
    }
    let [oldest, middle, newest] = <[DatasetWriter; 3]>::try_from(writers).unwrap();
    assert!(oldest.txn() < middle.txn() && middle.txn() < newest.txn());

    // The middle commit's clean-up takes the older writer's files for a
    // crashed writer's orphans, and leaves the newer, running writer's.
    let committed = middle.commit().await.unwrap();
    assert_eq!(committed.deleted, 1);
    assert_eq!(raw_listing(&root).await.len(), 3);
    // So the older writer must not publish: its files are gone.
    let err = oldest.commit().await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let dataset = Dataset::open(&root).await.unwrap();
    assert_eq!((dataset.num_rows(), dataset.commit_id()), (5, Some(committed.commit.as_str())));
    // The newer one may.
    let last = newest.commit().await.unwrap();
    assert_eq!((last.files, last.rows, last.deleted), (2, 10, 0));
    assert_eq!(sum_ids(&Dataset::open(&root).await.unwrap()).await, (5..15).sum::<i64>());
}

async fn open_or_glob_reads_foreign_parquet(root: Location) {
    for (i, day) in ["2018-11-11", "2018-11-12"].iter().enumerate() {
        let loc = root.join(&format!("date={day}/data.parquet"));
        let mut sink = ParquetSink::create(&loc, schema(), &ParquetOptions::default()).unwrap();
        sink.write(&batch(day, 0..(10 + i as i64))).await.unwrap();
        sink.close().await.unwrap();
    }
    put_atomic(&root.join("_SUCCESS"), Bytes::new()).await.unwrap();
    assert!(matches!(Dataset::open(&root).await.unwrap_err(), Error::NotADataset { .. }));
    let dataset = Dataset::open_or_glob(&root).await.unwrap();
    assert!(dataset.manifest().is_none());
    assert_eq!(dataset.num_rows(), 21);
    assert_eq!(dataset.partitions(), ["date=2018-11-11", "date=2018-11-12"]);
    assert_eq!(dataset.schema().map(|s| s.fields().clone()), Some(schema().fields().clone()));

    let single = Dataset::open_or_glob(&root.join("date=2018-11-12/data.parquet")).await.unwrap();
    assert_eq!(single.num_rows(), 11);
    let err = Dataset::open_or_glob(&root.join("absent")).await.unwrap_err();
    assert!(matches!(err, Error::NotADataset { .. }), "{err:?}");
    assert!(err.to_string().contains("absent"), "{err}");
}

// ---- concurrent partitions ------------------------------------------------

/// Batches written round-robin to five partitions come back in write order
/// per partition, rolled into the same files whatever the concurrency.
async fn interleaved_partitions_keep_write_order(root: Location) {
    const DAYS: [&str; 5] = ["2018-11-11", "2018-11-12", "2018-11-13", "2018-11-14", "2018-11-15"];
    let mut published = Vec::new();
    for (name, concurrency) in [("one", 1), ("four", 4)] {
        let options = WriterOptions {
            target_file_rows: Some(250),
            encode_concurrency: concurrency,
            ..WriterOptions::default()
        };
        let mut writer = DatasetWriter::new(root.join(name), schema(), WriteMode::Overwrite)
            .with_options(options);
        let mut expected = std::collections::BTreeMap::<String, Vec<i64>>::new();
        // Ids count up in call order, so each partition's must come back
        // increasing and complete.
        let mut next = 0i64;
        for _ in 0..12 {
            for day in DAYS {
                let ids = next..next + 50;
                next += 50;
                let partition = format!("date={day}");
                expected.entry(partition.clone()).or_default().extend(ids.clone());
                writer.write(partition.as_str(), &batch(day, ids)).await.unwrap();
            }
        }
        let summary = writer.commit().await.unwrap();
        // 600 rows a partition, rolled over at 250 rows: 250 + 250 + 100.
        assert_eq!((summary.files_written, summary.rows_written), (15, 3000), "{name}");
        let dataset = Dataset::open(&root.join(name)).await.unwrap();
        assert_eq!(ids_by_partition(&dataset).await, expected, "{name}");
        let rows: Vec<u64> = dataset.files().iter().map(|f| f.rows).collect();
        assert_eq!(rows, [250, 250, 100].repeat(5), "{name}");
        published.push((dataset, summary.commit));
    }
    // The same calls make the same bytes (file names aside).
    let (one, four) = (&published[0].0, &published[1].0);
    for (a, b) in one.files().iter().zip(four.files()) {
        assert_eq!(a.path.replace(&published[0].1, "txn"), b.path.replace(&published[1].1, "txn"));
        assert!(get_bytes(&a.location).await.unwrap() == get_bytes(&b.location).await.unwrap());
    }

    // A writer dropped with its partitions' tasks busy publishes nothing,
    // and the next commit removes whatever it left.
    let mut dropped = DatasetWriter::new(root.join("one"), schema(), WriteMode::Append);
    for (i, day) in DAYS.iter().enumerate() {
        dropped
            .write(format!("date={day}").as_str(), &batch(day, 0..(i as i64 + 1)))
            .await
            .unwrap();
    }
    drop(dropped);
    let still = Dataset::open(&root.join("one")).await.unwrap();
    assert_eq!((still.num_rows(), still.commit_id()), (3000, Some(published[0].1.as_str())));
    let rerun = DatasetWriter::new(root.join("one"), schema(), WriteMode::Append);
    let summary = rerun.commit().await.unwrap();
    assert_eq!((summary.files, summary.rows), (15, 3000));
    // An aborted task that was being polled on another thread when the
    // writer was dropped may still finish its upload after that clean-up
    // listed the objects: the next commit removes it.
    let mut listing = raw_listing(&root.join("one")).await;
    for _ in 0..20 {
        if listing.len() == 16 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let again = DatasetWriter::new(root.join("one"), schema(), WriteMode::Append);
        again.commit().await.unwrap();
        listing = raw_listing(&root.join("one")).await;
    }
    assert_eq!(listing.len(), 16, "{listing:?}");
}

/// `close_partition` finishes a partition's file while the writer goes on;
/// writing there again starts the next file (numbered after it), and the
/// commit publishes both, in order.
async fn closed_partitions_finish_in_the_background_and_reopen(root: Location) {
    let mut writer = DatasetWriter::new(root.clone(), schema(), WriteMode::Overwrite);
    writer.write("date=2018-11-12", &batch("2018-11-12", 0..10)).await.unwrap();
    writer.close_partition("date=2018-11-12").unwrap();
    writer.close_partition("date=2018-11-30").unwrap(); // never written: nothing to do
    writer.write("date=2018-11-13", &batch("2018-11-13", 10..20)).await.unwrap();
    writer.close_partition("date=2018-11-13").unwrap();
    writer.write("date=2018-11-12", &batch("2018-11-12", 20..25)).await.unwrap();
    let summary = writer.commit().await.unwrap();
    assert_eq!((summary.files_written, summary.rows_written), (3, 25));
    let dataset = Dataset::open(&root).await.unwrap();
    let ids = ids_by_partition(&dataset).await;
    assert_eq!(ids["date=2018-11-12"], (0..10).chain(20..25).collect::<Vec<_>>());
    assert_eq!(ids["date=2018-11-13"], (10..20).collect::<Vec<_>>());
    let paths: Vec<&str> = dataset.files().iter().map(|f| f.path.as_str()).collect();
    assert!(
        paths[0].ends_with("-00000.parquet") && paths[1].ends_with("-00001.parquet"),
        "{paths:?}"
    );
}

/// A batch of the wrong types is refused by `write` itself. A partition
/// that cannot be stored fails a later `write` or the commit, with its URL,
/// and then the whole writer: nothing is published.
async fn failed_partitions_publish_nothing(root: Location) {
    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("day", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["1"])),
            Arc::new(StringArray::from(vec!["2018-11-12"])),
        ],
    )
    .unwrap();
    let mut writer = DatasetWriter::new(root.clone(), schema(), WriteMode::Overwrite);
    let err = writer.write("date=2018-11-12", &wrong).await.unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
    writer.write("date=2018-11-12", &batch("2018-11-12", 0..10)).await.unwrap();
    let first = writer.commit().await.unwrap();
    assert_eq!(first.rows, 10);

    // Only local disk can be made to refuse an object: a file stands where
    // a partition's directory would go.
    if root.as_local_path().is_none() {
        return;
    }
    put_atomic(&root.join("date=2018-11-13"), Bytes::from_static(b"in the way")).await.unwrap();

    // Small files: the failure comes at the close, from the commit.
    let mut writer = DatasetWriter::new(root.clone(), schema(), WriteMode::Overwrite);
    writer.write("date=2018-11-12", &batch("2018-11-12", 0..20)).await.unwrap();
    writer.write("date=2018-11-13", &batch("2018-11-13", 0..20)).await.unwrap();
    let err = writer.commit().await.unwrap_err();
    assert!(matches!(err, Error::ObjectStore { .. }), "{err:?}");
    assert!(err.to_string().contains("/date=2018-11-13/part-"), "{err}");
    let dataset = Dataset::open(&root).await.unwrap();
    assert_eq!((dataset.num_rows(), dataset.commit_id()), (10, Some(first.commit.as_str())));

    // A row group per batch and a tiny upload buffer: the upload starts, and
    // fails, while batches are still being written.
    let options = WriterOptions {
        parquet: ParquetOptions {
            max_row_group_rows: 10,
            upload_part_size: 1,
            ..ParquetOptions::default()
        },
        ..WriterOptions::default()
    };
    let mut writer =
        DatasetWriter::new(root.clone(), schema(), WriteMode::Overwrite).with_options(options);
    let mut failure = None;
    for i in 0..100 {
        let ids = i * 10..i * 10 + 10;
        if let Err(e) = writer.write("date=2018-11-13", &batch("2018-11-13", ids)).await {
            failure = Some(e);
            break;
        }
    }
    let err = failure.expect("a write to the refused partition fails");
    assert!(matches!(err, Error::ObjectStore { .. }), "{err:?}");
    assert!(err.to_string().contains("/date=2018-11-13/part-"), "{err}");
    // From then on the writer refuses everything, the commit included.
    let again = writer.write("date=2018-11-12", &batch("2018-11-12", 0..1)).await.unwrap_err();
    assert!(matches!(again, Error::WriterFailed { .. }), "{again:?}");
    assert!(again.to_string().contains("date=2018-11-13"), "{again}");
    let commit = writer.commit().await.unwrap_err();
    assert!(matches!(commit, Error::WriterFailed { .. }), "{commit:?}");
    assert_eq!(Dataset::open(&root).await.unwrap().commit_id(), Some(first.commit.as_str()));
}
