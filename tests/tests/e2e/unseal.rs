//! The controller turning SealedSecrets into Secrets on a real API server: Bitnami's
//! integration scenarios IT-01..IT-22 (docs/compatibility.md, “Integration scenarios”), plus recovery of the status after a fixed
//! error, a canary that must never leave the Secret, and a restart.
//!
//! Every test starts its own `kseal-controller` (its own namespace, the least-privilege RBAC of
//! `controller/deploy/rbac.yaml`, watching only the test's namespaces), seals Bitnami's base
//! fixture (Secret `testsecret`, label `mylabel=myvalue`, data `foo=bar`) with the newest key
//! Secret's certificate, and checks with Bitnami's timings (eventually = 15 s, polled every
//! 100 ms; "consistently" = 3 s).
//!
//! kseal differences the assertions allow for: every Secret the controller writes carries one
//! extra annotation, the ownership mark `sealedsecrets.kseal.dev/record`, which is removed before annotations are
//! compared; the `Synced` condition also carries a `reason`.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use k8s_openapi::api::core::v1::{Event, Secret};
use kseal_crds::{SealedSecret, ANNOTATION_MANAGED, ANNOTATION_PATCH};
use kseal_crypto::keygen::{self, KeyProfile};
use kseal_crypto::scope::{ANNOTATION_CLUSTER_WIDE, ANNOTATION_NAMESPACE_WIDE};
use kseal_crypto::Certificate;
use kseal_e2e::controller::{
    annotations_without_ownership, base_secret, bytes_map, check_data, check_owned_by,
    consistently_absent, eventually_ok, eventually_secret, expect_event, labels, seal, seal_for,
    seal_item, string_map, synced_condition, wait_synced, SECRET_NAME,
};
use kseal_e2e::kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kseal_e2e::kube::Api;
use kseal_e2e::{Controller, ControllerBuilder, TestNamespace};

/// Name of a renamed SealedSecret (IT-17, IT-19, IT-21).
const OTHER_NAME: &str = "not-testsecret";

/// One scenario: a test namespace (and maybe more), a controller watching them, the certificate.
struct Case {
    // Field order = drop order on failure: stop the controller first (printing its log), then
    // delete the namespaces.
    ctl: Controller,
    ns: TestNamespace,
    others: Vec<TestNamespace>,
    cert: Certificate,
}

impl Case {
    async fn new(prefix: &str) -> Result<Case> {
        Self::build(prefix, 0, |b| b).await
    }

    /// A case with `extra` more watched namespaces; `configure` adjusts the controller's flags.
    async fn build(
        prefix: &str,
        extra: usize,
        configure: impl FnOnce(ControllerBuilder) -> ControllerBuilder,
    ) -> Result<Case> {
        let ns = TestNamespace::new(prefix).await?;
        let mut others = Vec::new();
        for _ in 0..extra {
            others.push(TestNamespace::new(&format!("{prefix}-other")).await?);
        }
        let mut builder = Controller::builder()
            .prefix(&format!("{prefix}-ctl"))
            .watch(ns.name());
        for o in &others {
            builder = builder.watch(o.name());
        }
        let ctl = configure(builder).start().await?;
        let cert = ctl.sealing_certificate().await?;
        Ok(Case {
            ctl,
            ns,
            others,
            cert,
        })
    }

    fn name(&self) -> &str {
        self.ns.name()
    }

    fn other(&self) -> &str {
        self.others[0].name()
    }

    fn secrets(&self) -> Api<Secret> {
        self.ns.api()
    }

    fn secrets_in(&self, namespace: &str) -> Api<Secret> {
        Api::namespaced(self.ns.client().clone(), namespace)
    }

    fn sealed(&self) -> Api<SealedSecret> {
        self.ns.api()
    }

    fn sealed_in(&self, namespace: &str) -> Api<SealedSecret> {
        Api::namespaced(self.ns.client().clone(), namespace)
    }

    /// The base fixture Secret in the test namespace.
    fn base(&self) -> Secret {
        base_secret(self.name())
    }

    /// The base fixture sealed (strict).
    fn sealed_base(&self) -> Result<SealedSecret> {
        seal(&self.cert, self.base())
    }

