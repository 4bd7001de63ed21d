//! Golden tests of the CLI (`tests/cmd/*.trycmd`): help texts, every usage error, the error
//! messages of bad inputs, and the happy paths (ciphertexts matched with `[..]`).
//! Regenerate after an intended change with `TRYCMD=overwrite cargo test -p kseal --test trycmd`,
//! then review the diff.

#[test]
fn cli_golden() {
    trycmd::TestCases::new()
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env("COLUMNS", "100")
        // Empty counts as unset for clap.
        .env("KSEAL_CERT", "")
        .env("KSEAL_KEYS", "")
        .case("tests/cmd/*.trycmd");
}
