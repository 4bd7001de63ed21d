//! kseal's end-to-end tests, one module per subject, linked into ONE test executable: each of
//! them links the controller, kube and the harness, and one binary per subject made the test
//! build several GB larger (docs/testing.md, "Test build size"). Select a subject by its module
//! path: `tests/run-e2e.sh crd::` or `tests/run-e2e.sh -E 'test(/^hostile::/)'`.

mod admission;
mod architecture;
mod cli_keys;
mod cli_proxy;
mod controller_age;
mod controller_keys;
mod crash_recovery;
mod crd;
mod faults;
mod harness;
mod hostile;
mod hygiene;
mod image;
mod install;
mod keymanager;
mod keystore;
mod kubeseal;
mod kustomize;
mod leader;
mod node;
mod pods;
mod proxy;
mod readme;
mod scale;
mod smoke;
mod unseal;
mod web;