    /// The base fixture with `annotation: "true"` (a scope), sealed.
    fn sealed_base_with(&self, annotation: &str) -> Result<SealedSecret> {
        let mut s = self.base();
        s.metadata.annotations = Some(string_map(&[(annotation, "true")]));
        seal(&self.cert, s)
    }

    /// Creates `ss` in its own namespace.
    async fn create(&self, ss: &SealedSecret) -> Result<SealedSecret> {
        let ns = ss
            .metadata
            .namespace
            .clone()
            .context("SealedSecret without namespace")?;
        self.sealed_in(&ns)
            .create(&PostParams::default(), ss)
            .await
            .with_context(|| {
                format!(
                    "creating SealedSecret {ns}/{}",
                    ss.metadata.name.as_deref().unwrap_or("")
                )
            })
    }

    /// Replaces the spec of SealedSecret `name` with `new`'s (retried on conflicts with the
    /// controller's status writes).
    async fn update_spec(&self, name: &str, new: &SealedSecret) -> Result<SealedSecret> {
        let api = self.sealed();
        eventually_ok(&format!("update of SealedSecret {name}"), || async {
            let mut current = api.get(name).await?;
            current.spec = new.spec.clone();
            Ok(api.replace(name, &PostParams::default(), &current).await?)
        })
        .await
    }

    /// A Secret that exists before the SealedSecret: `testsecret` with data {foo: bar1, foo2:
    /// bar2}, labels {mylabel: myvalue, anotherlabel: anothervalue} and `annotations` = "true".
    async fn pre_existing(&self, annotations: &[&str]) -> Result<Secret> {
        let mut s = self.base();
        s.data = Some(bytes_map(&[("foo", "bar1"), ("foo2", "bar2")]));
        s.metadata.labels = Some(string_map(&[
            ("mylabel", "myvalue"),
            ("anotherlabel", "anothervalue"),
        ]));
        if !annotations.is_empty() {
            s.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|a| (a.to_string(), "true".to_string()))
                    .collect(),
            );
        }
        self.secrets()
            .create(&PostParams::default(), &s)
            .await
            .context("creating the pre-existing Secret")
    }

    async fn event(&self, namespace: &str, name: &str, reason: &str) -> Result<Event> {
        expect_event(self.ns.client(), namespace, name, reason, None).await
    }

    async fn delete_secret(&self, name: &str) -> Result<()> {
        self.secrets()
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting Secret {name}"))?;
        Ok(())
    }

    async fn finish(self) -> Result<()> {
        self.ctl.finish().await?;
        for o in self.others {
            o.cleanup().await?;
        }
        self.ns.cleanup().await
    }
}

fn no_owners(secret: &Secret) -> Result<()> {
    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    ensure!(owners.is_empty(), "want no ownerReferences, got {owners:?}");
    Ok(())
}

fn check_annotations(secret: &Secret, want: &[&str]) -> Result<()> {
    let got = annotations_without_ownership(secret);
    let want = want
        .iter()
        .map(|a| (a.to_string(), "true".to_string()))
        .collect();
    ensure!(
        got == want,
        "annotations (without the ownership mark) are {got:?}, want {want:?}"
    );
    Ok(())
}

fn check_labels(secret: &Secret, want: &[(&str, &str)]) -> Result<()> {
    let got = labels(secret);
    let want = string_map(want);
    ensure!(got == want, "labels are {got:?}, want {want:?}");
    Ok(())
}

const BOTH_LABELS: [(&str, &str); 2] = [("mylabel", "myvalue"), ("anotherlabel", "anothervalue")];

// ---------------------------------------------------------------------------------------------
// Simple change: IT-01..IT-04.

/// IT-01: the SealedSecret becomes a Secret with its data and labels; Synced with
/// lastTransitionTime == lastUpdateTime; an `Unsealed` event.
#[tokio::test]
async fn it01_create_produces_the_secret() -> Result<()> {
    let c = Case::new("it01").await?;
    let ss = c.create(&c.sealed_base()?).await?;
    let s = eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    ensure!(
        labels(&s).get("mylabel").map(String::as_str) == Some("myvalue"),
        "labels {:?}",
        s.metadata.labels
    );
    check_owned_by(&s, &ss)?;
    let synced = wait_synced(&c.sealed(), SECRET_NAME, "True").await?;
    let cond = synced_condition(&synced).context("no Synced condition")?;
    ensure!(
        cond.last_update_time.is_some() && cond.last_transition_time == cond.last_update_time,
        "want lastTransitionTime == lastUpdateTime, got {cond:?}"
    );
    let observed = synced.status.as_ref().and_then(|s| s.observed_generation);
    ensure!(
        observed == Some(1),
        "observedGeneration {observed:?}, want 1"
    );
    c.event(c.name(), SECRET_NAME, "Unsealed").await?;
    c.finish().await
}

