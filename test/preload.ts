// Loaded before every test file (bunfig.toml [test] preload). After each test, the lines
// every peer logged since the last check are checked against every secret the suite has
// created so far (test/harness/leak-check.ts): a leak fails the test it happened in, and is
// counted as a failure by bun test. The last check, after every file, catches lines logged
// by the last file's teardown.
import { afterAll, afterEach } from "bun:test";
import { settleRemovals } from "./harness/cleanup.ts";
import { suiteLeaks } from "./harness/leak-check.ts";

afterEach(() => suiteLeaks.assertNoLeaks("logged during this test, or since the check before it"));
afterAll(() => suiteLeaks.assertNoLeaks("in the last teardown"));
// Temp folders are removed in the background (harness/cleanup.ts); none outlives its file.
afterAll(() => settleRemovals(), 60_000);
