//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// A command running the `ipi-pipeline` binary under test, in `dir`.
pub fn ipi(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipi-pipeline"));
    cmd.current_dir(dir).env("IPI_NO_PROGRESS", "1").env_remove("IPI_LOG");
    cmd
}

/// Run a command and return its output, printing it for the test log.
pub fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("spawn ipi-pipeline");
    eprintln!("--- {cmd:?} exited {:?}", output.status.code());
    eprintln!("--- stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("--- stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Stdout and stderr together, as text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether the S3 tests must run (set by `tests/run.sh`).
pub fn s3_required() -> bool {
    std::env::var("IPI_TEST_S3_REQUIRED").is_ok_and(|v| v == "1")
}

/// The Python interpreter with pyarrow and duckdb, if configured. Panics
/// when the S3 tests are required and it is not.
pub fn test_python() -> Option<PathBuf> {
    match std::env::var_os("IPI_TEST_PYTHON") {
        Some(python) => Some(PathBuf::from(python)),
        None if s3_required() => panic!("IPI_TEST_S3_REQUIRED=1 but IPI_TEST_PYTHON is not set"),
        None => {
            eprintln!("skipped: set IPI_TEST_PYTHON (tests/run.sh does) to check with pyarrow");
            None
        }
    }
}

/// Python defining `store_fs(root)`: a store root, local or on the S3 test
/// server (through the `AWS_*` variables `tests/run.sh` sets), as a
/// pyarrow filesystem and the path on it. Scripts put it first.
pub(crate) const PY_STORE_FS: &str = r#"
import os
import pyarrow.fs as pafs
def store_fs(root):
    if root.startswith("s3://"):
        fs = pafs.S3FileSystem(endpoint_override=os.environ["AWS_ENDPOINT_URL"], region=os.environ["AWS_REGION"],
                               access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                               scheme="http")
        return fs, root[len("s3://"):]
    return pafs.LocalFileSystem(), root
"#;