/// IT-02: an update of the SealedSecret (re-sealed foo=baz) updates the Secret; the status follows
/// with observedGeneration 2 and a lastUpdateTime after the (unchanged) lastTransitionTime.
#[tokio::test]
async fn it02_update_changes_the_secret() -> Result<()> {
    let c = Case::new("it02").await?;
    c.create(&c.sealed_base()?).await?;
    wait_synced(&c.sealed(), SECRET_NAME, "True").await?;
    // Condition times have a resolution of one second.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut s = c.base();
    s.data = Some(bytes_map(&[("foo", "baz")]));
    let resealed = seal(&c.cert, s)?;
    c.update_spec(SECRET_NAME, &resealed).await?;

    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "baz")])
    })
    .await?;
    let sealed = c.sealed();
    let ss = eventually_ok("observedGeneration 2", || async {
        let ss = sealed.get(SECRET_NAME).await?;
        let observed = ss.status.as_ref().and_then(|s| s.observed_generation);
        ensure!(
            observed == Some(2),
            "observedGeneration {observed:?} (generation {:?}, status {:?})",
            ss.metadata.generation,
            ss.status
        );
        Ok(ss)
    })
    .await?;
    let cond = synced_condition(&ss).context("no Synced condition")?;
    ensure!(cond.status == "True", "{cond:?}");
    ensure!(
        cond.last_transition_time != cond.last_update_time,
        "want lastTransitionTime != lastUpdateTime after an update, got {cond:?}"
    );
    c.finish().await
}

/// IT-03: items can be renamed: encryptedData foo → xyzzy gives data {xyzzy: bar}.
#[tokio::test]
async fn it03_renamed_item() -> Result<()> {
    let c = Case::new("it03").await?;
    let mut ss = c.sealed_base()?;
    let foo = ss.spec.encrypted_data.remove("foo").context("no foo")?;
    ss.spec.encrypted_data.insert("xyzzy".into(), foo);
    c.create(&ss).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("xyzzy", "bar")])
    })
    .await?;
    c.finish().await
}

/// IT-04: an item sealed separately for `<ns>/testsecret` is added.
#[tokio::test]
async fn it04_appended_item() -> Result<()> {
    let c = Case::new("it04").await?;
    let mut ss = c.sealed_base()?;
    let label = format!("{}/{SECRET_NAME}", c.name());
    ss.spec
        .encrypted_data
        .insert("foo2".into(), seal_item(&c.cert, &label, b"new!")?);
    c.create(&ss).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar"), ("foo2", "new!")])
    })
    .await?;
    c.finish().await
}

// ---------------------------------------------------------------------------------------------
// Secret already exists: IT-05..IT-08.

/// IT-05: `managed` → taken over and replaced: owner = the SealedSecret, data and labels exactly
/// the SealedSecret's, no annotations.
#[tokio::test]
async fn it05_existing_managed_secret_is_replaced() -> Result<()> {
    let c = Case::new("it05").await?;
    c.pre_existing(&[ANNOTATION_MANAGED]).await?;
    let ss = c.create(&c.sealed_base()?).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_owned_by(s, &ss)?;
        check_data(s, &[("foo", "bar")])?;
        check_annotations(s, &[])?;
        check_labels(s, &[("mylabel", "myvalue")])
    })
    .await?;
    c.event(c.name(), SECRET_NAME, "Unsealed").await?;
    c.finish().await
}

/// IT-06: `managed` + `patch` → taken over and merged: owner = the SealedSecret, data, labels
/// and annotations merged.
#[tokio::test]
async fn it06_existing_managed_patch_secret_is_merged_and_owned() -> Result<()> {
    let c = Case::new("it06").await?;
    c.pre_existing(&[ANNOTATION_MANAGED, ANNOTATION_PATCH])
        .await?;
    let ss = c.create(&c.sealed_base()?).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_owned_by(s, &ss)?;
        check_data(s, &[("foo", "bar"), ("foo2", "bar2")])?;
        check_annotations(s, &[ANNOTATION_MANAGED, ANNOTATION_PATCH])?;
        check_labels(s, &BOTH_LABELS)
    })
    .await?;
    c.finish().await
}

