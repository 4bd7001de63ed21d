use k8s_openapi::api::apps::v1::Deployment;

use super::*;

fn named(name: &str) -> Install {
    Install {
        name: name.into(),
        ..Install::default()
    }
}

#[test]
fn default_names_are_bitnamis() {
    let objs = render(&Install::default()).unwrap();
    let names: Vec<String> = objs
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "CustomResourceDefinition/sealedsecrets.bitnami.com",
            "ServiceAccount/sealed-secrets-controller",
            "ClusterRole/secrets-unsealer",
            "ClusterRoleBinding/sealed-secrets-controller",
            "Role/sealed-secrets-key-admin",
            "RoleBinding/sealed-secrets-controller",
            "Role/sealed-secrets-cert-reader",
            "RoleBinding/sealed-secrets-cert-reader",
            "Role/sealed-secrets-service-proxier",
            "RoleBinding/sealed-secrets-service-proxier",
            "Role/sealed-secrets-key-renewer",
            "Service/sealed-secrets-controller",
            "Service/sealed-secrets-controller-metrics",
            "Service/sealed-secrets-controller-webhook",
            "NetworkPolicy/sealed-secrets-controller",
            "Deployment/sealed-secrets-controller",
            "PodDisruptionBudget/sealed-secrets-controller",
            "ValidatingWebhookConfiguration/sealed-secrets-controller",
        ]
    );
}

#[test]
fn other_names_are_prefixed() {
    let i = named("kseal");
    assert_eq!(
        rbac_object_name(&i, "secrets-unsealer").unwrap(),
        "kseal-secrets-unsealer"
    );
    assert_eq!(
        rbac_object_name(&i, "sealed-secrets-controller").unwrap(),
        "kseal"
    );
    assert_eq!(
        rbac_object_name(&i, "sealed-secrets-key-admin").unwrap(),
        "kseal-key-admin"
    );
    assert_eq!(i.cert_configmap(), "kseal-cert");
    assert_eq!(Install::default().cert_configmap(), "sealed-secrets-cert");
    // Every name and resourceName of rbac.yaml is known.
    rbac(&i).unwrap();
}

/// The verbs of the ClusterRole's rule on all Secrets.
fn secret_verbs(install: &Install) -> Vec<String> {
    let objs = rbac(install).unwrap();
    let role = objs.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
    let rule = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resources"] == json!(["secrets"]))
        .unwrap();
    serde_json::from_value(rule["verbs"].clone()).unwrap()
}

#[test]
fn secret_delete_only_with_old_gc_behavior() {
    let plain = Install::default();
    assert_eq!(
        secret_verbs(&plain),
        ["get", "list", "create", "update", "watch"]
    );
    assert!(!controller_args(&plain).contains(&"--old-gc-behavior".to_string()));
    // No other rule grants delete on anything.
    assert!(!serde_json::to_string(&rbac(&plain).unwrap())
        .unwrap()
        .contains("\"delete\""));

    let old_gc = Install {
        old_gc_behavior: true,
        ..named("kseal")
    };
    assert_eq!(
        secret_verbs(&old_gc),
        ["get", "list", "create", "update", "watch", "delete"]
    );
    assert!(controller_args(&old_gc).contains(&"--old-gc-behavior".to_string()));
}

#[test]
fn network_policy_rules() {
    let np = NetworkPolicy {
        http_from: vec!["10.0.0.0/24".into(), "fd00::/64".into()],
        metrics_namespaces: parse_label_selector("team=obs,kubernetes.io/metadata.name=mon")
            .unwrap(),
    };
    let v = network_policy(&named("kseal"), &np);
    assert_eq!(
        v["spec"]["podSelector"]["matchLabels"],
        json!({"name": "kseal"})
    );
    assert_eq!(v["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(
        v["spec"]["ingress"],
        json!([
            {"ports": [{"port": 8080, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}],
             "from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}, {"ipBlock": {"cidr": "fd00::/64"}}]},
            {"ports": [{"port": 8081, "protocol": "TCP"}],
             "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon", "team": "obs"}}}]},
        ])
    );
    // No CIDR: no rule for the HTTP port (a rule without `from` would admit everyone).
    let v = network_policy(&named("kseal"), &NetworkPolicy::default());
    let ingress = v["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0]["ports"][0]["port"], 8081);
    assert!(ingress
        .iter()
        .all(|r| r["from"].as_array().is_some_and(|f| !f.is_empty())));

    for bad in ["10.0.0.1", "10.0.0.0/33", "fd00::/129", "x/8", ""] {
        let i = Install {
            network_policy: Some(NetworkPolicy {
                http_from: vec![bad.into()],
                ..NetworkPolicy::default()
            }),
            ..Install::default()
        };
        assert!(i.validate().is_err(), "{bad:?}");
    }
    for bad in ["a", "=b", "a=b=c", "-a=b", "a=b,", "x/y/z=1", "a=-b"] {
        assert!(parse_label_selector(bad).is_err(), "{bad:?}");
    }
    assert!(parse_label_selector("").unwrap().is_empty());
    assert!(parse_label_selector("a=").is_ok());
}

