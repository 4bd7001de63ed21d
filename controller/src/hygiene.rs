//! Process hygiene at start-up: no core dumps. An abort (or a `kill -ABRT`) must not write
//! the process's memory, with its plaintext values and private keys, to disk, and other
//! processes of the same user must not read that memory through ptrace or `/proc/<pid>/mem`.
//!
//! Why here and not in a shared crate: this changes process-wide state, which is the
//! binary's decision, not a library's. The crates both binaries share (`kseal-crypto`,
//! `kseal-crds`) stay free of such side effects, so that linking them (tests, fuzzers, other
//! tools) never changes the process. `kseal` (`cli/src/hygiene.rs`) and `kseal-controller`
//! (`controller/src/hygiene.rs`) each have this function and call it first thing in `main`.

/// What [`disable_core_dumps`] did: `Ok` per step, or why it could not (never fatal).
#[derive(Debug)]
pub struct CoreDumps {
    /// `RLIMIT_CORE` set to 0 (soft and hard).
    pub rlimit: std::io::Result<()>,
    /// `prctl(PR_SET_DUMPABLE, 0)` (Linux only): no core dump whatever the rlimit or
    /// `core_pattern` (a pipe handler ignores RLIMIT_CORE), no ptrace attach by the same
    /// user, `/proc/<pid>/` files owned by root.
    pub dumpable: std::io::Result<()>,
}

/// Turns core dumps off for this process: `RLIMIT_CORE` 0 and, on Linux, not dumpable.
/// Errors are returned, not raised: a platform without `prctl` still runs.
pub fn disable_core_dumps() -> CoreDumps {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let rlimit = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(std::io::Error::from);
    #[cfg(target_os = "linux")]
    let dumpable =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .map_err(std::io::Error::from);
    #[cfg(not(target_os = "linux"))]
    let dumpable = Err(std::io::Error::from(std::io::ErrorKind::Unsupported));
    CoreDumps { rlimit, dumpable }
}