/// IT-07: `patch` alone → merged but not owned.
#[tokio::test]
async fn it07_existing_patch_secret_is_merged_not_owned() -> Result<()> {
    let c = Case::new("it07").await?;
    c.pre_existing(&[ANNOTATION_PATCH]).await?;
    c.create(&c.sealed_base()?).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar"), ("foo2", "bar2")])?;
        no_owners(s)?;
        check_annotations(s, &[ANNOTATION_PATCH])?;
        check_labels(s, &BOTH_LABELS)
    })
    .await?;
    c.finish().await
}

/// IT-08: an empty Secret (no data, no labels) with `patch` gets the data and labels, no owner.
#[tokio::test]
async fn it08_existing_empty_patch_secret_is_filled() -> Result<()> {
    let c = Case::new("it08").await?;
    let mut empty = c.base();
    empty.data = None;
    empty.metadata.labels = None;
    empty.metadata.annotations = Some(string_map(&[(ANNOTATION_PATCH, "true")]));
    c.secrets()
        .create(&PostParams::default(), &empty)
        .await
        .context("creating the empty Secret")?;
    c.create(&c.sealed_base()?).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar")])?;
        no_owners(s)?;
        check_annotations(s, &[ANNOTATION_PATCH])?;
        check_labels(s, &[("mylabel", "myvalue")])
    })
    .await?;
    c.finish().await
}

// ---------------------------------------------------------------------------------------------
// Secret deleted: IT-09..IT-12.

/// Deletes Secret testsecret and waits until it is back: a new object, owned, data {foo: bar}.
async fn expect_recreated(c: &Case, ss: &SealedSecret) -> Result<()> {
    let old = c.secrets().get(SECRET_NAME).await?;
    c.delete_secret(SECRET_NAME).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        ensure!(
            s.metadata.uid != old.metadata.uid,
            "still the old Secret (uid {:?})",
            old.metadata.uid
        );
        check_owned_by(s, ss)?;
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    Ok(())
}

/// IT-09: a deleted owned Secret is recreated.
#[tokio::test]
async fn it09_deleted_owned_secret_is_recreated() -> Result<()> {
    let c = Case::new("it09").await?;
    let ss = c.create(&c.sealed_base()?).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| check_owned_by(s, &ss)).await?;
    expect_recreated(&c, &ss).await?;
    c.event(c.name(), SECRET_NAME, "Unsealed").await?;
    c.finish().await
}

/// IT-10: a `managed` Secret, once taken over and then deleted, is recreated.
#[tokio::test]
async fn it10_deleted_managed_secret_is_recreated() -> Result<()> {
    let c = Case::new("it10").await?;
    c.pre_existing(&[ANNOTATION_MANAGED]).await?;
    let ss = c.create(&c.sealed_base()?).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_owned_by(s, &ss)?;
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    expect_recreated(&c, &ss).await?;
    c.finish().await
}

/// IT-11: an unannotated Secret makes the SealedSecret refuse; once deleted, it is not
/// recreated.
#[tokio::test]
async fn it11_deleted_unmanaged_secret_is_not_recreated() -> Result<()> {
    let c = Case::new("it11").await?;
    c.pre_existing(&[]).await?;
    c.create(&c.sealed_base()?).await?;
    expect_event(
        c.ns.client(),
        c.name(),
        SECRET_NAME,
        "ErrUpdateFailed",
        Some("already exists and is not managed by SealedSecret"),
    )
    .await?;
    let untouched = c.secrets().get(SECRET_NAME).await?;
    check_data(&untouched, &[("foo", "bar1"), ("foo2", "bar2")])
        .context("the unmanaged Secret was changed")?;
    no_owners(&untouched).context("the unmanaged Secret was changed")?;
    c.delete_secret(SECRET_NAME).await?;
    consistently_absent(&c.secrets(), SECRET_NAME).await?;
    c.finish().await
}

