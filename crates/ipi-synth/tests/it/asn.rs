//! An ip2asn TSV instead of the seeded table.

use std::io::Write;

use ipi_synth::SynthConfig;

use crate::util::{log_lines, parse, root, run, small};

fn fixture() -> String {
    format!("{}/tests/data/ip2asn-tiny.tsv", env!("CARGO_MANIFEST_DIR"))
}

/// The routed ranges of the fixture.
fn routed() -> Vec<(u32, u32, String)> {
    std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[2] != "0")
        .map(|f| (f[0].parse().unwrap(), f[1].parse().unwrap(), f[3].to_owned()))
        .collect()
}

async fn check(config: &SynthConfig) {
    let summary = run(config).await;
    assert_eq!(summary.networks, 19);
    let ranges = routed();
    let lines = log_lines(&config.output).await;
    assert_eq!(lines.len() as u64, summary.lines);
    let mut countries = std::collections::BTreeSet::new();
    for line in &lines {
        let record = parse(line);
        let addr = ipi_core::ipv4::parse(record.client.as_bytes()).unwrap();
        let range = ranges.iter().find(|r| r.0 <= addr && addr <= r.1);
        let range = range.unwrap_or_else(|| panic!("{line}: not in a routed range of the file"));
        countries.insert(range.2.clone());
    }
    assert!(countries.len() >= 4, "{countries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_ip2asn_file_replaces_the_seeded_table() {
    let mut config = small("asn-plain", 60, 2);
    config.asn_file = Some(fixture());
    check(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_one_is_read_from_any_store() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(fixture()).unwrap()).unwrap();
    let url = root("asn-files/ip2asn-tiny.tsv.gz");
    let location = ipi_storage::Location::parse(&url).unwrap();
    ipi_storage::put_atomic(&location, gz.finish().unwrap().into()).await.unwrap();
    let mut config = small("asn-gz", 60, 2);
    config.asn_file = Some(url);
    check(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_file_names_its_line() {
    let url = root("asn-files/bad.tsv");
    let location = ipi_storage::Location::parse(&url).unwrap();
    ipi_storage::put_atomic(&location, "1\t2\t3\tUS\tok\n5\tfour\t3\tUS\tbad\n".into())
        .await
        .unwrap();
    let mut config = small("asn-bad", 5, 1);
    config.asn_file = Some(url);
    let error = ipi_synth::synth(&config, None).await.unwrap_err().to_string();
    assert!(error.contains("bad.tsv:2") && error.contains("four"), "{error}");
}
