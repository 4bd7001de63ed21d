// kseal's sealing page: the sealing core. No dependency, no network: everything here runs on the
// certificate's public key with WebCrypto (crypto.subtle), in the browser (or Node >= 20).
//
// What it reproduces, byte for byte apart from the ciphertexts, is `kseal seal`'s output:
//
// - Bitnami's hybrid format for every value: u16be(len) || RSA-OAEP(SHA-256, MGF1-SHA-256,
//   label = the scope label)(fresh 32-byte AES key) || AES-256-GCM(value) with an all-zero
//   12-byte nonce (the key is used once) and the 16-byte tag appended, no AAD.
// - The SealedSecret object: kind, apiVersion, metadata (name, namespace, annotations), spec
//   (template {metadata, type, immutable}, encryptedData), with kseal's annotations
//   `sealedsecrets.kseal.dev/sealed-with` (the certificate's SSH SHA256 fingerprint) and
//   `sealedsecrets.kseal.dev/seal-records` (one record per item, see docs/web.md).
// - kubeseal's renderings: Go's indented JSON (struct field order, maps sorted, <>& escaped) and
//   sigs.k8s.io/yaml's YAML (keys sorted, block style), each as `kseal seal` prints it.
//
// Bounds (checked before any work): a certificate of at most 64 KiB, at most 256 items, at most
// 1 MiB of values in all (a Kubernetes Secret holds at most 1 MiB).

export const API_VERSION = 'bitnami.com/v1alpha1';
export const KIND = 'SealedSecret';
export const ANNOTATION_SEALED_WITH = 'sealedsecrets.kseal.dev/sealed-with';
export const ANNOTATION_SEAL_RECORDS = 'sealedsecrets.kseal.dev/seal-records';
export const ANNOTATION_NAMESPACE_WIDE = 'sealedsecrets.bitnami.com/namespace-wide';
export const ANNOTATION_CLUSTER_WIDE = 'sealedsecrets.bitnami.com/cluster-wide';
export const SCOPES = ['strict', 'namespace-wide', 'cluster-wide'];

export const MAX_CERT_BYTES = 64 * 1024;
export const MAX_ITEMS = 256;
export const MAX_TOTAL_BYTES = 1024 * 1024;

const RECORD_DOMAIN = 'kseal-seal-record/v1\0';
const RSA_ENCRYPTION_OID = '2a864886f70d010101'; // 1.2.840.113549.1.1.1

/** An error about one input field; `field` names it (never its value). */
export class InputError extends Error {
  constructor(field, message) {
    super(message);
    this.name = 'InputError';
    this.field = field;
  }
}

// ---------------------------------------------------------------------------------------------
// Bytes, base64, UTF-8

const utf8 = new TextEncoder();

export function utf8Bytes(s) {
  return utf8.encode(s);
}

function concat(parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** Standard base64 with padding (`pad` false: without). */
export function base64Encode(bytes, pad = true) {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += B64[n >> 18] + B64[(n >> 12) & 63] + (pad ? '==' : '');
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + (pad ? '=' : '');
  }
  return out;
}

/** Strict standard base64 with padding, as a Secret's `data` holds it; `null` when invalid. */
export function base64Decode(text) {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const body = text.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const c of body) {
    acc = (acc << 6) | B64_INDEX.get(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  // Non-zero leftover bits are not canonical base64 (Go's decoder refuses them too).
  if ((acc & ((1 << bits) - 1)) !== 0) return null;
  return out.subarray(0, o);
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------------------------
// PEM and DER: just enough X.509 to find the RSA key and the validity

/** The DER of the first CERTIFICATE block of a PEM text (other blocks are skipped). */
export function pemCertificate(text) {
  if (text.length > MAX_CERT_BYTES) {
    throw new InputError('certificate', `the certificate is larger than ${MAX_CERT_BYTES / 1024} KiB`);
  }
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1] !== 'CERTIFICATE') continue;
    const der = base64Decode(m[2].replace(/\s+/g, ''));
    if (!der) throw new InputError('certificate', 'the CERTIFICATE block is not valid base64');
    return der;
  }
  throw new InputError('certificate', 'no PEM certificate found');
}

