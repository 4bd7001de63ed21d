//! kubeseal's command line, parsed as Go's pflag parses it: `--flag value`, `--flag=value`,
//! bool `--flag` / `--flag=false`, shorthands `-o yaml`, `-oyaml`, `-o=yaml`, `--` ends the
//! flags, arguments that are not flags are ignored (kubeseal ignores them too). Every flag of
//! kubeseal's own and of client-go's `RecommendedConfigOverrideFlags` can also be set by
//! `SEALED_SECRETS_<NAME>` (upper case, `-` → `_`); the command line wins. klog's flags are
//! accepted and ignored, and (as in kubeseal) not settable from the environment.

use std::collections::HashSet;

use kseal_crypto::Scope;
use kseal_gocompat::quote::go_quote;
use kseal_gocompat::strconv::parse_bool;

/// The value kind of a flag, which decides how it is parsed and how `--help` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `--flag` means true; `--flag=false` / `--flag=0` …
    Bool,
    /// One string; the last occurrence wins.
    Str,
    /// pflag `stringSlice`: comma-separated (CSV) values, repeated flags append.
    Slice,
    /// pflag `stringArray`: each occurrence is one value.
    Array,
    /// klog's flags: a value is taken and ignored.
    Ignored,
    /// klog's boolean flags: ignored.
    IgnoredBool,
}

/// One flag as pflag knows it.
struct Spec {
    name: &'static str,
    short: Option<char>,
    kind: Kind,
    /// The type name `--help` shows after the flag (pflag's `UnquoteUsage`).
    varname: &'static str,
    usage: &'static str,
    /// pflag's `(default …)` suffix, when the default is not the zero value.
    default: Option<&'static str>,
    /// Whether `default` is shown quoted (string flags).
    quoted: bool,
    /// Settable from `SEALED_SECRETS_*`.
    env: bool,
    /// Deprecated (and hidden from `--help`): the message pflag prints when it is used.
    deprecated: Option<&'static str>,
}

const fn own(
    name: &'static str,
    short: Option<char>,
    kind: Kind,
    usage: &'static str,
    default: Option<&'static str>,
) -> Spec {
    let varname = match kind {
        Kind::Bool | Kind::IgnoredBool => "",
        Kind::Str => "string",
        Kind::Slice => "strings",
        Kind::Array => "stringArray",
        Kind::Ignored => "string",
    };
    Spec {
        name,
        short,
        kind,
        varname,
        usage,
        default,
        quoted: matches!(kind, Kind::Str),
        env: true,
        deprecated: None,
    }
}

const fn klog(
    name: &'static str,
    short: Option<char>,
    kind: Kind,
    varname: &'static str,
    usage: &'static str,
    default: Option<&'static str>,
) -> Spec {
    Spec {
        name,
        short,
        kind,
        varname,
        usage,
        default,
        quoted: false,
        env: false,
        deprecated: None,
    }
}

use Kind::{Array, Bool, Ignored, IgnoredBool, Slice, Str};

