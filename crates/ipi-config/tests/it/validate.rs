//! Files that don't load, and every diagnostic they give.

use crate::catalog::{col, errors, opts, overrides};

/// An unknown key in a step body, a cycle between two steps, a dangling
/// step reference and a wrongly typed param default: all four reported at
/// once, each at its own line and column.
#[test]
fn four_problems_at_once() {
    let source = r#"version = 1
name = "broken"
[params]
store = { type = "url", default = "var/ipi" }
users = { type = "int", default = "abc" }
[steps.synth]
uses = "synth"
users = 10
output = "${params.store}/logs"
fromat = "csv"
[steps.ingest]
uses = "ingest"
needs = ["split"]
inputs = ["${steps.synth.output}", "${steps.nope.output}"]
output = "${params.store}/events"
[steps.split]
uses = "split"
input = "${steps.ingest.output}"
end = "2024-03-09"
validation = "1d"
test = "1d"
output = "${params.store}/splits"
"#;
    let diags = ipi_config::load("daily.toml", source, &opts(&[])).unwrap_err();
    let find = |needle: &str| {
        diags
            .iter()
            .find(|d| d.message.contains(needle))
            .unwrap_or_else(|| panic!("no diagnostic about {needle:?} in {diags:#?}"))
    };

    let default = find("default is not a valid int");
    assert_eq!((default.line, default.column), (5, col(source, 5, "\"abc\"")));
    assert_eq!(default.key.as_deref(), Some("params.users"));

    let unknown = find("unknown key `fromat`");
    assert_eq!((unknown.line, unknown.column), (10, 1));
    assert_eq!(unknown.step.as_deref(), Some("synth"));
    assert_eq!(unknown.key.as_deref(), Some("fromat"));

    let cycle = find("dependency cycle");
    assert_eq!((cycle.line, cycle.column), (13, col(source, 13, "\"split\"")));
    assert_eq!(cycle.step.as_deref(), Some("ingest"));

    let dangling = find("unknown step `nope`");
    assert_eq!((dangling.line, dangling.column), (14, col(source, 14, "${steps.nope")));
    assert_eq!(dangling.key.as_deref(), Some("inputs.1"));

    assert_eq!(diags.len(), 4, "{diags:#?}");
    let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "daily.toml:5:35: param `users`: default is not a valid int: expected an integer such as 200, found the string \"abc\"",
            "daily.toml:10:1: step `synth`: unknown key `fromat`, expected one of `users`, `days`, `output`",
            "daily.toml:13:10: step `ingest`: dependency cycle: ingest -> split -> ingest (each step needs the next)",
            "daily.toml:14:37: step `ingest`: unknown step `nope` in `${steps.nope.output}`; steps: synth, ingest, split",
        ]
    );
}

#[test]
fn envelope_problems() {
    let source = r#"version = 2
nmae = "typo"
timezone = "Mars/Olympus"
[steps.a]
uses = "synth"
users = 1
output = "x"
"#;
    assert_eq!(
        errors(source, &[]),
        [
            "test.toml:1:1: missing `name = \"...\"` at the top of the file",
            "test.toml:1:11: unsupported `version`; this ipi reads `version = 1`",
            "test.toml:2:1: unknown key `nmae`; expected one of: version, name, description, timezone, params, steps, tests",
            "test.toml:3:12: unknown time zone `Mars/Olympus`; use an IANA name such as UTC or Europe/Berlin",
        ]
    );
    assert_eq!(
        errors("name = 'x'\n", &[]),
        ["test.toml:1:1: missing `version = 1` at the top of the file"]
    );
}

#[test]
fn param_problems() {
    let source = r#"version = 1
name = "p"
[params]
a = { type = "integer", default = 1 }
b = { type = "int", default = 1, help = "x" }
c = 5
"d e" = { type = "string" }
f = { default = 1 }
g = { type = "date", default = "2024-13-01" }
h = { type = "duration", default = "7 days" }
i = { type = "bool", default = "yes" }
j = { type = "float", default = 1 }
k = { type = "date", default = 2024-03-01 }
[steps.s]
uses = "synth"
users = "${params.j}"
output = "${params.a}/${params.zz}"
"#;
    assert_eq!(
        errors(source, &overrides(&[("b", "many"), ("nope", "1"), ("d e", "x")])),
        [
            "test.toml:3:2: --param nope=1: unknown param `nope`; declared params: a, b, c, d e, f, g, h, i, j, k",
            "test.toml:4:14: param `a`: unknown param type `integer`; known: string, int, float, bool, date, url, duration",
            "test.toml:5:1: --param b=many: param `b` has type int: expected an integer such as 200, got `many`",
            "test.toml:5:34: param `b`: unknown key `help`; expected type, default or doc",
            "test.toml:6:5: param `c` must be a table like { type = \"int\", default = 200 }",
            "test.toml:7:1: invalid param name `d e`: use letters, digits, `_` and `-`, starting with a letter or `_`",
            "test.toml:8:1: param `f` has no `type`; use one of: string, int, float, bool, date, url, duration",
            "test.toml:9:32: param `g`: default is not a valid date: expected YYYY-MM-DD, today or yesterday, got `2024-13-01`",
            "test.toml:10:36: param `h`: default is not a valid duration: invalid duration `7 days`: units are d, h, m and s; expected something like 1d, 12h, 30m, 45s or 1d12h",
            "test.toml:11:32: param `i`: default is not a valid bool: expected true or false, found the string \"yes\"",
            "test.toml:16:9: step `s`: `users`: invalid type: floating point `1.0`, expected u32",
            "test.toml:17:23: step `s`: unknown param `zz` in `${params.zz}`; declared params: a, b, c, d e, f, g, h, i, j, k",
        ]
    );
}

