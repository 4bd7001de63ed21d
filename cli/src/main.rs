//! The `kseal` binary: everything lives in the library so it can be tested.
fn main() -> std::process::ExitCode {
    // Before any input is read. The CLI has no log: a platform without prctl just runs.
    let _ = kseal::hygiene::disable_core_dumps();
    kseal::main_with_args(std::env::args_os())
}