/// Every flag kubeseal defines: its own (`cmd/kubeseal/main.go`), client-go's
/// `RecommendedConfigOverrideFlags("")`, and klog's.
static SPECS: &[Spec] = &[
    // kubeseal's own flags.
    own("cert", None, Str, "Certificate / public key file/URL to use for encryption. Overrides --controller-*", None),
    own("controller-namespace", None, Str, "Namespace of sealed-secrets controller.", Some("kube-system")),
    own("controller-name", None, Str, "Name of sealed-secrets controller.", Some("sealed-secrets-controller")),
    own("format", Some('o'), Str, "Output format for sealed secret. Either json or yaml", Some("json")),
    own("sealed-secret-file", Some('w'), Str, "Sealed-secret (output) file", None),
    own("secret-file", Some('f'), Str, "Secret (input) file", None),
    own("fetch-cert", None, Bool, "Write certificate to stdout. Useful for later use with --cert", None),
    own("allow-empty-data", None, Bool, "Allow empty data in the secret object", None),
    own("validate", None, Bool, "Validate that the sealed secret can be decrypted", None),
    own("merge-into", None, Str, "Merge items from secret into an existing sealed secret file, updating the file in-place instead of writing to stdout.", None),
    own("raw", None, Bool, "Encrypt a raw value passed via the --from-* flags instead of the whole secret object", None),
    own("name", None, Str, "Name of the sealed secret (required with --raw and default (strict) scope)", None),
    own("from-file", None, Slice, "(only with --raw) Secret items can be sourced from files. Pro-tip: you can use /dev/stdin to read pipe input. This flag tries to follow the same syntax as in kubectl", None),
    own("kubeconfig", None, Str, "Path to a kube config. Only required if out-of-cluster", None),
    own("scope", None, Str, "Set the scope of the sealed secret: strict, namespace-wide, cluster-wide (defaults to strict). Mandatory for --raw, otherwise the 'sealedsecrets.bitnami.com/cluster-wide' and 'sealedsecrets.bitnami.com/namespace-wide' annotations on the input secret can be used to select the scope.", Some("strict")),
    Spec {
        deprecated: Some("please use --re-encrypt instead"),
        ..own("rotate", None, Bool, "", None)
    },
    own("re-encrypt", None, Bool, "Re-encrypt the given sealed secret to use the latest cluster key.", None),
    own("recovery-unseal", None, Bool, "Decrypt a sealed secrets file obtained from stdin, using the private key passed with --recovery-private-key. Intended to be used in disaster recovery mode.", None),
    own("recovery-private-key", None, Slice, "Private key filename used by the --recovery-unseal command. Multiple files accepted either via comma separated list or by repetition of the flag. Either PEM encoded private keys or a backup of a json/yaml encoded k8s sealed-secret controller secret (and v1.List) are accepted. ", None),
    own("help", None, Bool, "Print this help message", None),
    own("version", None, Bool, "Print version information and exit", None),
    // client-go's kubeconfig overrides.
    own("as", None, Str, "Username to impersonate for the operation", None),
    own("as-group", None, Array, "Group to impersonate for the operation, this flag can be repeated to specify multiple groups.", None),
    own("as-uid", None, Str, "UID to impersonate for the operation", None),
    own("certificate-authority", None, Str, "Path to a cert file for the certificate authority", None),
    own("client-certificate", None, Str, "Path to a client certificate file for TLS", None),
    own("client-key", None, Str, "Path to a client key file for TLS", None),
    own("cluster", None, Str, "The name of the kubeconfig cluster to use", None),
    own("context", None, Str, "The name of the kubeconfig context to use", None),
    own("disable-compression", None, Bool, "If true, opt-out of response compression for all requests to the server", None),
    own("insecure-skip-tls-verify", None, Bool, "If true, the server's certificate will not be checked for validity. This will make your HTTPS connections insecure", None),
    own("namespace", Some('n'), Str, "If present, the namespace scope for this CLI request", None),
    own("password", None, Str, "Password for basic authentication to the API server", None),
    own("proxy-url", None, Str, "If provided, this URL will be used to connect via proxy", None),
    own("request-timeout", None, Str, "The length of time to wait before giving up on a single server request. Non-zero values should contain a corresponding time unit (e.g. 1s, 2m, 3h). A value of zero means don't timeout requests.", Some("0")),
    own("server", None, Str, "The address and port of the Kubernetes API server", None),
    own("tls-server-name", None, Str, "If provided, this name will be used to validate server certificate. If this is not provided, hostname used to contact the server is used.", None),
    own("token", None, Str, "Bearer token for authentication to the API server", None),
    own("user", None, Str, "The name of the kubeconfig user to use", None),
    own("username", None, Str, "Username for basic authentication to the API server", None),
    // klog's flags (accepted, ignored: kseal does not log through klog).
    klog("add_dir_header", None, IgnoredBool, "", "If true, adds the file directory to the header of the log messages", None),
    klog("alsologtostderr", None, IgnoredBool, "", "log to standard error as well as files (no effect when -logtostderr=true)", None),
    klog("log_backtrace_at", None, Ignored, "traceLocation", "when logging hits line file:N, emit a stack trace", Some(":0")),
    klog("log_dir", None, Ignored, "string", "If non-empty, write log files in this directory (no effect when -logtostderr=true)", None),
    klog("log_file", None, Ignored, "string", "If non-empty, use this log file (no effect when -logtostderr=true)", None),
    klog("log_file_max_size", None, Ignored, "uint", "Defines the maximum size a log file can grow to (no effect when -logtostderr=true). Unit is megabytes. If the value is 0, the maximum file size is unlimited.", Some("1800")),
    klog("logtostderr", None, IgnoredBool, "", "log to standard error instead of files", Some("true")),
    klog("one_output", None, IgnoredBool, "", "If true, only write logs to their native severity level (vs also writing to each lower severity level; no effect when -logtostderr=true)", None),
    klog("skip_headers", None, IgnoredBool, "", "If true, avoid header prefixes in the log messages", None),
    klog("skip_log_headers", None, IgnoredBool, "", "If true, avoid headers when opening log files (no effect when -logtostderr=true)", None),
    klog("stderrthreshold", None, Ignored, "severity", "logs at or above this threshold go to stderr when writing to files and stderr (no effect when -logtostderr=true or -alsologtostderr=true)", Some("2")),
    klog("v", Some('v'), Ignored, "Level", "number for the log level verbosity", None),
    klog("vmodule", None, Ignored, "moduleSpec", "comma-separated list of pattern=N settings for file-filtered logging", None),
];

fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

fn spec_short(c: char) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.short == Some(c))
}

/// The settings of one kubeseal run.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub cert: String,
    pub controller_namespace: String,
    pub controller_name: String,
    pub format: String,
    pub output_file: String,
    pub input_file: String,
    pub fetch_cert: bool,
    pub allow_empty_data: bool,
    pub validate: bool,
    pub merge_into: String,
    pub raw: bool,
    pub name: String,
    pub from_file: Vec<String>,
    pub kubeconfig: String,
    pub scope: Scope,
    /// `--scope` was given (on the command line or in the environment).
    pub scope_set: bool,
    pub re_encrypt: bool,
    pub recovery_unseal: bool,
    pub recovery_keys: Vec<String>,
    pub help: bool,
    pub version: bool,
    // client-go
    pub as_user: String,
    pub as_groups: Vec<String>,
    pub as_uid: String,
    pub certificate_authority: String,
    pub client_certificate: String,
    pub client_key: String,
    pub cluster: String,
    pub context: String,
    pub disable_compression: bool,
    pub insecure_skip_tls_verify: bool,
    pub namespace: String,
    pub password: String,
    pub proxy_url: String,
    pub request_timeout: String,
    pub server: String,
    pub tls_server_name: String,
    pub token: String,
    pub user: String,
    pub username: String,
    /// Names of the flags given on the command line (for slices: replace what the environment set).
    pub(super) cli_set: HashSet<&'static str>,
}

/// What parsing the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these settings (plus messages pflag prints on the way, e.g. deprecations).
    Run(Box<Flags>),
    /// `-h` (pflag's own help): print the usage to stdout, exit 0.
    Help,
    /// A flag error: print it with the usage to stderr, exit 2.
    Error(String),
}

impl Flags {
    fn defaults() -> Flags {
        Flags {
            controller_namespace: "kube-system".into(),
            controller_name: "sealed-secrets-controller".into(),
            format: "json".into(),
            request_timeout: "0".into(),
            ..Default::default()
        }
    }

    /// pflag's `Value.Set`: the error text is what pflag puts after `invalid argument …:`.
    fn set(&mut self, spec: &'static Spec, value: &str, from_cli: bool) -> Result<(), String> {
        let first_cli = from_cli && self.cli_set.insert(spec.name);
        let b = || parse_bool(value);
        match spec.name {
            "cert" => self.cert = value.into(),
            "controller-namespace" => self.controller_namespace = value.into(),
            "controller-name" => self.controller_name = value.into(),
            "format" => self.format = value.into(),
            "sealed-secret-file" => self.output_file = value.into(),
            "secret-file" => self.input_file = value.into(),
            "fetch-cert" => self.fetch_cert = b()?,
            "allow-empty-data" => self.allow_empty_data = b()?,
            "validate" => self.validate = b()?,
            "merge-into" => self.merge_into = value.into(),
            "raw" => self.raw = b()?,
            "name" => self.name = value.into(),
            "from-file" => set_slice(&mut self.from_file, value, first_cli)?,
            "kubeconfig" => self.kubeconfig = value.into(),
            "scope" => {
                self.scope = match value {
                    "" | "strict" => Scope::Strict,
                    "namespace-wide" => Scope::NamespaceWide,
                    "cluster-wide" => Scope::ClusterWide,
                    _ => return Err("must be one of: strict, namespace-wide, cluster-wide".into()),
                };
                self.scope_set = true;
            }
            "rotate" | "re-encrypt" => self.re_encrypt = b()?,
            "recovery-unseal" => self.recovery_unseal = b()?,
            "recovery-private-key" => set_slice(&mut self.recovery_keys, value, first_cli)?,
            "help" => self.help = b()?,
            "version" => self.version = b()?,
            "as" => self.as_user = value.into(),
            "as-group" => {
                if first_cli {
                    self.as_groups.clear();
                }
                self.as_groups.push(value.into());
            }
            "as-uid" => self.as_uid = value.into(),
            "certificate-authority" => self.certificate_authority = value.into(),
            "client-certificate" => self.client_certificate = value.into(),
            "client-key" => self.client_key = value.into(),
            "cluster" => self.cluster = value.into(),
            "context" => self.context = value.into(),
            "disable-compression" => self.disable_compression = b()?,
            "insecure-skip-tls-verify" => self.insecure_skip_tls_verify = b()?,
            "namespace" => self.namespace = value.into(),
            "password" => self.password = value.into(),
            "proxy-url" => self.proxy_url = value.into(),
            "request-timeout" => self.request_timeout = value.into(),
            "server" => self.server = value.into(),
            "tls-server-name" => self.tls_server_name = value.into(),
            "token" => self.token = value.into(),
            "user" => self.user = value.into(),
            "username" => self.username = value.into(),
            _ => {
                if spec.kind == Kind::IgnoredBool {
                    b()?;
                }
            }
        }
        Ok(())
    }

