// The web dashboard in a real browser: playwright-core driving Debian's Chromium
// (/usr/bin/chromium, headless; never a downloaded browser) against 3 real peers. Sign in
// with the admin token; three alive rows with version and ring share; request rates and
// latencies from /metrics; upload a 12 MiB file through the page (a multipart upload of
// 3 parts) and read the same bytes back through S3; its metadata and locations; its upload
// record, and those of an upload through another peer and of a client that vanished
// mid-body, in the Recent uploads panel as success, success and fail; search a bucket by
// metadata (two pages of one, then a malformed query's error inline); drain a
// member from the page, see why it cannot finish, cancel it; create a key in the page, sign
// in with it in another tab, revoke it, and S3 refuses it; kill a peer and its row turns
// dead and the banner degraded in time. Screenshots go to a temp folder, printed at the end.
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import pkg from "../../package.json" with { type: "json" };
import { launchChromium } from "../harness/browser.ts";
import { TEST_MEMBERSHIP, withCluster } from "../harness/cluster.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { json, mustCreateBucket, rawRequest, request } from "../harness/http.ts";
import { bodyBytes, MiB, s3Client, sdkFailure } from "../harness/s3.ts";

/** How long the dashboard waits between refreshes (ui/app.js). */
const POLL_MS = 2000;
const DEAD_AFTER_MS = TEST_MEMBERSHIP.deadAfterMs!;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("dashboard", () => {
  test("sign in, peers, upload 12 MiB, revoke a key, a killed peer turns dead and the banner degraded", async () => {
    const shots = mkdtempSync(path.join(os.tmpdir(), "meshstore-dashboard-"));
    const browser = await launchChromium();
    try {
      await withCluster(3, { topology: "star" }, async (c) => {
        await c.waitFor("all alive", () => c.allSee([0, 1, 2], [0, 1, 2], "alive"));
        const base = c.peer(0).httpUrl;
        const bucket = "dashboard";
        await mustCreateBucket(base, bucket);

        const page: Page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
        const pageErrors: string[] = [];
        page.on("pageerror", (err) => pageErrors.push(err.message));
        page.on("dialog", (d) => void d.accept());
        const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

        // The page is open; its data is not.
        const ui = await fetch(`${base}/ui/`);
        expect(ui.status).toBe(200);
        expect(ui.headers.get("content-type")).toContain("text/html");
        expect(ui.headers.get("content-security-policy")).toContain("default-src 'none'");
        expect((await fetch(`${base}/ui/app.js`)).headers.get("content-type")).toContain("javascript");
        for (const wrong of ["/ui/../package.json", "/ui/%2e%2e/package.json", "/ui/..%2fpackage.json", "/ui/nope.js", "/ui/ui/app.js"]) {
          expect(`${wrong} ${(await fetch(base + wrong)).status}`).toBe(`${wrong} 404`);
        }

        // Sign in with the admin token.
        await page.goto(`${base}/ui/`);
        await page.fill("#token", ADMIN_BEARER.slice("Bearer ".length));
        await page.click("#signin-form button[type=submit]");
        await c.waitFor("three alive rows", async () => (await page.locator('#peers tbody tr[data-state="alive"]').count()) === 3, 10_000);
        await page.waitForSelector('#banner[data-health="healthy"]', { timeout: 10_000 });
        expect(await page.locator("#peers tbody tr").count()).toBe(3);
        await page.waitForSelector(`#buckets tbody tr[data-bucket="${bucket}"]`, { timeout: 10_000 });
        // Each row: the version each peer runs, and its share of the key space (3 peers, rf 3: all of it).
        for (let i = 0; i < 3; i++) {
          const row = page.locator(`#peers tbody tr[data-peer="${c.peer(i).peerId}"]`);
          await c.waitFor(`peer ${i}'s row complete`, async () => (await row.locator("td").nth(6).textContent()) === pkg.version && (await row.locator("td").nth(10).textContent()) === "100 %", 10_000);
        }
        expect(await page.locator("#ownership .bar").count()).toBe(3);
        // Requests on this peer from its /metrics: the page's own polling is native traffic, with a rate and latencies.
        await page.waitForSelector("#traffic-section:not([hidden])", { timeout: 10_000 });
        await c.waitFor("a native request rate and p99", async () => {
          const cells = await page.locator('#traffic tbody tr[data-api="native"] td').allTextContents();
          return cells.length === 7 && Number(cells[1]) > 0 && /ms|s$/.test(cells[5]);
        }, 15_000);
        await shot("1-signed-in");

        // Upload 12 MiB through the page (XHR with a progress bar), read it back through S3.
        await page.click(`#buckets tbody tr[data-bucket="${bucket}"] button`);
        await page.waitForSelector("#browser:not([hidden])");
        const data = new Uint8Array(12 * MiB);
        for (let i = 0; i < data.length; i += 4096) data[i] = (i * 2654435761) >>> 24;
        crypto.getRandomValues(data.subarray(0, 65536));
        await page.setInputFiles("#upload-file", { name: "big.bin", mimeType: "application/octet-stream", buffer: Buffer.from(data) });
        const uploadStarted = performance.now();
        await page.click("#upload-form button[type=submit]");
        await page.waitForSelector('#upload-status[data-done="big.bin"]', { timeout: 60_000 });
        console.log(`12 MiB uploaded through the page in ${Math.round(performance.now() - uploadStarted)} ms`);
        expect(await page.getAttribute("#upload-progress", "value")).toBe("1");
        expect(await page.textContent("#upload-status")).toContain("multipart");
        // Sent as a multipart upload of 5, 5 and 2 MiB: S3 shows the multipart ETag.
        const head = await s3Client(c.peer(2).s3Url).send(new HeadObjectCommand({ Bucket: bucket, Key: "big.bin" }));
        expect(head.ETag).toMatch(/-3"$/);
        expect(head.ContentLength).toBe(12 * MiB);
        await page.waitForSelector('#objects tbody tr[data-key="big.bin"]', { timeout: 10_000 });
        const got = await s3Client(c.peer(1).s3Url).send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin" }));
        expect(sha256(await bodyBytes(got.Body))).toBe(sha256(data));
        await page.click('#objects tbody tr[data-key="big.bin"] button:text("Details")');
        await page.waitForSelector('#details[data-key="big.bin"]:not([hidden])');
        const details = (await page.textContent("#details"))!;
        expect(details).toContain("content-type: application/octet-stream");
        expect(details).toContain(`etag: ${head.ETag}`);
        expect(details).toContain("chunk 0");
        await shot("2-uploaded");

        // Upload records: the page's own upload shows its record by its token; one with a
        // known token through peer 1 and a client vanishing mid-body on peer 2 show in the panel.
        const recordsStarted = performance.now();
        const ownToken = (await page.getAttribute("#upload-status", "data-token"))!;
        await page.waitForSelector('#upload-record[data-state="success"]', { timeout: 5000 });
        expect(await page.textContent("#upload-record")).toBe(`token ${ownToken}: success, the mesh has 12.0 MiB (100 %)`);
        const known = await request(c.peer(1).httpUrl, "PUT", `/buckets/${bucket}/objects/known.txt`, { body: "known body", headers: { "x-upload-token": "dashboard-known-1" } });
        expect(known.status).toBe(200);
        const vanishing = `PUT /buckets/${bucket}/objects/vanished HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN_BEARER}\r\nx-upload-token: dashboard-vanished-1\r\nContent-Length: 3000000\r\n\r\n`;
        await rawRequest(c.peer(2).httpUrl, vanishing, new Uint8Array(300_000), "abort");
        const recordsFrom = performance.now();
        await page.locator("#uploads-section").scrollIntoViewIfNeeded();
        const row = (t: string, state: string) => `#uploads tbody tr[data-token="${t}"][data-state="${state}"]`;
        await Promise.all([row(ownToken, "success"), row("dashboard-known-1", "success"), row("dashboard-vanished-1", "fail")].map((r) => page.waitForSelector(r, { timeout: 10_000 })));
        console.log(`upload records in the panel ${Math.round(performance.now() - recordsFrom)} ms after it came into view (${Math.round(performance.now() - recordsStarted)} ms from the first upload)`);
        const cells = (t: string, state: string) => page.locator(`${row(t, state)} td`).allTextContents();
        const own = await cells(ownToken, "success");
        expect([own[1], own[2], own[3], own[4].trim()]).toEqual([`${bucket}/big.bin`, "success multipart", "12.0 MiB", "100 %"]);
        const ok = await cells("dashboard-known-1", "success");
        expect([ok[1], ok[2], ok[3], ok[4].trim(), ok[7]]).toEqual([`${bucket}/known.txt`, "success", "10 B", "100 %", ""]);
        const failed = await cells("dashboard-vanished-1", "fail");
        expect([failed[1], failed[2]]).toEqual([`${bucket}/vanished`, "fail"]);
        expect(failed[3]).toEndWith(" of 2.9 MiB");
        expect(failed[7]).toContain("disconnected");
        await shot("2b-upload-records");

        // Search: a schema and four objects with metadata (over HTTP, through peer 1), then a
        // text query in the page, sorted by year descending, a page of one at a time.
        const sb = "search";
        await mustCreateBucket(base, sb);
        const schema = await request(c.peer(1).httpUrl, "PUT", `/buckets/${sb}/schema`, { body: JSON.stringify({ fields: { year: "number", title: "string" } }), headers: { "content-type": "application/json" } });
        expect(schema.status).toBe(200);
        for (const [key, year, title] of [["a.txt", "2019", "Mesh one"], ["b.txt", "2021", "Mesh two"], ["c.txt", "2023", "Mesh three"], ["d.txt", "2024", "Other"]]) {
          expect((await request(c.peer(1).httpUrl, "PUT", `/buckets/${sb}/objects/${key}`, { body: key, headers: { "x-meta-year": year, "x-meta-title": title } })).status).toBe(200);
        }
        await c.waitFor("the search index ready", async () => json<{ state: string }>(await request(base, "GET", `/buckets/${sb}/schema`)).state === "ready", 10_000);
        await page.waitForSelector(`#search-bucket option[value="${sb}"]`, { state: "attached", timeout: 10_000 });
        await page.selectOption("#search-bucket", sb);
        await page.waitForSelector('#search-schema:text("year (number)")', { timeout: 5000 });
        await page.fill("#search-q", 'year>=2020 and title prefix "Mesh"');
        await page.fill("#search-sort", "year");
        await page.selectOption("#search-order", "desc");
        await page.fill("#search-limit", "1");
        await page.click("#search-form button[type=submit]");
        await page.waitForSelector('#search-results[data-done="1"]', { timeout: 5000 });
        expect(await page.isVisible("#search-more")).toBe(true);
        await page.click("#search-more");
        await page.waitForSelector('#search-results[data-done="2"]', { timeout: 5000 });
        expect(await page.isHidden("#search-more")).toBe(true);
        const found = await page.locator("#search-results tbody tr").evaluateAll((rows) => rows.map((r) => [r.getAttribute("data-key"), r.cells[1].textContent, [...r.cells[3].querySelectorAll("span")].map((m) => m.textContent).sort()]));
        expect(found).toEqual([
          ["c.txt", "5 B", ["title=Mesh three", "year=2023"]],
          ["b.txt", "5 B", ["title=Mesh two", "year=2021"]],
        ]);
        expect(await page.textContent("#search-status")).toBe("2 object(s)");
        // A malformed query: the server's code and message inline, a caret under the fault, no rows.
        await page.fill("#search-q", "year >= ");
        await page.click("#search-form button[type=submit]");
        await page.waitForSelector("#search-error:not([hidden])", { timeout: 5000 });
        expect(await page.textContent("#search-error")).toMatch(/^InvalidQuery: .* at position 7$/);
        expect(await page.textContent("#search-caret")).toBe(`year >=\n${" ".repeat(7)}^`);
        expect(await page.locator("#search-results tbody tr").count()).toBe(0);
        await shot("2c-search");

        // Drain peer 1 from peer 0's page: with 3 members and rf 3 it cannot finish, and says why; cancel it.
        const drained = `#peers tbody tr[data-peer="${c.peer(1).peerId}"]`;
        await page.click(`${drained} button[data-action="drain"]`);
        await page.waitForSelector(`${drained}[data-draining="true"]`, { timeout: 10_000 });
        expect(await page.textContent("#drain-status")).toContain("nowhere to move");
        await shot("3-draining");
        await page.click(`${drained} button[data-action="cancel-drain"]`);
        await page.waitForSelector(`${drained}:not([data-draining])`, { timeout: 10_000 });
        expect(await page.textContent("#drain-status")).toContain("cancelled");

        // Create a key in the page (its secret shown once), use it, revoke it there: S3 refuses it.
        await page.fill("#key-name", "dashboard-test");
        await page.fill("#key-buckets", `${bucket}=read`);
        await page.click("#key-form button[type=submit]");
        await page.waitForSelector("#new-key:not([hidden])");
        const accessKeyId = (await page.textContent("#new-key div:nth-of-type(1) code"))!.trim();
        const secretAccessKey = (await page.textContent("#new-key-secret"))!.trim();
        expect(accessKeyId).toMatch(/^[A-Z0-9]+$/);
        const asKey = s3Client(c.peer(2).s3Url, { accessKeyId, secretAccessKey }, { maxAttempts: 1 });
        const read = () => asKey.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin" }));
        expect((await read()).$metadata.httpStatusCode).toBe(200);
        await page.waitForSelector(`#keys tbody tr[data-key-id="${accessKeyId}"]`);
        await shot("4-key-created");

        // Sign in with that access key in another tab: it sees its bucket, not the admin's sections.
        const keyPage = await browser.newPage();
        keyPage.on("pageerror", (err) => pageErrors.push(err.message));
        await keyPage.goto(`${c.peer(1).httpUrl}/ui/`);
        await keyPage.fill("#access-key-id", accessKeyId);
        await keyPage.fill("#secret-access-key", "not-the-secret");
        await keyPage.click("#signin-key-form button[type=submit]");
        await keyPage.waitForSelector('#signin-error:text("not valid")', { timeout: 10_000 });
        await keyPage.fill("#secret-access-key", secretAccessKey);
        await keyPage.click("#signin-key-form button[type=submit]");
        await keyPage.waitForSelector(`#buckets tbody tr[data-bucket="${bucket}"]`, { timeout: 10_000 });
        expect(await keyPage.isHidden("#keys-section")).toBe(true);
        expect(await keyPage.isHidden("#traffic-section")).toBe(true);
        await keyPage.close();
        await page.click(`#keys tbody tr[data-key-id="${accessKeyId}"] button`);
        await page.waitForSelector(`#keys tbody tr[data-key-id="${accessKeyId}"]`, { state: "detached", timeout: 10_000 });
        expect(await page.isHidden("#new-key")).toBe(true);
        const refused = await sdkFailure("GetObject with the revoked key", read());
        expect(refused.status).toBe(403);
        const feed = json<{ events: Array<{ type: string; detail: string }> }>(await request(base, "GET", "/cluster/events"));
        expect(feed.events.filter((e) => e.detail.includes(accessKeyId)).map((e) => e.type)).toEqual(["key.created", "key.revoked"]);

        // Kill a peer: its row turns dead and the banner degraded, within the time the
        // survivors take to call it dead plus one refresh of the page.
        const victim = c.peer(2).peerId;
        const killedAt = performance.now();
        await c.kill(2);
        const m = TEST_MEMBERSHIP;
        const suspectBound = 4 * m.probeIntervalMs! + 3 * m.probeTimeoutMs!;
        const bound = suspectBound + DEAD_AFTER_MS + POLL_MS;
        const [apiMs, uiMs] = await Promise.all([
          c.waitFor("peer 0 calls the victim dead", () => c.allSee([0], [2], "dead"), bound + 5000, 25).then(() => performance.now() - killedAt),
          Promise.all([
            page.waitForSelector(`#peers tbody tr[data-peer="${victim}"][data-state="dead"]`, { timeout: bound + 5000 }),
            page.waitForSelector('#banner[data-health="degraded"]', { timeout: bound + 5000 }),
          ]).then(() => performance.now() - killedAt),
        ]);
        console.log(`killed peer: dead in peer 0's API after ${Math.round(apiMs)} ms, dead in the page after ${Math.round(uiMs)} ms (dead-after ${DEAD_AFTER_MS} ms, bound ${bound} ms)`);
        expect(uiMs).toBeLessThanOrEqual(bound);
        expect(uiMs - apiMs).toBeLessThanOrEqual(POLL_MS + 1000);
        await page.waitForSelector(`#events li[data-type="peer.dead"][data-peer="${victim}"]`, { timeout: POLL_MS + 2000 });
        await shot("5-peer-dead");
        expect(pageErrors).toEqual([]);
        await page.close();
      });
    } finally {
      await browser.close();
      console.log(`dashboard screenshots: ${shots}`);
    }
  }, 150_000);
});
