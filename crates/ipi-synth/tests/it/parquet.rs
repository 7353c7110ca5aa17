//! `format = "parquet"` writes the events ingest would make of the logs.

use arrow_array::{Array, Int16Array, RecordBatch, UInt16Array, UInt32Array, UInt64Array};
use ipi_ingest::{Filter, FormatName, IngestConfig, ingest};
use ipi_synth::OutputFormat;

use crate::util::{read_dataset, root, run, small, strings, timestamps};

type Row = (
    i64,
    i16,
    String,
    String,
    u32,
    String,
    String,
    String,
    u16,
    u64,
    Option<String>,
    Option<String>,
);

fn rows(batches: &[(String, RecordBatch)]) -> Vec<Row> {
    let mut out = Vec::new();
    for (_, b) in batches {
        let ts = timestamps(b, "timestamp");
        let tz = b
            .column_by_name("tz_offset_minutes")
            .unwrap()
            .as_any()
            .downcast_ref::<Int16Array>()
            .unwrap();
        let ipv4 =
            b.column_by_name("ipv4").unwrap().as_any().downcast_ref::<UInt32Array>().unwrap();
        let status =
            b.column_by_name("status").unwrap().as_any().downcast_ref::<UInt16Array>().unwrap();
        let bytes =
            b.column_by_name("bytes").unwrap().as_any().downcast_ref::<UInt64Array>().unwrap();
        let (entity, ip, method, path, protocol, referer, agent) = (
            strings(b, "entity"),
            strings(b, "ip"),
            strings(b, "method"),
            strings(b, "path"),
            strings(b, "protocol"),
            strings(b, "referer"),
            strings(b, "user_agent"),
        );
        for i in 0..b.num_rows() {
            out.push((
                ts[i],
                tz.value(i),
                entity[i].clone().unwrap(),
                ip[i].clone().unwrap(),
                ipv4.value(i),
                method[i].clone().unwrap(),
                path[i].clone().unwrap(),
                protocol[i].clone().unwrap(),
                status.value(i),
                bytes.value(i),
                referer[i].clone(),
                agent[i].clone(),
            ));
            assert!(ipv4.is_valid(i));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_equals_ingesting_the_logs_with_the_login_filter() {
    let log = small("parquet-log", 40, 2);
    let mut parquet = small("parquet-events", 40, 2);
    parquet.format = OutputFormat::Parquet;
    let (from_log, direct) = (run(&log).await, run(&parquet).await);
    assert_eq!(direct.logs, None);
    assert_eq!(direct.files, 0);
    assert_eq!(direct.lines, direct.login_lines);
    assert_eq!(direct.login_lines, from_log.login_lines);
    assert_eq!(direct.attacks, from_log.attacks);

    let events = root("parquet-ingested");
    let mut config = IngestConfig::default_for(&[from_log.logs.clone().unwrap()], &events);
    config.format = FormatName::Combined;
    config.filter = Filter {
        method: vec!["GET".to_owned()],
        path_prefix: Some("/login_success".to_owned()),
        status: vec![200],
    };
    ingest(&config, None).await.unwrap();
    let ingested = read_dataset(&events).await;
    let written = read_dataset(direct.events.as_deref().unwrap()).await;
    let partitions = |b: &[(String, RecordBatch)]| {
        b.iter().map(|x| x.0.clone()).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(partitions(&written), partitions(&ingested));
    let (a, b) = (rows(&written), rows(&ingested));
    assert_eq!(a.len() as u64, direct.login_lines);
    assert!(a == b, "the events differ from ingest's");
}