/// IT-12: a `patch`-only Secret (merged, not owned), once deleted, is not recreated.
#[tokio::test]
async fn it12_deleted_patch_only_secret_is_not_recreated() -> Result<()> {
    let c = Case::new("it12").await?;
    c.pre_existing(&[ANNOTATION_PATCH]).await?;
    c.create(&c.sealed_base()?).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar"), ("foo2", "bar2")])?;
        no_owners(s)
    })
    .await?;
    c.delete_secret(SECRET_NAME).await?;
    consistently_absent(&c.secrets(), SECRET_NAME).await?;
    c.finish().await
}

// ---------------------------------------------------------------------------------------------
// Wrong key, custom type, immutable: IT-13..IT-16.

/// IT-13: sealed for a key the cluster does not have (a random 2048-bit key: kseal refuses
/// keys under 2048 bits, Bitnami's test uses 1024) → no Secret, `ErrUnsealFailed`.
#[tokio::test]
async fn it13_wrong_key_produces_no_secret() -> Result<()> {
    let c = Case::new("it13").await?;
    let stranger = keygen::generate(
        &mut rand::rngs::OsRng,
        &KeyProfile {
            bits: 2048,
            ..Default::default()
        },
        time::OffsetDateTime::now_utc(),
    )?;
    c.create(&seal_for(stranger.public_key(), c.base())?)
        .await?;
    c.event(c.name(), SECRET_NAME, "ErrUnsealFailed").await?;
    let ss = wait_synced(&c.sealed(), SECRET_NAME, "False").await?;
    let cond = synced_condition(&ss).context("no Synced condition")?;
    ensure!(
        cond.message.as_deref().is_some_and(|m| !m.is_empty()),
        "a failed condition needs a message: {cond:?}"
    );
    consistently_absent(&c.secrets(), SECRET_NAME).await?;
    c.finish().await
}

/// IT-14: a `.dockerconfigjson` item and `template.type: kubernetes.io/dockerconfigjson`.
#[tokio::test]
async fn it14_custom_secret_type() -> Result<()> {
    let c = Case::new("it14").await?;
    let config = r#"{"auths": {"https://index.docker.io/v1/": {"auth": "c3R...zE2"}}}"#;
    let mut ss = c.sealed_base()?;
    let label = format!("{}/{SECRET_NAME}", c.name());
    ss.spec.encrypted_data.insert(
        ".dockerconfigjson".into(),
        seal_item(&c.cert, &label, config.as_bytes())?,
    );
    ss.spec.encrypted_data.remove("foo");
    ss.spec.template.type_ = Some("kubernetes.io/dockerconfigjson".into());
    c.create(&ss).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[(".dockerconfigjson", config)])?;
        ensure!(
            s.type_.as_deref() == Some("kubernetes.io/dockerconfigjson"),
            "type {:?}",
            s.type_
        );
        Ok(())
    })
    .await?;
    wait_synced(&c.sealed(), SECRET_NAME, "True").await?;
    c.event(c.name(), SECRET_NAME, "Unsealed").await?;
    c.finish().await
}

/// IT-15: `template.immutable: true` makes an immutable Secret.
#[tokio::test]
async fn it15_immutable_secret() -> Result<()> {
    let c = Case::new("it15").await?;
    let mut ss = c.sealed_base()?;
    ss.spec.template.immutable = Some(true);
    c.create(&ss).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar")])?;
        ensure!(s.immutable == Some(true), "immutable is {:?}", s.immutable);
        Ok(())
    })
    .await?;
    c.event(c.name(), SECRET_NAME, "Unsealed").await?;
    c.finish().await
}

