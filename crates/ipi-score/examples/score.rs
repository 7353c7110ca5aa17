//! Times a batch transform: `score MODEL INPUT OUTPUT [BATCH_ROWS]`; prints
//! the report as JSON (rows, seconds, pairs/s). The same code as
//! `ipi-pipeline score`, without the rest of the binary: bench/score.sh
//! times the binary itself, this is for profiling the hot path alone.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: score MODEL INPUT OUTPUT [BATCH_ROWS]".into());
    };
    let mut config = ipi_score::ScoreConfig::new(model, input, output);
    if let [rows] = rest {
        config.batch_rows = rows.parse()?;
    }
    let report = ipi_score::score(&config).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
