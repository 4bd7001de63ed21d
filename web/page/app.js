// kseal's sealing page: the form, and `window.kseal` for scripts. The sealing itself is in
// seal.js. Nothing typed is stored (no cookies, no storage) and nothing is sent: the only
// request this page makes on its own is GET cert.pem, next to the page, on its own origin.

import {
  InputError, goDate, loadCertificate, sealRaw, sealSecret, toJson, toYaml, MAX_TOTAL_BYTES,
} from './seal.js';

const $ = (id) => document.getElementById(id);

let cert = null; // {fingerprint, notAfter, bits, key, source}
let refused = null; // why the server's certificate was refused
let last = null; // {kind: 'secret'|'raw', obj|text, name}
let itemCounter = 0;

// ---------------------------------------------------------------------------------------------
// window.kseal: the functions the form uses

function secureContextProblem() {
  if (globalThis.crypto && globalThis.crypto.subtle) return null;
  const where = `${location.protocol}//${location.host}`;
  return `This page is not in a secure context (${where}), so the browser does not offer WebCrypto ` +
    '(crypto.subtle) and nothing can be sealed here. Browsers give WebCrypto only to HTTPS pages and ' +
    'to http://127.0.0.1 or http://localhost: serve the page over HTTPS (for example behind an Ingress ' +
    'with TLS), or run `kseal web` on this machine and open it on 127.0.0.1.';
}

function currentCertificate() {
  const problem = secureContextProblem();
  if (problem) throw new InputError('certificate', problem);
  if (!cert) throw new InputError('certificate', refused ?? 'no certificate: load one first');
  if (new Date() > cert.notAfter) {
    throw new InputError('certificate', `failed to encrypt using an expired certificate on ${goDate(cert.notAfter)}`);
  }
  return cert;
}

/** The SealedSecret for `opts` as an object (render it with kseal.render). */
async function sealedSecret(opts) {
  return sealSecret(currentCertificate(), opts ?? {});
}

/** `kseal seal`'s output for `opts` ({namespace, name, scope, type, immutable, data|stringData}): YAML, or JSON with format 'json'. */
async function seal(opts) {
  const obj = await sealedSecret(opts);
  return render(obj, opts?.format ?? 'yaml');
}

function render(obj, format) {
  if (format === 'json') return toJson(obj);
  if (format === 'yaml') return toYaml(obj);
  throw new InputError('format', "format must be 'yaml' or 'json'");
}

/** `kseal seal --raw`: one value ({namespace, name, scope, value|data}), base64. */
async function raw(opts) {
  return sealRaw(currentCertificate(), opts ?? {});
}

function describeCertificate() {
  if (!cert) return null;
  return {
    fingerprint: cert.fingerprint,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    bits: cert.bits,
    source: cert.source,
  };
}

/** Replaces the certificate with `pem` (text); refuses an expired one. */
async function useCertificate(pem, source = 'pasted') {
  const problem = secureContextProblem();
  if (problem) throw new InputError('certificate', problem);
  const loaded = await loadCertificate(pem);
  cert = { ...loaded, source };
  refused = null;
  showCertificate();
  return describeCertificate();
}

let readyResolve;
const ready = new Promise((r) => { readyResolve = r; });

window.kseal = Object.freeze({
  seal, sealedSecret, render, raw, useCertificate, ready,
  certificate: describeCertificate,
});

// ---------------------------------------------------------------------------------------------
// Certificate panel

function showCertificate() {
  $('cert-info').hidden = false;
  $('cert-fingerprint').textContent = cert.fingerprint;
  const days = Math.floor((cert.notAfter - new Date()) / 86400000);
  $('cert-expiry').textContent = `${cert.notAfter.toISOString().replace('.000Z', 'Z')} (in ${days} days)`;
  $('cert-key').textContent = `RSA ${cert.bits} bits`;
  $('cert-source').textContent = cert.source;
  $('cert-status').textContent = 'Values are sealed for this certificate. Compare its fingerprint with what kseal cert --fingerprint prints for your cluster.';
  $('cert-status').className = 'ok';
  $('seal').disabled = false;
}

function certProblem(message) {
  $('cert-status').textContent = message;
  $('cert-status').className = 'error-text';
}

