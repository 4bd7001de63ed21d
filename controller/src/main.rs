//! `kseal-controller`: a thin shell over the library (flags, logs, signals, exit codes).

use std::process::ExitCode;

use clap::Parser as _;
use kseal_controller::config::Flags;
use kseal_controller::shutdown::SHUTDOWN_DEADLINE;
use kseal_controller::{app, hygiene, logging};
use tokio_util::sync::CancellationToken;

const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

fn main() -> ExitCode {
    // Before anything is read; reported once logging is set up (never fatal).
    let core_dumps = hygiene::disable_core_dumps();
    // clap exits 2 on a usage error, as pflag does.
    let flags = Flags::parse();
    if flags.version {
        println!("controller version: {VERSION}");
        return ExitCode::SUCCESS;
    }
    let pod_namespace = std::env::var("POD_NAMESPACE").ok();
    let sa_namespace =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok();
    let config = match flags.resolve(pod_namespace.as_deref(), sa_namespace.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config.log_level, config.log_json, config.log_info_stdout);
    match (&core_dumps.rlimit, &core_dumps.dumpable) {
        (Ok(()), Ok(())) => tracing::debug!("core dumps disabled (RLIMIT_CORE 0, not dumpable)"),
        (rlimit, dumpable) => tracing::debug!(
            rlimit = ?rlimit.as_ref().err(),
            dumpable = ?dumpable.as_ref().err(),
            "core dumps not fully disabled"
        ),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(config));
    // Key generation may still run on a blocking thread: abandon it (the key was not stored).
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = logging::error_chain(e.as_ref());
            tracing::error!("{text}");
            eprintln!("error: {text}");
            ExitCode::from(2)
        }
    }
}

async fn run(config: kseal_controller::config::Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tracing::info!(version = VERSION, "starting kseal-controller");
    let client = app::client(&config).await?;
    let shutdown = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let (usr1_tx, usr1_rx) = tokio::sync::mpsc::channel(1);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                _ = usr1.recv() => {
                    tracing::info!("SIGUSR1: generating a new key");
                    let _ = usr1_tx.try_send(());
                }
            }
        }
        stop.cancel();
    });
    // Every wait on the way out is bounded (kseal_controller::shutdown); this is the backstop.
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_DEADLINE).await;
    };
    tokio::select! {
        r = app::run(config, client, VERSION, shutdown.clone(), usr1_rx) => r,
        () = deadline => {
            tracing::warn!("shutdown took longer than {SHUTDOWN_DEADLINE:?}: exiting anyway");
            Ok(())
        }
    }
}
