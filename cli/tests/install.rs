//! `kseal install`: golden manifests (tests/install/), names that follow `--name`, and one-line
//! errors for bad flag values and an unreachable cluster.
//!
//! Regenerate the goldens after an intended change with
//! `KSEAL_BLESS=1 cargo test -p kseal --test install`, then review the diff.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/install");

fn kseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kseal"))
        .arg("install")
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "kseal install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn golden(file: &str, actual: &str) {
    let path = Path::new(GOLDEN_DIR).join(file);
    if std::env::var_os("KSEAL_BLESS").is_some() {
        std::fs::create_dir_all(GOLDEN_DIR).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from the output (regenerate with KSEAL_BLESS=1 cargo test -p kseal --test install and review the diff):\n{}",
        path.display(),
        first_difference(&expected, actual)
    );
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}: expected {e:?}, got {a:?}", i + 1);
        }
    }
    format!(
        "lengths differ: expected {} lines, got {}",
        expected.lines().count(),
        actual.lines().count()
    )
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// The rules of a Role or ClusterRole about `resource`, as (resourceNames, verbs).
fn rules<'a>(role: &'a Value, resource: &str) -> Vec<(Vec<&'a str>, Vec<&'a str>)> {
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| strings(&r["resources"]).contains(&resource))
        .map(|r| {
            let names = r.get("resourceNames").map(strings).unwrap_or_default();
            (names, strings(&r["verbs"]))
        })
        .collect()
}

#[test]
fn default_manifests_golden_yaml() {
    let out = stdout(&kseal(&[]));
    golden("default.yaml", &out);
    // Every document parses; the default is Bitnami's layout.
    let docs = yaml_docs(&out);
    assert_eq!(docs.len(), 16);
    let d = find(&docs, "Deployment", "sealed-secrets-controller");
    assert_eq!(d["metadata"]["namespace"], "kube-system");
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        serde_json::json!({"name": "sealed-secrets-controller"})
    );
    find(&docs, "ClusterRole", "secrets-unsealer");
    find(&docs, "Role", "sealed-secrets-key-admin");
    find(&docs, "Role", "sealed-secrets-service-proxier");
}

#[test]
fn named_install_golden_json() {
    let out = stdout(&kseal(&[
        "--namespace",
        "sealed",
        "--name",
        "kseal",
        "--replicas",
        "3",
        "-o",
        "json",
    ]));
    golden("sealed-kseal.json", &out);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items[0]["kind"], "CustomResourceDefinition");
    assert_eq!(find(items, "Deployment", "kseal")["spec"]["replicas"], 3);
    // The same objects as the YAML form.
    let yaml = stdout(&kseal(&[
        "-n",
        "sealed",
        "--name",
        "kseal",
        "--replicas",
        "3",
    ]));
    assert_eq!(&yaml_docs(&yaml), items);
}

