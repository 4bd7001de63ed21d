#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/<target>/) from the repository's own
examples, fixtures and test vectors, in each target's input layout (docs/fuzzing.md).

Run from anywhere: python3 fuzz/make-seeds.py. The output is committed; run it again after
changing a fixture or a layout. (fuzz/seeds-extra/ holds seeds imported once from elsewhere.) Only the Python standard library is used.
"""
import base64
import json
import os
import re
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
FIXTURES = os.path.join(ROOT, "cli", "tests", "cmd", "fixtures")
VERIFY = os.path.join(ROOT, "cli", "tests", "cmd", "verify.in")
DATA = os.path.join(ROOT, "crypto", "tests", "data")


def read(*parts):
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


def files(folder, pattern=r".*\.(ya?ml|json)$"):
    out = []
    for dirpath, _, names in os.walk(folder):
        for n in sorted(names):
            if re.match(pattern, n):
                out.append(os.path.join(dirpath, n))
    return sorted(out)


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def label(scope, ns, name):
    return {"strict": f"{ns}/{name}", "namespace-wide": ns, "cluster-wide": ""}[scope]


def encrypted_items(text):
    """(name, namespace, item, base64 value) of the encryptedData lines of a simple YAML file."""
    name = re.search(r"^  name: (\S+)", text, re.M)
    ns = re.search(r"^  namespace: (\S+)", text, re.M)
    out = []
    block = re.search(r"^  encryptedData:\n((?:    .*\n?)+)", text, re.M)
    if block:
        for m in re.finditer(r"^    ([^:\s]+): (\S+)", block.group(1), re.M):
            out.append((name.group(1) if name else "", ns.group(1) if ns else "", m.group(1), m.group(2)))
    return out


def rel(path):
    return os.path.relpath(path, ROOT).replace("/", "_")


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)

    # bitnami_open, age_open: label NUL blob
    for v in json.loads(read(DATA, "go_vectors.json")):
        lab = label(v["scope"], v["namespace"], v["name"])
        write("bitnami_open", f"go-{v['id']}", lab.encode() + b"\0" + base64.b64decode(v["ciphertext_b64"]))
    write("age_open", "age-go-vector", b"default/mysecret\0" + read(DATA, "age_go_vector.age"))
    for path in files(FIXTURES) + files(VERIFY):
        text = read(path).decode()
        for name, ns, item, value in encrypted_items(text):
            try:
                blob = base64.b64decode(value, validate=True)
            except Exception:
                continue
            target = "age_open" if blob.startswith(b"age-encryption.org/") else "bitnami_open"
            write(target, f"{rel(path)}-{item}", f"{ns}/{name}".encode() + b"\0" + blob)
    # template: source [NUL items]
    templates = {
        "url": "postgres://app:{{ .password | urlquery }}@db:5432/app",
        "functions": '{{ index . "user" | upper }}:{{ .password | b64enc }} {{ printf "%s-%d-%q-%v%%" .user 3 .n true }}',
        "strings": '{{ trim "  x " }}{{ trimAll "-" "--x--" }}{{ trimPrefix "a" "ab" }}{{ trimSuffix "b" "ab" }}{{ replace "a" "b" "aaa" }}{{ nospace " a b " }}',
        "quote": '{{ quote .user }} {{ squote .user }} {{ title "hello world" }} {{ lower "ABC" }} {{ len .password }} {{ cat "a" "b" }}',
        "indent": "{{ .json | indent 4 }}{{ nindent 2 .user }}{{ repeat 3 \"ab\" }}",
        "default": '{{ default "x" .empty }}{{ toString 12 }}{{ toJson .json }}{{ b64dec .b64 }}{{ sha256sum .user }}',
        "nested": "{{ print (upper (lower (print .user .password))) }}{{- /* comment */ -}} tail",
        "dockerconfig": '{"auths":{"r.example":{"auth":"{{ printf "%s:%s" .user .password | b64enc }}"}}}',
        "errors": "{{ if .x }}{{ end }}{{ $x }}{{ .a.b }}{{ nil }}{{ index . .password }}",
        "items": "{{ .a }}-{{ .b }}\0a=one\nb=two\nbin=\xff\xfe",
    }
    for n, t in templates.items():
        write("template", n, t.encode("utf-8", "surrogateescape") if "\xff" not in t else t.encode("latin-1"))

    # seal_input: Secret files
    for path in [os.path.join(ROOT, "keys-example", "secret.yaml")] + [
        os.path.join(FIXTURES, n)
        for n in ["secret.yaml", "secret.json", "two-secrets.yaml", "no-namespace.yaml", "bad-base64.yaml",
                  "empty.yaml", "malformed.json", "malformed.yaml", "second-fails.yaml", "configmap.yaml"]
    ]:
        if os.path.exists(path):
            write("seal_input", rel(path), read(path))
    write("seal_input", "scoped", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n"
          "    sealedsecrets.bitnami.com/namespace-wide: \"true\"\n    kubectl.kubernetes.io/last-applied-configuration: x\n"
          "  labels: {app: web}\ntype: kubernetes.io/dockerconfigjson\nimmutable: true\n"
          "data:\n  a: aGVsbG8=\nstringData:\n  a: world\n  b: kseal-canary-seal\n")

    # unseal_input, http_body, verify_input: SealedSecret files
    sealed = [p for p in files(FIXTURES) if os.path.basename(p).startswith("ss-")]
    sealed += [os.path.join(ROOT, "keys-example", "sealed-secret.yaml")]
    for path in sealed + files(VERIFY):
        write("unseal_input", rel(path), read(path))
        write("verify_input", rel(path), read(path))
    for n in ["ss-go.yaml", "ss-template.yaml", "ss-two-bad.yaml"]:
        write("http_body", n, read(FIXTURES, n))
    for n in ["age.yaml", "ok.yaml"]:
        write("http_body", f"verify.in-{n}", read(VERIFY, n))
    ss_go = read(FIXTURES, "ss-go.yaml").decode()
    items = encrypted_items(ss_go)
    body = {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "mysecret", "namespace": "default",
                         "annotations": {"sealedsecrets.kseal.dev/sealed-with": "SHA256:x"}},
            "spec": {"encryptedData": {i[2]: i[3] for i in items},
                     "template": {"metadata": {"name": "mysecret", "namespace": "default"},
                                  "data": {"x": "{{ .foo }}"}}}}
    write("http_body", "ss-go.json", json.dumps(body, indent=2))
    v = json.loads(read(DATA, "go_vectors.json"))[0]
    v1 = {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
          "metadata": {"name": v["name"], "namespace": v["namespace"]},
          "spec": {"data": v["ciphertext_b64"]}}
    write("http_body", "v1-data.json", json.dumps(v1))
    write("unseal_input", "v1-data.json", json.dumps(v1))
    write("verify_input", "two-files",
          read(VERIFY, "ok.yaml") + b"\n#kseal-fuzz-next-file\n" + read(VERIFY, "copied.yaml"))

    # seal_records: annotation values
    for path in files(VERIFY):
        for m in re.finditer(r"sealedsecrets\.kseal\.dev/(seal-records|sealed-with): '?(.+?)'?$", read(path).decode(), re.M):
            write("seal_records", f"{rel(path)}-{m.group(1)}", m.group(2))
    write("seal_records", "one-record", "v1;SHA256:abc,SHA256:def;cHJvZC9kYg==;" + base64.b64encode(b"\1" * 32).decode())

    # kubeseal_flags: args NUL-separated [NUL NUL env]
    flags = {
        "seal": ["--cert", "tls.crt", "-o", "yaml", "-f", "secret.yaml", "-w", "out.yaml"],
        "short": ["-oyaml", "-n=prod", "--scope=namespace-wide", "--raw", "--from-file=a,b", "--name", "x"],
        "bools": ["--raw=false", "--validate", "--re-encrypt=T", "--rotate", "--help=0", "-v", "3", "--"],
        "client": ["--server", "https://h:6443", "--as-group", "a", "--as-group", "b", "--request-timeout", "1h30m5.5s"],
        "csv": ["--recovery-unseal", "--recovery-private-key", '"a,b",c', "--recovery-private-key=d"],
        "klog": ["--log_dir=/tmp", "--logtostderr=false", "--vmodule", "x=2", "-h"],
        "env": ["--format", "json", "\0SEALED_SECRETS_CERT=c.pem", "SEALED_SECRETS_FROM_FILE=x,y",
                "SEALED_SECRETS_REQUEST_TIMEOUT=300ms", "SEALED_SECRETS_SCOPE=cluster-wide"],
    }
    for n, args in flags.items():
        write("kubeseal_flags", n, "\0".join(args))

    # yamledit: text NUL edits (TAB-separated path, then the value)
    edits = ("spec\tencryptedData\tfoo\tAgBnew==\n"
             "spec\tencryptedData\tnew-item\tAgBadded==\n"
             "spec\ttemplate\tmetadata\tlabels\tapp\tweb\n"
             "metadata\tannotations\tsealedsecrets.kseal.dev/sealed-with\tSHA256:x\n")
    for path in [os.path.join(FIXTURES, n) for n in ["ss-go.yaml", "ss-template.yaml", "ss-two-bad.yaml", "two-secrets.yaml"]] + [
            os.path.join(VERIFY, n) for n in ["ok.yaml", "copied.yaml"]] + [os.path.join(ROOT, "keys-example", "sealed-secret.yaml")]:
        write("yamledit", rel(path), read(path) + b"\0" + edits.encode())
    write("yamledit", "json", json.dumps(body, indent=2).encode() + b"\0" + edits.encode())
    write("yamledit", "flow-and-comments",
          "# head\n---\nspec: {encryptedData: {foo: 'x'}}  # c\n---\nspec:\n  encryptedData: # c\n    foo: |\n      multi\n      line\n\n"
          "    bar: \"q\\\"\"\n...\n\0spec\tencryptedData\tfoo\tnew value: with colon\nspec\tencryptedData\tbaz\t\n")


if __name__ == "__main__":
    main()