/// IT-16: new data for an immutable Secret: observedGeneration 2, `ErrUpdateFailed` "the target
/// Secret is immutable", the Secret unchanged.
#[tokio::test]
async fn it16_update_of_an_immutable_secret_fails() -> Result<()> {
    let c = Case::new("it16").await?;
    let mut ss = c.sealed_base()?;
    ss.spec.template.immutable = Some(true);
    c.create(&ss).await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        ensure!(s.immutable == Some(true), "immutable is {:?}", s.immutable);
        Ok(())
    })
    .await?;
    wait_synced(&c.sealed(), SECRET_NAME, "True").await?;

    let mut s = c.base();
    s.data = Some(bytes_map(&[("foo", "baz")]));
    let mut resealed = seal(&c.cert, s)?;
    resealed.spec.template.immutable = Some(true);
    c.update_spec(SECRET_NAME, &resealed).await?;

    let sealed = c.sealed();
    let ss = eventually_ok("observedGeneration 2", || async {
        let ss = sealed.get(SECRET_NAME).await?;
        let observed = ss.status.as_ref().and_then(|s| s.observed_generation);
        ensure!(
            observed == Some(2),
            "observedGeneration {observed:?} (status {:?})",
            ss.status
        );
        Ok(ss)
    })
    .await?;
    expect_event(
        c.ns.client(),
        c.name(),
        SECRET_NAME,
        "ErrUpdateFailed",
        Some("the target Secret is immutable"),
    )
    .await?;
    let cond = synced_condition(&ss).context("no Synced condition")?;
    ensure!(cond.status == "False", "want Synced False, got {cond:?}");
    check_data(&c.secrets().get(SECRET_NAME).await?, &[("foo", "bar")])
        .context("the immutable Secret changed")?;
    c.finish().await
}

// ---------------------------------------------------------------------------------------------
// Different name or namespace: IT-17..IT-22.

/// IT-17: a strict SealedSecret renamed does not open.
#[tokio::test]
async fn it17_strict_renamed_fails() -> Result<()> {
    let c = Case::new("it17").await?;
    let mut ss = c.sealed_base()?;
    ss.metadata.name = Some(OTHER_NAME.into());
    c.create(&ss).await?;
    c.event(c.name(), OTHER_NAME, "ErrUnsealFailed").await?;
    consistently_absent(&c.secrets(), OTHER_NAME).await?;
    ensure!(c.secrets().get_opt(SECRET_NAME).await?.is_none());
    c.finish().await
}

/// IT-18: a strict SealedSecret moved to another (watched) namespace does not open.
#[tokio::test]
async fn it18_strict_moved_fails() -> Result<()> {
    let c = Case::build("it18", 1, |b| b).await?;
    let mut ss = c.sealed_base()?;
    ss.metadata.namespace = Some(c.other().into());
    c.create(&ss).await?;
    c.event(c.other(), SECRET_NAME, "ErrUnsealFailed").await?;
    consistently_absent(&c.secrets_in(c.other()), SECRET_NAME).await?;
    c.finish().await
}

