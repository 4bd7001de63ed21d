//! A lenient PEM reader, as forgiving as Go's `encoding/pem`: text before, between and after
//! blocks is skipped, header lines (`Proc-Type: ...`) are ignored, base64 may wrap at any width.
//!
//! Decoded bytes are returned in `Zeroizing` buffers because some blocks are private keys.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

/// One decoded PEM block.
pub(crate) struct Block {
    pub label: String,
    pub der: Zeroizing<Vec<u8>>,
}

/// All well-formed PEM blocks in `text`, in order. Malformed blocks are skipped, like Go does.
pub(crate) fn blocks(text: &[u8]) -> Vec<Block> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = Zeroizing::new(String::new());
        let mut closed = false;
        for body in lines.by_ref() {
            let body = body.trim();
            if body == end {
                closed = true;
                break;
            }
            if body.contains(':') {
                continue; // RFC 1421 header line
            }
            b64.push_str(body);
        }
        if !closed {
            break;
        }
        if let Ok(der) = STANDARD.decode(b64.as_bytes()) {
            out.push(Block {
                label: label.to_string(),
                der: Zeroizing::new(der),
            });
        }
    }
    out
}

/// Encodes `der` as a PEM block with 64-column lines and a final newline (Go's `pem.Encode`).
pub(crate) fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 64));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_leniency() {
        let pem = encode("CERTIFICATE", &[1, 2, 3, 4, 5]);
        let text = format!("junk before\n{}\nmiddle\n{}", &*pem, &*encode("X", &[9]));
        let b = blocks(text.as_bytes());
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label, "CERTIFICATE");
        assert_eq!(&*b[0].der, &[1, 2, 3, 4, 5]);
        assert_eq!(&*b[1].der, &[9]);
    }

    #[test]
    fn unterminated_block_is_skipped() {
        assert!(blocks(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_empty());
    }
}
