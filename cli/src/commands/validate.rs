//! `kseal validate FILE|DIR…`: asks the cluster's controller (`/v1/verify`, through the API
//! server's service proxy) whether it can decrypt every SealedSecret, and names every item it
//! cannot.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use kseal_crds::SealedSecret;

use super::files::{self, describe};
use crate::cli::{ReportFormat, WalkArgs};
use crate::cluster::{block_on, ClusterArgs, Controller};

/// `kseal validate`
#[derive(Debug, Args)]
#[command(after_help = "\
Each SealedSecret is sent to the controller's /v1/verify through the API server's service proxy
(nothing is decrypted outside the cluster, nothing is written). Directories are searched
recursively for .yaml, .yml and .json files; other documents are ignored.
Exit code 1 when any SealedSecret fails, naming its items.")]
pub struct ValidateArgs {
    /// Files or directories
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub walk: WalkArgs,

    /// Report format
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: ReportFormat,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The verdict on one SealedSecret.
#[derive(Debug, serde::Serialize)]
pub struct Verdict {
    /// The file.
    pub file: String,
    /// `namespace/name`.
    pub object: String,
    /// Whether the controller opens every item.
    pub ok: bool,
    /// Items it cannot open (when the whole object failed).
    #[serde(rename = "failedItems")]
    pub failed_items: Vec<String>,
}

fn json(ss: &SealedSecret) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(ss)?)
}

/// The items of a failing SealedSecret that fail alone (one request per item).
async fn failing_items(c: &Controller, ss: &SealedSecret) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    if ss.spec.encrypted_data.len() <= 1 {
        return Ok(ss.spec.encrypted_data.keys().cloned().collect());
    }
    for key in ss.spec.encrypted_data.keys() {
        let mut one = ss.clone();
        one.spec.encrypted_data.retain(|k, _| k == key);
        one.spec.template.data = None;
        if !c.verify(json(&one)?).await? {
            failed.push(key.clone());
        }
    }
    Ok(failed)
}

pub fn run(args: ValidateArgs) -> Result<ExitCode> {
    let paths = files::collect(&args.paths, args.walk.options())?;
    let verdicts = block_on(async {
        let c = Controller::connect(&args.cluster).await?;
        let mut out = Vec::new();
        for found in paths.files() {
            let path = found.path();
            let f = files::read(found)?;
            for (_, ss) in &f.sealed {
                let ok = c.verify(json(ss)?).await?;
                let failed_items = if ok {
                    Vec::new()
                } else {
                    failing_items(&c, ss).await?
                };
                out.push(Verdict {
                    file: path.display().to_string(),
                    object: describe(ss),
                    ok,
                    failed_items,
                });
            }
        }
        anyhow::Ok(out)
    })??;
    let failed = verdicts.iter().filter(|v| !v.ok).count();
    match args.output {
        ReportFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&verdicts)?);
        }
        ReportFormat::Text => {
            for v in &verdicts {
                if v.ok {
                    println!("ok    {}: {}", v.file, v.object);
                } else if v.failed_items.is_empty() {
                    println!(
                        "FAIL  {}: {}: the controller cannot decrypt it",
                        v.file, v.object
                    );
                } else {
                    println!(
                        "FAIL  {}: {}: cannot decrypt item{} {} (sealed for another cluster, key, name, namespace or scope?)",
                        v.file,
                        v.object,
                        if v.failed_items.len() == 1 { "" } else { "s" },
                        v.failed_items.join(", ")
                    );
                }
            }
            eprintln!(
                "{} SealedSecret{} checked, {failed} failed",
                verdicts.len(),
                if verdicts.len() == 1 { "" } else { "s" }
            );
        }
    }
    if verdicts.is_empty() {
        anyhow::bail!("no SealedSecrets found in the given files");
    }
    Ok(ExitCode::from(paths.exit_code(if failed > 0 {
        crate::EXIT_FAILED
    } else {
        crate::EXIT_OK
    })))
}
