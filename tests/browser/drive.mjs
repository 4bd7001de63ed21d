// Drives Debian's Chromium (headless, over the DevTools protocol with playwright-core) through
// kseal's sealing page for tests/tests/e2e/web.rs, and prints what it saw as one JSON object.
//
// Usage: node drive.mjs SCENARIO.json
//
// The scenario (written by the Rust test): {url, insecureUrl, chromium, screenshots (dir or
// null), form: {namespace, name, scope, type, items: [{key, value} | {key, file}]}, rawForm:
// {namespace, name, scope, value}, api: [{opts}], raw: [{opts}], apiErrors: [{opts}],
// expiredCertFile, formOnly (stop after the form)}.
//
// Every request of every page is recorded (URL, method, headers, body), so that the test can
// check that none leaves the page's origin and none carries a value. Nothing is downloaded: the
// browser is /usr/bin/chromium, and the only network is the page's server on loopback.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = { requests: [], console: [], steps: {} };
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kseal-chromium-'));

const flags = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-extensions', '--disable-default-apps',
  // A name that is not localhost for the page's own server: not a secure context.
  '--host-resolver-rules=MAP kseal-insecure.test 127.0.0.1',
];

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: scenario.chromium || '/usr/bin/chromium',
  headless: true,
  args: flags,
  viewport: { width: 1000, height: 900 },
  acceptDownloads: true,
  timeout: 60000,
});

class Done extends Error {}

function record(page, label) {
  page.on('request', (r) => {
    out.requests.push({
      page: label, url: r.url(), method: r.method(), headers: r.headers(), body: r.postData() ?? null,
      resourceType: r.resourceType(),
    });
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') out.console.push({ page: label, type: m.type(), text: m.text() });
  });
  page.on('pageerror', (e) => out.console.push({ page: label, type: 'pageerror', text: String(e) }));
  page.on('websocket', (w) => out.requests.push({ page: label, url: w.url(), method: 'WEBSOCKET', headers: {}, body: null }));
}

async function shot(page, name) {
  if (!scenario.screenshots) return;
  await page.screenshot({ path: path.join(scenario.screenshots, name), fullPage: true });
}

