//! The format-preserving YAML/JSON editor (`kseal_yamledit`, behind `--merge-into` and
//! `kseal reencrypt`): parse, list documents, read keys and strings, apply edits.
//!
//! Input: `text NUL edits`, one edit per line, fields separated by TAB: the path's keys, then
//! the value (`spec<TAB>encryptedData<TAB>foo<TAB>AgB…`). The edits are applied to each of the
//! first four documents.
//!
//! Oracles: an edit never fails with `Error::Internal` (the editor's self-check: a bug); after
//! a successful call, every path holds the value last written to it, and the number of
//! documents is unchanged.
#![no_main]

use kseal_yamledit::{Edit, Error, Stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, edits) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let (Ok(text), Ok(edits)) = (std::str::from_utf8(text), std::str::from_utf8(edits)) else {
        return;
    };
    let edits: Vec<Edit> = edits
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut fields: Vec<&str> = line.split('\t').collect();
            let value = if fields.len() > 1 {
                fields.pop().unwrap_or("")
            } else {
                ""
            };
            Edit::new(fields, value)
        })
        .collect();
    let Ok(stream) = Stream::parse(text) else {
        return;
    };
    let spans = stream.documents();
    for (doc, span) in spans.iter().enumerate().take(4) {
        assert!(span.range.start <= span.range.end && span.range.end <= text.len());
        let _ = stream.map_keys::<&str>(doc, &[]);
        for e in &edits {
            let _ = stream.map_keys(doc, &e.path);
            let _ = stream.get_string(doc, &e.path);
        }
        match stream.set_strings(doc, &edits) {
            Ok(out) => {
                let after = Stream::parse(&out).expect("the edited text parses");
                assert_eq!(after.len(), stream.len(), "the number of documents changed");
                for (i, e) in edits.iter().enumerate() {
                    if edits[i + 1..].iter().any(|later| later.path == e.path) {
                        continue;
                    }
                    let got = after
                        .get_string(doc, &e.path)
                        .expect("an edited path reads");
                    assert_eq!(got, Some(e.value.as_str()), "an edit did not stick");
                }
            }
            Err(Error::Internal { .. }) => panic!("yamledit's self-check failed"),
            Err(_) => {}
        }
    }
});
