//! ipi-sql against in-memory and local stores: which datasets become
//! tables, partition pruning, bound parameters, the read-only guard, and
//! errors that point into the text.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use ipi_sql::{Error, ParamValue, Params, Query, QuerySession, SessionOptions};
use ipi_storage::{DatasetWriter, Location, WriteMode};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("entity", DataType::Utf8, false),
        Field::new("ipv4", DataType::UInt32, true),
        Field::new("anomaly_score", DataType::Float32, false),
    ]))
}

fn batch(entities: &[&str], scores: &[f32]) -> RecordBatch {
    let ipv4: Vec<Option<u32>> =
        (0..entities.len() as u32).map(|i| Some(0x0a00_0000 + i)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(entities.to_vec())),
        Arc::new(UInt32Array::from(ipv4)),
        Arc::new(Float32Array::from(scores.to_vec())),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

/// `days` daily partitions of `root`, two rows each, one commit.
async fn write_days(root: &Location, days: &[&str]) {
    let mut writer = DatasetWriter::new(root.clone(), schema(), WriteMode::ReplacePartitions);
    for day in days {
        writer
            .write(format!("date={day}").as_str(), &batch(&["alice", "bob"], &[1.5, -2.0]))
            .await
            .unwrap();
    }
    writer.commit().await.unwrap();
}

async fn session(store: &str) -> QuerySession {
    QuerySession::open(&SessionOptions { store: Some(store.into()), ..SessionOptions::default() })
        .await
        .unwrap()
}

async fn rows(session: &QuerySession, query: &Query) -> Vec<RecordBatch> {
    let prepared = session.prepare(query).await.unwrap_or_else(|e| panic!("{e}"));
    prepared.execute().unwrap().try_collect().await.unwrap()
}

fn count(batches: &[RecordBatch]) -> i64 {
    let column = batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    column.value(0)
}

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), ParamValue::from(*v))).collect()
}

fn november() -> Vec<String> {
    (1..=30).map(|d| format!("2018-11-{d:02}")).collect()
}

#[tokio::test]
async fn a_month_queried_for_one_day_reads_only_that_days_files() {
    let root = Location::parse("memory://sql-prune/ipi/scores").unwrap();
    let days = november();
    write_days(&root, &days.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let session = session("memory://sql-prune/ipi").await;
    assert_eq!(session.tables()[0].files, 30);

    let one_day = Query::inline(
        "SELECT count(*) FROM scores WHERE date = CAST($date AS DATE)",
        params(&[("date", "2018-11-12")]),
    );
    let prepared = session.prepare(&one_day).await.unwrap();
    let files = prepared.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].contains("/date=2018-11-12/"), "{files:?}");
    assert_eq!(count(&rows(&session, &one_day).await), 2);

    // A week, with interval arithmetic on the bound date.
    let week = Query::inline(
        "SELECT count(*) FROM scores \
         WHERE date BETWEEN CAST($date AS DATE) - INTERVAL '6 days' AND CAST($date AS DATE)",
        params(&[("date", "2018-11-12")]),
    );
    let files = session.prepare(&week).await.unwrap().files();
    assert_eq!(files.len(), 7, "{files:?}");
    let day_of = |f: &String| {
        f.split("date=").nth(1).and_then(|rest| rest.split('/').next()).unwrap().to_string()
    };
    let days: Vec<String> = files.iter().map(day_of).collect();
    assert_eq!(days, (6..=12).map(|d| format!("2018-11-{d:02}")).collect::<Vec<_>>());
    // No filter on the partition column: every file.
    let all = Query::inline("SELECT count(*) FROM scores WHERE anomaly_score > 0", Params::new());
    assert_eq!(session.prepare(&all).await.unwrap().files().len(), 30);
    // A day outside the month: nothing to read at all.
    let none =
        Query::inline("SELECT count(*) FROM scores WHERE date = DATE '2019-01-01'", Params::new());
    assert!(session.prepare(&none).await.unwrap().files().is_empty());
    assert_eq!(count(&rows(&session, &none).await), 0);
}

