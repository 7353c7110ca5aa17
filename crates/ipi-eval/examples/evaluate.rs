//! Evaluate a model, or tune, from the command line without the
//! `ipi-pipeline` binary (for a look at the library on its own):
//!
//! ```text
//! cargo run -p ipi-eval --example evaluate -- --model M --train S/train --test S/test \
//!     [--labels SYNTH/labels] --output OUT [--target-fpr 0.01] [--json]
//! cargo run -p ipi-eval --example evaluate -- tune --train S/train --validation S/validation \
//!     [--test S/test] --output OUT [--trials 8] [--epochs 2] [--num-entity-vectors 20000] [--json]
//! ```

use std::process::ExitCode;

use ipi_eval::{EvaluateConfig, TuneConfig, evaluate, tune};

fn usage() -> ExitCode {
    eprintln!(
        "usage: evaluate --model URL --train URL --test URL [--labels URL] --output URL \
         [--target-fpr X] [--json]\n       evaluate tune --train URL --validation URL \
         [--test URL] --output URL [--trials N] [--epochs E] [--num-entity-vectors N] [--json]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tuning = args.first().is_some_and(|a| a == "tune");
    if tuning {
        args.remove(0);
    }
    let mut flags = std::collections::HashMap::new();
    let mut json = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => json = true,
            flag if flag.starts_with("--") => {
                let Some(value) = it.next() else { return usage() };
                flags.insert(flag.trim_start_matches("--").to_owned(), value);
            }
            _ => return usage(),
        }
    }
    let get = |k: &str| flags.get(k).cloned().unwrap_or_default();
    let result = if tuning {
        let mut config = TuneConfig::new(&get("train"), &get("validation"), &get("output"));
        config.test = flags.get("test").cloned();
        let h = &mut config.hyperparameters;
        let parsed = (|| -> Result<(), std::num::ParseIntError> {
            if let Some(v) = flags.get("trials") {
                config.trials = v.parse()?;
            }
            if let Some(v) = flags.get("epochs") {
                h.epochs = v.parse()?;
            }
            if let Some(v) = flags.get("num-entity-vectors") {
                h.num_entity_vectors = v.parse()?;
            }
            Ok(())
        })();
        if parsed.is_err() {
            return usage();
        }
        tune(&config, None).await.map(|r| {
            if json { serde_json::to_string_pretty(&r).unwrap_or_default() } else { r.to_table() }
        })
    } else {
        let mut config =
            EvaluateConfig::new(&get("model"), &get("train"), &get("test"), &get("output"));
        config.labels = flags.get("labels").cloned();
        if let Some(v) = flags.get("target-fpr") {
            let Ok(v) = v.parse() else { return usage() };
            config.target_fpr = v;
        }
        evaluate(&config).await.map(|e| {
            if json {
                serde_json::to_string_pretty(&e.report).unwrap_or_default()
            } else {
                e.report.to_table()
            }
        })
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
