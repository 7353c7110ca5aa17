//! Inputs that must give errors with positions, never panics.

use crate::catalog::{errors, opts, overrides};

fn check_no_panic(source: &str) {
    let over = overrides(&[("x", "1"), ("date", "nope")]);
    match ipi_config::load("g.toml", source, &opts(&over)) {
        Ok(_) => {}
        Err(diags) => {
            assert!(!diags.is_empty());
            for d in &diags {
                assert!(d.line >= 1 && d.column >= 1, "{d:?}");
                let lines = source.split('\n').count();
                assert!(d.line <= lines.max(1), "{d} past the end of {source:?}");
            }
        }
    }
}

#[test]
fn weird_documents() {
    let cases = [
        "",
        "\n\n\n",
        "version",
        "version = ",
        "= 1",
        "[[[",
        "version = 1\nname = 'x'\nsteps = 3",
        "version = 1\nname = 'x'\n[[steps]]\nuses = 'synth'",
        "version = 1\nname = 'x'\nparams = [1, 2]\n[steps.a]\nuses = 'synth'",
        "version = 1\nname = ''\n[params]\nx = 3\ny = { }\nz = { type = 3, default = [] }\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\nusers = 99999999999999999999\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\nneeds = 'a'\ncache = 1\nretry = []\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\nneeds = [1, 'a', 'b']\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\noutput = '${'\nusers = '${params.'\n",
        "version = 1\nname = 'x'\n[steps.'a b']\nuses = 'synth'\noutput = '${steps.a b.output}'\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\noutput = \"\"\"\n${steps.a.output}\"\"\"\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\noutput = \"\\u00e9${nope}\"\n",
        "version = 1\nname = 'x'\ntimezone = 'Mars/Olympus'\n[steps.a]\nuses = 'synth'\nusers = 1\noutput = 'x'\n",
        "version = 1\r\nname = 'x'\r\n[steps.a]\r\nuses = 'synth'\r\nusers = 1\r\noutput = 'é${params.é}'\r\n",
        "\u{feff}version = 1\nname = 'x'\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\nusers = 1\noutput = '$$$${{}}}'\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'nope'\n[steps.b]\nuses = 'synth'\nusers = '${steps.a.anything}'\noutput = '${steps.a.output}'\n",
        "version = 1\nname = 'x'\n[steps.a]\nuses = 'synth'\n[steps.a.cache]\nexpire_after = '1y'\n[steps.a.retry]\nattempts = 99999999999\nbackoff = 5\n",
        "version = 1\nname = 'x'\n[params]\ndate = { type = 'date', default = 2024-02-30 }\n",
        "version = 1\nname = 'x'\n[params]\nd = { type = 'date', default = 2024-02-03T01:02:03Z }\n",
    ];
    for case in cases {
        check_no_panic(case);
    }
}

#[test]
fn pseudo_random_bytes() {
    // A fixed linear congruential generator: the same inputs every run.
    let alphabet = b"[]{}=.,'\"\n $abcsteps.usesparams${}123\\#-_\xc3\xa9";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..500 {
        let len = (state >> 58) as usize + 1;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            bytes.push(alphabet[(state >> 33) as usize % alphabet.len()]);
        }
        let text = String::from_utf8_lossy(&bytes);
        check_no_panic(&format!("version = 1\nname = 'x'\n{text}"));
        check_no_panic(&text);
    }
}

#[test]
fn syntax_errors_have_positions() {
    let got = errors("version = 1\nname = \"x\n[steps.a]\n", &[]);
    assert!(!got.is_empty());
    assert!(got[0].starts_with("test.toml:2:"), "{got:?}");
    assert!(got[0].contains("invalid TOML"), "{got:?}");
}

#[test]
fn unreadable_file() {
    let err =
        ipi_config::load_path(std::path::Path::new("/nonexistent/ipi/daily.toml"), &opts(&[]))
            .unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(
        err[0].to_string().starts_with("/nonexistent/ipi/daily.toml:1:1: cannot read"),
        "{}",
        err[0]
    );
}
