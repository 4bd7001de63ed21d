//! The sealing page (`kseal web`, crate `kseal-web`) in a real headless Chromium (Debian's
//! `/usr/bin/chromium`, driven over the DevTools protocol by playwright-core from
//! `tests/browser/`, which `.ci/run` installs with `npm ci`).
//!
//! - `page_seals_like_kseal_seal`: the form and `window.kseal` seal with the example
//!   certificate; every output equals `kseal seal`'s for the same input byte for byte once the
//!   ciphertexts and record digests are masked, opens with `kseal unseal` and the example key,
//!   and passes `kseal verify`; every request the pages make stays on their origin and carries no
//!   value; an expired certificate is refused, chosen in the page or served; without a secure
//!   context the page says why. The server's headers and its 404/405 are checked too.
//! - `page_seals_for_the_controller`: `kseal web` without `--cert` takes the cluster's
//!   certificate as `kseal seal` does; what the form seals, a real controller unseals.
//!
//! `KSEAL_WEB_SCREENSHOTS=DIR` writes the screenshots of the first test (empty, filled, result)
//! to DIR: that is how `docs/web-*.png` are made.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kseal_crds::SealedSecret;
use kseal_e2e::bins::{kseal, kseal_binary};
use kseal_e2e::controller::{eventually_secret, http_get};
use kseal_e2e::kube::api::PostParams;
use kseal_e2e::{Cluster, Controller, TestNamespace};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

fn example(file: &str) -> String {
    repo().join("keys-example").join(file).display().to_string()
}