#[test]
fn rbac_resource_names_follow_the_name() {
    let out = stdout(&kseal(&[
        "--namespace",
        "sealed",
        "--name",
        "kseal",
        "-o",
        "json",
    ]));
    let list: Value = serde_json::from_str(&out).unwrap();
    let items = list["items"].as_array().unwrap();

    let key_admin = find(items, "Role", "kseal-key-admin");
    assert_eq!(key_admin["metadata"]["namespace"], "sealed");
    assert!(rules(key_admin, "leases").contains(&(vec!["kseal"], vec!["get", "update"])));
    assert!(rules(key_admin, "configmaps").contains(&(
        vec!["kseal-cert", "kseal-cert-renewal"],
        vec!["get", "list", "watch", "patch"]
    )));
    // The legacy key Secret is named after the key prefix, whatever the name.
    assert!(rules(key_admin, "secrets").contains(&(vec!["sealed-secrets-key"], vec!["get"])));

    let proxier = find(items, "Role", "kseal-service-proxier");
    assert_eq!(rules(proxier, "services"), [(vec!["kseal"], vec!["get"])]);
    assert_eq!(
        rules(proxier, "services/proxy"),
        [(
            vec!["http:kseal:", "http:kseal:http", "kseal"],
            vec!["create", "get"]
        )]
    );
    // Readers read the certificate; renewers write only the renewal requests, never what
    // every `kseal seal` trusts.
    for (role, cm) in [
        ("kseal-cert-reader", "kseal-cert"),
        ("kseal-key-renewer", "kseal-cert-renewal"),
    ] {
        let r = find(items, "Role", role);
        assert!(
            rules(r, "configmaps").iter().all(|(n, _)| n == &[cm]),
            "{role}"
        );
    }

    // Cluster-wide objects are prefixed, so installs with other names never collide.
    let binding = find(items, "ClusterRoleBinding", "kseal");
    assert_eq!(binding["roleRef"]["name"], "kseal-secrets-unsealer");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "kseal", "namespace": "sealed"}])
    );
    find(items, "ClusterRole", "kseal-secrets-unsealer");
    assert_eq!(
        find(items, "RoleBinding", "kseal")["roleRef"]["name"],
        "kseal-key-admin"
    );

    // The controller is told the same names.
    let d = find(items, "Deployment", "kseal");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "sealed-secrets-controller");
    assert_eq!(
        strings(&c["args"]),
        [
            "--update-status",
            "--leader-elect",
            "--leader-election-id=kseal",
            "--cert-configmap=kseal-cert",
            "--key-prefix=sealed-secrets-key"
        ]
    );
    assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "kseal");
    assert_eq!(
        find(items, "Service", "kseal")["spec"]["ports"][0]["name"],
        "http"
    );

    // Nothing of the default install is left, but Bitnami's container name.
    let mut rest = list.clone();
    for item in rest["items"].as_array_mut().unwrap() {
        if item["kind"] == "Deployment" {
            item["spec"]["template"]["spec"]["containers"][0]["name"] = Value::Null;
        }
    }
    let text = rest.to_string();
    assert!(!text.contains("sealed-secrets-controller"), "{text}");
    assert!(!text.contains("kube-system"), "{text}");
}

#[test]
fn one_replica_has_no_disruption_budget() {
    let out = stdout(&kseal(&["--replicas", "1"]));
    assert!(!yaml_docs(&out)
        .iter()
        .any(|o| o["kind"] == "PodDisruptionBudget"));
}

fn one_line_error(args: &[&str], expect: &str) {
    let out = kseal(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("kseal: error: "), "{args:?}: {err}");
    assert!(err.contains(expect), "{args:?}: {err}");
}

#[test]
fn bad_flag_values_are_one_line() {
    one_line_error(
        &["--name", "Sealed_Secrets"],
        "invalid --name \"Sealed_Secrets\": use lowercase letters",
    );
    one_line_error(&["--name", "1st"], "starting with a letter");
    one_line_error(&["--name", &"a".repeat(56)], "at most 55 characters");
    one_line_error(
        &["--replicas", "0"],
        "invalid --replicas 0: the controller needs at least 1 replica",
    );
    one_line_error(
        &["-n", "Kube-System"],
        "invalid --namespace \"Kube-System\"",
    );
    one_line_error(&["--image", ""], "invalid --image \"\"");
    one_line_error(&["--wait"], "add --apply");
    one_line_error(&["--apply", "--timeout", "20"], "add --wait");
    one_line_error(
        &["--apply", "--wait", "--timeout", "soon"],
        "invalid --timeout \"soon\"",
    );
    one_line_error(&["--apply", "-o", "json"], "drop -o");
    one_line_error(
        &["--network-policy-from", "10.0.0.1"],
        "invalid --network-policy-from (value 1): give an IPv4 or IPv6 CIDR",
    );
    one_line_error(
        &["--metrics-namespace-selector", "monitoring"],
        "invalid --metrics-namespace-selector (pair 1): give key=value pairs",
    );
    one_line_error(
        &["--dry-run=server", "--apply", "--wait"],
        "drop one of them",
    );
}

#[test]
fn unreachable_cluster_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: c
  context:
    cluster: c
    user: u