    /// The namespace given by `-n` / `SEALED_SECRETS_NAMESPACE` (client-go: an "override").
    pub fn namespace_override(&self) -> Option<&str> {
        Some(self.namespace.as_str()).filter(|n| !n.is_empty())
    }
}

/// pflag's `stringSlice.Set`: CSV fields; the first command-line use replaces what the
/// environment set, later ones append.
fn set_slice(slot: &mut Vec<String>, value: &str, replace: bool) -> Result<(), String> {
    let fields = read_csv(value)?;
    if replace {
        slot.clear();
    }
    slot.extend(fields);
    Ok(())
}

/// One record of Go's `encoding/csv` (as pflag reads slice values): fields separated by `,`,
/// a field in double quotes may hold commas and `""` for a quote. Empty input: no field.
fn read_csv(value: &str) -> Result<Vec<String>, String> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(
                        "parse error on line 1, column 0: extraneous or missing \" in quoted-field"
                            .into(),
                    ),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err(
                        "parse error on line 1, column 0: extraneous or missing \" in quoted-field"
                            .into(),
                    )
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// Parses `args` (without the program name) after applying `SEALED_SECRETS_*` from `env`.
pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> (Parsed, Vec<String>) {
    let mut flags = Flags::defaults();
    let mut notes = Vec::new();
    // The environment first (kubeseal's pflagenv pass runs before Parse), in pflag's sorted
    // order; values that do not parse are ignored, as pflagenv ignores them.
    let mut sorted: Vec<&'static Spec> = SPECS.iter().filter(|s| s.env).collect();
    sorted.sort_by_key(|s| s.name);
    for spec in sorted {
        let var = format!(
            "SEALED_SECRETS_{}",
            spec.name.to_uppercase().replace('-', "_")
        );
        if let Some(v) = env(&var) {
            let _ = flags.set(spec, &v, false);
        }
    }

    let mut i = 0;
    while i < args.len() {
        let s = &args[i];
        i += 1;
        if s.len() < 2 || !s.starts_with('-') {
            continue; // not a flag: kubeseal ignores it
        }
        if s == "--" {
            break;
        }
        let result = if let Some(rest) = s.strip_prefix("--") {
            parse_long(&mut flags, s, rest, args, &mut i, &mut notes)
        } else {
            parse_short(&mut flags, &s[1..], args, &mut i, &mut notes)
        };
        match result {
            Ok(()) => {}
            Err(Stop::Help) => return (Parsed::Help, notes),
            Err(Stop::Error(e)) => return (Parsed::Error(e), notes),
        }
    }
    (Parsed::Run(Box::new(flags)), notes)
}

enum Stop {
    Help,
    Error(String),
}