/// IT-19: a cluster-wide SealedSecret renamed opens under the new name.
#[tokio::test]
async fn it19_cluster_wide_renamed_opens() -> Result<()> {
    let c = Case::new("it19").await?;
    let mut ss = c.sealed_base_with(ANNOTATION_CLUSTER_WIDE)?;
    ss.metadata.name = Some(OTHER_NAME.into());
    c.create(&ss).await?;
    eventually_secret(&c.secrets(), OTHER_NAME, |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    wait_synced(&c.sealed(), OTHER_NAME, "True").await?;
    c.finish().await
}

/// IT-20: a cluster-wide SealedSecret moved to another namespace opens there.
#[tokio::test]
async fn it20_cluster_wide_moved_opens() -> Result<()> {
    let c = Case::build("it20", 1, |b| b).await?;
    let mut ss = c.sealed_base_with(ANNOTATION_CLUSTER_WIDE)?;
    ss.metadata.namespace = Some(c.other().into());
    c.create(&ss).await?;
    eventually_secret(&c.secrets_in(c.other()), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    wait_synced(&c.sealed_in(c.other()), SECRET_NAME, "True").await?;
    c.finish().await
}

/// IT-21: a namespace-wide SealedSecret renamed opens under the new name.
#[tokio::test]
async fn it21_namespace_wide_renamed_opens() -> Result<()> {
    let c = Case::new("it21").await?;
    let mut ss = c.sealed_base_with(ANNOTATION_NAMESPACE_WIDE)?;
    ss.metadata.name = Some(OTHER_NAME.into());
    c.create(&ss).await?;
    eventually_secret(&c.secrets(), OTHER_NAME, |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    c.finish().await
}

/// IT-22: a namespace-wide SealedSecret moved to another namespace does not open (the event
/// shows the controller did look at it).
#[tokio::test]
async fn it22_namespace_wide_moved_fails() -> Result<()> {
    let c = Case::build("it22", 1, |b| b).await?;
    let mut ss = c.sealed_base_with(ANNOTATION_NAMESPACE_WIDE)?;
    ss.metadata.namespace = Some(c.other().into());
    c.create(&ss).await?;
    c.event(c.other(), SECRET_NAME, "ErrUnsealFailed").await?;
    consistently_absent(&c.secrets_in(c.other()), SECRET_NAME).await?;
    c.finish().await
}

// ---------------------------------------------------------------------------------------------
// Beyond Bitnami's list.

/// A SealedSecret refused because an unmanaged Secret exists (Synced False, reason
/// SecretNotManaged) recovers once the Secret is annotated `managed`: taken over, Synced True.
/// With `--max-unseal-retries=0`, so the recovery must come from noticing the Secret's change,
/// not from a retry that happens to run after it.
#[tokio::test]
async fn status_recovers_when_the_secret_becomes_managed() -> Result<()> {
    let c = Case::build("recover", 0, |b| b.flag("--max-unseal-retries", "0")).await?;
    let mut existing = c.base();
    existing.data = Some(bytes_map(&[("foo", "old")]));
    existing.metadata.labels = None;
    c.secrets()
        .create(&PostParams::default(), &existing)
        .await
        .context("creating the unmanaged Secret")?;
    let ss = c.create(&c.sealed_base()?).await?;

    let refused = wait_synced(&c.sealed(), SECRET_NAME, "False").await?;
    let cond = synced_condition(&refused)
        .context("no Synced condition")?
        .clone();
    ensure!(
        cond.reason.as_deref() == Some("SecretNotManaged"),
        "reason {:?}, want SecretNotManaged ({cond:?})",
        cond.reason
    );
    ensure!(
        cond.message
            .as_deref()
            .is_some_and(|m| m.contains("already exists and is not managed by SealedSecret")),
        "message {:?}",
        cond.message
    );
    c.event(c.name(), SECRET_NAME, "ErrUpdateFailed").await?;
    let untouched = c.secrets().get(SECRET_NAME).await?;
    check_data(&untouched, &[("foo", "old")]).context("the unmanaged Secret was changed")?;
    no_owners(&untouched).context("the unmanaged Secret was changed")?;

    // Condition times have a resolution of one second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.secrets()
        .patch(
            SECRET_NAME,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {ANNOTATION_MANAGED: "true"}}
            })),
        )
        .await
        .context("annotating the Secret managed")?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_owned_by(s, &ss)?;
        check_data(s, &[("foo", "bar")])?;
        check_labels(s, &[("mylabel", "myvalue")])
    })
    .await?;
    let recovered = wait_synced(&c.sealed(), SECRET_NAME, "True").await?;
    let now = synced_condition(&recovered).context("no Synced condition")?;
    ensure!(
        now.reason.as_deref() == Some("Unsealed")
            && now.message.as_deref().unwrap_or("").is_empty(),
        "a recovered condition keeps the old failure: {now:?}"
    );
    ensure!(
        now.last_transition_time != cond.last_transition_time,
        "lastTransitionTime did not move with the transition False → True: {now:?}"
    );
    c.event(c.name(), SECRET_NAME, "Unsealed").await?;
    c.finish().await
}

