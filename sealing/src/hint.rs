//! The sealing-key hint: the [`ANNOTATION_SEALED_WITH`] annotation that `kseal seal` puts on a
//! SealedSecret's top-level metadata, naming the certificate(s) its items were sealed with.
//!
//! The value is a comma-separated list of SSH SHA256 fingerprints ([`Fingerprint`]'s text form,
//! `SHA256:...`), sorted and without duplicates. It reveals only which public key was used. The
//! controller passes it to [`crate::unseal::unseal`] so that the named keys are tried first; since
//! anyone can edit the annotation, it only orders the keys and a wrong, partial or malformed value
//! costs time, never a failure.
//!
//! It lives on the SealedSecret's own metadata, never in `spec.template.metadata`, so it is not
//! copied onto the Secret. Files made by kubeseal have none.

use std::collections::{BTreeMap, BTreeSet};

use kseal_crypto::Fingerprint;

use kseal_crds::{SealedSecret, ANNOTATION_SEALED_WITH};

/// The fingerprints an annotation value names, sorted and deduplicated. Entries are separated by
/// commas; whitespace around an entry is ignored, and so are empty entries and entries that are
/// not fingerprints.
pub fn parse_sealed_with(value: &str) -> Vec<Fingerprint> {
    value
        .split(',')
        .filter_map(|entry| entry.trim().parse::<Fingerprint>().ok())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The annotation value for `fingerprints`: sorted, deduplicated, joined with commas (no spaces).
/// Empty for no fingerprint.
pub fn format_sealed_with<'a, I>(fingerprints: I) -> String
where
    I: IntoIterator<Item = &'a Fingerprint>,
{
    fingerprints
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(Fingerprint::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// The keys that sealed `ss`, from its top-level [`ANNOTATION_SEALED_WITH`] annotation (see
/// [`parse_sealed_with`]); empty when it has none. Pass the result to
/// [`crate::unseal::unseal`] as its hint.
pub fn sealed_with(ss: &SealedSecret) -> Vec<Fingerprint> {
    ss.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SEALED_WITH))
        .map(|v| parse_sealed_with(v))
        .unwrap_or_default()
}

/// The annotation value that records `added` on top of an `existing` value: the union of the
/// fingerprints of both, formatted by [`format_sealed_with`] (malformed entries of `existing`
/// are dropped). `None` when the union is empty.
pub fn merge_sealed_with<'a, I>(existing: Option<&str>, added: I) -> Option<String>
where
    I: IntoIterator<Item = &'a Fingerprint>,
{
    let mut all: BTreeSet<Fingerprint> = existing
        .map(parse_sealed_with)
        .unwrap_or_default()
        .into_iter()
        .collect();
    all.extend(added.into_iter().cloned());
    let value = format_sealed_with(&all);
    Some(value).filter(|v| !v.is_empty())
}

/// Records that `fingerprints` sealed items of `ss`: sets its top-level
/// [`ANNOTATION_SEALED_WITH`] annotation to the union with what it already names (see
/// [`merge_sealed_with`]). Without any fingerprint, `ss` is left as it is.
pub fn add_sealed_with<'a, I>(ss: &mut SealedSecret, fingerprints: I)
where
    I: IntoIterator<Item = &'a Fingerprint>,
{
    let mut added = fingerprints.into_iter().peekable();
    if added.peek().is_none() {
        return;
    }
    let annotations = ss.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let existing = annotations.get(ANNOTATION_SEALED_WITH).map(String::as_str);
    if let Some(value) = merge_sealed_with(existing, added) {
        annotations.insert(ANNOTATION_SEALED_WITH.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(byte: u8) -> Fingerprint {
        Fingerprint::of_rsa(&[1, 0, 1], &[byte; 256])
    }

    fn ss_with(value: Option<&str>) -> SealedSecret {
        let mut ss = SealedSecret::default();
        if let Some(v) = value {
            ss.metadata.annotations = Some(BTreeMap::from([(
                ANNOTATION_SEALED_WITH.to_string(),
                v.to_string(),
            )]));
        }
        ss
    }

    fn sorted(mut v: Vec<Fingerprint>) -> Vec<Fingerprint> {
        v.sort();
        v
    }

    #[test]
    fn parses_one_and_several() {
        let (a, b) = (fp(0xc1), fp(0xd2));
        assert_eq!(parse_sealed_with(a.as_str()), std::slice::from_ref(&a));
        let both = format!("{b},{a}");
        assert_eq!(parse_sealed_with(&both), sorted(vec![a, b]));
    }

    #[test]
    fn malformed_entries_are_ignored() {
        let a = fp(0xc1);
        let value = format!(
            " {a} ,MD5:abc,SHA256:tooshort,,SHA256:{}, not a fingerprint ,",
            "A".repeat(44)
        );
        assert_eq!(parse_sealed_with(&value), [a]);
        assert!(parse_sealed_with("garbage").is_empty());
        // A fingerprint is case-sensitive base64: the prefix is exact.
        assert!(parse_sealed_with(&fp(0xc1).as_str().replace("SHA256", "sha256")).is_empty());
    }

    #[test]
    fn duplicates_collapse() {
        let (a, b) = (fp(0xc1), fp(0xd2));
        let value = format!("{a},{b},{a},{b}");
        assert_eq!(
            parse_sealed_with(&value),
            sorted(vec![a.clone(), b.clone()])
        );
        assert_eq!(
            format_sealed_with([&b, &a, &b]),
            format_sealed_with([&a, &b])
        );
    }

    #[test]
    fn empty_and_absent() {
        assert!(parse_sealed_with("").is_empty());
        assert!(parse_sealed_with(" , ,").is_empty());
        assert!(sealed_with(&ss_with(None)).is_empty());
        assert!(sealed_with(&ss_with(Some(""))).is_empty());
        assert_eq!(format_sealed_with([]), "");
        assert_eq!(merge_sealed_with(Some("junk"), []), None);
        assert_eq!(merge_sealed_with(None, []), None);
    }

    #[test]
    fn format_is_sorted_comma_separated_and_reads_back() {
        let (a, b) = (fp(0xc1), fp(0xd2));
        let value = format_sealed_with([&b, &a]);
        let (lo, hi) = if a < b { (&a, &b) } else { (&b, &a) };
        assert_eq!(value, format!("{lo},{hi}"));
        assert_eq!(parse_sealed_with(&value), sorted(vec![a, b]));
    }

    #[test]
    fn only_the_top_level_annotation_counts() {
        let a = fp(0xc1);
        let mut ss = ss_with(None);
        ss.spec.template.metadata =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    ANNOTATION_SEALED_WITH.to_string(),
                    a.to_string(),
                )])),
                ..Default::default()
            });
        assert!(sealed_with(&ss).is_empty());
    }

    #[test]
    fn add_unions_with_what_is_there() {
        let (a, b) = (fp(0xc1), fp(0xd2));
        let mut ss = ss_with(None);
        add_sealed_with(&mut ss, [&a]);
        assert_eq!(sealed_with(&ss), std::slice::from_ref(&a));
        assert_eq!(
            ss.annotations().unwrap()[ANNOTATION_SEALED_WITH],
            a.as_str()
        );
        add_sealed_with(&mut ss, [&b, &a]);
        assert_eq!(sealed_with(&ss), sorted(vec![a.clone(), b.clone()]));

        // Malformed entries are dropped on the next write; nothing to add changes nothing.
        let mut ss = ss_with(Some("junk"));
        add_sealed_with(&mut ss, []);
        assert_eq!(ss.annotations().unwrap()[ANNOTATION_SEALED_WITH], "junk");
        add_sealed_with(&mut ss, [&b]);
        assert_eq!(
            ss.annotations().unwrap()[ANNOTATION_SEALED_WITH],
            b.as_str()
        );

        // Other annotations stay.
        let mut ss = ss_with(None);
        ss.metadata.annotations = Some(BTreeMap::from([(
            "sealedsecrets.bitnami.com/cluster-wide".to_string(),
            "true".to_string(),
        )]));
        add_sealed_with(&mut ss, [&a]);
        assert_eq!(ss.annotations().unwrap().len(), 2);
    }

    #[test]
    fn merge_of_a_value() {
        let (a, b) = (fp(0xc1), fp(0xd2));
        assert_eq!(merge_sealed_with(None, [&a]).unwrap(), a.as_str());
        assert_eq!(
            merge_sealed_with(Some(a.as_str()), [&a]).unwrap(),
            a.as_str(),
            "already recorded: same value"
        );
        assert_eq!(
            merge_sealed_with(Some(&format!("{a},junk")), [&b]).unwrap(),
            format_sealed_with([&a, &b])
        );
    }
}
