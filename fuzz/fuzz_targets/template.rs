//! `spec.template.data` rendering (`kseal_sealing::template::render` and `render_all`, which the
//! controller and `kseal unseal` run over the decrypted items).
//!
//! Input layout and oracle: `kseal_fuzz::template_oracle` (shared with the replay of the
//! findings in `sealing/tests/fuzz_regressions.rs`).
//!
//! Runs on a 2 MiB stack, as in the controller (a stack overflow kills the process with
//! SIGSEGV, which libFuzzer reports as a deadly signal).
#![no_main]

use std::sync::{mpsc, Mutex, OnceLock};

use kseal_fuzz::template_oracle::check;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // On a thread with the stack of a tokio worker or blocking thread (2 MiB), where the
    // controller renders templates: deep nesting must not overflow it. One thread for all
    // inputs (spawning one per input costs ten times the rendering).
    type Job = (Vec<u8>, mpsc::Sender<std::thread::Result<()>>);
    static WORKER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                for (data, done) in rx {
                    let _ = done.send(std::panic::catch_unwind(|| check(&data)));
                }
            })
            .expect("a thread");
        Mutex::new(tx)
    });
    let (done, result) = mpsc::channel();
    worker
        .lock()
        .expect("the worker")
        .send((data.to_vec(), done))
        .expect("the worker runs");
    if let Err(panic) = result.recv().expect("the worker answers") {
        std::panic::resume_unwind(panic);
    }
});
