//! Same seed and settings, same bytes, whatever the thread count.

use std::collections::BTreeMap;

use ipi_synth::OutputFormat;

use crate::util::{objects, run, small};

/// XXH3 of every data object, with the transaction id (a UUIDv7, new for
/// every commit) taken out of Parquet file names. Manifests (which hold
/// commit ids and timings) are left out.
async fn fingerprint(root: &str) -> BTreeMap<String, u64> {
    objects(root)
        .await
        .into_iter()
        .filter(|(path, _)| !path.rsplit('/').next().unwrap().starts_with('_'))
        .map(|(path, bytes)| {
            let name = match path.find("/part-") {
                // part-<36-char uuid>-<n>.parquet
                Some(at) => {
                    let (dir, rest) = (path.get(..at).unwrap(), path.get(at + 6 + 37..).unwrap());
                    format!("{dir}/part-{rest}")
                }
                None => path,
            };
            (name, xxhash_rust::xxh3::xxh3_64(&bytes))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_bytes_at_any_thread_count() {
    let mut one = small("det-1", 100, 2);
    one.threads = Some(1);
    let mut two = small("det-2", 100, 2);
    two.threads = Some(2);
    let mut three = small("det-3", 100, 2);
    three.threads = Some(3);
    let (a, b, _) = (run(&one).await, run(&two).await, run(&three).await);
    assert_eq!(a.lines, b.lines);
    let (fa, fb, fc) = (
        fingerprint(&one.output).await,
        fingerprint(&two.output).await,
        fingerprint(&three.output).await,
    );
    let logs = fa.keys().filter(|k| k.starts_with("logs/")).count();
    assert_eq!(logs, 7, "100 users at 16 a file: {fa:?}");
    assert!(fa.keys().any(|k| k.starts_with("labels/date=")), "{fa:?}");
    assert_eq!(fa, fb, "threads 1 and 2 differ");
    assert_eq!(fa, fc, "threads 1 and 3 differ");
    assert_eq!(a.stats, b.stats);

    let mut other_seed = small("det-seed", 100, 2);
    other_seed.seed = 12;
    run(&other_seed).await;
    let fd = fingerprint(&other_seed.output).await;
    assert_ne!(fa.get("logs/access-00000.log"), fd.get("logs/access-00000.log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_parquet_are_deterministic_too() {
    for (format, gzip) in [(OutputFormat::Log, true), (OutputFormat::Parquet, false)] {
        let mut prints = Vec::new();
        for threads in [1, 2] {
            let mut config = small(&format!("det-{format:?}-{gzip}-{threads}"), 40, 2);
            config.format = format;
            config.gzip = gzip;
            config.threads = Some(threads);
            run(&config).await;
            prints.push(fingerprint(&config.output).await);
        }
        assert!(prints[0].keys().any(|k| k.ends_with(".gz") || k.starts_with("events/")));
        assert_eq!(prints[0], prints[1], "{format:?} gzip={gzip}");
    }
}