fn apply(
    flags: &mut Flags,
    spec: &'static Spec,
    value: &str,
    notes: &mut Vec<String>,
) -> Result<(), Stop> {
    flags.set(spec, value, true).map_err(|e| {
        let name = match spec.short {
            Some(c) => format!("-{c}, --{}", spec.name),
            None => format!("--{}", spec.name),
        };
        Stop::Error(format!(
            "invalid argument {} for {} flag: {e}",
            go_quote(value),
            go_quote(&name)
        ))
    })?;
    if let Some(msg) = spec.deprecated {
        notes.push(format!("Flag --{} has been deprecated, {msg}", spec.name));
    }
    Ok(())
}

fn is_bool(spec: &Spec) -> bool {
    matches!(spec.kind, Kind::Bool | Kind::IgnoredBool)
}

fn parse_long(
    flags: &mut Flags,
    s: &str,
    rest: &str,
    args: &[String],
    i: &mut usize,
    notes: &mut Vec<String>,
) -> Result<(), Stop> {
    if rest.is_empty() || rest.starts_with('-') || rest.starts_with('=') {
        return Err(Stop::Error(format!("bad flag syntax: {s}")));
    }
    let (name, inline) = match rest.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    let Some(spec) = spec(name) else {
        return Err(Stop::Error(format!("unknown flag: --{name}")));
    };
    let value = match inline {
        Some(v) => v.to_string(),
        None if is_bool(spec) => "true".to_string(),
        None if *i < args.len() => {
            *i += 1;
            args[*i - 1].clone()
        }
        None => return Err(Stop::Error(format!("flag needs an argument: {s}"))),
    };
    apply(flags, spec, &value, notes)
}

fn parse_short(
    flags: &mut Flags,
    shorthands: &str,
    args: &[String],
    i: &mut usize,
    notes: &mut Vec<String>,
) -> Result<(), Stop> {
    let mut rest = shorthands;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        let Some(spec) = spec_short(c) else {
            if c == 'h' {
                return Err(Stop::Help);
            }
            return Err(Stop::Error(format!(
                "unknown shorthand flag: '{c}' in -{rest}"
            )));
        };
        let value;
        if let Some(v) = after.strip_prefix('=').filter(|_| after.len() > 1) {
            value = v.to_string();
            rest = "";
        } else if is_bool(spec) {
            value = "true".to_string();
            rest = after;
        } else if !after.is_empty() {
            value = after.to_string();
            rest = "";
        } else if *i < args.len() {
            value = args[*i].clone();
            *i += 1;
            rest = "";
        } else {
            return Err(Stop::Error(format!(
                "flag needs an argument: '{c}' in -{rest}"
            )));
        }
        apply(flags, spec, &value, notes)?;
    }
    Ok(())
}

