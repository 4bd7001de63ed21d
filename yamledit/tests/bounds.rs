//! Bounds on what an edit may ask for, checked before any work.

use kseal_yamledit::{Edit, Error, Stream, MAX_PATH_KEYS};

#[test]
fn a_path_deeper_than_the_bound_is_refused_before_any_work() {
    let s = Stream::parse("a: b\n").unwrap();
    // At the bound: a chain of new nested mappings, which reads back.
    let path = vec!["k"; MAX_PATH_KEYS];
    let out = s.set_strings(0, &[Edit::new(path.clone(), "v")]).unwrap();
    let after = Stream::parse(&out).unwrap();
    assert_eq!(after.get_string(0, &path).unwrap(), Some("v"));
    // Beyond it (the fuzz target's finding: 255 empty keys overflowed the stack).
    for n in [MAX_PATH_KEYS + 1, 255, 10_000] {
        let e = s.set_strings(0, &[Edit::new(vec![""; n], "")]).unwrap_err();
        assert!(
            matches!(e, Error::PathTooDeep { keys, max } if keys == n && max == MAX_PATH_KEYS),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("the path has {n} keys; at most {MAX_PATH_KEYS} are edited")
        );
    }
}
