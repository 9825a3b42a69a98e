// `/docs` in a real browser: the peer's own Swagger UI (no CDN) renders every native route
// of `/openapi.json`, generated from the routes' schemas.
import { expect, test } from "bun:test";
import { launchChromium } from "../harness/browser.ts";
import { withCluster } from "../harness/cluster.ts";

test("/docs renders the native API's routes from /openapi.json, with nothing loaded from elsewhere", async () => {
  const browser = await launchChromium();
  try {
    await withCluster(1, { rf: 1 }, async (c) => {
      const base = c.peer(0).httpUrl;
      const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
      const operations = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`));
      expect(operations.length).toBeGreaterThan(10);

      const page = await browser.newPage();
      const foreign: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(base)) foreign.push(r.url());
      });
      await page.goto(`${base}/docs`);
      await page.waitForSelector(".opblock", { timeout: 20_000 });
      const shown = await page.$$eval(".opblock-summary", (els) => els.map((e) => `${e.querySelector(".opblock-summary-method")?.textContent?.trim()} ${e.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`));
      console.log(`/docs shows ${shown.length} operations of ${operations.length} in /openapi.json`);
      expect(shown.sort()).toEqual(operations.sort());
      expect(foreign).toEqual([]);
    });
  } finally {
    await browser.close();
  }
}, 90_000);