/// A running `kseal web`, killed on drop.
struct WebServer {
    child: Child,
    url: String,
    addr: SocketAddr,
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kseal web ARGS --listen 127.0.0.1:0` and reads the URL it prints on stderr.
fn start_web(args: &[&str]) -> Result<WebServer> {
    let mut child = Command::new(kseal_binary()?)
        .arg("web")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("KUBECONFIG")
        .env_remove("KSEAL_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kseal web")?;
    let mut line = String::new();
    BufReader::new(child.stderr.take().context("stderr")?).read_line(&mut line)?;
    let Some(url) = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(str::to_owned)
    else {
        let _ = child.kill();
        let status = child.wait()?;
        bail!("kseal web did not start ({status}): {line}");
    };
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()?;
    Ok(WebServer { child, url, addr })
}

/// Runs the browser driver on `scenario`; returns what it saw.
fn drive(scenario: &Value) -> Result<Value> {
    let dir = repo().join("tests/browser");
    ensure!(
        dir.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (as .ci/run does)"
    );
    ensure!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: apt-get install chromium (as .ci/run does)"
    );
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("scenario.json");
    std::fs::write(&file, serde_json::to_vec(scenario)?)?;
    let out = Command::new("node")
        .arg("drive.mjs")
        .arg(&file)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .context("running node tests/browser/drive.mjs")?;
    let seen: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "the driver printed no JSON ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    ensure!(
        seen["ok"] == true,
        "the browser run failed: {}\nconsole: {}",
        seen["error"].as_str().unwrap_or(""),
        seen["console"]
    );
    Ok(seen)
}

/// `text` with every ciphertext and every seal-record digest of the SealedSecret it holds
/// replaced by a placeholder naming the item: what is left must not depend on randomness.
fn masked(text: &str) -> Result<String> {
    let body = text.strip_prefix("---\n").unwrap_or(text);
    let ss: SealedSecret = serde_yaml::from_str(body).context("not a SealedSecret")?;
    let mut out = text.to_owned();
    for (item, value) in &ss.spec.encrypted_data {
        ensure!(
            out.matches(value.as_str()).count() == 1,
            "{item}: ciphertext"
        );
        out = out.replace(value.as_str(), &format!("<sealed {item}>"));
    }
    let records = kseal_sealing::seal_record::records_of(&ss)?.context("no seal records")?;
    for (item, record) in records {
        let digest = record.rsplit(';').next().unwrap_or_default().to_owned();
        out = out.replace(&digest, &format!("<digest {item}>"));
    }
    Ok(out)
}

/// `kseal seal --cert tls.crt` of `secret` in `format`, with `extra` flags.
fn kseal_seal(secret: &Value, format: &str, extra: &[&str]) -> Result<String> {
    let cert = example("tls.crt");
    let mut args = vec!["seal", "--cert", &cert, "-o", format];
    args.extend_from_slice(extra);
    let r = kseal(&args, Some(&serde_json::to_vec(secret)?))?;
    ensure!(r.code == Some(0), "kseal seal: {}", r.stderr);
    Ok(r.stdout)
}

/// Opens `sealed` with the example key: item → value.
fn unseal(sealed: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("sealed.yaml");
    std::fs::write(&file, sealed)?;
    let (key, f) = (example("tls.key"), file.display().to_string());
    let r = kseal(&["unseal", "--key", &key, "-f", &f, "-o", "json"], None)?;
    ensure!(r.code == Some(0), "kseal unseal: {}", r.stderr);
    let secret: Secret = serde_json::from_str(&r.stdout)?;
    let cert = example("tls.crt");
    let v = kseal(&["verify", "--cert", &cert, &f], None)?;
    ensure!(
        v.code == Some(0) && v.stdout.lines().all(|l| l.starts_with("ok ")),
        "kseal verify: {}{}",
        v.stdout,
        v.stderr
    );
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

fn b64(s: &[u8]) -> String {
    STANDARD.encode(s)
}

/// Checks that the page and `kseal seal` give the same output for `secret` and that it opens
/// to `want`.
fn same_as_kseal(
    page: &str,
    secret: &Value,
    format: &str,
    extra: &[&str],
    want: &[(&str, &[u8])],
) -> Result<()> {
    let cli = kseal_seal(secret, format, extra)?;
    let (p, c) = (masked(page)?, masked(&cli)?);
    ensure!(
        p == c,
        "page output differs from kseal seal's:\n{p}\n----\n{c}"
    );
    let mut got = unseal(page)?;
    got.sort();
    let mut want: Vec<(String, Vec<u8>)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    want.sort();
    ensure!(got == want, "opened to {got:?}, want {want:?}");
    Ok(())
}

/// A raw value opens as `value` when put into a SealedSecret of that name, namespace and scope.
fn raw_opens(raw: &str, namespace: &str, name: &str, scope: &str, value: &[u8]) -> Result<()> {
    let mut annotations = serde_json::Map::new();
    if scope != "strict" {
        annotations.insert(format!("sealedsecrets.bitnami.com/{scope}"), json!("true"));
    }
    let ss = json!({
        "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"encryptedData": {"value": raw}, "template": {}},
    });
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("raw.json");
    std::fs::write(&file, serde_json::to_vec(&ss)?)?;
    let (key, f) = (example("tls.key"), file.display().to_string());
    let r = kseal(&["unseal", "--key", &key, "-f", &f, "-o", "json"], None)?;
    ensure!(r.code == Some(0), "raw value: kseal unseal: {}", r.stderr);
    let secret: Secret = serde_json::from_str(&r.stdout)?;
    ensure!(secret.data.unwrap_or_default()["value"].0 == value);
    Ok(())
}

/// Every request stayed on its page's origin, was a GET without body for one of the page's
/// files, and carried none of `canaries` (also base64-encoded) anywhere.
fn check_requests(seen: &Value, origins: &[(&str, &str)], canaries: &[&[u8]]) -> Result<()> {
    let origins: Vec<(&str, String)> = origins.iter().map(|(p, o)| (*p, o.to_string())).collect();
    check(seen, &origins, "", canaries)
}

/// [`check_requests`] for the main page served under `prefix` of `origin`.
fn check_requests_under(
    seen: &Value,
    origin: &str,
    prefix: &str,
    canaries: &[&[u8]],
) -> Result<()> {
    check(seen, &[("main", origin.to_string())], prefix, canaries)
}

fn check(seen: &Value, origins: &[(&str, String)], prefix: &str, canaries: &[&[u8]]) -> Result<()> {
    let requests = seen["requests"].as_array().context("requests")?;
    ensure!(!requests.is_empty(), "no request recorded");
    let files = [
        "/",
        "/kseal.css",
        "/app.js",
        "/seal.js",
        "/cert.pem",
        "/favicon.svg",
    ];
    for r in requests {
        let page = r["page"].as_str().unwrap_or_default();
        let origin = origins
            .iter()
            .find(|(p, _)| *p == page)
            .map(|(_, o)| o.as_str())
            .with_context(|| format!("a request from an unknown page: {r}"))?;
        let url = r["url"].as_str().unwrap_or_default();
        let path = url
            .strip_prefix(origin)
            .with_context(|| format!("request to another origin than {origin}: {url}"))?;
        let path = path
            .strip_prefix(prefix)
            .with_context(|| format!("request outside {prefix}: {url}"))?;
        ensure!(files.contains(&path), "unexpected request {url}");
        ensure!(
            r["method"] == "GET" && r["body"].is_null(),
            "not a GET without body: {r}"
        );
        let text = r.to_string();
        for c in canaries {
            for needle in [String::from_utf8_lossy(c).into_owned(), b64(c)] {
                ensure!(!text.contains(&needle), "a request carries a value: {url}");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn page_seals_like_kseal_seal() -> Result<()> {
    let server = start_web(&["--cert", &example("tls.crt")])?;
    let origin = server.url.trim_end_matches('/').to_owned();

    // The server: the page's headers on every answer, 404 and 405.
    for path in ["/", "/app.js", "/cert.pem", "/nope"] {
        let r = http_get(server.addr, path).await?;
        ensure!(
            r.status == if path == "/nope" { 404 } else { 200 },
            "{path}: {}",
            r.status
        );
        for (name, value) in kseal_web::SECURITY_HEADERS {
            ensure!(
                r.headers.iter().any(|(k, v)| k == name && v == value),
                "{path}: header {name} missing"
            );
        }
    }
    let cert_pem = http_get(server.addr, "/cert.pem").await?.body;
    let cert = kseal_crypto::Certificate::from_pem(cert_pem.as_bytes())?;
    let fingerprint = cert.fingerprint().to_string();
    let post = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = tokio::net::TcpStream::connect(server.addr).await?;
        s.write_all(b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        out
    };
    ensure!(
        post.starts_with("HTTP/1.") && post.contains(" 405 "),
        "{post}"
    );

    // What the test seals: text (with a newline and non-ASCII), a binary file, canaries all.
    let tmp = tempfile::tempdir()?;
    let password = "canary-Pässwörd-7f3a\nsecond line";
    let file_value = b"canary-file-b81c\x00\x01\xfe\xff binary".to_vec();
    let file = tmp.path().join("tls.key");
    std::fs::write(&file, &file_value)?;
    let api_password = "canary-api-52e1 <&> \"quoted\"";
    let api_token = b"canary-token-9d04";
    let cluster_value = "canary-cluster-0c77";
    let raw_value = "canary-raw-3b9e";
    let raw_api_value = "canary-raw-api-e410";
    let shots = std::env::var_os("KSEAL_WEB_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("shots"));
    std::fs::create_dir_all(&shots)?;

    let scenario = json!({
        "url": server.url,
        "insecureUrl": format!("http://kseal-insecure.test:{}/", server.addr.port()),
        "screenshots": shots,
        "form": {
            "namespace": "web-test", "name": "database", "scope": "strict", "type": "Opaque",
            "items": [{"key": "password", "value": password}, {"key": "tls.key", "file": file}],
        },
        "rawForm": {"namespace": "web-test", "name": "database", "scope": "namespace-wide", "value": raw_value},
        "api": [
            {"namespace": "prod", "name": "api", "scope": "namespace-wide", "type": "kubernetes.io/basic-auth",
             "stringData": {"username": "admin", "password": api_password}, "data": {"token": b64(api_token)}},
            {"name": "shared", "scope": "cluster-wide", "immutable": true, "format": "json",
             "stringData": {"10": cluster_value, "9": "b", "true": "c", "x.y": "d"}},
        ],
        "raw": [{"namespace": "prod", "name": "api", "value": raw_api_value}],
        "apiErrors": [
            {"namespace": "prod", "stringData": {"k": "v"}},
            {"namespace": "prod", "name": "x", "stringData": {"bad key": "v"}},
            {"namespace": "Prod", "name": "x", "stringData": {"k": "v"}},
            {"namespace": "prod", "name": "x"},
        ],
        "expiredCertFile": repo().join("cli/tests/cmd/fixtures/expired.crt"),
    });
    let seen = drive(&scenario)?;
    let steps = &seen["steps"];

    // The certificate as `kseal cert --fingerprint` names it, and its expiry.
    ensure!(steps["certificate"]["fingerprint"] == fingerprint.as_str());
    ensure!(steps["certificateShown"]["fingerprint"] == fingerprint.as_str());
    let expiry = steps["certificateShown"]["expiry"].as_str().unwrap_or("");
    ensure!(expiry.starts_with("2036-11-18T14:22:10Z"), "{expiry}");
    ensure!(steps["storage"] == json!({"cookies": "", "local": 0, "session": 0}));

    // An error next to its field, which gets the focus.
    ensure!(
        steps["missingName"]
            == json!({"error": "name is required", "invalid": "true", "focused": "name"}),
        "{}",
        steps["missingName"]
    );

    // The form: YAML and JSON (same ciphertexts), the download, each as kseal seal prints it.
    let form_secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "database", "namespace": "web-test"}, "type": "Opaque",
        "data": {"password": b64(password.as_bytes()), "tls.key": b64(&file_value)},
    });
    let want: &[(&str, &[u8])] = &[("password", password.as_bytes()), ("tls.key", &file_value)];
    let yaml = steps["formYaml"].as_str().context("formYaml")?;
    let json_out = steps["formJson"].as_str().context("formJson")?;
    same_as_kseal(yaml, &form_secret, "yaml", &[], want)?;
    same_as_kseal(json_out, &form_secret, "json", &[], want)?;
    ensure!(steps["download"]["text"] == json_out);
    ensure!(steps["download"]["name"] == "database-sealedsecret.json");
    let status = steps["resultStatus"].as_str().unwrap_or("");
    ensure!(
        status.contains("2 items sealed, strict (web-test/database)"),
        "{status}"
    );

    // window.kseal.seal: namespace-wide with a type, data and stringData; cluster-wide without
    // a namespace, immutable, item names that YAML must quote, as JSON.
    let api = steps["api"].as_array().context("api")?;
    same_as_kseal(
        api[0].as_str().context("api 0")?,
        &json!({"metadata": {"name": "api", "namespace": "prod"}, "type": "kubernetes.io/basic-auth",
                "data": {"token": b64(api_token)}, "stringData": {"username": "admin", "password": api_password}}),
        "yaml",
        &["--scope", "namespace-wide"],
        &[
            ("username", b"admin"),
            ("password", api_password.as_bytes()),
            ("token", api_token),
        ],
    )?;
    same_as_kseal(
        api[1].as_str().context("api 1")?,
        &json!({"metadata": {"name": "shared"}, "immutable": true,
                "stringData": {"10": cluster_value, "9": "b", "true": "c", "x.y": "d"}}),
        "json",
        &["--scope", "cluster-wide"],
        &[
            ("10", cluster_value.as_bytes()),
            ("9", b"b"),
            ("true", b"c"),
            ("x.y", b"d"),
        ],
    )?;

    // --raw-style values, from the form and from window.kseal.raw.
    raw_opens(
        steps["formRaw"].as_str().context("formRaw")?,
        "web-test",
        "anything",
        "namespace-wide",
        raw_value.as_bytes(),
    )?;
    raw_opens(
        steps["raw"][0].as_str().context("raw")?,
        "prod",
        "api",
        "strict",
        raw_api_value.as_bytes(),
    )?;

    // Bad input: one message naming the field, never the value.
    let errors = steps["apiErrors"].as_array().context("apiErrors")?;
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap_or(""))
        .collect();
    ensure!(
        fields == ["name", "stringData.bad key.key", "namespace", "items"],
        "{errors:?}"
    );

    // Expired certificates are refused, with kseal seal's message.
    let refused = "failed to encrypt using an expired certificate on January 2, 2021";
    ensure!(
        steps["expiredChosen"]["error"] == refused,
        "{}",
        steps["expiredChosen"]
    );
    ensure!(steps["expiredChosen"]["stillUsing"] == fingerprint.as_str());
    let served = &steps["expiredServed"];
    ensure!(
        served["status"].as_str().unwrap_or("").contains(refused)
            && served["sealDisabled"] == true
            && served["api"]["field"] == "certificate"
            && served["api"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(refused),
        "{served}"
    );

    // No secure context: no WebCrypto, and the page says why.
    let insecure = &steps["insecure"];
    ensure!(
        insecure["subtle"] == "undefined"
            && insecure["visible"] == true
            && insecure["sealDisabled"] == true
            && insecure["banner"]
                .as_str()
                .unwrap_or("")
                .contains("not in a secure context"),
        "{insecure}"
    );

    // Every request of every page: own origin, a file of the page, no value.
    let insecure_origin = format!("http://kseal-insecure.test:{}", server.addr.port());
    let canaries: Vec<&[u8]> = vec![
        password.as_bytes(),
        &file_value[..16],
        api_password.as_bytes(),
        api_token,
        cluster_value.as_bytes(),
        raw_value.as_bytes(),
        raw_api_value.as_bytes(),
    ];
    check_requests(
        &seen,
        &[
            ("main", &origin),
            ("expired", &origin),
            ("insecure", &insecure_origin),
        ],
        &canaries,
    )?;
    // No console error (a CSP violation would be one). Over plain HTTP from a name that is
    // not loopback, Chromium says that it ignores Cross-Origin-Opener-Policy: that one is
    // expected on the insecure page.
    let console: Vec<&Value> = seen["console"]
        .as_array()
        .context("console")?
        .iter()
        .filter(|m| {
            !(m["page"] == "insecure"
                && m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Cross-Origin-Opener-Policy")))
        })
        .collect();
    ensure!(console.is_empty(), "console errors: {console:?}");
    for name in ["web-empty.png", "web-filled.png", "web-result.png"] {
        let png = std::fs::read(shots.join(name))?;
        ensure!(png.starts_with(b"\x89PNG"), "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn page_seals_for_the_controller() -> Result<()> {
    let home = TestNamespace::new("web").await?;
    let ctl_ns = home.name().to_owned();
    let apps = TestNamespace::new("web-apps").await?;
    let ctl = Controller::builder()
        .in_namespace(home)
        .watch(apps.name())
        .switch("--web-page")
        .start()
        .await?;
    let want = ctl.sealing_certificate().await?.fingerprint().to_string();
    let admin = Cluster::shared()?.kubeconfig_path().display().to_string();

    // No --cert: the certificate the controller publishes, as kseal seal takes it.
    let server = kseal_e2e::eventually("kseal web", Duration::from_secs(20), || {
        let (admin, ns) = (admin.clone(), ctl_ns.clone());
        async move { Ok(start_web(&["--kubeconfig", &admin, "--controller-namespace", &ns]).ok()) }
    })
    .await?;
    let origin = server.url.trim_end_matches('/').to_owned();
    let value = "canary-controller-61d2";
    let seen = drive(&json!({
        "url": server.url,
        "screenshots": null,
        "formOnly": true,
        "form": {"namespace": apps.name(), "name": "web-db", "scope": "strict", "type": "Opaque",
                 "items": [{"key": "password", "value": value}]},
    }))?;
    ensure!(seen["steps"]["certificate"]["fingerprint"] == want.as_str());
    check_requests(&seen, &[("main", &origin)], &[value.as_bytes()])?;

    let yaml = seen["steps"]["formYaml"].as_str().context("formYaml")?;
    let ss: SealedSecret = serde_yaml::from_str(yaml.trim_start_matches("---\n"))?;
    apps.api::<SealedSecret>()
        .create(&PostParams::default(), &ss)
        .await?;
    eventually_secret(&apps.api::<Secret>(), "web-db", |s| {
        kseal_e2e::controller::check_data(s, &[("password", value)])
    })
    .await?;
    drop(server);

    // The controller's --web-page: the same page under /web/, its certificate next to it.
    let r = ctl.get("/web").await?;
    ensure!(
        r.status == 301
            && r.headers
                .iter()
                .any(|(k, v)| k == "location" && v == "web/"),
        "/web: {r:?}"
    );
    for path in ["/web/", "/web/seal.js", "/web/cert.pem"] {
        let r = ctl.get(path).await?;
        ensure!(r.status == 200, "{path}: {}", r.status);
        for (name, value) in kseal_web::SECURITY_HEADERS {
            ensure!(
                r.headers.iter().any(|(k, v)| k == name && v == value),
                "{path}: header {name} missing"
            );
        }
    }
    let page = format!("{}/web/", ctl.http_url());
    let value2 = "canary-controller-page-90ab";
    let seen = drive(&json!({
        "url": page,
        "screenshots": null,
        "formOnly": true,
        "form": {"namespace": apps.name(), "name": "web-db2", "scope": "namespace-wide", "type": "",
                 "items": [{"key": "token", "value": value2}]},
    }))?;
    ensure!(seen["steps"]["certificate"]["fingerprint"] == want.as_str());
    check_requests_under(&seen, &ctl.http_url(), "/web", &[value2.as_bytes()])?;
    let yaml = seen["steps"]["formYaml"].as_str().context("formYaml")?;
    let ss: SealedSecret = serde_yaml::from_str(yaml.trim_start_matches("---\n"))?;
    apps.api::<SealedSecret>()
        .create(&PostParams::default(), &ss)
        .await?;
    eventually_secret(&apps.api::<Secret>(), "web-db2", |s| {
        kseal_e2e::controller::check_data(s, &[("token", value2)])
    })
    .await?;
    ctl.finish().await?;
    apps.cleanup().await
}
