//! Prints the SealedSecret CRD YAML (committed as `crds/sealedsecret-crd.yaml`).
fn main() {
    print!("{}", kseal_crds::crd::crd_yaml());
}