#[tokio::test]
async fn only_committed_files_are_rows_and_rejects_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Location::from_local_path(dir.path()).unwrap();
    let scores = store.join("scores");
    write_days(&scores, &["2018-11-12", "2018-11-13"]).await;
    // A writer that crashed left a file the manifest does not list, and
    // the score step's rejects sit beside the data.
    let committed = ipi_storage::Dataset::open(&scores).await.unwrap();
    let orphan = scores.join("date=2018-11-12/part-ffffffff-orphan-00000.parquet");
    ipi_storage::copy_object(&committed.files()[0].location, &orphan).await.unwrap();
    let rejects = DatasetWriter::new(scores.join("_rejects"), schema(), WriteMode::Overwrite);
    let mut rejects = rejects;
    rejects.write("date=2018-11-12", &batch(&["x"], &[0.0])).await.unwrap();
    rejects.commit().await.unwrap();
    assert!(dir.path().join("scores/date=2018-11-12/part-ffffffff-orphan-00000.parquet").exists());

    let session = session(&store.to_string()).await;
    let query = Query::inline("SELECT count(*) FROM scores", Params::new());
    assert_eq!(count(&rows(&session, &query).await), 4);
    let files = session.prepare(&query).await.unwrap().files();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| !f.contains("orphan") && !f.contains("_rejects")), "{files:?}");
}

