// A real browser for the tests that need one: playwright-core driving Debian's Chromium
// (/usr/bin/chromium, headless). Never a downloaded browser; a missing one fails loudly.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Debian's Chromium, or a failure saying how to get it (these tests never skip). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`this test needs Debian's Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (.ci/run does this when run as root)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}
