//! Times a split: `split INPUT OUTPUT [VALIDATION TEST]` (durations back
//! from the end, default 1d and 2d); prints the report table.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: split INPUT OUTPUT [VALIDATION TEST]".into());
    };
    let (validation, test) = match rest {
        [v, t] => (v.as_str(), t.as_str()),
        _ => ("1d", "2d"),
    };
    let mut config = ipi_split::SplitConfig::from_end(input, output, validation, test);
    config.seed = 7;
    config.sagemaker_csv = std::env::var_os("SPLIT_CSV").is_some();
    let report = ipi_split::split(&config).await?;
    print!("{}", report.to_table());
    Ok(())
}