#[tokio::test]
async fn standard_tables_are_found_where_the_steps_write_them() {
    let store = "memory://sql-discover/ipi";
    let root = Location::parse(store).unwrap();
    write_days(&root.join("scores"), &["2018-11-12"]).await;
    // synth in pipelines/daily.toml writes labels under demo/.
    write_days(&root.join("demo/labels"), &["2018-11-12"]).await;
    // Two days of splits: the latest is used, all three from that day.
    for (day, names) in [
        ("2018-11-12", &["train", "validation", "test"][..]),
        ("2018-11-13", &["train", "test"][..]),
    ] {
        for name in names {
            let mut writer = DatasetWriter::new(
                root.join(&format!("splits/{day}/{name}")),
                schema(),
                WriteMode::Overwrite,
            );
            writer.write(None, &batch(&["alice"], &[0.0])).await.unwrap();
            writer.commit().await.unwrap();
        }
    }
    let session = session(store).await;
    let names: Vec<(&str, &str)> =
        session.tables().iter().map(|t| (t.name.as_str(), t.url.as_str())).collect();
    assert_eq!(
        names,
        [
            ("labels", "memory://sql-discover/ipi/demo/labels"),
            ("scores", "memory://sql-discover/ipi/scores"),
            ("test", "memory://sql-discover/ipi/splits/2018-11-13/test"),
            ("train", "memory://sql-discover/ipi/splits/2018-11-13/train"),
        ]
    );
    // An unpartitioned dataset has no date column; a partitioned one has a DATE.
    let q = Query::inline("SELECT * FROM train", Params::new());
    let schema = session.prepare(&q).await.unwrap().schema();
    assert!(schema.field_with_name("date").is_err());
    let q = Query::inline("SELECT date FROM labels", Params::new());
    let schema = session.prepare(&q).await.unwrap().schema();
    assert_eq!(schema.field(0).data_type(), &DataType::Date32);

    // A standard table the store lacks is a plain SQL error, and the
    // report runner can tell which.
    let q = Query::inline("SELECT * FROM events", Params::new());
    assert_eq!(session.missing_tables(&q).unwrap(), ["events"]);
    let err = session.prepare(&q).await.unwrap_err();
    assert!(matches!(err, Error::Sql(_)), "{err}");
    assert!(err.to_string().contains("events"), "{err}");
    // --table adds one, or moves a standard one.
    let session = QuerySession::open(&SessionOptions {
        store: Some(store.into()),
        tables: vec![("events".into(), format!("{store}/scores"))],
        ..SessionOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(
        count(&rows(&session, &Query::inline("SELECT count(*) FROM events", Params::new())).await),
        2
    );
    let bad = QuerySession::open(&SessionOptions {
        tables: vec![("nothing".into(), format!("{store}/nothing"))],
        ..SessionOptions::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(bad, Error::Table { .. }), "{bad}");
}

#[tokio::test]
async fn parameters_are_bound_never_spliced() {
    let store = "memory://sql-params/ipi";
    write_days(&Location::parse(store).unwrap().join("scores"), &["2018-11-12"]).await;
    let session = session(store).await;

    // A value that would widen the filter if it were pasted into the text.
    let sneaky = "alice' OR '1'='1";
    let q = Query::inline(
        "SELECT count(*) FROM scores WHERE entity = $who",
        params(&[("who", sneaky)]),
    );
    assert_eq!(count(&rows(&session, &q).await), 0);
    let q = Query::inline("SELECT $who AS v", params(&[("who", sneaky)]));
    let batches = rows(&session, &q).await;
    let value = datafusion_string(&batches, 0);
    assert_eq!(value, sneaky);

    // Text is read as the type the query gives its placeholder...
    let q = Query::inline(
        "SELECT count(*) FROM scores WHERE anomaly_score > $t",
        params(&[("t", "0")]),
    );
    assert_eq!(count(&rows(&session, &q).await), 1);
    // ...or refused, naming the parameter.
    let q = Query::inline(
        "SELECT count(*) FROM scores WHERE anomaly_score > $t",
        params(&[("t", "high")]),
    );
    let err = session.prepare(&q).await.unwrap_err();
    assert!(matches!(err, Error::Param { ref name, .. } if name == "t"), "{err}");
    assert!(err.to_string().contains("`high`"), "{err}");

    // Missing values are errors; declared defaults fill them in.
    let q = Query::inline("SELECT count(*) FROM scores WHERE anomaly_score > $t", Params::new());
    let err = session.prepare(&q).await.unwrap_err();
    assert!(err.to_string().contains("--param t=VALUE"), "{err}");
    let q = Query::inline(
        "-- @param t = -10   Everything.\nSELECT count(*) FROM scores WHERE anomaly_score > $t",
        Params::new(),
    );
    assert_eq!(count(&rows(&session, &q).await), 2);
}

fn datafusion_string(batches: &[RecordBatch], column: usize) -> String {
    let array = batches[0].column(column);
    datafusion::arrow::util::display::array_value_to_string(array, 0).unwrap()
}

#[tokio::test]
async fn queries_are_read_only_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Location::from_local_path(dir.path()).unwrap();
    write_days(&store.join("scores"), &["2018-11-12"]).await;
    let session = session(&store.to_string()).await;
    let out = dir.path().join("copied.csv");
    let refused = [
        (format!("COPY (SELECT * FROM scores) TO '{}'", out.display()), "COPY"),
        ("CREATE VIEW v AS SELECT 1".to_string(), "CREATE VIEW"),
        ("CREATE TABLE t AS SELECT 1".to_string(), "CREATE TABLE"),
        ("INSERT INTO scores SELECT * FROM scores".to_string(), "INSERT INTO"),
        ("DROP TABLE scores".to_string(), "DROP TABLE"),
        ("SET datafusion.execution.batch_size = 1".to_string(), "SET"),
        (
            format!("CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'", out.display()),
            "CREATE EXTERNAL TABLE",
        ),
        (format!("SELECT 1;\n  COPY (SELECT 1) TO '{}'", out.display()), "COPY"),
    ];
    for (sql, kind) in refused {
        let err = session.prepare(&Query::inline(sql.clone(), Params::new())).await.unwrap_err();
        match &err {
            Error::ReadOnly { statement, .. } => assert_eq!(statement, kind, "{sql}"),
            other => panic!("{sql}: expected a refusal, got {other}"),
        }
        assert!(err.to_string().contains("--allow-write"), "{err}");
    }
    assert!(!out.exists());
    // The refusal points at the statement.
    let err = session
        .prepare(&Query::inline(
            format!("SELECT 1;\n  COPY (SELECT 1) TO '{}'", out.display()),
            Params::new(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.sql_position(), Some((2, 3)));

    // EXPLAIN and SHOW TABLES only read.
    let plan = rows(&session, &Query::inline("EXPLAIN SELECT * FROM scores", Params::new())).await;
    assert!(!plan.is_empty());
    rows(&session, &Query::inline("SHOW TABLES", Params::new())).await;

    let writer = QuerySession::open(&SessionOptions {
        store: Some(store.to_string()),
        allow_write: true,
        ..SessionOptions::default()
    })
    .await
    .unwrap();
    let q = Query::inline(
        "CREATE VIEW v AS SELECT entity FROM scores;\nSELECT count(*) FROM v",
        Params::new(),
    );
    assert_eq!(count(&rows(&writer, &q).await), 2);
}

#[tokio::test]
async fn mistakes_point_at_the_line_and_column() {
    let store = "memory://sql-errors/ipi";
    write_days(&Location::parse(store).unwrap().join("scores"), &["2018-11-12"]).await;
    let session = session(store).await;
    let cases = [
        // A syntax error.
        ("-- A report.\nSELECT entity\nFROM scores\nWHERE entity = = 'x'", (4, 16), "syntax error"),
        // An unknown column.
        (
            "-- A report.\nSELECT entity,\n       no_such_column\nFROM scores",
            (3, 8),
            "no_such_column",
        ),
        // An unknown table.
        ("SELECT *\n  FROM nowhere", (2, 8), "nowhere"),
    ];
    for (sql, position, words) in cases {
        let query =
            Query { source_name: "sql/r.sql".into(), sql: sql.into(), params: Params::new() };
        let err = session.prepare(&query).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(err.sql_position(), Some(position), "{text}");
        assert!(text.starts_with(&format!("sql/r.sql:{}:{}: ", position.0, position.1)), "{text}");
        assert!(text.contains(words), "{text}");
        assert!(text.contains(" | "), "a snippet of the line: {text}");
    }
    // Empty text is an error, not a panic.
    let err = session.prepare(&Query::inline("  -- nothing\n", Params::new())).await.unwrap_err();
    assert!(err.to_string().contains("no SQL statement"), "{err}");
}

#[tokio::test]
async fn the_functions_reports_use_are_planned() {
    // Features of the datafusion dependency decide which planners exist:
    // EXTRACT needs `datetime_expressions`, POSITION `unicode_expressions`.
    let session = QuerySession::open(&SessionOptions::default()).await.unwrap();
    let sql = "SELECT EXTRACT(HOUR FROM CAST('2018-11-12T03:04:05Z' AS TIMESTAMP)) AS h, \
               POSITION('b' IN 'abc') AS p, date_trunc('day', now()) IS NOT NULL AS d, \
               regexp_like('curl/8', '^curl') AS r, [1, 2] AS a";
    let batches = rows(&session, &Query::inline(sql, Params::new())).await;
    assert_eq!(datafusion_string(&batches, 0), "3");
    assert_eq!(datafusion_string(&batches, 1), "2");
}

#[tokio::test]
async fn a_scores_dataset_without_files_still_has_its_date_column() {
    // The score step on a day without logins commits an empty dataset.
    let store = "memory://sql-empty/ipi";
    let writer = DatasetWriter::new(
        Location::parse(store).unwrap().join("scores"),
        schema(),
        WriteMode::ReplacePartitions,
    );
    writer.commit().await.unwrap();
    let session = session(store).await;
    assert_eq!(session.tables()[0].files, 0);
    let q = Query::inline(
        "SELECT count(*) FROM scores WHERE date = CAST($date AS DATE)",
        params(&[("date", "2018-11-12")]),
    );
    assert_eq!(count(&rows(&session, &q).await), 0);
}