async function loadServerCertificate() {
  let text;
  try {
    const r = await fetch('cert.pem', { cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    text = await r.text();
  } catch (e) {
    certProblem('The server has no certificate for this page: paste or choose one below.');
    $('cert-other').open = true;
    return;
  }
  try {
    await useCertificate(text, 'the server (cert.pem)');
  } catch (e) {
    refused = `the server's certificate is refused: ${e.message}`;
    certProblem(`The server's certificate is refused: ${e.message}. Paste or choose another one below.`);
    $('cert-other').open = true;
    $('seal').disabled = true;
  }
}

async function useOtherCertificate() {
  const errorEl = $('cert-error');
  errorEl.textContent = '';
  const file = $('cert-file').files[0];
  try {
    let text = $('cert-pem').value;
    let source = 'pasted';
    if (file) {
      if (file.size > 64 * 1024) throw new InputError('certificate', 'the certificate is larger than 64 KiB');
      text = await file.text();
      source = `file ${file.name}`;
    }
    if (!text.trim()) throw new InputError('certificate', 'paste a certificate or choose a file');
    await useCertificate(text, source);
    $('cert-pem').removeAttribute('aria-invalid');
    errorEl.textContent = '';
  } catch (e) {
    errorEl.textContent = e.message;
    $('cert-pem').setAttribute('aria-invalid', 'true');
    (file ? $('cert-file') : $('cert-pem')).focus();
  }
}

// ---------------------------------------------------------------------------------------------
// Items

function addItem(focus = true) {
  const li = $('item-template').content.firstElementChild.cloneNode(true);
  const n = ++itemCounter;
  for (const role of ['key', 'value', 'file']) {
    const el = li.querySelector(`[data-role="${role}"]`);
    el.id = `item-${n}-${role}`;
    li.querySelector(`[data-for="${role}"]`).htmlFor = el.id;
  }
  li.querySelector('[data-role="key-error"]').id = `item-${n}-key-error`;
  li.querySelector('[data-role="value-error"]').id = `item-${n}-value-error`;
  li.querySelector('[data-role="key"]').setAttribute('aria-describedby', `item-${n}-key-error`);
  li.querySelector('[data-role="value"]').setAttribute('aria-describedby', `item-${n}-value-error`);
  li.querySelector('[data-role="file"]').setAttribute('aria-describedby', `item-${n}-value-error`);
  const file = li.querySelector('[data-role="file"]');
  const value = li.querySelector('[data-role="value"]');
  const key = li.querySelector('[data-role="key"]');
  file.addEventListener('change', () => {
    const f = file.files[0];
    value.disabled = Boolean(f);
    value.placeholder = f ? `the file ${f.name} (${f.size} bytes) is used` : '';
    if (f && !key.value && /^[-._a-zA-Z0-9]+$/.test(f.name)) key.value = f.name;
  });
  li.querySelector('[data-role="remove"]').addEventListener('click', () => {
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    if (!$('items').children.length) addItem();
    renumberItems();
    (next?.querySelector('[data-role="key"]') ?? $('add-item')).focus();
  });
  $('items').append(li);
  renumberItems();
  if (focus) key.focus();
  return li;
}

function renumberItems() {
  [...$('items').children].forEach((li, i) => {
    li.querySelector('[data-for="key"]').textContent = `Item ${i + 1} name`;
    li.querySelector('[data-for="value"]').textContent = `Item ${i + 1} value`;
    li.querySelector('[data-for="file"]').textContent = `or item ${i + 1} from a file`;
    li.querySelector('[data-role="remove"]').setAttribute('aria-label', `Remove item ${i + 1}`);
  });
}

// ---------------------------------------------------------------------------------------------
// The form

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function formTarget() {
  return {
    namespace: $('namespace').value.trim(),
    name: $('name').value.trim(),
    scope: document.querySelector('input[name="scope"]:checked').value,
  };
}

async function formItems() {
  const items = [];
  const rows = [...$('items').children];
  let total = 0;
  for (const [i, li] of rows.entries()) {
    const f = li.querySelector('[data-role="file"]').files[0];
    const key = li.querySelector('[data-role="key"]').value.trim();
    let value;
    if (f) {
      total += f.size;
      if (total > MAX_TOTAL_BYTES) throw new InputError(`items.${i}.value`, 'the values are larger than 1 MiB in all (the limit of a Secret)');
      value = new Uint8Array(await f.arrayBuffer());
    } else {
      value = li.querySelector('[data-role="value"]').value;
    }
    items.push({ key, value });
  }
  return items;
}

function clearErrors() {
  for (const el of document.querySelectorAll('#seal-form .error-text')) el.textContent = '';
  for (const el of document.querySelectorAll('#seal-form [aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Shows `e` next to its field and moves the focus there. */
function showError(e) {
  if (!(e instanceof InputError)) {
    $('form-error').textContent = `Sealing failed: ${e.message}`;
    return;
  }
  const rows = [...$('items').children];
  let input;
  let out;
  const m = /^items\.(\d+)\.(key|value)$/.exec(e.field);
  if (m && rows[Number(m[1])]) {
    const li = rows[Number(m[1])];
    out = li.querySelector(`[data-role="${m[2]}-error"]`);
    input = li.querySelector(`[data-role="${m[2]}"]`);
    if (m[2] === 'value' && input.disabled) input = li.querySelector('[data-role="file"]');
  } else if (['namespace', 'name', 'type'].includes(e.field)) {
    out = $(`${e.field}-error`);
    input = $(e.field);
  } else if (e.field === 'scope') {
    out = $('scope-error');
    input = document.querySelector('input[name="scope"]:checked');
  } else if (e.field === 'value') {
    out = $('value-error');
    input = $('raw-value');
  } else if (e.field === 'certificate') {
    out = $('form-error');
    input = $('cert-pem');
    $('cert-other').open = true;
  } else {
    out = $('items-error');
    input = $('add-item');
  }
  out.textContent = e.message;
  if (input.tagName !== 'BUTTON') input.setAttribute('aria-invalid', 'true');
  input.focus();
}

async function onSubmit(event) {
  event.preventDefault();
  clearErrors();
  const button = $('seal');
  button.disabled = true;
  try {
    const target = formTarget();
    if (mode() === 'raw') {
      const f = $('raw-file').files[0];
      let value = $('raw-value').value;
      if (f) {
        if (f.size > MAX_TOTAL_BYTES) throw new InputError('value', 'the value is larger than 1 MiB (the limit of a Secret)');
        value = new Uint8Array(await f.arrayBuffer());
      }
      const text = await raw({ ...target, value });
      if (value instanceof Uint8Array) value.fill(0);
      last = { kind: 'raw', text, name: target.name || target.namespace || 'value' };
    } else {
      const items = await formItems();
      const opts = { ...target, type: $('type').value.trim(), items };
      if ($('immutable').checked) opts.immutable = true;
      try {
        last = { kind: 'secret', obj: await sealedSecret(opts), name: target.name, items: items.length };
      } finally {
        for (const it of items) if (it.value instanceof Uint8Array) it.value.fill(0);
      }
    }
    showResult(target);
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = !cert;
  }
}

function outputText() {
  if (last.kind === 'raw') return last.text;
  return render(last.obj, document.querySelector('input[name="format"]:checked').value);
}

function showResult(target) {
  $('result').hidden = false;
  document.querySelector('#result .format').hidden = last.kind === 'raw';
  $('output').value = outputText();
  const where = target.scope === 'strict' ? `${target.namespace}/${target.name}`
    : target.scope === 'namespace-wide' ? `namespace ${target.namespace}` : 'any namespace';
  const what = last.kind === 'raw' ? 'One value' : `${last.items} item${last.items === 1 ? '' : 's'}`;
  $('result-status').textContent = `${what} sealed, ${target.scope} (${where}), for ${cert.fingerprint}.`;
  $('result-heading').focus();
}

async function copyOutput() {
  const text = $('output').value;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    $('output').select();
    document.execCommand('copy');
  }
  $('result-status').textContent = 'Copied to the clipboard.';
}

function downloadOutput() {
  const format = last.kind === 'raw' ? 'txt' : document.querySelector('input[name="format"]:checked').value;
  const blob = new Blob([$('output').value], { type: format === 'json' ? 'application/json' : 'text/plain' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = last.kind === 'raw' ? `${last.name}-sealed-value.txt` : `${last.name}-sealedsecret.${format}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  $('result-status').textContent = `Downloaded ${a.download}.`;
}

function clearValues() {
  for (const li of $('items').children) {
    const v = li.querySelector('[data-role="value"]');
    v.value = '';
    v.disabled = false;
    v.placeholder = '';
    li.querySelector('[data-role="file"]').value = '';
  }
  $('raw-value').value = '';
  $('raw-file').value = '';
  clearErrors();
}

function onModeChange() {
  const isRaw = mode() === 'raw';
  for (const el of document.querySelectorAll('.secret-only')) el.hidden = isRaw;
  for (const el of document.querySelectorAll('.raw-only')) el.hidden = !isRaw;
  $('name-hint').textContent = isRaw
    ? 'Of the SealedSecret the value goes into (required for strict scope).'
    : "The SealedSecret's and the Secret's name.";
}

function init() {
  $('seal').disabled = true;
  addItem(false);
  $('add-item').addEventListener('click', () => addItem());
  $('seal-form').addEventListener('submit', onSubmit);
  $('clear').addEventListener('click', clearValues);
  $('copy').addEventListener('click', copyOutput);
  $('download').addEventListener('click', downloadOutput);
  $('cert-use').addEventListener('click', useOtherCertificate);
  for (const r of document.querySelectorAll('input[name="mode"]')) r.addEventListener('change', onModeChange);
  for (const r of document.querySelectorAll('input[name="format"]')) {
    r.addEventListener('change', () => { if (last) $('output').value = outputText(); });
  }
  $('raw-file').addEventListener('change', () => {
    const f = $('raw-file').files[0];
    $('raw-value').disabled = Boolean(f);
    $('raw-value').placeholder = f ? `the file ${f.name} (${f.size} bytes) is used` : '';
  });
  // An error goes away when its field is edited.
  $('seal-form').addEventListener('input', (event) => {
    const el = event.target;
    if (el.getAttribute('aria-invalid') !== 'true') return;
    el.removeAttribute('aria-invalid');
    for (const id of (el.getAttribute('aria-describedby') ?? '').split(' ')) {
      const out = id && document.getElementById(id);
      if (out && out.classList.contains('error-text')) out.textContent = '';
    }
  });
  const problem = secureContextProblem();
  if (problem) {
    $('insecure').textContent = problem;
    $('insecure').hidden = false;
    certProblem('WebCrypto is not available here: nothing can be sealed.');
    for (const el of document.querySelectorAll('#seal-form input, #seal-form textarea, #seal-form button, #cert-other *')) el.disabled = true;
    readyResolve(false);
    return;
  }
  loadServerCertificate().finally(() => readyResolve(Boolean(cert)));
}

init();