try {
  // ----- the form
  const page = context.pages()[0] ?? await context.newPage();
  record(page, 'main');
  await page.goto(scenario.url);
  await page.evaluate(() => window.kseal.ready);
  out.steps.certificate = await page.evaluate(() => window.kseal.certificate());
  out.steps.certificateShown = {
    fingerprint: await page.locator('#cert-fingerprint').textContent(),
    expiry: await page.locator('#cert-expiry').textContent(),
  };
  out.steps.storage = await page.evaluate(() => ({
    cookies: document.cookie, local: localStorage.length, session: sessionStorage.length,
  }));
  await shot(page, 'web-empty.png');

  const f = scenario.form;
  // An error next to its field: no name.
  await page.getByLabel('Namespace', { exact: true }).fill(f.namespace);
  await page.getByRole('button', { name: 'Seal' }).click();
  out.steps.missingName = {
    error: await page.locator('#name-error').textContent(),
    invalid: await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'),
    focused: await page.evaluate(() => document.activeElement.id),
  };

  await page.getByLabel('Name', { exact: true }).fill(f.name);
  await page.getByRole('radio', { name: new RegExp(`^${f.scope}:`) }).check();
  await page.getByLabel('Type', { exact: true }).fill(f.type ?? '');
  for (const [i, item] of f.items.entries()) {
    if (i > 0) await page.getByRole('button', { name: 'Add an item' }).click();
    const n = i + 1;
    if (item.file) {
      await page.getByLabel(`or item ${n} from a file`).setInputFiles(item.file);
    } else {
      await page.getByLabel(`Item ${n} value`).fill(item.value);
    }
    await page.getByLabel(`Item ${n} name`).fill(item.key);
  }
  await shot(page, 'web-filled.png');
  // Seal from the keyboard: focus the button, press Enter.
  await page.getByRole('button', { name: 'Seal' }).focus();
  await page.keyboard.press('Enter');
  await page.locator('#result:not([hidden])').waitFor();
  out.steps.formYaml = await page.locator('#output').inputValue();
  out.steps.resultStatus = await page.locator('#result-status').textContent();
  await shot(page, 'web-result.png');
  await page.getByRole('radio', { name: 'JSON' }).check();
  out.steps.formJson = await page.locator('#output').inputValue();
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download' }).click();
  const d = await download;
  out.steps.download = { name: d.suggestedFilename(), text: fs.readFileSync(await d.path(), 'utf8') };

  if (scenario.formOnly) throw new Done();

  // The raw mode of the form.
  const r = scenario.rawForm;
  await page.getByRole('radio', { name: /^One value/ }).check();
  await page.getByLabel('Namespace', { exact: true }).fill(r.namespace);
  await page.getByLabel('Name', { exact: true }).fill(r.name);
  await page.getByRole('radio', { name: new RegExp(`^${r.scope}:`) }).check();
  await page.getByLabel('Value', { exact: true }).fill(r.value);
  await page.getByRole('button', { name: 'Seal' }).click();
  await page.waitForFunction(() => /^[A-Za-z0-9+/]+=*$/.test(document.getElementById('output').value));
  out.steps.formRaw = await page.locator('#output').inputValue();

  // window.kseal, as scripts use it.
  out.steps.api = [];
  for (const opts of scenario.api) {
    out.steps.api.push(await page.evaluate((o) => window.kseal.seal(o), opts));
  }
  out.steps.raw = [];
  for (const opts of scenario.raw) {
    out.steps.raw.push(await page.evaluate((o) => window.kseal.raw(o), opts));
  }
  out.steps.apiErrors = [];
  for (const opts of scenario.apiErrors ?? []) {
    out.steps.apiErrors.push(await page.evaluate(
      (o) => window.kseal.seal(o).then(() => null, (e) => ({ field: e.field, message: e.message })), opts));
  }

  // An expired certificate, chosen in the page: refused, with kseal's message.
  await page.getByText('Use another certificate').click();
  await page.getByLabel('or a certificate file').setInputFiles(scenario.expiredCertFile);
  await page.getByRole('button', { name: 'Use this certificate' }).click();
  await page.locator('#cert-error:not(:empty)').waitFor();
  out.steps.expiredChosen = {
    error: await page.locator('#cert-error').textContent(),
    stillUsing: await page.evaluate(() => window.kseal.certificate().fingerprint),
  };
  const expiredPem = fs.readFileSync(scenario.expiredCertFile, 'utf8');

  // An expired certificate from the server: the page refuses it and cannot seal.
  const page2 = await context.newPage();
  record(page2, 'expired');
  await page2.route('**/cert.pem', (route) => route.fulfill({ status: 200, contentType: 'application/x-pem-file', body: expiredPem }));
  await page2.goto(scenario.url);
  await page2.evaluate(() => window.kseal.ready);
  out.steps.expiredServed = {
    status: await page2.locator('#cert-status').textContent(),
    sealDisabled: await page2.getByRole('button', { name: 'Seal' }).isDisabled(),
    api: await page2.evaluate(() => window.kseal.seal({ namespace: 'a', name: 'b', stringData: { k: 'v' } })
      .then(() => null, (e) => ({ field: e.field, message: e.message }))),
  };
  await page2.close();

  // Not a secure context: no crypto.subtle, and the page says why.
  const page3 = await context.newPage();
  record(page3, 'insecure');
  await page3.goto(scenario.insecureUrl);
  await page3.evaluate(() => window.kseal.ready);
  out.steps.insecure = {
    subtle: await page3.evaluate(() => typeof (globalThis.crypto && crypto.subtle)),
    banner: await page3.locator('#insecure').textContent(),
    visible: await page3.locator('#insecure').isVisible(),
    sealDisabled: await page3.getByRole('button', { name: 'Seal' }).isDisabled(),
  };
  await page3.close();
  out.ok = true;
} catch (e) {
  if (e instanceof Done) {
    out.ok = true;
  } else {
    out.ok = false;
    out.error = String(e && e.stack || e);
  }
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out));
