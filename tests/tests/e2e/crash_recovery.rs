//! cluster.sh survives crashed runs: runs `control-plane/crash-test.sh`, which
//! kill -9s components of a second, private control plane in every way a crashed
//! run can leave them (the shared cluster of the other tests is not touched).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context as _, Result};
use kseal_e2e::Cluster;

#[test]
fn cluster_script_recovers_from_crashed_runs() -> Result<()> {
    // Also makes sure the binaries are built before the script needs them.
    let cluster = Cluster::shared()?;
    if !cluster.is_local() {
        eprintln!("skipped: external cluster (KSEAL_E2E_KUBECONFIG)");
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane/crash-test.sh");
    let output = Command::new("bash")
        .arg(&script)
        // A private temporary directory, never the shared cluster's.
        .env_remove("KSEAL_CLUSTER_DIR")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    ensure!(
        output.status.success(),
        "crash-test.sh failed ({})",
        output.status
    );
    ensure!(
        stderr.contains("crash-test: all passed"),
        "crash-test.sh did not finish"
    );
    Ok(())
}