/** One DER TLV at `pos` of `buf`: {tag, start (of the value), end}. */
function tlv(buf, pos, end) {
  const bad = () => new InputError('certificate', 'invalid certificate: malformed DER');
  if (pos + 2 > end) throw bad();
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) throw bad(); // no high tag numbers in a certificate's outer parts
  let len = buf[pos + 1];
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > end) throw bad();
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
  }
  if (p + len > end) throw bad();
  return { tag, pos, start: p, end: p + len };
}

/** The children of a constructed TLV. */
function children(buf, node) {
  const out = [];
  for (let p = node.start; p < node.end; ) {
    const c = tlv(buf, p, node.end);
    out.push(c);
    p = c.end;
    if (out.length > 64) throw new InputError('certificate', 'invalid certificate: malformed DER');
  }
  return out;
}

function derTime(buf, node) {
  const s = String.fromCharCode(...buf.subarray(node.start, node.end));
  let m;
  if (node.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    m[1] = String(yy < 50 ? 2000 + yy : 1900 + yy);
  } else if (!(node.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)))) {
    throw new InputError('certificate', 'invalid certificate: bad validity time');
  }
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  return new Date(Date.UTC(y, mo - 1, d, h, mi, se));
}

/** Unsigned big-endian integer bytes of a DER INTEGER, without leading zeros. */
function derUint(buf, node) {
  let v = buf.subarray(node.start, node.end);
  if (node.tag !== 0x02 || v.length === 0 || v[0] & 0x80) {
    throw new InputError('certificate', 'invalid certificate: bad RSA key');
  }
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  return v.subarray(i);
}

/**
 * Parses a DER certificate: {spki (DER of SubjectPublicKeyInfo), modulus, exponent, notBefore,
 * notAfter, bits}. Refuses keys that are not RSA.
 */
export function parseCertificate(der) {
  const cert = tlv(der, 0, der.length);
  if (cert.tag !== 0x30) throw new InputError('certificate', 'invalid certificate: not a certificate');
  const [tbs] = children(der, cert);
  if (!tbs || tbs.tag !== 0x30) throw new InputError('certificate', 'invalid certificate: not a certificate');
  let f = children(der, tbs);
  if (f.length && f[0].tag === 0xa0) f = f.slice(1); // [0] version
  const [, , , validity, , spki] = f; // serial, signature, issuer, validity, subject, spki
  if (!validity || !spki || validity.tag !== 0x30 || spki.tag !== 0x30) {
    throw new InputError('certificate', 'invalid certificate: not a certificate');
  }
  const [nb, na] = children(der, validity);
  if (!nb || !na) throw new InputError('certificate', 'invalid certificate: bad validity');
  const [alg, bits] = children(der, spki);
  const [oid] = alg && alg.tag === 0x30 ? children(der, alg) : [];
  if (!oid || oid.tag !== 0x06 || !bits || bits.tag !== 0x03) {
    throw new InputError('certificate', 'invalid certificate: bad public key');
  }
  if (hex(der.subarray(oid.start, oid.end)) !== RSA_ENCRYPTION_OID) {
    throw new InputError('certificate', 'the certificate public key is not RSA');
  }
  if (der[bits.start] !== 0) throw new InputError('certificate', 'invalid certificate: bad RSA key');
  const rsa = tlv(der, bits.start + 1, bits.end);
  if (rsa.tag !== 0x30) throw new InputError('certificate', 'invalid certificate: bad RSA key');
  const [n, e] = children(der, rsa);
  if (!n || !e) throw new InputError('certificate', 'invalid certificate: bad RSA key');
  const modulus = derUint(der, n);
  const keyBits = modulus.length * 8 - Math.clz32(modulus[0]) + 24;
  return {
    spki: der.slice(spki.pos, spki.end),
    modulus,
    exponent: derUint(der, e),
    notBefore: derTime(der, nb),
    notAfter: derTime(der, na),
    bits: keyBits,
  };
}

/** SSH mpint: no redundant leading zeros, a zero byte prepended when the top bit is set. */
function mpint(n) {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  const v = n.subarray(i);
  const pad = v.length > 0 && v[0] & 0x80 ? 1 : 0;
  const out = new Uint8Array(4 + pad + v.length);
  new DataView(out.buffer).setUint32(0, pad + v.length);
  out.set(v, 4 + pad);
  return out;
}