#[test]
fn validation() {
    assert!(Install::default().validate().is_ok());
    for bad in ["", "Foo", "-a", "a-", "1abc", "a_b", &"a".repeat(56)] {
        assert!(named(bad).validate().is_err(), "{bad:?}");
    }
    assert!(named(&"a".repeat(55)).validate().is_ok());
    let zero = Install {
        replicas: 0,
        ..Install::default()
    };
    assert!(zero.validate().is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(20));
    assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
    assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
    for bad in ["", "s", "10d", "-1", "-1m", "99999999999h"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(format_duration(Duration::from_secs(20)), "20s");
    assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
}

#[test]
fn rollout_rule() {
    let d = |generation: i64,
             observed: i64,
             replicas: i32,
             updated: i32,
             available: i32,
             total: i32| {
        serde_json::from_value::<Deployment>(json!({
            "metadata": {"name": "x", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "availableReplicas": available, "replicas": total},
        }))
        .unwrap()
    };
    assert!(matches!(
        rollout_status(&d(2, 1, 2, 2, 2, 2)),
        Rollout::Waiting(_)
    ));
    assert!(matches!(
        rollout_status(&d(2, 2, 2, 1, 2, 2)),
        Rollout::Waiting(_)
    ));
    assert!(matches!(
        rollout_status(&d(2, 2, 2, 2, 1, 2)),
        Rollout::Waiting(_)
    ));
    assert!(matches!(
        rollout_status(&d(2, 2, 2, 2, 2, 3)),
        Rollout::Waiting(_)
    ));
    assert_eq!(rollout_status(&d(2, 2, 2, 2, 2, 2)), Rollout::Done);
}

#[test]
fn the_webhook_configuration() {
    let mut i = named("kseal");
    i.namespace = "sealed".into();
    let w = Webhook::default();
    let v = webhook_configuration(&i, &w);
    let hook = &v["webhooks"][0];
    assert_eq!(v["metadata"]["name"], "kseal");
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["timeoutSeconds"], 5);
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(
        hook["clientConfig"],
        json!({"service": {"name": "kseal-webhook", "namespace": "sealed", "path": "/v1/admission/sealedsecrets", "port": 443}})
    );
    assert!(
        hook["clientConfig"].get("caBundle").is_none(),
        "the controller fills it"
    );
    assert_eq!(
        hook["rules"],
        json!([{"apiGroups": ["bitnami.com"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                "resources": ["sealedsecrets"], "scope": "Namespaced"}])
    );
    assert_eq!(
        hook["namespaceSelector"],
        json!({"matchExpressions": [{"key": "sealedsecrets.kseal.dev/admission", "operator": "NotIn", "values": ["disabled"]}]})
    );
    let w = Webhook {
        failure_policy: FailurePolicy::Fail,
        exclude_namespaces: vec!["ci".into(), "scratch".into()],
    };
    let v = webhook_configuration(&i, &w);
    assert_eq!(v["webhooks"][0]["failurePolicy"], "Fail");
    assert_eq!(
        v["webhooks"][0]["namespaceSelector"]["matchExpressions"][1],
        json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["ci", "scratch"]})
    );
    // The controller is told the same names; without the webhook, none of it.
    let args = controller_args(&i);
    for a in [
        "--webhook-listen-addr=:8443",
        "--webhook-service=kseal-webhook",
        "--webhook-secret=kseal-webhook-tls",
        "--webhook-configuration=kseal",
    ] {
        assert!(args.contains(&a.to_string()), "{args:?}");
    }
    i.webhook = None;
    assert!(!controller_args(&i)
        .iter()
        .any(|a| a.starts_with("--webhook")));
    let objs = render(&i).unwrap();
    assert!(!objs
        .iter()
        .any(|o| o["kind"] == "ValidatingWebhookConfiguration"
            || o["metadata"]["name"] == "kseal-webhook"));
    i.webhook = Some(Webhook {
        exclude_namespaces: vec!["Not_A_Namespace".into()],
        ..Webhook::default()
    });
    assert!(render(&i)
        .unwrap_err()
        .to_string()
        .starts_with("invalid --webhook-exclude-namespace (value 1)"));
}