/// A sealed value never leaves the Secret: after a success and after failures (a renamed strict
/// SealedSecret; a refused takeover, where the value was decrypted), it appears nowhere in the
/// controller's log (at DEBUG), the namespace's Events, the SealedSecrets' status or /metrics,
/// neither as text nor base64, hex or a byte list.
#[tokio::test]
async fn canary_value_never_leaks() -> Result<()> {
    use base64::Engine as _;
    use rand::distributions::Alphanumeric;
    use rand::Rng as _;

    let c = Case::build("canary", 0, |b| b.flag("--log-level", "DEBUG")).await?;
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    let canary = format!("kseal-canary-{random}");
    let canary_secret = |name: &str| {
        let mut s = c.base();
        s.metadata.name = Some(name.to_owned());
        s.data = Some(bytes_map(&[("foo", &canary)]));
        s
    };

    // Success.
    c.create(&seal(&c.cert, canary_secret(SECRET_NAME))?)
        .await?;
    eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", &canary)])
    })
    .await?;
    wait_synced(&c.sealed(), SECRET_NAME, "True").await?;

    // Failure 1: a strict SealedSecret under another name does not open.
    let mut renamed = seal(&c.cert, canary_secret(SECRET_NAME))?;
    renamed.metadata.name = Some("canary-renamed".into());
    c.create(&renamed).await?;
    c.event(c.name(), "canary-renamed", "ErrUnsealFailed")
        .await?;
    wait_synced(&c.sealed(), "canary-renamed", "False").await?;

    // Failure 2: opens, but an unmanaged Secret of that name is in the way.
    let mut blocker = c.base();
    blocker.metadata.name = Some("canary-unmanaged".into());
    blocker.data = Some(bytes_map(&[("other", "x")]));
    c.secrets().create(&PostParams::default(), &blocker).await?;
    c.create(&seal(&c.cert, canary_secret("canary-unmanaged"))?)
        .await?;
    c.event(c.name(), "canary-unmanaged", "ErrUpdateFailed")
        .await?;
    wait_synced(&c.sealed(), "canary-unmanaged", "False").await?;

    let forms = [
        ("text", canary.clone()),
        (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(&canary),
        ),
        (
            "hex",
            canary
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ),
        (
            "byte list",
            canary
                .bytes()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    let logs = c.ctl.logs();
    ensure!(
        logs.contains(c.name()) || logs.contains(SECRET_NAME),
        "the controller's DEBUG log does not even mention the test namespace; is it logging?"
    );
    let events = Api::<Event>::namespaced(c.ns.client().clone(), c.name())
        .list(&ListParams::default())
        .await?;
    ensure!(!events.items.is_empty(), "no events at all");
    let statuses = c.sealed().list(&ListParams::default()).await?;
    let metrics = c.ctl.metrics().await?;
    let places = [
        ("the controller's log", logs),
        ("the Events", serde_json::to_string(&events.items)?),
        (
            "the SealedSecrets' status",
            serde_json::to_string(&statuses.items.iter().map(|s| &s.status).collect::<Vec<_>>())?,
        ),
        ("/metrics", metrics),
    ];
    for (place, text) in &places {
        for (form, needle) in &forms {
            ensure!(
                !text.contains(needle.as_str()),
                "the sealed canary value appears ({form}) in {place}"
            );
        }
    }
    c.finish().await
}

/// A graceful restart (SIGTERM → exit 0) keeps the key (no new key Secret), leaves a Secret that
/// is already right untouched (same resourceVersion), and the restarted controller unseals new
/// SealedSecrets. /v1/cert.pem serves the newest key Secret's certificate.
#[tokio::test]
async fn restart_keeps_the_key_and_leaves_the_secret_alone() -> Result<()> {
    let mut c = Case::new("restart").await?;
    let served = c.ctl.get("/v1/cert.pem").await?;
    ensure!(
        served.status == 200,
        "/v1/cert.pem answered {}",
        served.status
    );
    let served = Certificate::from_pem(served.body.as_bytes())?;
    ensure!(
        served.fingerprint() == c.cert.fingerprint(),
        "/v1/cert.pem serves {}, the newest key Secret is {}",
        served.fingerprint(),
        c.cert.fingerprint()
    );

    c.create(&c.sealed_base()?).await?;
    let before = eventually_secret(&c.secrets(), SECRET_NAME, |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    wait_synced(&c.sealed(), SECRET_NAME, "True").await?;
    let keys = |list: Vec<Secret>| -> Vec<Option<String>> {
        list.into_iter().map(|s| s.metadata.name).collect()
    };
    let keys_before = keys(c.ctl.key_secrets().await?);

    c.ctl.restart().await?;
    let keys_after = keys(c.ctl.key_secrets().await?);
    ensure!(
        keys_after == keys_before,
        "key Secrets changed over a restart: {keys_before:?} → {keys_after:?}"
    );
    let mut second = c.base();
    second.metadata.name = Some("testsecret2".into());
    c.create(&seal(&c.cert, second)?).await?;
    eventually_secret(&c.secrets(), "testsecret2", |s| {
        check_data(s, &[("foo", "bar")])
    })
    .await?;
    // The restarted controller has listed testsecret too; give it time to (not) rewrite it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_synced(&c.sealed(), SECRET_NAME, "True").await?;
    let after = c.secrets().get(SECRET_NAME).await?;
    ensure!(
        after.metadata.resource_version == before.metadata.resource_version,
        "the restart rewrote a Secret that was already right ({:?} → {:?})",
        before.metadata.resource_version,
        after.metadata.resource_version
    );
    c.finish().await
}
