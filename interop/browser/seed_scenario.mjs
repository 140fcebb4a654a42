// The seed scenario in a real browser (Debian's headless Chromium driven by playwright-core, no browser download):
// Rails serves www.app.test with its session cookie on Domain=.app.test, the Rust example API serves api.app.test.
//   1. sign in through the Devise form on www           → api.app.test/api/me shows the user
//   2. fetch() with credentials from a www page          → the API's answer is readable (CORS) and authenticated
//   3. POST from that page with Rails' CSRF meta token   → the Rust API accepts it, Rails sees the new counter
//   4. sign out on www                                  → the API answers 401
// Env: RAILS_URL, API_URL (with the *.app.test host names), EMAIL, PASSWORD, CHROMIUM (default /usr/bin/chromium).
// Prints "browser: N passed, M failed" and exits non-zero on any failure.
import { chromium } from "playwright-core";

const RAILS_URL = process.env.RAILS_URL;
const API_URL = process.env.API_URL;
const EMAIL = process.env.EMAIL ?? "user@example.com";
const PASSWORD = process.env.PASSWORD ?? "password123";

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok   ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}: ${detail}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP *.app.test 127.0.0.1",
  ],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();

  // Not signed in yet: the API says 401.
  let res = await page.goto(`${API_URL}/api/me`);
  check("api/me before sign-in is 401", res.status() === 401, res.status());

  // 1. Sign in through the real Devise form.
  await page.goto(`${RAILS_URL}/users/sign_in`);
  await page.fill("#user_email", EMAIL);
  await page.fill("#user_password", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("input[type=submit], button[type=submit]")]);
  const body = await page.textContent("body");
  check("Devise sign-in succeeded", body.includes(`Signed in as ${EMAIL}`), body.slice(0, 200));
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === (process.env.SESSION_KEY ?? "_app_session"));
  check("session cookie is on Domain=.app.test", session && session.domain === ".app.test", JSON.stringify(session));

  res = await page.goto(`${API_URL}/api/me`);
  const me = await res.json().catch(() => null);
  check("api/me after sign-in is 200 with the user", res.status() === 200 && me && me.id === 1, `${res.status()} ${JSON.stringify(me)}`);

  // 2. A fetch() from a www page with credentials: readable thanks to CORS, authenticated by the shared cookie.
  await page.goto(`${RAILS_URL}/`);
  const fetched = await page.evaluate(async (api) => {
    const r = await fetch(`${api}/api/me`, { credentials: "include" });
    return { status: r.status, body: await r.json() };
  }, API_URL);
  check("cross-origin fetch with credentials is readable and authenticated", fetched.status === 200 && fetched.body.id === 1, JSON.stringify(fetched));

  // 3. POST with Rails' CSRF meta token from the www page.
  const posted = await page.evaluate(async (api) => {
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch(`${api}/api/counter`, {
      method: "POST", credentials: "include", headers: { "X-CSRF-Token": token, "Content-Type": "application/json" }, body: "{}",
    });
    return { status: r.status, body: await r.text() };
  }, API_URL);
  check("POST with Rails' CSRF meta token is accepted by the Rust API", posted.status === 200 && JSON.parse(posted.body).counter >= 1, JSON.stringify(posted));
  const forged = await page.evaluate(async (api) => {
    const r = await fetch(`${api}/api/counter`, { method: "POST", credentials: "include", body: "{}" });
    return r.status;
  }, API_URL);
  check("POST without a CSRF token is refused", forged === 403 || forged === 422, forged);

  res = await page.goto(`${RAILS_URL}/session.json`);
  const railsView = await res.json();
  check("Rails sees the counter the Rust API wrote and the user still signed in",
    railsView.session.counter >= 1 && railsView.user_signed_in === true, JSON.stringify(railsView).slice(0, 300));

  // 4. Sign out at Rails: the API follows.
  await page.goto(`${RAILS_URL}/users/sign_out`);
  res = await page.goto(`${API_URL}/api/me`);
  check("api/me after sign-out is 401", res.status() === 401, res.status());
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
