// The browser half of e2e_web: Debian's chromium, headless, driven by
// playwright-core (no browser download). Reads its settings as JSON from
// argv[2]; prints one JSON object of findings on stdout; e2e_web.py judges.
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const out = { steps: [], dialogs: [], console_errors: [] };
const step = (name, value) => out.steps.push({ name, value });
const shot = (page, name) => page.screenshot({ path: `${cfg.shots}/${name}.png`, fullPage: true });

async function signIn(page) {
  await page.goto(cfg.web + '/');
  step('sign-in page shown', await page.locator('a.button', { hasText: 'Sign in' }).count() === 1);
  await shot(page, '01-sign-in');
  // Keyboard only: Tab to the link, Enter follows it.
  let focused = '';
  for (let i = 0; i < 5 && focused !== 'Sign in'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  }
  step('sign-in reachable by keyboard', focused === 'Sign in');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#username', { timeout: 15000 });
  await page.fill('#username', cfg.user);
  await page.fill('#password', cfg.password);
  await page.click('#login');
  await page.waitForURL(cfg.web + '/requests', { timeout: 15000 });
}

async function crossSite(page, context, id) {
  const before = await page.locator(`#request-${id}`).count();
  const csrf = await page.locator(`#request-${id} input[name=csrf]`).first().getAttribute('value');
  const url = `${cfg.web}/requests/${id}/approve`;
  const statuses = [];
  // The session cookie goes along (context.request shares the browser's).
  for (const [headers, form] of [
    [{ Origin: 'https://evil.example' }, {}],
    [{ Origin: 'https://evil.example' }, { csrf }],
    [{ Origin: cfg.web }, { csrf: 'x'.repeat(43) }],
    [{ 'Sec-Fetch-Site': 'cross-site' }, { csrf }],
  ]) {
    const r = await context.request.post(url, { headers, form, maxRedirects: 0 });
    statuses.push(r.status());
  }
  // A real form on another origin (the IdP's), submitted by the browser.
  const evil = await context.newPage();
  await evil.goto(cfg.idp + '/.well-known/openid-configuration');
  await Promise.all([evil.waitForURL(url), evil.evaluate(([u, t]) => {
    const f = document.createElement('form');
    f.method = 'post'; f.action = u;
    const i = document.createElement('input'); i.name = 'csrf'; i.value = t; f.appendChild(i);
    document.body.appendChild(f); f.submit();
  }, [url, csrf])]);
  statuses.push(await evil.title());
  await evil.close();
  await page.reload();
  step('cross-site posts refused', statuses);
  step('request still pending after cross-site posts', before === 1 && await page.locator(`#request-${id}`).count() === 1);
}

async function api() {
  const get = async (headers) => (await fetch(cfg.web + '/api/v1/requests', { headers })).status;
  step('api without token', await get({}));
  step('api with a bad token', await get({ Authorization: 'Bearer not.a.token' }));
  step('api with a token of another issuer', await get({ Authorization: 'Bearer ' + cfg.bad_token }));
  const r = await fetch(cfg.web + '/api/v1/requests', { headers: { Authorization: 'Bearer ' + cfg.good_token } });
  step('api with a good token', [r.status, (await r.json()).ok]);
  // A valid token of someone who may not approve: jitgated's refusal, as 403.
  const a = await fetch(`${cfg.web}/api/v1/requests/${cfg.request_id}/approve`, {
    method: 'POST', body: '{}',
    headers: { Authorization: 'Bearer ' + cfg.other_token, 'Content-Type': 'application/json' } });
  const body = await a.json();
  step('api approve by a non-approver', [a.status, body.ok, body.error && body.error.code]);
}

async function main() {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
                                          chromiumSandbox: false });
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on('dialog', async (d) => { out.dialogs.push(d.message()); await d.dismiss(); });
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
  try {
    await signIn(page);
    const id = cfg.request_id;
    const row = page.locator(`#request-${id}`);
    step('pending request shown', await row.count() === 1);
    step('reason shown as text', await row.locator('td.reason').textContent());
    step('requester shown', await row.locator('td').nth(1).textContent());
    await shot(page, '02-pending-requests');
    await crossSite(page, context, id);
    await api();
    await row.locator('input[name=duration]').fill('10m');
    // By keyboard: focus the Approve button, Enter submits its form.
    await row.locator('button', { hasText: 'Approve' }).focus();
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    step('after approve at', page.url());
    step('approve notice', await page.locator('.notice').textContent());
    await page.goto(cfg.web + '/grants');
    const grant = page.locator('table.grants tbody tr').first();
    step('grant shown', await grant.count() === 1);
    const first = await grant.locator('.countdown').textContent();
    // Polled from here: the page's CSP forbids the eval waitForFunction needs.
    for (let i = 0; i < 50 && await grant.locator('.countdown').textContent() === first; i++)
      await page.waitForTimeout(200);
    step('countdown script ran', await grant.locator('.countdown').getAttribute('data-live'));
    step('countdown moves', [first, await grant.locator('.countdown').textContent()]);
    await shot(page, '03-active-grants');
    await Promise.all([page.waitForNavigation(), grant.locator('button', { hasText: 'Revoke' }).click()]);
    step('after revoke at', page.url());
    step('revoke notice', await page.locator('.notice').textContent());
    step('no grant left', await page.locator('table.grants').count() === 0);
    await shot(page, '04-after-revoke');
    await page.goto(cfg.web + '/audit');
    step('audit page', await page.locator('table.audit tbody tr').count());
    await shot(page, '05-audit');
  } catch (e) {
    out.error = String(e && e.stack || e);
    try { await shot(page, '99-failure'); } catch (_) { /* the page is gone */ }
  }
  await browser.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main();
