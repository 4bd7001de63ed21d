//! Format-preserving edits of YAML/JSON documents (placeholder; see README).