/// `Usage of <program>:` and every flag, as pflag's `PrintDefaults` lays them out: sorted by
/// name, the usage texts aligned in one column, deprecated flags hidden.
pub fn usage(program: &str) -> String {
    let mut specs: Vec<&Spec> = SPECS.iter().filter(|s| s.deprecated.is_none()).collect();
    specs.sort_by_key(|s| s.name);
    let heads: Vec<String> = specs
        .iter()
        .map(|s| {
            let mut line = match s.short {
                Some(c) => format!("  -{c}, --{}", s.name),
                None => format!("      --{}", s.name),
            };
            if !s.varname.is_empty() {
                line.push(' ');
                line.push_str(s.varname);
            }
            line
        })
        .collect();
    let width = heads.iter().map(String::len).max().unwrap_or(0);
    let mut out = format!("Usage of {program}:\n");
    for (s, head) in specs.iter().zip(&heads) {
        let mut text = s.usage.to_string();
        if let Some(d) = s.default {
            if s.quoted {
                text.push_str(&format!(" (default {})", go_quote(d)));
            } else {
                text.push_str(&format!(" (default {d})"));
            }
        }
        out.push_str(&format!("{head:width$}   {text}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Flags {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match parse(&args, &lookup).0 {
            Parsed::Run(f) => *f,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args, &|_| None).0 {
            Parsed::Error(e) => e,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn pflag_syntax() {
        let f = run(
            &[
                "--cert",
                "c.pem",
                "-oyaml",
                "-w=out.json",
                "-f",
                "in",
                "--raw",
            ],
            &[],
        );
        assert_eq!(
            (
                f.cert.as_str(),
                f.format.as_str(),
                f.output_file.as_str(),
                f.input_file.as_str(),
                f.raw
            ),
            ("c.pem", "yaml", "out.json", "in", true)
        );
        let f = run(
            &[
                "--raw=false",
                "--format=json",
                "-o",
                "yaml",
                "-n",
                "ns",
                "--name=x",
            ],
            &[],
        );
        assert!(!f.raw);
        assert_eq!(f.format, "yaml");
        assert_eq!(f.namespace_override(), Some("ns"));
        assert_eq!(f.name, "x");
        // A value may start with a dash; `--` ends the flags; other arguments are ignored.
        let f = run(&["--name", "-x", "positional", "--", "--raw"], &[]);
        assert_eq!(f.name, "-x");
        assert!(!f.raw);
    }

    #[test]
    fn slices_split_on_commas_and_repeat() {
        let f = run(
            &["--recovery-private-key", "a,b", "--recovery-private-key=c"],
            &[],
        );
        assert_eq!(f.recovery_keys, ["a", "b", "c"]);
        let f = run(&["--from-file", "\"k=a,b\""], &[]);
        assert_eq!(f.from_file, ["k=a,b"]);
        let f = run(&["--as-group", "a,b", "--as-group", "c"], &[]);
        assert_eq!(f.as_groups, ["a,b", "c"]);
    }

    #[test]
    fn environment_under_the_command_line() {
        let env = [
            ("SEALED_SECRETS_CERT", "env.pem"),
            ("SEALED_SECRETS_SCOPE", "cluster-wide"),
            ("SEALED_SECRETS_RAW", "true"),
            ("SEALED_SECRETS_ALLOW_EMPTY_DATA", "not-a-bool"),
            ("SEALED_SECRETS_RECOVERY_PRIVATE_KEY", "e1,e2"),
            ("SEALED_SECRETS_NAMESPACE", "envns"),
            ("SEALED_SECRETS_V", "9"),
        ];
        let f = run(&[], &env);
        assert_eq!(f.cert, "env.pem");
        assert_eq!(f.scope, Scope::ClusterWide);
        assert!(f.scope_set && f.raw && !f.allow_empty_data);
        assert_eq!(f.recovery_keys, ["e1", "e2"]);
        assert_eq!(f.namespace_override(), Some("envns"));
        let f = run(
            &[
                "--cert",
                "cli.pem",
                "--scope",
                "strict",
                "--raw=false",
                "--recovery-private-key",
                "c",
            ],
            &env,
        );
        assert_eq!(f.cert, "cli.pem");
        assert_eq!(f.scope, Scope::Strict);
        assert!(!f.raw);
        assert_eq!(f.recovery_keys, ["c"]);
    }

    #[test]
    fn errors_read_as_pflag_writes_them() {
        assert_eq!(error(&["--nope"]), "unknown flag: --nope");
        assert_eq!(error(&["-x"]), "unknown shorthand flag: 'x' in -x");
        assert_eq!(error(&["--cert"]), "flag needs an argument: --cert");
        assert_eq!(error(&["-o"]), "flag needs an argument: 'o' in -o");
        assert_eq!(error(&["---x"]), "bad flag syntax: ---x");
        assert_eq!(
            error(&["--raw=maybe"]),
            "invalid argument \"maybe\" for \"--raw\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(
            error(&["--scope", "global"]),
            "invalid argument \"global\" for \"--scope\" flag: must be one of: strict, namespace-wide, cluster-wide"
        );
        let args = vec!["-h".to_string()];
        assert!(matches!(parse(&args, &|_| None).0, Parsed::Help));
    }

    #[test]
    fn rotate_is_a_deprecated_alias() {
        let args = vec!["--rotate".to_string()];
        let (parsed, notes) = parse(&args, &|_| None);
        let Parsed::Run(f) = parsed else { panic!() };
        assert!(f.re_encrypt);
        assert_eq!(
            notes,
            ["Flag --rotate has been deprecated, please use --re-encrypt instead"]
        );
    }

    #[test]
    fn usage_is_aligned_and_sorted() {
        let u = usage("kubeseal");
        assert!(u.starts_with("Usage of kubeseal:\n      --add_dir_header "));
        assert!(u.contains("  -o, --format string  "));
        assert!(u.contains("(default \"sealed-secrets-controller\")"));
        assert!(!u.contains("--rotate"));
        let col = u.lines().nth(1).unwrap().find("If true").unwrap();
        assert!(u
            .lines()
            .skip(1)
            .all(|l| l.len() > col && l.as_bytes()[col - 1] == b' '));
    }
}