#[test]
fn step_problems() {
    let source = r#"version = 1
name = "s"
[steps.a]
uses = "sinth"
[steps.b]
users = 1
[steps.c]
uses = "ingest"
needs = ["c", "zz", 3]
inputs = ["${steps.a.output}", "${steps.d.outptu}", "${steps.c.output}", "x${oops}"]
output = "o"
filter = { method = "GET", status = [200, "ok"] }
cache = { expire_after = "1w", keep = true, ignore = ["output", "nope"] }
retry = { attempts = 0, backoff = "${steps.a.output}" }
[steps.d]
uses = "synth"
users = -1
"#;
    assert_eq!(
        errors(source, &[]),
        [
            "test.toml:4:8: step `a`: unknown step kind `sinth`; known: synth, ingest, split, train",
            "test.toml:5:8: step `b`: missing `uses`, the step kind; known: synth, ingest, split, train",
            "test.toml:9:10: step `c`: a step cannot need itself",
            "test.toml:9:15: step `c`: `needs` names unknown step `zz`; steps: a, b, c, d",
            "test.toml:9:21: step `c`: `needs` entries must be step names (strings)",
            "test.toml:10:33: step `c`: unknown output `outptu` in `${steps.d.outptu}`: step `d` (uses `synth`) has: output",
            "test.toml:10:54: step `c`: `${steps.c.output}` refers to this step's own output",
            "test.toml:10:76: step `c`: invalid reference `${oops}`: expected `${params.NAME}`, `${steps.STEP.ATTR}`, `${each.NAME}` or `${env.NAME}` (write `$${` for a literal `${`)",
            "test.toml:12:43: step `c`: `filter.status.1`: invalid type: string \"ok\", expected u16",
            "test.toml:13:9: step `c`: `cache.ignore` names `nope`, which this step does not set",
            "test.toml:13:26: step `c`: `cache.expire_after`: invalid duration `1w`: units are d, h, m and s; expected something like 1d, 12h, 30m, 45s or 1d12h",
            "test.toml:13:32: step `c`: unknown key `keep` in `cache`; expected: expire_after, ignore",
            "test.toml:14:22: step `c`: `attempts` must be a whole number from 1 to 4294967295, found the integer 0",
            "test.toml:14:35: step `c`: `retry.backoff` cannot refer to step outputs (`${steps.a.output}`)",
            "test.toml:15:8: step `d`: missing key `output`",
            "test.toml:17:9: step `d`: `users`: invalid value: integer `-1`, expected u32",
        ]
    );
}

#[test]
fn references_in_nested_values_and_escaped_strings() {
    // Positions inside a string are exact up to the first escape; after
    // one, the string's start is used.
    let source = "version = 1\nname = \"n\"\n[steps.a]\nuses = \"train\"\n\
                  input = \"x\"\nhyperparameters = { epochs = 1, learning_rate = \"${params.lr}\" }\n\
                  [steps.b]\nuses = \"train\"\ninput = \"\\t${steps.zz.output}\"\n";
    assert_eq!(
        errors(source, &[]),
        [
            "test.toml:6:50: step `a`: unknown param `lr` in `${params.lr}`; declared params: none",
            "test.toml:9:9: step `b`: unknown step `zz` in `${steps.zz.output}`; steps: a, b",
        ]
    );
}

#[test]
fn longer_cycles_are_reported_once() {
    let source = r#"version = 1
name = "c"
[steps.a]
uses = "train"
input = "${steps.c.output}"
[steps.b]
uses = "train"
input = "${steps.a.output}"
[steps.c]
uses = "train"
input = "${steps.b.output}"
[steps.d]
uses = "train"
input = "${steps.c.output}"
"#;
    assert_eq!(
        errors(source, &[]),
        ["test.toml:5:10: step `a`: dependency cycle: a -> c -> b -> a (each step needs the next)"]
    );
}