function sshString(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/** `SHA256:` + unpadded base64 of SHA-256 over the key's SSH wire encoding (kseal cert --fingerprint). */
export async function fingerprint(exponent, modulus) {
  const wire = concat([sshString(utf8Bytes('ssh-rsa')), mpint(exponent), mpint(modulus)]);
  return 'SHA256:' + base64Encode(await sha256(wire), false);
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];

/** Go's `January 2, 2006` layout, as kseal's expiry message prints it. */
export function goDate(d) {
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()}`;
}

/**
 * Loads a sealing certificate from PEM text. Refuses an expired one (as `kseal seal` does, with
 * its message). Returns {fingerprint, notBefore, notAfter, bits, key (a CryptoKey), pem}.
 */
export async function loadCertificate(pemText, now = new Date()) {
  if (typeof pemText !== 'string') throw new InputError('certificate', 'the certificate must be PEM text');
  const der = pemCertificate(pemText);
  const c = parseCertificate(der);
  if (now > c.notAfter) {
    throw new InputError('certificate', `failed to encrypt using an expired certificate on ${goDate(c.notAfter)}`);
  }
  if (c.bits < 2048 || c.bits > 8192) {
    throw new InputError('certificate', `kseal accepts RSA keys of 2048 to 8192 bits, this one has ${c.bits}`);
  }
  let key;
  try {
    key = await crypto.subtle.importKey('spki', c.spki, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
  } catch (e) {
    throw new InputError('certificate', 'invalid certificate: the RSA key cannot be imported');
  }
  return {
    fingerprint: await fingerprint(c.exponent, c.modulus),
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    bits: c.bits,
    key,
  };
}

// ---------------------------------------------------------------------------------------------
// Sealing

/** The OAEP label of a scope: `namespace/name`, `namespace`, or empty. */
export function scopeLabel(scope, namespace, name) {
  switch (scope) {
    case 'strict':
      return utf8Bytes(`${namespace}/${name}`);
    case 'namespace-wide':
      return utf8Bytes(namespace);
    case 'cluster-wide':
      return new Uint8Array(0);
    default:
      throw new InputError('scope', 'scope must be one of: strict, namespace-wide, cluster-wide');
  }
}

/** Seals one value in Bitnami's format for `cert` under `label`. */
export async function sealValue(cert, label, value) {
  const sessionKey = crypto.getRandomValues(new Uint8Array(32));
  try {
    const wrapped = new Uint8Array(
      await crypto.subtle.encrypt({ name: 'RSA-OAEP', label }, cert.key, sessionKey),
    );
    const aes = await crypto.subtle.importKey('raw', sessionKey, { name: 'AES-GCM' }, false, ['encrypt']);
    const body = new Uint8Array(
      await crypto.subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12), tagLength: 128 }, aes, value),
    );
    const len = new Uint8Array([wrapped.length >> 8, wrapped.length & 0xff]);
    return concat([len, wrapped, body]);
  } finally {
    sessionKey.fill(0);
  }
}

/** A seal record: v1;<fingerprints>;<base64 label>;<base64 digest>. */
export async function sealRecord(fp, label, item, blob) {
  const digest = await sha256(concat([utf8Bytes(RECORD_DOMAIN), label, new Uint8Array([0]),
    utf8Bytes(item), new Uint8Array([0]), blob]));
  return `v1;${fp};${base64Encode(label)};${base64Encode(digest)}`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

function checkName(field, value, what, required) {
  if (value === undefined || value === null || value === '') {
    if (required) throw new InputError(field, `${what} is required`);
    return '';
  }
  if (typeof value !== 'string') throw new InputError(field, `${what} must be text`);
  const ok = field === 'namespace'
    ? value.length <= 63 && DNS_LABEL.test(value)
    : value.length <= 253 && DNS_SUBDOMAIN.test(value);
  if (!ok) {
    throw new InputError(field, field === 'namespace'
      ? `${what} must be a DNS label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit`
      : `${what} must be a DNS subdomain: at most 253 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`);
  }
  return value;
}

/** Checks name, namespace and scope as `kseal seal` would need them; returns them resolved. */
export function checkTarget(opts, raw = false) {
  const scope = opts.scope === undefined || opts.scope === '' ? 'strict' : opts.scope;
  if (!SCOPES.includes(scope)) {
    throw new InputError('scope', 'scope must be one of: strict, namespace-wide, cluster-wide');
  }
  const namespace = checkName('namespace', opts.namespace, 'namespace', scope !== 'cluster-wide');
  const name = checkName('name', opts.name, 'name', !raw || scope === 'strict');
  return { scope, namespace, name };
}

function checkKey(field, key) {
  if (typeof key !== 'string' || key === '') throw new InputError(field, 'the item name is required');
  if (key.length > 253 || !SECRET_KEY.test(key) || key === '.' || key === '..') {
    throw new InputError(field, "an item name must be at most 253 letters, digits, '-', '_' or '.' (not '.' or '..')");
  }
}

/**
 * The items of `opts` as [name, bytes] pairs sorted by name: `data` (base64 values, as in a
 * Secret) then `stringData` (text), which wins for a name in both, as `kseal seal` does.
 * `items` ([{key, value: string|Uint8Array}]) is the form's list: a name given twice is an error.
 */
export function collectItems(opts) {
  const items = new Map();
  let total = 0;
  const add = (field, key, bytes) => {
    checkKey(`${field}.key`, key);
    total += bytes.length - (items.get(key)?.length ?? 0);
    items.set(key, bytes);
    if (items.size > MAX_ITEMS) throw new InputError(field, `at most ${MAX_ITEMS} items`);
    if (total > MAX_TOTAL_BYTES) throw new InputError(`${field}.value`, 'the values are larger than 1 MiB in all (the limit of a Secret)');
  };
  const entries = (obj, what) => {
    if (obj === undefined || obj === null) return [];
    if (typeof obj !== 'object' || Array.isArray(obj)) throw new InputError(what, `${what} must be an object of strings`);
    const e = Object.entries(obj);
    if (e.length > MAX_ITEMS) throw new InputError(what, `at most ${MAX_ITEMS} items`);
    return e;
  };
  for (const [k, v] of entries(opts.data, 'data')) {
    const bytes = typeof v === 'string' ? base64Decode(v) : null;
    if (!bytes) throw new InputError(`data.${k}.value`, `data item ${JSON.stringify(k)} is not valid base64`);
    add(`data.${k}`, k, bytes);
  }
  for (const [k, v] of entries(opts.stringData, 'stringData')) {
    if (typeof v !== 'string') throw new InputError(`stringData.${k}.value`, `stringData item ${JSON.stringify(k)} must be text`);
    add(`stringData.${k}`, k, utf8Bytes(v));
  }
  if (opts.items !== undefined) {
    if (!Array.isArray(opts.items) || opts.items.length > MAX_ITEMS) throw new InputError('items', `at most ${MAX_ITEMS} items`);
    opts.items.forEach((it, i) => {
      const field = `items.${i}`;
      if (items.has(it.key)) throw new InputError(`${field}.key`, 'this item name is used twice');
      const bytes = it.value instanceof Uint8Array ? it.value : utf8Bytes(String(it.value ?? ''));
      add(field, it.key, bytes);
    });
  }
  if (items.size === 0) throw new InputError('items', 'add at least one item: kseal does not seal an empty Secret');
  return [...items.entries()].sort(([a], [b]) => compareStrings(a, b));
}

/** Rust's string order (by code point). */
function compareStrings(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

function checkType(type) {
  if (type === undefined || type === null || type === '') return undefined;
  if (typeof type !== 'string' || type.length > 253 || /[\u0000-\u001f\u007f-\u009f]/.test(type)) {
    throw new InputError('type', 'the type must be at most 253 characters, without control characters');
  }
  return type;
}

/** Sorted map of string entries. */
function sortedMap(entries) {
  return new Map([...entries].sort(([a], [b]) => compareStrings(a, b)));
}

/**
 * Seals a Secret for `cert` into a SealedSecret, as `kseal seal` does. `opts`: {namespace, name,
 * scope, type, immutable, data, stringData, items}. Returns the object as nested Maps in
 * kubeseal's field order (render it with `toYaml`/`toJson`). Every plaintext buffer it made is
 * overwritten before it returns.
 */
export async function sealSecret(cert, opts) {
  if (!cert) throw new InputError('certificate', 'no certificate: load one first');
  const { scope, namespace, name } = checkTarget(opts);
  const type = checkType(opts.type);
  if (opts.immutable !== undefined && typeof opts.immutable !== 'boolean') {
    throw new InputError('immutable', 'immutable must be true or false');
  }
  const items = collectItems(opts);
  const label = scopeLabel(scope, namespace, name);
  const encrypted = new Map();
  const records = new Map();
  try {
    for (const [item, value] of items) {
      const blob = await sealValue(cert, label, value);
      encrypted.set(item, base64Encode(blob));
      records.set(item, await sealRecord(cert.fingerprint, label, item, blob));
    }
  } finally {
    for (const [, v] of items) v.fill(0);
  }
  const scopeAnnotation = scope === 'namespace-wide' ? ANNOTATION_NAMESPACE_WIDE
    : scope === 'cluster-wide' ? ANNOTATION_CLUSTER_WIDE : null;

  const templateMeta = new Map([['name', name]]);
  if (namespace) templateMeta.set('namespace', namespace);
  if (scopeAnnotation) templateMeta.set('annotations', new Map([[scopeAnnotation, 'true']]));
  const template = new Map([['metadata', templateMeta]]);
  if (type !== undefined) template.set('type', type);
  if (opts.immutable !== undefined) template.set('immutable', opts.immutable);

  const annotations = [
    [ANNOTATION_SEALED_WITH, cert.fingerprint],
    [ANNOTATION_SEAL_RECORDS, compactJson(records)],
  ];
  if (scopeAnnotation) annotations.push([scopeAnnotation, 'true']);
  const meta = new Map([['name', name]]);
  if (namespace) meta.set('namespace', namespace);
  meta.set('annotations', sortedMap(annotations));

  return new Map([
    ['kind', KIND],
    ['apiVersion', API_VERSION],
    ['metadata', meta],
    ['spec', new Map([['template', template], ['encryptedData', encrypted]])],
  ]);
}

/** One value sealed as `kseal seal --raw` prints it: base64, no newline. */
export async function sealRaw(cert, opts) {
  if (!cert) throw new InputError('certificate', 'no certificate: load one first');
  const { scope, namespace, name } = checkTarget(opts, true);
  let value;
  if (opts.value instanceof Uint8Array) value = opts.value;
  else if (typeof opts.data === 'string') {
    value = base64Decode(opts.data);
    if (!value) throw new InputError('value', 'the value is not valid base64');
  } else if (typeof opts.value === 'string') value = utf8Bytes(opts.value);
  else throw new InputError('value', 'the value is required');
  if (value.length > MAX_TOTAL_BYTES) throw new InputError('value', 'the value is larger than 1 MiB (the limit of a Secret)');
  try {
    return base64Encode(await sealValue(cert, scopeLabel(scope, namespace, name), value));
  } finally {
    if (!(opts.value instanceof Uint8Array)) value.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering: Go's JSON and sigs.k8s.io/yaml's YAML, as crds/src/render.rs does

/** serde_json's string escaping (JSON.stringify's: the same short escapes, \u00xx otherwise). */
function jsonString(s) {
  return JSON.stringify(s);
}

/** Go's HTML-safe escaping on top. */
function goEscape(text) {
  return text.replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function jsonValue(v, indent, pretty) {
  if (v instanceof Map) {
    if (v.size === 0) return '{}';
    const pad = pretty ? '\n' + '  '.repeat(indent + 1) : '';
    const parts = [...v].map(([k, x]) => pad + jsonString(k) + (pretty ? ': ' : ':') + jsonValue(x, indent + 1, pretty));
    return '{' + parts.join(',') + (pretty ? '\n' + '  '.repeat(indent) : '') + '}';
  }
  if (typeof v === 'string') return jsonString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  throw new Error('unsupported value');
}

/** Compact JSON of a Map of strings (serde_json::to_string: no HTML escaping). */
export function compactJson(map) {
  return jsonValue(map, 0, false);
}

/** `kseal seal` (default output): Go's indented JSON and a newline. */
export function toJson(obj) {
  return goEscape(jsonValue(obj, 0, true)) + '\n';
}

/** `kseal seal -o yaml`: `---` and sigs.k8s.io/yaml's YAML. */
export function toYaml(obj) {
  let out = '';
  emitMap(obj, 0, (s) => { out += s; }, false);
  if (!out.endsWith('\n')) out += '\n';
  return '---\n' + out;
}

function emitMap(map, indent, w, nested) {
  const keys = [...map.keys()].sort(compareStrings);
  keys.forEach((k, i) => {
    if (nested || i > 0) w('\n');
    w(' '.repeat(indent));
    w(scalarStr(k));
    w(':');
    const child = map.get(k);
    if (child instanceof Map && child.size > 0) {
      emitMap(child, indent + 2, w, true);
    } else {
      w(' ');
      emitScalar(child, indent + 2, w);
    }
  });
}

function emitScalar(v, indent, w) {
  if (v instanceof Map) return w('{}');
  if (typeof v === 'boolean') return w(v ? 'true' : 'false');
  if (v.includes('\n') && isPrintable(v)) {
    const chomp = v.endsWith('\n') ? '' : '-';
    const lead = v.startsWith(' ') ? '2' : '';
    w('|' + lead + chomp);
    const body = v.endsWith('\n') ? v.slice(0, -1) : v;
    for (const line of body.split('\n')) {
      w('\n');
      if (line !== '') w(' '.repeat(indent) + line);
    }
    return undefined;
  }
  return w(scalarStr(v));
}

function isControl(c) {
  const n = c.codePointAt(0);
  return n <= 0x1f || (n >= 0x7f && n <= 0x9f);
}

function isPrintable(s) {
  return [...s].every((c) => c === '\n' || c === '\t' || !isControl(c)) && !s.includes(' \n') && !s.endsWith(' ');
}

/** A YAML scalar: plain when unambiguous, else double-quoted JSON. */
export function scalarStr(s) {
  return plainSafe(s) ? s : jsonString(s);
}

const RESERVED = new Set(['true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null', '~', '.inf', '-.inf', '+.inf', '.nan']);

function plainSafe(s) {
  if (s === '') return false;
  const first = s[0];
  if (s.startsWith(' ') || s.endsWith(' ') || s.endsWith(':')) return false;
  if ('?:,[]{}#&*!|>\'"%@`'.includes(first)) return false;
  const bytes = utf8Bytes(s);
  if (first === '-' && (bytes.length === 1 || s.slice(1).startsWith(' ') || looksNumeric(s))) return false;
  if (s.includes(': ') || s.includes(' #') || [...s].some((c) => isControl(c) || c === '\ufeff')) return false;
  if (RESERVED.has(asciiLower(s)) || looksNumeric(s)) return false;
  const digit = (b) => b >= 0x30 && b <= 0x39;
  if (bytes.length >= 10 && bytes[4] === 0x2d && bytes[7] === 0x2d && [...bytes.subarray(0, 4)].every(digit)) return false;
  return true;
}

function asciiLower(s) {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

// Rust's f64 grammar (str::parse::<f64>), after the signs are trimmed.
const RUST_FLOAT = /^[+-]?(inf|infinity|nan|([0-9]+|[0-9]+\.[0-9]*|[0-9]*\.[0-9]+)([eE][+-]?[0-9]+)?)$/i;

function looksNumeric(s) {
  const t = s.replace(/^[+-]+/, '');
  if (t === '') return false;
  const t2 = t.replace(/_/g, '');
  const after = () => t2.slice(2);
  return RUST_FLOAT.test(t2)
    || (t2.startsWith('0x') && t2.length > 2 && /^[0-9a-fA-F]+$/.test(after()))
    || (t2.startsWith('0o') && t2.length > 2 && /^[0-7]+$/.test(after()))
    || (t2.startsWith('0b') && t2.length > 2 && /^[01]+$/.test(after()))
    || (t.includes(':') && t.split(':').every((p) => p !== '' && /^[0-9.]+$/.test(p)));
}