users:
- name: u
  user:
    token: t
current-context: c
",
    )
    .unwrap();
    one_line_error(
        &["--apply", "--kubeconfig", kubeconfig.to_str().unwrap()],
        "cannot reach the cluster: ",
    );
    one_line_error(
        &[
            "--dry-run=server",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        "is the cluster reachable? check --kubeconfig and --context",
    );
    one_line_error(
        &["--apply", "--kubeconfig", "/nonexistent/kubeconfig"],
        "cannot read kubeconfig /nonexistent/kubeconfig",
    );
}

/// The rendered objects of `kseal install ARGS -o json`, and its stderr.
fn items(args: &[&str]) -> (Vec<Value>, String) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = kseal(&all);
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    (
        list["items"].as_array().unwrap().clone(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn secret_delete_is_granted_only_with_old_gc_behavior() {
    let unsealer = |items: &[Value]| find(items, "ClusterRole", "secrets-unsealer").clone();
    let (plain, _) = items(&[]);
    assert_eq!(
        rules(&unsealer(&plain), "secrets"),
        [(vec![], vec!["get", "list", "create", "update", "watch"])]
    );
    let (old_gc, _) = items(&["--old-gc-behavior"]);
    assert_eq!(
        rules(&unsealer(&old_gc), "secrets"),
        [(
            vec![],
            vec!["get", "list", "create", "update", "watch", "delete"]
        )]
    );
    let args = |items: &[Value]| {
        let d = find(items, "Deployment", "sealed-secrets-controller");
        d["spec"]["template"]["spec"]["containers"][0]["args"].clone()
    };
    assert!(!args(&plain).to_string().contains("--old-gc-behavior"));
    assert!(args(&old_gc).to_string().contains("\"--old-gc-behavior\""));
}

#[test]
fn the_network_policy_admits_the_proxy_cidrs_and_the_metrics_namespaces() {
    // Default: on, metrics from the monitoring namespace, no CIDR for the HTTP port (and a
    // note saying so on stderr; stdout stays the manifests).
    let (default, stderr) = items(&[]);
    let np = find(&default, "NetworkPolicy", "sealed-secrets-controller");
    assert_eq!(np["metadata"]["namespace"], "kube-system");
    assert_eq!(
        np["spec"]["podSelector"],
        serde_json::json!({"matchLabels": {"name": "sealed-secrets-controller"}})
    );
    assert_eq!(
        np["spec"]["ingress"],
        serde_json::json!([{
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"port": 8081, "protocol": "TCP"}],
        }])
    );
    assert!(
        stderr.starts_with("kseal: note: the NetworkPolicy admits"),
        "{stderr}"
    );
    assert!(stderr.contains("--network-policy-from CIDR"), "{stderr}");

    let (named, stderr) = items(&[
        "--name",
        "kseal",
        "-n",
        "sealed",
        "--network-policy-from",
        "10.0.0.0/24,192.0.2.10/32",
        "--network-policy-from",
        "fd00::/64",
        "--metrics-namespace-selector",
        "team=observability",
    ]);
    assert_eq!(stderr, "");
    let np = find(&named, "NetworkPolicy", "kseal");
    assert_eq!(np["metadata"]["namespace"], "sealed");
    assert_eq!(
        np["spec"]["ingress"],
        serde_json::json!([
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "192.0.2.10/32"}},
                      {"ipBlock": {"cidr": "fd00::/64"}}],
             "ports": [{"port": 8080, "protocol": "TCP"}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}],
             "ports": [{"port": 8081, "protocol": "TCP"}]},
        ])
    );
    // The ports are the container's.
    let c = &find(&named, "Deployment", "kseal")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["ports"][1]["containerPort"], 8081);

    let (off, stderr) = items(&["--no-network-policy"]);
    assert!(!off.iter().any(|o| o["kind"] == "NetworkPolicy"));
    assert_eq!(stderr, "");
    let out = kseal(&["--no-network-policy", "--network-policy-from", "10.0.0.0/8"]);
    assert_eq!(out.status.code(), Some(2));
}
